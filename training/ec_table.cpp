// Fused value-table EC for training (training/ec_table.py): the forward gather-add and its backward
// (scatter into the value table's gradient, slope gather for the input's gradient).
//
// idx   int32 (N, C, Hp, Wp): activation value index v = x + 2^(A-1) of the padded input
// V, S  float (C, NV, k, k, CO): value table (DPFI output per activation value, entry units) and its
//       slope table (d value / d x)
// out   float (N, CO, H, W), H = Hp - k + 1: out[n, o, y, x] = sum_{c, jy, jx}
//       V[c, idx[n, c, y + k-1-jy, x + k-1-jx], jy, jx, o]   (the shifted adds of golden.iqlut.ec)
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <mutex>
#include <vector>

namespace {

constexpr int64_t MAX_CO = 256;

template <int CO_T>
void forward_impl(const int32_t* __restrict__ idx, const float* __restrict__ V, float* __restrict__ out, int64_t N, int64_t C, int64_t Hp,
                  int64_t Wp, int64_t k, int64_t NV, int64_t co_rt) {
    const int64_t CO = CO_T ? CO_T : co_rt;
    const int64_t H = Hp - k + 1, W = Wp - k + 1, KK = k * k;
    at::parallel_for(0, N, 1, [&](int64_t n0, int64_t n1) {
        float acc[MAX_CO];
        for (int64_t n = n0; n < n1; ++n) {
            for (int64_t y = 0; y < H; ++y) {
                for (int64_t x = 0; x < W; ++x) {
                    for (int64_t o = 0; o < CO; ++o) acc[o] = 0.f;
                    for (int64_t c = 0; c < C; ++c) {
                        const int32_t* ic = idx + ((n * C + c) * Hp) * Wp;
                        const float* vc = V + c * NV * KK * CO;
                        for (int64_t jy = 0; jy < k; ++jy) {
                            const int32_t* row = ic + (y + k - 1 - jy) * Wp + x + k - 1;
                            for (int64_t jx = 0; jx < k; ++jx) {
                                const float* e = vc + (row[-jx] * KK + jy * k + jx) * CO;
                                for (int64_t o = 0; o < CO; ++o) acc[o] += e[o];
                            }
                        }
                    }
                    for (int64_t o = 0; o < CO; ++o) out[((n * CO + o) * H + y) * W + x] = acc[o];
                }
            }
        }
    });
}

template <int CO_T>
void backward_impl(const int32_t* __restrict__ idx, const float* __restrict__ S, const float* __restrict__ G,
                   float* __restrict__ gV, float* __restrict__ gx, int64_t N, int64_t C, int64_t Hp,
                   int64_t Wp, int64_t k, int64_t NV, int64_t co_rt) {
    // G is channel-last (N, H, W, CO); gV (C, NV, k, k, CO) starts at zero. In source-pixel order:
    // each input pixel adds the k x k output gradients it fed into its table row (one contiguous
    // k*k*CO row) and takes their dot product with its slope row as its own gradient.
    const int64_t CO = CO_T ? CO_T : co_rt;
    const int64_t H = Hp - k + 1, W = Wp - k + 1, KK = k * k;
    const int64_t table = C * NV * KK * CO;
    std::mutex mu;
    at::parallel_for(0, N, 1, [&](int64_t n0, int64_t n1) {
        // one chunk per thread: a private gV when running in parallel, gV itself when alone
        std::vector<float> own;
        float* __restrict__ gv = gV;
        if (n0 != 0 || n1 != N) {
            own.assign(table, 0.f);
            gv = own.data();
        }
        float acc[MAX_CO];
        for (int64_t n = n0; n < n1; ++n) {
            for (int64_t c = 0; c < C; ++c) {
                const int64_t base = ((n * C + c) * Hp) * Wp;
                for (int64_t sy = 0; sy < Hp; ++sy) {
                    for (int64_t sx = 0; sx < Wp; ++sx) {
                        const int64_t row = (c * NV + idx[base + sy * Wp + sx]) * KK * CO;
                        for (int64_t o = 0; o < CO; ++o) acc[o] = 0.f;
                        for (int64_t jy = 0; jy < k; ++jy) {
                            const int64_t y = sy - (k - 1) + jy;
                            if (y < 0 || y >= H) continue;
                            for (int64_t jx = 0; jx < k; ++jx) {
                                const int64_t x = sx - (k - 1) + jx;
                                if (x < 0 || x >= W) continue;
                                const float* __restrict__ g = G + ((n * H + y) * W + x) * CO;
                                float* __restrict__ d = gv + row + (jy * k + jx) * CO;
                                const float* __restrict__ s = S + row + (jy * k + jx) * CO;
                                for (int64_t o = 0; o < CO; ++o) {
                                    d[o] += g[o];
                                    acc[o] += s[o] * g[o];
                                }
                            }
                        }
                        float t = 0.f;
                        for (int64_t o = 0; o < CO; ++o) t += acc[o];
                        gx[base + sy * Wp + sx] = t;
                    }
                }
            }
        }
        if (gv != gV) {
            std::lock_guard<std::mutex> lock(mu);
            for (int64_t i = 0; i < table; ++i) gV[i] += gv[i];
        }
    });
}

void check(const torch::Tensor& idx, const torch::Tensor& V, int64_t k) {
    TORCH_CHECK(idx.scalar_type() == torch::kInt32 && idx.is_contiguous() && idx.dim() == 4,
                "idx: contiguous int32 (N, C, Hp, Wp)");
    TORCH_CHECK(V.scalar_type() == torch::kFloat32 && V.is_contiguous() && V.dim() == 5,
                "table: contiguous float32 (C, NV, k, k, CO)");
    TORCH_CHECK(V.size(0) == idx.size(1) && V.size(2) == k && V.size(3) == k, "table/idx shape mismatch");
    TORCH_CHECK(V.size(4) <= MAX_CO, "at most 256 output channels");
    TORCH_CHECK(idx.size(2) >= k && idx.size(3) >= k, "input smaller than the kernel");
}

}  // namespace

torch::Tensor ec_forward(torch::Tensor idx, torch::Tensor V, int64_t k) {
    check(idx, V, k);
    const int64_t N = idx.size(0), C = idx.size(1), Hp = idx.size(2), Wp = idx.size(3);
    const int64_t NV = V.size(1), CO = V.size(4);
    auto out = torch::empty({N, CO, Hp - k + 1, Wp - k + 1}, V.options());
    auto f = CO == 8 ? forward_impl<8> : CO == 16 ? forward_impl<16> : forward_impl<0>;
    f(idx.data_ptr<int32_t>(), V.data_ptr<float>(), out.data_ptr<float>(), N, C, Hp, Wp, k, NV, CO);
    return out;
}

std::vector<torch::Tensor> ec_backward(torch::Tensor idx, torch::Tensor S, torch::Tensor G, int64_t k) {
    check(idx, S, k);
    const int64_t N = idx.size(0), C = idx.size(1), Hp = idx.size(2), Wp = idx.size(3);
    const int64_t NV = S.size(1), CO = S.size(4);
    TORCH_CHECK(G.scalar_type() == torch::kFloat32 && G.is_contiguous() && G.size(0) == N &&
                G.size(1) == Hp - k + 1 && G.size(2) == Wp - k + 1 && G.size(3) == CO,
                "grad: contiguous float32 (N, H, W, CO)");
    auto gV = torch::zeros_like(S);
    auto gx = torch::empty({N, C, Hp, Wp}, S.options());
    auto f = CO == 8 ? backward_impl<8> : CO == 16 ? backward_impl<16> : backward_impl<0>;
    f(idx.data_ptr<int32_t>(), S.data_ptr<float>(), G.data_ptr<float>(), gV.data_ptr<float>(),
      gx.data_ptr<float>(), N, C, Hp, Wp, k, NV, CO);
    return {gV, gx};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("ec_forward", &ec_forward, "value-table EC forward");
    m.def("ec_backward", &ec_backward, "value-table EC backward: (grad table, grad input)");
}

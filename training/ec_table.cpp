// Fused value-table EC for training (training/ec_table.py): the forward gather-add and its backward
// (scatter into the value table's gradient, slope gather for the input's gradient).
//
// idx   int32 (N, C, H, W): activation value index v = x + 2^(A-1) of the input
// V, S  float (C, NV, k, k, CO): value table (DPFI output per activation value, entry units) and its
//       slope table (d value / d x)
// out   float (N, CO, H, W): out[n, o, y, x] = sum_{c, jy, jx} V[c, idx[n, c, Y, X], jy, jx, o] with
//       Y = clamp(y - jy - origin, 0, H-1), X likewise (golden.iqlut.ec: edges replicated)
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <mutex>
#include <vector>

namespace {

constexpr int64_t MAX_CO = 256, MAX_K = 8;

// Edge-replicated source coordinate of output coordinate q through tap j: clamp(q - j - origin).
inline int64_t src(int64_t q, int64_t j, int64_t origin, int64_t n) {
    const int64_t s = q - j - origin;
    return s < 0 ? 0 : (s >= n ? n - 1 : s);
}

// K_T / CO_T: compile-time kernel size and output channels (0 = runtime), so that the per-pixel
// accumulators of the common shapes live in registers.
template <int K_T, int CO_T>
void forward_impl(const int32_t* __restrict__ idx, const float* __restrict__ V, float* __restrict__ out,
                  int64_t N, int64_t C, int64_t H, int64_t W, int64_t k_rt, int64_t origin, int64_t NV,
                  int64_t co_rt) {
    const int64_t k = K_T ? K_T : k_rt, CO = CO_T ? CO_T : co_rt;
    const int64_t KK = k * k;
    std::vector<int64_t> cols(k * W);
    for (int64_t jx = 0; jx < k; ++jx)
        for (int64_t x = 0; x < W; ++x) cols[jx * W + x] = src(x, jx, origin, W);
    at::parallel_for(0, N, 1, [&](int64_t n0, int64_t n1) {
        // two accumulators (even / odd jx) halve the dependency chain of the adds
        float a0[MAX_CO], a1[MAX_CO];
        int64_t rows[MAX_K];
        for (int64_t n = n0; n < n1; ++n) {
            for (int64_t y = 0; y < H; ++y) {
                for (int64_t jy = 0; jy < k; ++jy) rows[jy] = src(y, jy, origin, H) * W;
                for (int64_t x = 0; x < W; ++x) {
                    for (int64_t o = 0; o < CO; ++o) a0[o] = a1[o] = 0.f;
                    for (int64_t c = 0; c < C; ++c) {
                        const int32_t* ic = idx + (n * C + c) * H * W;
                        const float* vc = V + c * NV * KK * CO;
                        for (int64_t jy = 0; jy < k; ++jy) {
                            const int32_t* row = ic + rows[jy];
                            int64_t jx = 0;
                            for (; jx + 1 < k; jx += 2) {
                                const float* e0 = vc + (row[cols[jx * W + x]] * KK + jy * k + jx) * CO;
                                const float* e1 = vc + (row[cols[(jx + 1) * W + x]] * KK + jy * k + jx + 1) * CO;
                                for (int64_t o = 0; o < CO; ++o) {
                                    a0[o] += e0[o];
                                    a1[o] += e1[o];
                                }
                            }
                            if (jx < k) {
                                const float* e0 = vc + (row[cols[jx * W + x]] * KK + jy * k + jx) * CO;
                                for (int64_t o = 0; o < CO; ++o) a0[o] += e0[o];
                            }
                        }
                    }
                    for (int64_t o = 0; o < CO; ++o) out[((n * CO + o) * H + y) * W + x] = a0[o] + a1[o];
                }
            }
        }
    });
}

template <int K_T, int CO_T>
void backward_impl(const int32_t* __restrict__ idx, const float* __restrict__ S, const float* __restrict__ G,
                   float* __restrict__ gV, float* __restrict__ gx, int64_t N, int64_t C, int64_t H,
                   int64_t W, int64_t k_rt, int64_t origin, int64_t NV, int64_t co_rt) {
    // G is channel-last (N, H, W, CO); gV (C, NV, k, k, CO) and gx (N, C, H, W) start at zero.
    // In source order over the edge-padded image: padded pixel p reads pixel clamp(p - lo),
    // lo = k - 1 + origin, and feeds output p - (k - 1) + j through tap j. Its k*k output gradients
    // (zero outside the image) are gathered once into `gl`; then for every input channel they are
    // added to the table row of its value (one contiguous k*k*CO row) and their dot product with the
    // slope row is added to the pixel's gradient.
    const int64_t k = K_T ? K_T : k_rt, CO = CO_T ? CO_T : co_rt;
    const int64_t KK = k * k, R = KK * CO, lo = k - 1 + origin, Hp = H + k - 1, Wp = W + k - 1;
    const int64_t table = C * NV * R;
    std::mutex mu;
    at::parallel_for(0, N, 1, [&](int64_t n0, int64_t n1) {
        // one chunk per thread: a private gV when running in parallel, gV itself when alone
        std::vector<float> own;
        float* __restrict__ gv = gV;
        if (n0 != 0 || n1 != N) {
            own.assign(table, 0.f);
            gv = own.data();
        }
        std::vector<float> gl_v(R);
        float* __restrict__ gl = gl_v.data();
        for (int64_t n = n0; n < n1; ++n) {
            for (int64_t py = 0; py < Hp; ++py) {
                const int64_t ry = std::min(std::max(py - lo, int64_t(0)), H - 1);
                for (int64_t px = 0; px < Wp; ++px) {
                    const int64_t rx = std::min(std::max(px - lo, int64_t(0)), W - 1);
                    for (int64_t jy = 0; jy < k; ++jy) {
                        const int64_t y = py - (k - 1) + jy;
                        for (int64_t jx = 0; jx < k; ++jx) {
                            const int64_t x = px - (k - 1) + jx;
                            float* __restrict__ d = gl + (jy * k + jx) * CO;
                            if (y < 0 || y >= H || x < 0 || x >= W) {
                                for (int64_t o = 0; o < CO; ++o) d[o] = 0.f;
                            } else {
                                const float* __restrict__ g = G + ((n * H + y) * W + x) * CO;
                                for (int64_t o = 0; o < CO; ++o) d[o] = g[o];
                            }
                        }
                    }
                    const int64_t pix = ry * W + rx;
                    for (int64_t c = 0; c < C; ++c) {
                        const int64_t at = (n * C + c) * H * W + pix;
                        const int64_t row = (c * NV + idx[at]) * R;
                        float* __restrict__ d = gv + row;
                        const float* __restrict__ s = S + row;
                        // the dot product in CO lanes (vectorizable without reassociation)
                        float acc[MAX_CO];
                        for (int64_t o = 0; o < CO; ++o) acc[o] = 0.f;
                        for (int64_t j = 0; j < KK; ++j) {
                            for (int64_t o = 0; o < CO; ++o) {
                                d[j * CO + o] += gl[j * CO + o];
                                acc[o] += s[j * CO + o] * gl[j * CO + o];
                            }
                        }
                        float t = 0.f;
                        for (int64_t o = 0; o < CO; ++o) t += acc[o];
                        gx[at] += t;
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

template <typename F>
F pick(int64_t k, int64_t co, F k2c8, F k2c16, F k3c8, F k3c16, F any) {
    if (k == 2) return co == 8 ? k2c8 : co == 16 ? k2c16 : any;
    if (k == 3) return co == 8 ? k3c8 : co == 16 ? k3c16 : any;
    return any;
}

void check(const torch::Tensor& idx, const torch::Tensor& V, int64_t k, int64_t origin) {
    TORCH_CHECK(idx.scalar_type() == torch::kInt32 && idx.is_contiguous() && idx.dim() == 4,
                "idx: contiguous int32 (N, C, H, W)");
    TORCH_CHECK(V.scalar_type() == torch::kFloat32 && V.is_contiguous() && V.dim() == 5,
                "table: contiguous float32 (C, NV, k, k, CO)");
    TORCH_CHECK(V.size(0) == idx.size(1) && V.size(2) == k && V.size(3) == k, "table/idx shape mismatch");
    TORCH_CHECK(V.size(4) <= MAX_CO, "at most 256 output channels");
    TORCH_CHECK(1 <= k && k <= 8 && -(k - 1) <= origin && origin <= 0, "kernel 1..8, origin -(k-1)..0");
    TORCH_CHECK(idx.size(2) >= 1 && idx.size(3) >= 1, "empty input");
}

}  // namespace

torch::Tensor ec_forward(torch::Tensor idx, torch::Tensor V, int64_t k, int64_t origin) {
    check(idx, V, k, origin);
    const int64_t N = idx.size(0), C = idx.size(1), H = idx.size(2), W = idx.size(3);
    const int64_t NV = V.size(1), CO = V.size(4);
    auto out = torch::empty({N, CO, H, W}, V.options());
    auto f = pick(k, CO, forward_impl<2, 8>, forward_impl<2, 16>, forward_impl<3, 8>, forward_impl<3, 16>,
                  forward_impl<0, 0>);
    f(idx.data_ptr<int32_t>(), V.data_ptr<float>(), out.data_ptr<float>(), N, C, H, W, k, origin, NV, CO);
    return out;
}

std::vector<torch::Tensor> ec_backward(torch::Tensor idx, torch::Tensor S, torch::Tensor G, int64_t k,
                                       int64_t origin) {
    check(idx, S, k, origin);
    const int64_t N = idx.size(0), C = idx.size(1), H = idx.size(2), W = idx.size(3);
    const int64_t NV = S.size(1), CO = S.size(4);
    TORCH_CHECK(G.scalar_type() == torch::kFloat32 && G.is_contiguous() && G.dim() == 4 && G.size(0) == N &&
                G.size(1) == H && G.size(2) == W && G.size(3) == CO, "grad: contiguous float32 (N, H, W, CO)");
    auto gV = torch::zeros_like(S);
    auto gx = torch::zeros({N, C, H, W}, S.options());
    auto f = pick(k, CO, backward_impl<2, 8>, backward_impl<2, 16>, backward_impl<3, 8>, backward_impl<3, 16>,
                  backward_impl<0, 0>);
    f(idx.data_ptr<int32_t>(), S.data_ptr<float>(), G.data_ptr<float>(), gV.data_ptr<float>(),
      gx.data_ptr<float>(), N, C, H, W, k, origin, NV, CO);
    return {gV, gx};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("ec_forward", &ec_forward, "value-table EC forward");
    m.def("ec_backward", &ec_backward, "value-table EC backward: (grad table, grad input)");
}

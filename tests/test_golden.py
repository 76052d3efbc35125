"""The golden integer model: each block on hand-worked cases, the vectorized model against a
per-pixel transcription of docs/fixed-point.md, and the interval-analysis bounds on adversarial input."""
import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest

from golden import iqlut, spec
from golden.modelfile import Model, random_model
from golden.spec import LayerConfig, ModelConfig


def small_config(name="t", channels=3, blocks=3, levels=(6, 5), levels_up=4, frac_bits=4, kernel=2,
                 act_bits=8, entry_bits=8, gate_bits=8, scale=4):
    bl = []
    for n in range(blocks):
        origin = -((kernel - 1) // 2) if kernel % 2 else (0 if n % 2 == 0 else -(kernel - 1))
        bl.append(LayerConfig(1 if n == 0 else channels, channels, levels[0] if n == 0 else levels[1],
                              frac_bits, kernel, origin, True))
    up = LayerConfig(channels, scale * scale, levels_up, frac_bits, kernel,
                     -((kernel - 1) // 2) if kernel % 2 else 0, False)
    return ModelConfig(name, tuple(bl), up, scale, act_bits, entry_bits, gate_bits)


# ------------------------------------------------------------------ per-pixel transcription of the spec

def ref_upscale(model: Model, lr: np.ndarray) -> np.ndarray:
    """Straight, slow transcription of docs/fixed-point.md with Python ints, one pixel at a time."""
    cfg = model.config
    A, G = cfg.act_bits, cfg.gate_bits
    lo_a, hi_a = -(1 << (A - 1)), (1 << (A - 1)) - 1
    H, W = lr.shape

    def rshift(v, s):
        return v if s == 0 else (v + (1 << (s - 1))) >> s

    x = [[[int(lr[y, xx]) * (1 << (A - 8)) - (1 << (A - 1)) for xx in range(W)] for y in range(H)]]
    for n, (layer, p) in enumerate(zip(cfg.layers, model.layers)):
        grid = [int(g) for g in model.grids[n]]
        L, F, k, o = layer.levels, layer.frac_bits, layer.kernel, layer.origin
        acc = [[[0] * W for _ in range(H)] for _ in range(layer.c_out)]
        for c in range(layer.c_in):
            for sy in range(H):
                for sx in range(W):
                    v = x[c][sy][sx]
                    i = sum(1 for j in range(1, L) if grid[j] <= v)
                    if F and i < L - 1:
                        R = (1 << (F + spec.RECIP_SHIFT)) // (grid[i + 1] - grid[i])
                        t = ((v - grid[i]) * R) >> spec.RECIP_SHIFT
                    else:
                        t = 0
                    # in-place add into p + origin + j; targets outside the image are dropped,
                    # and edge pixels stand in for the sources beyond the edge (replicate):
                    for jy in range(k):
                        for jx in range(k):
                            for o_ in range(layer.c_out):
                                lo = int(p.lut[c, i, jy, jx, o_])
                                hi = int(p.lut[c, min(i + 1, L - 1), jy, jx, o_])
                                e = lo if F == 0 else lo + rshift((hi - lo) * t, F)
                                # output rows q with clamp(q - o - jy) == sy
                                for qy in range(H):
                                    if min(max(qy - o - jy, 0), H - 1) != sy:
                                        continue
                                    for qx in range(W):
                                        if min(max(qx - o - jx, 0), W - 1) == sx:
                                            acc[o_][qy][qx] += e
        if n < len(cfg.blocks):
            new = []
            for o_ in range(layer.c_out):
                ch = []
                for y in range(H):
                    row = []
                    for xx in range(W):
                        f = min(max(rshift(acc[o_][y][xx], p.shift), lo_a), hi_a)
                        if layer.gated:
                            r = x[0 if layer.c_in == 1 else o_][y][xx]
                            f = r + rshift(p.gate * (f - r), G)
                        row.append(f)
                    ch.append(row)
                new.append(ch)
            x = new
        else:
            s, S = p.shift, cfg.scale
            # bilinear from first principles: HR Y samples LR (Y + 1/2) / S - 1/2 (exact fractions);
            # weights over the common denominator D = den^2, den the smallest that makes them integers
            den = 2 * S if S % 2 == 0 else S
            D = den * den

            def taps(Y, n):
                u = Fraction(2 * Y + 1, 2 * S) - Fraction(1, 2)
                i0 = math.floor(u)
                w1 = (u - i0) * den
                assert w1.denominator == 1
                return ((min(max(i0, 0), n - 1), den - int(w1)), (min(max(i0 + 1, 0), n - 1), int(w1)))

            hr = np.zeros((S * H, S * W), np.uint8)
            for Y in range(S * H):
                for X in range(S * W):
                    bil = sum(wy * wx * int(lr[yy, xx]) for yy, wy in taps(Y, H) for xx, wx in taps(X, W))
                    up = acc[(Y % S) * S + X % S][Y // S][X // S]
                    num, d = bil * (1 << s) + up * D, D << s
                    v = math.floor(Fraction(num, d) + Fraction(1, 2))      # round half up
                    hr[Y, X] = min(max(v, 0), 255)
            return hr


@pytest.mark.parametrize("cfg,seed,shape", [
    (small_config(), 0, (5, 7)),
    (small_config(kernel=3, channels=2, blocks=2), 1, (4, 6)),
    (small_config(frac_bits=0, levels=(256, 256), levels_up=256, channels=2, blocks=2), 2, (6, 5)),
    (small_config(act_bits=10, frac_bits=6, channels=2, blocks=2, gate_bits=5), 3, (3, 4)),
    (small_config(entry_bits=10, channels=2, blocks=4), 4, (1, 1)),
    (small_config(channels=2, blocks=1), 5, (2, 9)),
    (small_config(entry_bits=16, channels=3, blocks=2), 6, (4, 5)),   # int32 EC arithmetic
    (small_config(scale=2), 7, (5, 6)),
    (small_config(scale=3), 8, (4, 5)),
    (small_config(scale=3, kernel=3, channels=2, blocks=2), 9, (1, 3)),
    (small_config(scale=2, frac_bits=0, levels=(256, 256), levels_up=256, channels=2, blocks=2), 10, (3, 2)),
])
def test_vectorized_equals_per_pixel_spec(cfg, seed, shape):
    for extreme in (False, True):
        m = random_model(cfg, seed=seed, extreme=extreme)
        lr = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
        np.testing.assert_array_equal(iqlut.upscale(m, lr), ref_upscale(m, lr))


# ------------------------------------------------------------------ hand-worked block cases

def test_nuqd_hand_worked():
    grid = np.array([-128, -40, 0, 40, 127])
    r = spec.nuqd_recip(grid, 4)            # floor(2^14 / width)
    assert list(r) == [16384 // 88, 16384 // 40, 16384 // 40, 16384 // 87, 0]
    x = np.array([-128, -41, -40, -1, 0, 20, 39, 40, 126, 127])
    i, t = iqlut.nuqd(x, grid, r, 4)
    assert list(i) == [0, 0, 1, 1, 2, 2, 2, 3, 3, 4]
    # t = ((x - g_i) * R_i) >> 10
    assert list(t) == [0, (87 * 186) >> 10, 0, (39 * 409) >> 10, 0, (20 * 409) >> 10,
                       (39 * 409) >> 10, 0, (86 * 188) >> 10, 0]
    assert list(t) == [0, 15, 0, 15, 0, 7, 15, 0, 15, 0]


def test_nuqd_fraction_never_reaches_one():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        a, b, L, F = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), int(rng.integers(2, 40)), int(rng.integers(1, 9))
        try:
            g = spec.nuqd_grid(a, b, L, 8)
        except ValueError:
            continue
        x = np.arange(-128, 128)
        i, t = iqlut.nuqd(x, g, spec.nuqd_recip(g, F), F)
        assert t.min() >= 0 and t.max() <= (1 << F) - 1
        assert np.all(g[i] <= x) and np.all((i == L - 1) | (x < g[np.minimum(i + 1, L - 1)]))
        assert np.all(t[x == g[i]] == 0)


def test_nuqd_grid_shape_and_identity():
    g = spec.nuqd_grid(0.5, 0.5, 256, 8)
    np.testing.assert_array_equal(g, np.arange(-128, 128))
    g = spec.nuqd_grid(0.3, 0.6, 16, 8)     # b > a: finer steps near 0
    w = np.diff(g)
    assert g[0] == -128 and g[-1] == 127 and len(g) == 16
    assert w[len(w) // 2] < w[0]
    with pytest.raises(ValueError):
        spec.nuqd_grid(0.1, 0.9, 256, 8)
    with pytest.raises(ValueError):
        spec.nuqd_grid(0.0, 0.5, 16, 8)


def test_dpfi_hand_worked():
    lo, hi = np.array([10, 10, -7, 100, -128]), np.array([20, 20, 8, -100, 127])
    t = np.array([0, 8, 5, 15, 8])
    # lo + (((hi - lo) * t + 8) >> 4)
    assert list(iqlut.dpfi(lo, hi, t, 4)) == [10, 15, -7 + ((15 * 5 + 8) >> 4), 100 + ((-200 * 15 + 8) >> 4), 0]
    assert list(iqlut.dpfi(lo, hi, t, 4)) == [10, 15, -2, -87, 0]
    assert list(iqlut.dpfi(lo, hi, t, 0)) == list(lo)
    # the result always lies between lo and hi
    rng = np.random.default_rng(0)
    lo, hi = rng.integers(-128, 128, 10000), rng.integers(-128, 128, 10000)
    for F in range(1, 9):
        t = rng.integers(0, 1 << F, 10000)
        e = iqlut.dpfi(lo, hi, t, F)
        assert np.all(e >= np.minimum(lo, hi)) and np.all(e <= np.maximum(lo, hi))


def test_ec_hand_worked_single_entry():
    """One input channel, one nonzero table entry: the output is that value moved by origin + j."""
    cfg = small_config(channels=1, blocks=1, levels=(256, 256), levels_up=256, frac_bits=0)
    m = random_model(cfg, 0)
    lut = np.zeros(cfg.blocks[0].lut_shape(), np.int64)
    v = 200 - 128 + 128  # input pixel 200 -> activation 72 -> level index 200
    lut[0, 200, 1, 0, 0] = 5   # tap (jy, jx) = (1, 0)
    m = dataclasses.replace(m, layers=(dataclasses.replace(m.layers[0], lut=lut),) + m.layers[1:])
    x = np.full((1, 4, 5), -128, np.int32)  # pixel 0 everywhere ...
    x[0, 1, 2] = 200 - 128                  # ... but one pixel of value 200
    acc = iqlut.ec(x, m, 0)
    expect = np.zeros((1, 4, 5), np.int32)
    expect[0, 2, 2] = 5                     # origin 0: lands at (1 + 1, 2 + 0)
    np.testing.assert_array_equal(acc, expect)
    assert v == 200


def test_ec_replicate_edges():
    """A constant image gives the same accumulator everywhere, edges included."""
    m = random_model(small_config(), 3)
    x = np.full((1, 5, 6), 17, np.int32)
    acc = iqlut.ec(x, m, 0)
    assert np.all(acc == acc[:, :1, :1])


def test_bilinear_hand_worked():
    lr = np.array([[0, 64]], np.uint8)               # 1 x 2
    b = iqlut.bilinear(lr)
    assert b.shape == (4, 8)
    assert np.all(b == b[0])                         # one row: replicate in y
    # x phases: 0:(3/8 left,5/8 right) 1:(1/8,7/8) 2:(7/8,1/8) 3:(5/8,3/8), edges replicated
    expect_row = 8 * np.array([0, 0, 1 * 64, 3 * 64, 5 * 64, 7 * 64, 8 * 64, 8 * 64])
    np.testing.assert_array_equal(b[0], expect_row)
    const = np.full((3, 5), 77, np.uint8)
    assert np.all(iqlut.bilinear(const) == 77 * 64)


def test_bilinear_phases_hand_worked():
    """Per HR phase r: (left tap offset, w0, w1) over the axis denominator (8, 4, 3)."""
    def table(scale):
        return [tuple(int(v[r]) for v in spec.bilinear_phases(scale)) for r in range(scale)]
    assert table(4) == [(-1, 3, 5), (-1, 1, 7), (0, 7, 1), (0, 5, 3)]
    assert table(2) == [(-1, 1, 3), (0, 3, 1)]
    assert table(3) == [(-1, 1, 2), (0, 3, 0), (0, 2, 1)]
    assert [spec.bilinear_den(s) for s in (2, 3, 4)] == [16, 9, 64]
    with pytest.raises(ValueError, match="scale"):
        spec.bilinear_den(5)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (4, 1), (7, 9), (16, 13)])
def test_bilinear_equals_torch_interpolate(scale, shape):
    """golden's integer bilinear skip = D x F.interpolate(mode="bilinear", align_corners=False)
    (to float64 rounding: thirds are not exact in binary; the integers are 1e-6 apart from it)."""
    torch = pytest.importorskip("torch")
    lr = np.random.default_rng(scale * 100 + shape[0] * 10 + shape[1]).integers(0, 256, shape, dtype=np.uint8)
    ref = torch.nn.functional.interpolate(torch.tensor(lr, dtype=torch.float64)[None, None],
                                          scale_factor=scale, mode="bilinear", align_corners=False)[0, 0]
    got = iqlut.bilinear(lr, scale)
    assert got.shape == (scale * shape[0], scale * shape[1]) and got.dtype == np.int32
    assert np.abs(got - (ref * spec.bilinear_den(scale)).numpy()).max() < 1e-6


def test_round_div():
    v = np.arange(-300, 300)
    for m in range(0, 8):
        np.testing.assert_array_equal(spec.round_div(v, 1 << m), spec.round_shift(v, m))
    assert [spec.round_div(x, 9) for x in (-14, -13, 0, 4, 5, 13, 14)] == [-2, -1, 0, 0, 1, 1, 2]
    assert spec.round_div(9 * 7 + 4, 9) == 7 and spec.round_div(9 * 7 + 5, 9) == 8   # 7.44, 7.56
    with pytest.raises(ValueError):
        spec.round_div(3, 0)


def test_combine_at_x3_divides_by_9_times_2_to_the_shift():
    s = 2
    bil = np.array([100 * 9, 100 * 9, 100 * 9 + 4, 100 * 9 + 5, 255 * 9, 0])   # ninths of a level
    up = np.array([2, 1, 0, 0, 40, -40])                # quarters: +0.5, +0.25, 0, 0, +10, -10
    # 100.5 -> 101, 100.25 -> 100, 100.44 -> 100, 100.56 -> 101, clamps
    assert list(iqlut.combine(bil, up, s, 3)) == [101, 100, 100, 101, 255, 0]


def test_pixel_shuffle_order():
    acc = np.arange(16 * 2 * 3).reshape(16, 2, 3)
    hr = iqlut.pixel_shuffle(acc, 4)
    assert hr.shape == (8, 12)
    for r in range(4):
        for c in range(4):
            np.testing.assert_array_equal(hr[r::4, c::4], acc[r * 4 + c])


def test_combine_rounding_and_clamp():
    s = 3
    bil = np.array([100 * 64, 100 * 64, 0, 255 * 64, 64 * 10 + 32])
    up = np.array([4, 3, -80, 80, 0])                   # 2^-3 units: +0.5, +0.375, -10, +10, 0
    hr = iqlut.combine(bil, up, s)
    assert list(hr) == [101, 100, 0, 255, 11]           # half rounds up: 100.5 -> 101, 10.5 -> 11


def test_gate_extremes():
    cfg = small_config(channels=2, blocks=2)
    m = random_model(cfg, 7)
    x = np.random.default_rng(0).integers(-128, 128, (2, 4, 4)).astype(np.int32)
    layers = list(m.layers)
    layers[1] = dataclasses.replace(layers[1], gate=0)
    m0 = dataclasses.replace(m, layers=tuple(layers))
    np.testing.assert_array_equal(iqlut.iq_block(x, m0, 1), x)       # g = 0: identity
    layers[1] = dataclasses.replace(layers[1], gate=1 << cfg.gate_bits)
    m1 = dataclasses.replace(m, layers=tuple(layers))
    y = np.clip(spec.round_shift(iqlut.ec(x, m1, 1), m1.layers[1].shift), -128, 127)
    np.testing.assert_array_equal(iqlut.iq_block(x, m1, 1), y)       # g = 2^G: block output only


# ------------------------------------------------------------------ interval analysis

ADVERSARIAL = {
    "zeros": np.zeros((9, 11), np.uint8),
    "full": np.full((9, 11), 255, np.uint8),
    "checker": (np.indices((9, 11)).sum(0) % 2 * 255).astype(np.uint8),
    "checker2": ((np.indices((9, 11)) // 2).sum(0) % 2 * 255).astype(np.uint8),
    "stripes": (np.arange(11)[None].repeat(9, 0) % 2 * 255).astype(np.uint8),
    "ramp": np.tile(np.linspace(0, 255, 11).astype(np.uint8), (9, 1)),
}


@pytest.mark.parametrize("name", sorted(spec.CONFIGS))
def test_interval_bounds_hold_on_adversarial_inputs(name):
    """Extreme LUTs (every entry at the ends of its range) and adversarial images: every value stays
    inside the derived bounds (golden asserts them at run time) and fits the derived widths."""
    cfg = spec.CONFIGS[name]
    for seed in range(2):
        m = random_model(cfg, seed=seed, extreme=True)
        for img in ADVERSARIAL.values():
            inter = {}
            iqlut.upscale(m, img, inter)
            for n in range(len(cfg.blocks)):
                a = inter[f"block{n}"]
                assert a.min() >= -(1 << (cfg.act_bits - 1)) and a.max() < (1 << (cfg.act_bits - 1))
            w = m.widths[-1]
            up = inter["upsampler"]
            assert -(1 << (w.acc_bits - 1)) <= up.min() and up.max() < (1 << (w.acc_bits - 1))


def test_interval_bound_is_attained():
    """The bound is tight: a LUT that is constant per table reaches acc_hi exactly."""
    cfg = small_config(channels=2, blocks=1)
    m = random_model(cfg, 1)
    lut = np.broadcast_to(np.array([3, -7])[None, None, None, None, :], cfg.blocks[0].lut_shape())
    m = dataclasses.replace(m, layers=(dataclasses.replace(m.layers[0], lut=lut.astype(np.int64)),) + m.layers[1:])
    acc = iqlut.ec(np.zeros((1, 3, 3), np.int32), m, 0)
    assert tuple(acc[:, 0, 0]) == m.widths[0].acc_hi == m.widths[0].acc_lo == (12, -28)


def test_bound_violation_is_detected(monkeypatch):
    """The run-time check can fail: shrink the derived bounds and golden refuses to go on."""
    m = random_model(small_config(), 2)
    w = m.widths
    tight = dataclasses.replace(w[0], acc_hi=tuple(v - 1000 for v in w[0].acc_hi))
    object.__setattr__(m, "widths", (tight,) + w[1:])
    lr = np.random.default_rng(0).integers(0, 256, (6, 6), dtype=np.uint8)
    with pytest.raises(iqlut.BoundsError, match="outside the derived bounds"):
        iqlut.upscale(m, lr)


def test_widths_of_shipped_configs_fit_hardware_words():
    for name, cfg in spec.CONFIGS.items():
        m = random_model(cfg, 0, extreme=True)
        for layer, w in zip(cfg.layers, m.widths):
            assert w.entry_bits <= cfg.entry_bits
            assert w.acc_bits <= cfg.entry_bits + int(np.ceil(np.log2(layer.c_in * layer.kernel ** 2))) + 1
            assert w.product_bits <= w.diff_bits + layer.frac_bits


# ------------------------------------------------------------------ API

def test_rgb_runs_channels_independently():
    m = random_model(small_config(), 4)
    rgb = np.random.default_rng(1).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    hr = iqlut.upscale(m, rgb)
    assert hr.shape == (20, 24, 3) and hr.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(hr[..., c], iqlut.upscale(m, rgb[..., c]))


def test_one_pixel_image_is_supported():
    m = random_model("iq_l8c8", 0)
    hr = iqlut.upscale(m, np.array([[77]], np.uint8))
    assert hr.shape == (4, 4)
    np.testing.assert_array_equal(hr, ref_upscale(m, np.array([[77]], np.uint8)))
    assert np.all(iqlut.bilinear(np.array([[77]], np.uint8)) == 77 * 64)


@pytest.mark.parametrize("bad,msg", [
    (np.zeros((4, 4, 4), np.uint8), "3 channels"),
    (np.zeros((4, 4), np.uint16), "uint8"),
    (np.zeros((4, 4), np.float32), "uint8"),
    (np.zeros((0, 4), np.uint8), "at least 1x1"),
    (np.zeros((4,), np.uint8), "HxW or HxWx3"),
    ([[1, 2]], "numpy array"),
])
def test_bad_lr_arrays(bad, msg):
    m = random_model(small_config(), 0)
    with pytest.raises(ValueError, match=msg):
        iqlut.upscale(m, bad)


def test_lut_bytes_and_budgets():
    assert spec.CONFIGS["iq_l8c8"].lut_bytes() == 34_304
    assert spec.CONFIGS["iq_l12c8"].lut_bytes() == 51_200
    assert spec.CONFIGS["iq_l8c16"].lut_bytes() == 126_976
    assert spec.CONFIGS["ecnn_l8c8"].lut_bytes() == 598_016
    assert spec.CONFIGS["iq_l8c8_x2"].lut_bytes() == 30_464
    assert spec.CONFIGS["iq_l8c8_x3"].lut_bytes() == 32_064
    for name, budget in spec.BUDGETS.items():
        assert spec.CONFIGS[name].lut_bytes() <= budget
    # the anchors alternate so the half-pixel shifts of the 2x2 kernels cancel pairwise
    for cfg in spec.CONFIGS.values():
        origins = [layer.origin for layer in cfg.blocks]
        assert origins == [0 if n % 2 == 0 else -1 for n in range(len(origins))]


def test_received_frame_recuts_and_pads():
    """A short row shifts every later pixel one place back; the frame ends in zeros."""
    lr = np.arange(1, 13, dtype=np.uint8).reshape(3, 4)
    got = iqlut.received_frame(lr, [0])
    assert got.dtype == np.uint8
    assert got.tolist() == [[1, 2, 3, 5], [6, 7, 8, 9], [10, 11, 12, 0]]
    assert iqlut.received_frame(lr, [0, 2]).tolist() == [[1, 2, 3, 5], [6, 7, 8, 9], [10, 11, 0, 0]]
    assert np.array_equal(iqlut.received_frame(lr), lr)

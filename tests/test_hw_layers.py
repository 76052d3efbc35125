# amaranth: UnusedElaboratable=no
"""Whole layers against golden in the Amaranth simulator, back-to-back frames of different sizes
(1x1, one row, one column included), random stalls on both sides: EC (golden.iqlut.ec), IQBlock
(iq_block), Upsampler (upsampler: the EC of the last layer, lanes = pixel-shuffle order),
Bilinear (bilinear), and the raster reordering of the output."""
import numpy as np
import pytest

from golden import iqlut
from golden.modelfile import random_model
from hw.bilinear import Bilinear
from hw.ec import EC
from hw.iq_block import IQBlock, Upsampler
from hw.output import RasterOrder
from hw.testing import concat, pixel_beats, stream_test
from tests.test_golden import small_config

SIZES = [(4, 5), (1, 1), (3, 9), (2, 1), (1, 4)]
MAX_WIDTH = 9


def frames(model, n, seed, sizes=SIZES):
    a, c_in = model.config.act_bits, model.config.layers[n].c_in
    rng = np.random.default_rng(seed)
    out = [rng.integers(-(1 << (a - 1)), 1 << (a - 1), (c_in, h, w)).astype(np.int32) for h, w in sizes]
    out[0][:, 0, :] = -(1 << (a - 1))           # the ends of the activation range
    out[0][:, 1, :] = (1 << (a - 1)) - 1
    return out


def per_pixel(arr, side=None):
    """(C, H, W) -> per-pixel lists in raster order."""
    _, h, w = arr.shape
    return [arr[:, y, x].tolist() for y in range(h) for x in range(w)]


def flags(h, w):
    return [(int(x == w - 1), int(x == w - 1 and y == h - 1)) for y in range(h) for x in range(w)]


CASES = [  # (config, layer, rom_ports)
    (small_config(), 0, "dual"),                                          # c_in = 1, origin 0
    (small_config(), 1, "banked"),                                        # origin -1
    (small_config(levels=(6, 5)), 2, "dual"),
    (small_config(kernel=3, channels=2, blocks=2), 1, "dual"),            # 3x3, centred
    (small_config(frac_bits=0, levels=(256, 256), levels_up=256, channels=2, blocks=2), 1, "dual"),
    (small_config(act_bits=10, frac_bits=6, channels=2, gate_bits=5), 1, "banked"),
    (small_config(entry_bits=10, channels=2, levels=(7, 2), levels_up=3), 1, "banked"),
]


@pytest.mark.parametrize("cfg,n,ports", CASES)
@pytest.mark.parametrize("extreme", [False, True])
def test_ec_equals_golden(cfg, n, ports, extreme):
    m = random_model(cfg, seed=n, extreme=extreme)
    fr = frames(m, n, seed=n)
    dut = EC(m, n, MAX_WIDTH, rom_ports=ports, residual=cfg.layers[n].gated)
    items = concat(pixel_beats(f) for f in fr)
    got = stream_test(dut, {"i": items}, {"o": len(items)}, seed=n)["o"]
    expect_acc = concat(per_pixel(iqlut.ec(f, m, n)) for f in fr)
    assert [g["acc"] for g in got] == expect_acc
    assert [(g["side"]["eol"], g["side"]["eof"]) for g in got] == concat(flags(*f.shape[1:]) for f in fr)
    if cfg.layers[n].gated:
        assert [g["side"]["residual"] for g in got] == concat(per_pixel(f) for f in fr)
    w = m.widths[n]
    assert len(dut.o.p.acc[0]) == w.acc_bits
    assert dut.rom_bits == cfg.layers[n].rom_bits(cfg.entry_bits)


@pytest.mark.parametrize("cfg,n,ports", CASES[:3] + CASES[5:6])
def test_iq_block_equals_golden(cfg, n, ports):
    m = random_model(cfg, seed=10 + n)
    fr = frames(m, n, seed=10 + n)
    dut = IQBlock(m, n, MAX_WIDTH, rom_ports=ports)
    items = concat(pixel_beats(f) for f in fr)
    got = stream_test(dut, {"i": items}, {"o": len(items)}, seed=n)["o"]
    expect = concat(pixel_beats(iqlut.iq_block(f, m, n)) for f in fr)
    assert got == expect


def test_iq_block_real_config():
    """A block of the shipped architecture (8 -> 8 channels, 32 NUQD/ROM lanes, 256 DPFI) on a
    small frame, extreme LUTs."""
    m = random_model("iq_l8c8", seed=1, extreme=True)
    fr = frames(m, 3, seed=3, sizes=[(3, 4), (1, 2)])
    dut = IQBlock(m, 3, 4)
    items = concat(pixel_beats(f) for f in fr)
    got = stream_test(dut, {"i": items}, {"o": len(items)}, stall=0.2, idle=0.2)["o"]
    assert got == concat(pixel_beats(iqlut.iq_block(f, m, 3)) for f in fr)


@pytest.mark.parametrize("cfg", [small_config(channels=2), small_config(kernel=3, channels=1, blocks=1)])
def test_upsampler_equals_golden(cfg):
    m = random_model(cfg, seed=5, extreme=True)
    n = len(cfg.blocks)
    fr = frames(m, n, seed=5)
    dut = Upsampler(m, MAX_WIDTH)
    items = concat(pixel_beats(f) for f in fr)
    got = stream_test(dut, {"i": items}, {"o": len(items)}, seed=5)["o"]
    expect = []
    for f in fr:
        up = iqlut.upsampler(f, m)                        # (4H, 4W), pixel-shuffled
        h, w = f.shape[1:]
        expect += [[int(up[4 * y + r, 4 * x + c]) for r in range(4) for c in range(4)]
                   for y in range(h) for x in range(w)]
    assert [g["acc"] for g in got] == expect


@pytest.mark.parametrize("scale", [4, 2, 3])
def test_bilinear_equals_golden(scale):
    rng = np.random.default_rng(7 + scale)
    fr = [rng.integers(0, 256, (1, h, w)).astype(np.uint8) for h, w in SIZES + [(5, 9)]]
    fr[-1][0, :, :] = 255
    dut = Bilinear(MAX_WIDTH, scale)
    items = concat(pixel_beats(f) for f in fr)
    got = stream_test(dut, {"i": items}, {"o": len(items)}, seed=7)["o"]
    expect = []
    S = scale
    for f in fr:
        b = iqlut.bilinear(f[0], scale)
        h, w = f.shape[1:]
        expect += [{"bil": [int(b[S * y + r, S * x + c]) for r in range(S) for c in range(S)],
                    "eol": e, "eof": z} for (y, x), (e, z) in zip(np.ndindex(h, w), flags(h, w))]
    assert got == expect
    assert dut.phases == {
        4: (((-1, 3), (0, 5)), ((-1, 1), (0, 7)), ((0, 7), (1, 1)), ((0, 5), (1, 3))),
        2: (((-1, 1), (0, 3)), ((0, 3), (1, 1))),
        3: (((-1, 1), (0, 2)), ((0, 3), (1, 0)), ((0, 2), (1, 1)))}[scale]
    assert max(max(g["bil"]) for g in got) == 255 * {4: 64, 2: 16, 3: 9}[scale]   # the white frame


@pytest.mark.parametrize("scale", [4, 2, 3])
def test_raster_order(scale):
    rng = np.random.default_rng(8)
    sizes = [(2, 3), (1, 1), (3, 5), (1, 5), (4, 1)]
    blocks, expect = [], []
    S = scale
    for h, w in sizes:
        hr = rng.integers(0, 256, (S * h, S * w))
        blocks += [{"data": [int(hr[S * y + r, S * x + c]) for r in range(S) for c in range(S)],
                    "eol": int(x == w - 1), "eof": int(x == w - 1 and y == h - 1)}
                   for y in range(h) for x in range(w)]
        expect += [{"data": hr[y, S * x:S * x + S].tolist(), "eol": int(x == w - 1),
                    "eof": int(x == w - 1 and y == S * h - 1)} for y in range(S * h) for x in range(w)]
    got = stream_test(RasterOrder(5, scale), {"i": blocks}, {"o": len(expect)}, seed=8)["o"]
    assert got == expect


def test_layer_validation():
    m = random_model(small_config(), 0)
    with pytest.raises(ValueError, match="block index"):
        IQBlock(m, 3, 8)                          # 3 blocks: 0..2; layer 3 is the upsampler
    with pytest.raises(ValueError, match="layer index"):
        EC(m, 4, 8)
    with pytest.raises(ValueError, match="ports"):
        EC(m, 1, 8, rom_ports="quad")
    with pytest.raises(ValueError, match="max_width"):
        IQBlock(m, 0, 0)

# amaranth: UnusedElaboratable=no
"""Datapath elements against the golden block functions, in the Amaranth simulator with random
stalls: NUQD, LUT ROM (both port styles), DPFI, the EC adder tree, the block output (round, clamp,
gate) and the final combine. Each also checks that the RTL uses exactly the widths of
``Model.widths``."""
import dataclasses

import numpy as np
import pytest
from amaranth import Shape

from golden import iqlut, spec
from golden.modelfile import random_model
from hw.dpfi import DPFI
from hw.ec import Accumulate
from hw.iq_block import BlockOutput, csd
from hw.nuqd import NUQD
from hw.output import Combine
from hw.rom import LutRom
from hw.testing import stream_test
from tests.test_golden import small_config

CONFIGS = {
    "small": small_config(),
    "a10f6": small_config(act_bits=10, frac_bits=6, gate_bits=5),
    "ecnn": small_config(frac_bits=0, levels=(256, 256), levels_up=256, channels=2),
    "e10": small_config(entry_bits=10, levels=(7, 2), levels_up=3),
    "iq_l8c8": spec.CONFIGS["iq_l8c8"],
    "x2": small_config(scale=2),
    "x3": small_config(scale=3, levels=(7, 2), levels_up=3),
    "iq_l8c8_x3": spec.CONFIGS["iq_l8c8_x3"],
}


def elem_width(view_array):
    """Bit width of one element of an ArrayLayout view."""
    return Shape.cast(view_array.shape().elem_shape).width


# ------------------------------------------------------------------ NUQD

@pytest.mark.parametrize("name,n", [("small", 0), ("small", 3), ("a10f6", 1), ("ecnn", 2),
                                    ("e10", 1), ("iq_l8c8", 8)])
def test_nuqd_equals_golden_on_every_activation(name, n):
    m = random_model(CONFIGS[name], seed=n)
    w, a, lanes = m.widths[n], m.config.act_bits, 3
    x = np.arange(-(1 << (a - 1)), 1 << (a - 1))
    x = np.concatenate([x, m.grids[n], np.minimum(m.grids[n] + 1, (1 << (a - 1)) - 1)])
    x = np.concatenate([x, x[: (-len(x)) % lanes]]).reshape(-1, lanes)
    dut = NUQD(m.grids[n], m.recips[n], w, lanes, side=7)
    items = [{"x": [int(v) for v in row], "side": k % 128} for k, row in enumerate(x)]
    got = stream_test(dut, {"i": items}, {"o": len(items)}, seed=n)["o"]
    i, t = iqlut.nuqd(x, m.grids[n], m.recips[n], w.frac_bits)
    assert np.array_equal([g["index"] for g in got], i)
    assert np.array_equal([g.get("frac", [0] * lanes) for g in got], t)   # F = 0: no frac field
    assert [g["side"] for g in got] == [k % 128 for k in range(len(items))]
    # widths: index_bits / frac_bits / A-bit offset / (F + RECIP_SHIFT)-bit product
    assert elem_width(dut.o.p.index) == w.index_bits
    if w.frac_bits:
        assert elem_width(dut.o.p.frac) == w.frac_bits
        assert len(dut.offset_signals[0]) == a
        assert len(dut.product_signals[0]) == w.frac_bits + spec.RECIP_SHIFT
        assert dut.multipliers == (lanes, (a, w.recip_bits))
    assert dut.identity == (name == "ecnn")


def _comb_values(m, inp, out, values):
    """Settle the combinational module ``m`` on each input value; the output values."""
    from amaranth.sim import Simulator
    got = []

    async def bench(ctx):
        for v in values:
            ctx.set(inp, v)
            got.append(ctx.get(out))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("width", [1, 3, 4, 5, 8, 9])
def test_nuqd_comparators_every_value(width):
    """The NUQD comparator ``_ge_const`` (4-bit chunk lookups, no carry chain) = ``u >= g`` for
    every input value and thresholds at and around every chunk boundary and both ends (0 and
    past the range)."""
    from amaranth import Cat, Module, Signal, unsigned
    from hw.nuqd import _ge_const
    top = 1 << width
    thresholds = sorted({g for b in range(0, top + 17, 16) for g in (b - 1, b, b + 1, b + 5)
                         if 0 <= g <= top} | {top - 1, top})
    m = Module()
    u = Signal(unsigned(width))
    cmp = Signal(len(thresholds))
    m.d.comb += cmp.eq(Cat(*[_ge_const(m, u, g, f"c{g}") for g in thresholds]))
    want = [sum(int(v >= g) << k for k, g in enumerate(thresholds)) for v in range(top)]
    assert _comb_values(m, u, cmp, range(top)) == want


@pytest.mark.parametrize("n", range(1, 18))
def test_nuqd_index_from_thermometer(n):
    """``_thermometer_to_binary`` (no adder) = the count of ones of every thermometer code of
    ``n`` comparators (the NUQD's L - 1; L = 2..18 covers 8-, 12- and 16-level grids)."""
    from amaranth import Cat, Module, Signal
    from hw.nuqd import _thermometer_to_binary
    bits = n.bit_length()
    m = Module()
    t, count = Signal(n), Signal(bits)
    m.d.comb += count.eq(Cat(*_thermometer_to_binary(t, bits)))
    assert _comb_values(m, t, count, [(1 << c) - 1 for c in range(n + 1)]) == list(range(n + 1))


def test_nuqd_rejects_constants_not_from_spec():
    m = random_model(CONFIGS["small"], 0)
    w = m.widths[1]
    with pytest.raises(ValueError, match="recip"):
        NUQD(m.grids[1], m.recips[1] + 1, w, 2)
    with pytest.raises(ValueError, match="span"):
        NUQD(m.grids[1] + 1, spec.nuqd_recip(m.grids[1] + 1, w.frac_bits), w, 2)
    with pytest.raises(ValueError, match="increasing"):
        NUQD(m.grids[1][::-1], m.recips[1], w, 2)
    with pytest.raises(ValueError, match="lanes"):
        NUQD(m.grids[1], m.recips[1], w, 0)


# ------------------------------------------------------------------ LUT ROM

@pytest.mark.parametrize("ports", ["dual", "banked"])
@pytest.mark.parametrize("name,n", [("small", 1), ("e10", 0), ("e10", 1), ("ecnn", 1), ("small", 3)])
def test_rom_reads_floor_and_next_entry(ports, name, n):
    """lo = LUT[i], hi = LUT[min(i+1, L-1)] of each lane's table (lane = tap-major, channel-minor);
    at i = L-1 the banked ROM may return any hi (t = 0 there), which is allowed by the spec."""
    m = random_model(CONFIGS[name], seed=n)
    layer, w, lut = m.config.layers[n], m.widths[n], m.layers[n].lut
    dut = LutRom(lut, m.config.entry_bits, w, ports, side=3)
    L, lanes, rng = layer.levels, dut.lanes, np.random.default_rng(n)
    idx = np.concatenate([np.repeat(np.arange(L), 2), rng.integers(0, L, 40)])
    idx = np.stack([np.roll(idx, k) for k in range(lanes)], axis=1)
    items = [{"index": [int(v) for v in row], "side": k % 8} for k, row in enumerate(idx)]
    if w.frac_bits:
        for k, it in enumerate(items):
            it["frac"] = [k % (1 << w.frac_bits)] * lanes
    got = stream_test(dut, {"i": items}, {"o": len(items)}, seed=n)["o"]
    k = layer.kernel
    for row, g, it in zip(idx, got, items):
        assert g["side"] == it["side"] and g.get("frac") == it.get("frac")
        for lane, i in enumerate(row):
            (jy, jx), c = divmod(lane // layer.c_in, k), lane % layer.c_in
            assert g["lo"][lane] == list(lut[c, i, jy, jx, :])
            if w.frac_bits and (ports == "dual" or i < L - 1):
                assert g["hi"][lane] == list(lut[c, min(i + 1, L - 1), jy, jx, :])
    assert dut.rom_bits == lut.size * m.config.entry_bits
    assert elem_width(dut.o.p.lo[0]) == w.entry_bits


def test_rom_narrow_entries_are_stored_at_model_width():
    """A layer whose entries fit fewer bits than E: the ROM still stores E bits per entry (the
    model's ROM size), the datapath after the read port uses the derived entry_bits."""
    m = random_model(CONFIGS["small"], 0)
    lut = np.clip(m.layers[1].lut, -8, 7)
    m = dataclasses.replace(m, layers=m.layers[:1] + (dataclasses.replace(m.layers[1], lut=lut),) + m.layers[2:])
    w = m.widths[1]
    assert w.entry_bits == 4
    dut = LutRom(lut, m.config.entry_bits, w)
    assert dut.rom_bits == lut.size * 8 and elem_width(dut.o.p.lo[0]) == 4
    items = [{"index": [i] * dut.lanes, "frac": [1] * dut.lanes} for i in range(5)]
    got = stream_test(dut, {"i": items}, {"o": 5})["o"]
    assert got[3]["lo"][0] == list(lut[0, 3, 0, 0, :])
    with pytest.raises(ValueError, match="fit"):
        LutRom(m.layers[2].lut * 0 + 100, 8, w)


# ------------------------------------------------------------------ DPFI

@pytest.mark.parametrize("name,n", [("small", 1), ("a10f6", 2), ("e10", 1), ("ecnn", 0), ("iq_l8c8", 4)])
@pytest.mark.parametrize("extreme,dsp", [(False, False), (True, False), (True, True)])
def test_dpfi_equals_golden(name, n, extreme, dsp):
    """``DPFI`` = ``golden.iqlut.dpfi`` on random and extreme tables, in both product forms
    (partial products in logic; ``dsp``: one multiplier per product, for a DSP block)."""
    m = random_model(CONFIGS[name], seed=n, extreme=extreme)
    layer, w, lut = m.config.layers[n], m.widths[n], m.layers[n].lut
    if dsp and not w.frac_bits:
        with pytest.raises(ValueError, match="no fraction bits"):
            DPFI(w, 3, layer.c_out, side=2, dsp=True)
        return
    lanes, c_out, f, rng = 3, layer.c_out, w.frac_bits, np.random.default_rng(n)
    items, expect = [], []
    for k in range(60):
        c = rng.integers(0, layer.c_in, lanes)
        i = rng.integers(0, layer.levels, lanes)
        jy, jx = rng.integers(0, layer.kernel, (2, lanes))
        t = np.where(i == layer.levels - 1, 0, rng.integers(0, 1 << f, lanes) if f else 0)
        if k < 4:                                   # the ends of the fraction range
            t = np.where(i == layer.levels - 1, 0, [0, (1 << f) - 1, 1 << max(f - 1, 0)][k % 3])
        lo = lut[c, i, jy, jx]                      # (lanes, c_out)
        hi = lut[c, np.minimum(i + 1, layer.levels - 1), jy, jx]
        items.append({"lo": lo.tolist(), "side": k % 4,
                      **({"hi": hi.tolist(), "frac": [int(v) for v in t]} if f else {})})
        expect.append(iqlut.dpfi(lo, hi, t[:, None], f).tolist())
    dut = DPFI(w, lanes, c_out, side=2, dsp=dsp)
    got = stream_test(dut, {"i": items}, {"o": len(items)}, seed=n)["o"]
    assert [g["e"] for g in got] == expect
    assert [g["side"] for g in got] == [k % 4 for k in range(60)]
    if f:
        assert len(dut.diff_signals[0]) == w.diff_bits
        assert len(dut.product_signals[0]) == w.product_bits
        assert dut.multipliers == (lanes * c_out, (w.diff_bits, f))


# ------------------------------------------------------------------ adder tree

@pytest.mark.parametrize("lanes,levels_per_stage", [(1, 2), (5, 1), (8, 2), (32, 2), (17, 3)])
def test_adder_tree_sums_exactly(lanes, levels_per_stage):
    m = random_model(CONFIGS["small"], 0)
    w = dataclasses.replace(m.widths[1], entry_bits=8, acc_bits=8 + (lanes - 1).bit_length())
    rng = np.random.default_rng(lanes)
    e = rng.integers(-128, 128, (50, lanes, 2))
    e[0], e[1] = 127, -128
    dut = Accumulate(w, lanes, 2, side=1, levels_per_stage=levels_per_stage)
    items = [{"e": row.tolist(), "side": k % 2} for k, row in enumerate(e)]
    got = stream_test(dut, {"i": items}, {"o": len(items)}, seed=lanes)["o"]
    assert [g["acc"] for g in got] == e.sum(axis=1).tolist()
    assert elem_width(dut.o.p.acc) == w.acc_bits


def test_adder_tree_wraps_partial_sums_but_not_the_result():
    """acc_bits only bounds the final sum; partial sums may exceed it and wrap harmlessly."""
    m = random_model(CONFIGS["small"], 0)
    w = dataclasses.replace(m.widths[1], entry_bits=8, acc_bits=8)
    e = [[[127], [127], [-128], [-100]], [[-128], [-128], [127], [100]]]
    dut = Accumulate(w, 4, 1)
    got = stream_test(dut, {"i": [{"e": x} for x in e]}, {"o": 2})["o"]
    assert [g["acc"] for g in got] == [[26], [-29]]


# ------------------------------------------------------------------ block output

@pytest.mark.parametrize("name,n,gate", [("small", 0, None), ("small", 1, None), ("small", 1, 0),
                                          ("small", 1, 256), ("a10f6", 1, None), ("e10", 2, 1),
                                          # dense canonical signed digits: 4-5 shift terms
                                          ("small", 1, 171), ("small", 1, 85), ("small", 1, 255),
                                          ("small", 1, 107)])
def test_block_output_equals_golden_iq_block(name, n, gate, monkeypatch):
    """golden.iqlut.iq_block itself, with its ec() replaced by the accumulator we feed."""
    m = random_model(CONFIGS[name], seed=n)
    if gate is not None:
        layers = list(m.layers)
        layers[n] = dataclasses.replace(layers[n], gate=gate)
        m = dataclasses.replace(m, layers=tuple(layers))
    layer, w, a = m.config.layers[n], m.widths[n], m.config.act_bits
    rng = np.random.default_rng(n)
    h, wd = 5, 9
    acc = np.stack([rng.integers(lo, hi + 1, (h, wd)) for lo, hi in zip(w.acc_lo, w.acc_hi)])
    acc[:, 0, 0], acc[:, 0, 1] = w.acc_lo, w.acc_hi          # the ends of the interval
    x = rng.integers(-(1 << (a - 1)), 1 << (a - 1), (layer.c_in, h, wd))
    monkeypatch.setattr(iqlut, "ec", lambda x_, model, n_: acc.astype(np.int32))
    expect = iqlut.iq_block(x, m, n)
    dut = BlockOutput.for_layer(m, n)
    items = [{"acc": acc[:, y, q].tolist(), "side": {"residual": x[:, y, q].tolist(), "eol": q == wd - 1,
                                                      "eof": 0}} for y in range(h) for q in range(wd)]
    got = stream_test(dut, {"i": items}, {"o": len(items)}, seed=n)["o"]
    assert [g["data"] for g in got] == [expect[:, y, q].tolist() for y in range(h) for q in range(wd)]
    assert [g["eol"] for g in got] == [int(q == wd - 1) for y in range(h) for q in range(wd)]


def test_csd_digits():
    """The gate's constant as canonical signed digits: exact, non-adjacent, and no more digits
    than ceil((bits + 1) / 2) (so the gate's adder tree has a bounded depth)."""
    for g in range(1 << 12 + 1):
        digits = csd(g)
        assert sum(sgn << e for sgn, e in digits) == g
        exps = [e for _, e in digits]
        assert all(sgn in (-1, 1) for sgn, _ in digits) and all(b - a >= 2 for a, b in zip(exps, exps[1:]))
        assert len(digits) <= (g.bit_length() + 2) // 2
    assert csd(171) == [(-1, 0), (-1, 2), (-1, 4), (-1, 6), (1, 8)]
    with pytest.raises(ValueError):
        csd(-1)


def test_block_output_validation():
    kw = {"act_bits": 8, "acc_bits": 12, "shift": 2, "c_in": 2, "c_out": 2, "gate_bits": 8}
    with pytest.raises(ValueError, match="gate"):
        BlockOutput(gate=257, **kw)
    with pytest.raises(ValueError, match="shift"):
        BlockOutput(gate=3, **{**kw, "shift": 17})
    with pytest.raises(ValueError, match="c_in"):
        BlockOutput(gate=3, **{**kw, "c_in": 3})


# ------------------------------------------------------------------ combine

@pytest.mark.parametrize("name,extreme", [("small", False), ("small", True), ("e10", True),
                                          ("iq_l8c8", True), ("x2", True), ("x3", False), ("x3", True),
                                          ("iq_l8c8_x3", True)])
def test_combine_equals_golden(name, extreme):
    m = random_model(CONFIGS[name], seed=3, extreme=extreme)
    w, s, scale = m.widths[-1], m.layers[-1].shift, m.config.scale
    den, lanes = spec.bilinear_den(scale), scale * scale
    rng = np.random.default_rng(0)
    n = 40
    up = np.stack([rng.integers(lo, hi + 1, n) for lo, hi in zip(w.acc_lo, w.acc_hi)], axis=1)
    bil = rng.integers(0, 255 * den + 1, (n, lanes))
    up[0], bil[0] = np.array(w.acc_hi), 255 * den        # the top of the interval
    up[1], bil[1] = np.array(w.acc_lo), 0
    # totals around every rounding boundary (k + 1/2) D 2^s, near 0 and 255
    for j, k in enumerate((0, 1, 127, 254, 255)):
        t = (2 * k + 1) * den << s >> 1                     # the exact half (D 2^s is even unless s = 0 at x3)
        bil[2 + 3 * j] = np.clip(t >> s, 0, 255 * den)
        up[2 + 3 * j] = np.clip((t - (bil[2 + 3 * j] << s)) // den, w.acc_lo, w.acc_hi)
        bil[3 + 3 * j], up[3 + 3 * j] = bil[2 + 3 * j], np.clip(up[2 + 3 * j] - 1, w.acc_lo, w.acc_hi)
        bil[4 + 3 * j], up[4 + 3 * j] = np.clip(bil[2 + 3 * j] - 1, 0, None), up[2 + 3 * j]
    dut = Combine(m)
    assert dut.lanes == lanes and (dut.divider is None) == (scale != 3)
    got = stream_test(dut, {"up": [{"acc": u.tolist(), "side": {"eol": k % 5 == 4, "eof": 0}} for k, u in enumerate(up)],
                            "bil": [{"bil": b.tolist(), "eol": k % 5 == 4, "eof": 0} for k, b in enumerate(bil)]},
                      {"o": n})["o"]
    assert [g["data"] for g in got] == iqlut.combine(bil, up, s, scale).tolist()
    assert len(dut.total_signals[0]) == w.out_bits


def test_divide_by_constant_is_exact_and_minimal():
    from hw.output import divide_by_constant
    for d in (3, 9, 36, 7, 64):
        mult, k = divide_by_constant(d, 256 * d - 1)
        u = np.arange(256 * d)
        np.testing.assert_array_equal((u * mult) >> k, u // d)
        if k:
            m2 = -(-(1 << (k - 1)) // d)
            assert not np.array_equal((u * m2) >> (k - 1), u // d)   # one bit less would not do


@pytest.mark.parametrize("shape,lo,hi", [
    ("s10", -128, 127), ("s8", -128, 127), ("s9", 0, 255), ("u10", 0, 255), ("u8", 0, 255),
    ("s12", 0, 2047), ("s12", 0, 255), ("s12", -100, 90), ("s12", 0, 575), ("u9", 0, 511),
    ("s11", -512, 511)])
def test_clamp_every_value(shape, lo, hi):
    """hw.arith.clamp = min(max(v, lo), hi) for every value of the operand: the power-of-two
    ranges (bit tests, no comparator) and the general ones."""
    from amaranth import Module, Signal, signed, unsigned
    from amaranth.sim import Simulator
    from hw.arith import clamp
    shp = (signed if shape[0] == "s" else unsigned)(int(shape[1:]))
    m = Module()
    x, y = Signal(shp), Signal(signed(32))
    m.d.comb += y.eq(clamp(x, lo, hi))
    vals = range(-(1 << (shp.width - 1)), 1 << (shp.width - 1)) if shp.signed else range(1 << shp.width)
    got = []

    async def bench(ctx):
        for v in vals:
            ctx.set(x, v)
            got.append(ctx.get(y))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [min(max(v, lo), hi) for v in vals]

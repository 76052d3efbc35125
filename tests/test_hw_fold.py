# amaranth: UnusedElaboratable=no
"""The fold knob (``hw.fold``): serializer / deserializer, every folded component against its
golden function, EC and the whole top = golden at folds 1, 4 and 16 under random stalls, the
throughput (cycles per LR pixel), the shrunken datapath counts and the parameter checks. All in the
Amaranth simulator."""
import itertools
import re

import numpy as np
import pytest
from amaranth import signed, unsigned

from golden import iqlut, spec
from golden.modelfile import random_model
from hw.dpfi import DPFI
from hw.ec import EC, Accumulate
from hw.fold import FOLDS, Deserializer, Serializer, fold_plan
from hw.nuqd import NUQD
from hw.rom import ROM_BRAM_MIN_DEPTH, ROM_LOGIC_GROUP_BITS, LutRom
from hw.streams import StreamFIFO
from hw.testing import concat, pixel_beats, stream_test
from hw.top import IQLUT
from tests.test_golden import small_config
from tests.test_hw_layers import MAX_WIDTH, frames, per_pixel
from tests.test_hw_top import MODELS, first_mismatch, lr_frames, measure, simulate


@pytest.mark.parametrize("lanes,fold,plan", [(32, 1, (32, 1)), (32, 16, (2, 16)), (4, 16, (1, 4)),
                                             (72, 16, (5, 15)), (18, 4, (5, 4)), (2, 8, (1, 2))])
def test_fold_plan(lanes, fold, plan):
    assert fold_plan(lanes, fold) == plan


@pytest.mark.parametrize("lanes,fold", [(5, 2), (5, 4), (8, 8), (7, 16), (16, 4)])
def test_serializer_deserializer_round_trip(lanes, fold):
    """A beat of ``lanes`` lanes -> S sub-beats of P lanes (in order, padding zero, sub = 0..S-1)
    -> the same beat, under random stalls; the serializer alone emits exactly the expected
    sub-beats."""
    from amaranth import Module
    from amaranth.lib import wiring
    fields = {"a": signed(5), "b": unsigned(3)}
    P, S = fold_plan(lanes, fold)
    rng = np.random.default_rng(lanes * 100 + fold)
    items = [{"a": [int(v) for v in rng.integers(-16, 16, lanes)],
              "b": [int(v) for v in rng.integers(0, 8, lanes)], "side": k % 4} for k in range(40)]
    ser = Serializer(fields, lanes, fold, unsigned(2))
    got = stream_test(ser, {"i": items}, {"o": S * len(items)}, seed=fold)["o"]
    for k, it in enumerate(items):
        for s in range(S):
            g = got[k * S + s]
            pad = [0] * (S * P - lanes)
            assert g["a"] == (it["a"] + pad)[s * P:(s + 1) * P]
            assert g["b"] == (it["b"] + pad)[s * P:(s + 1) * P]
            assert g["side"] == {"sub": s, "inner": it["side"]}

    class RoundTrip(wiring.Component):
        def __init__(self):
            self.ser = Serializer(fields, lanes, fold, unsigned(2))
            self.de = Deserializer(fields, lanes, fold, unsigned(2))
            super().__init__({"i": wiring.In(self.ser.i.signature.flip()),
                              "o": wiring.Out(self.de.o.signature)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.ser, m.submodules.de = self.ser, self.de
            wiring.connect(m, wiring.flipped(self.i), self.ser.i)
            wiring.connect(m, self.ser.o, self.de.i)
            wiring.connect(m, self.de.o, wiring.flipped(self.o))
            return m
    assert stream_test(RoundTrip(), {"i": items}, {"o": len(items)}, seed=fold + 1)["o"] == items


def test_serializer_full_rate():
    """Without stalls the serializer emits a sub-beat every cycle: S cycles per input beat."""
    from hw.testing import recv, run, send
    ser = Serializer({"a": unsigned(4)}, 6, 4, 0)     # P = 2, S = 3
    cycles = []

    async def tb_in(ctx):
        await send(ctx, ser.i, [{"a": [k] * 6} for k in range(10)])

    async def tb_out(ctx):
        await recv(ctx, ser.o, 30, on_beat=lambda c, p: cycles.append(c))
    run(ser, tb_in, tb_out)
    assert np.all(np.diff(cycles) == 1)


@pytest.mark.parametrize("lanes,fold", [(6, 4), (130, 16)])
def test_serializer_handshake_is_registered(lanes, fold):
    """The serializer is a registered cut both ways: in every cycle of random traffic
    ``i.ready`` is the same whether ``o.ready`` is 0 or 1, and ``o.valid`` the same whether
    ``i.valid`` is 0 or 1 (flip-flops only), and the sub-beats still come out right (checked
    against the input beats)."""
    import random as pyrandom
    from amaranth.sim import Simulator
    from hw.testing import to_py
    P, S = fold_plan(lanes, fold)
    ser = Serializer({"a": unsigned(7)}, lanes, fold, unsigned(3))
    rng = pyrandom.Random(lanes)
    beats = [{"a": [rng.randrange(128) for _ in range(lanes)], "side": k % 8} for k in range(12)]
    got, checked = [], [0]

    async def tb(ctx):
        k = 0
        for _ in range(12 * S * 4):
            if k < len(beats):
                ctx.set(ser.i.payload, beats[k])
            ctx.set(ser.i.valid, int(k < len(beats) and rng.random() < 0.7))
            ready = []
            for r in (0, 1):
                ctx.set(ser.o.ready, r)
                ready.append(ctx.get(ser.i.ready))
            assert ready[0] == ready[1], "i.ready depends on o.ready"
            valid = []
            for v in (0, 1):
                ctx.set(ser.i.valid, v)
                valid.append(ctx.get(ser.o.valid))
            assert valid[0] == valid[1], "o.valid depends on i.valid"
            ctx.set(ser.i.valid, int(k < len(beats) and rng.random() < 0.7))
            checked[0] += 1
            ctx.set(ser.o.ready, int(rng.random() < 0.6))
            if ctx.get(ser.o.valid) and ctx.get(ser.o.ready):
                got.append(to_py(ctx.get(ser.o.payload)))
            if ctx.get(ser.i.valid) and ctx.get(ser.i.ready):
                k += 1
            await ctx.tick()
    sim = Simulator(ser)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert checked[0] and len(got) >= S * 3
    for n, g in enumerate(got):
        b, sb = beats[n // S], n % S
        assert g["side"] == {"sub": sb, "inner": b["side"]}
        assert g["a"] == (b["a"] + [0] * (S * P - lanes))[sb * P:(sb + 1) * P]


class PushLink:
    """A ``StreamFIFO`` with a credit-driven read side pushing into a ``Serializer`` with a push
    input (as a layer's window FIFO and window serializer, ``hw.ec``)."""

    @staticmethod
    def make(fields, lanes, fold, side):
        from amaranth import Module
        from amaranth.lib import wiring

        class Link(wiring.Component):
            def __init__(self):
                self.ser = Serializer(fields, lanes, fold, side, push=True)
                self.fifo = StreamFIFO(self.ser.i.p.shape(), 4, lutram=True, push=Serializer.PUSH_SLOTS)
                self.overrun = self.ser.overrun
                super().__init__({"i": wiring.In(self.fifo.i.signature.flip()),
                                  "o": wiring.Out(self.ser.o.signature)})

            def elaborate(self, platform):
                m = Module()
                m.submodules.fifo, m.submodules.ser = self.fifo, self.ser
                wiring.connect(m, wiring.flipped(self.i), self.fifo.i)
                wiring.connect(m, self.fifo.o, self.ser.i)
                m.d.comb += self.fifo.credit.eq(self.ser.freed)
                wiring.connect(m, self.ser.o, wiring.flipped(self.o))
                return m
        return Link()


@pytest.mark.parametrize("lanes,fold,idle,stall", [(8, 4, 0.3, 0.4), (8, 8, 0.0, 0.6), (72, 16, 0.5, 0.2),
                                                   (5, 2, 0.2, 0.2)])
def test_push_serializer_behind_a_push_fifo(lanes, fold, idle, stall):
    """FIFO (credit-driven read side) -> serializer (push input, one slot): every beat comes out
    as its S sub-beats, in order, under random stalls on both sides, and the slot never overruns
    (``overrun``, sticky, watched by ``hw.testing.run``)."""
    fields = {"a": signed(6)}
    P, S = fold_plan(lanes, fold)
    rng = np.random.default_rng(lanes + fold)
    items = [{"a": [int(v) for v in rng.integers(-32, 32, lanes)], "side": k % 4} for k in range(30)]
    dut = PushLink.make(fields, lanes, fold, unsigned(2))
    got = stream_test(dut, {"i": items}, {"o": S * len(items)}, seed=fold, idle=idle, stall=stall)["o"]
    for k, it in enumerate(items):
        for s in range(S):
            g = got[k * S + s]
            assert g["a"] == (it["a"] + [0] * (S * P - lanes))[s * P:(s + 1) * P]
            assert g["side"] == {"sub": s, "inner": it["side"]}


@pytest.mark.parametrize("lanes,fold", [(8, 4), (16, 8), (72, 16)])
def test_push_serializer_full_rate(lanes, fold):
    """With S >= ``PUSH_MIN_SUB_BEATS`` the credit round trip hides behind the sub-beats: with the
    input always valid and the output always ready, a sub-beat leaves in every cycle."""
    from hw.testing import recv, run, send
    P, S = fold_plan(lanes, fold)
    assert S >= Serializer.PUSH_MIN_SUB_BEATS
    dut = PushLink.make({"a": unsigned(4)}, lanes, fold, 0)
    cycles = []

    async def tb_in(ctx):
        await send(ctx, dut.i, [{"a": [k % 16] * lanes} for k in range(12)])

    async def tb_out(ctx):
        await recv(ctx, dut.o, 12 * S, on_beat=lambda c, p: cycles.append(c))
    run(dut, tb_in, tb_out)
    assert np.all(np.diff(cycles) == 1)


def test_push_serializer_flags_an_overrun():
    """A writer that ignores the credit (two beats back to back into the one slot) sets
    ``overrun``; the same writer one beat per credit does not."""
    from amaranth.sim import Simulator
    for back_to_back in (True, False):
        ser = Serializer({"a": unsigned(3)}, 8, 4, push=True)
        flag = []

        async def tb(ctx, back_to_back=back_to_back):
            ctx.set(ser.o.ready, 1)
            for k in range(2):
                ctx.set(ser.i.payload, {"a": [k] * 8})
                ctx.set(ser.i.valid, 1)
                await ctx.tick()
                ctx.set(ser.i.valid, 0)
                if not back_to_back:
                    while not ctx.get(ser.freed):
                        await ctx.tick()
            for _ in range(8):
                await ctx.tick()
            flag.append(ctx.get(ser.overrun))
        sim = Simulator(ser)
        sim.add_clock(1e-6)
        sim.add_testbench(tb)
        sim.run()
        assert flag == [int(back_to_back)]


@pytest.mark.parametrize("ports", ["dual", "banked"])
@pytest.mark.parametrize("fold", [2, 4, 16])
@pytest.mark.parametrize("cfg,n", [(small_config(), 1), (small_config(kernel=3, channels=2, blocks=2), 1),
                                   (small_config(frac_bits=0, levels=(256, 256), levels_up=256, channels=2), 1)])
def test_folded_rom_reads_each_lanes_table(cfg, n, fold, ports):
    """Sub-beat s, slot g reads the table of lane s P + g (floor and next entry); padding slots
    read zeros; the memories hold exactly the LUT (lut_bytes * 8 bits)."""
    m = random_model(cfg, seed=n)
    layer, w, lut = m.config.layers[n], m.widths[n], m.layers[n].lut
    dut = LutRom(lut, m.config.entry_bits, w, ports, side=3, fold=fold)
    P, S, L, lanes = dut.lanes_per_beat, dut.sub_beats, layer.levels, dut.lanes
    rng = np.random.default_rng(fold)
    items, want = [], []
    for k in range(12 * S):
        s = k % S
        idx = [int(v) for v in rng.integers(0, L, P)]
        idx[0] = [0, L - 1, L - 2][k % 3]
        items.append({"index": idx, "side": {"sub": s, "inner": k % 8},
                      **({"frac": [k % (1 << w.frac_bits)] * P} if w.frac_bits else {})})
        want.append((s, idx))
    got = stream_test(dut, {"i": items}, {"o": len(items)}, seed=fold)["o"]
    for (s, idx), g, it in zip(want, got, items):
        assert g["side"] == it["side"] and g.get("frac") == it.get("frac")
        for slot, i in enumerate(idx):
            lane = s * P + slot
            if lane >= lanes:
                assert g["lo"][slot] == [0] * layer.c_out
                continue
            (jy, jx), c = divmod(lane // layer.c_in, layer.kernel), lane % layer.c_in
            assert g["lo"][slot] == list(lut[c, i, jy, jx, :])
            if w.frac_bits and (ports == "dual" or i < L - 1):
                assert g["hi"][slot] == list(lut[c, min(i + 1, L - 1), jy, jx, :])
    assert dut.rom_bits == lut.size * m.config.entry_bits
    assert sum(mem["depth"] * mem["word_bits"] for mem in dut.memories) == dut.rom_bits
    # one table memory per slot (and bank); a logic one deeper than 16 words split by entries
    # into memories of at most ROM_LOGIC_GROUP_BITS bits per word, each with its own addresses
    bases: dict[str, list] = {}
    for mem in dut.memories:
        bases.setdefault(re.sub(r"_g\d+$", "", mem["name"]), []).append(mem)
    assert len(bases) == P * (2 if ports == "banked" and w.frac_bits else 1)
    per = max(1, ROM_LOGIC_GROUP_BITS // m.config.entry_bits)
    for parts in bases.values():
        split = 16 < parts[0]["depth"] < ROM_BRAM_MIN_DEPTH
        assert len(parts) == (-(-layer.c_out // per) if split else 1)
        assert sum(p_["word_bits"] for p_ in parts) == layer.c_out * m.config.entry_bits
        assert all(p_["word_bits"] <= ROM_LOGIC_GROUP_BITS for p_ in parts) or not split


@pytest.mark.parametrize("lanes,fold", [(8, 4), (5, 2), (32, 16), (3, 16)])
def test_folded_accumulate_sums_the_sub_beats(lanes, fold):
    """The tree sums a sub-beat's P terms, the accumulator the S sub-beats (wrapping partial sums,
    exact result); one output per pixel with the inner side."""
    import dataclasses
    m = random_model(small_config(), 0)
    w = dataclasses.replace(m.widths[1], entry_bits=8, acc_bits=8 + (lanes - 1).bit_length())
    P, S = fold_plan(lanes, fold)
    rng = np.random.default_rng(lanes)
    e = rng.integers(-128, 128, (30, S * P, 2))
    e[:, lanes:] = 0
    e[0, :lanes], e[1, :lanes] = 127, -128
    dut = Accumulate(w, lanes, 2, side=unsigned(2), fold=fold)
    items = [{"e": e[k, s * P:(s + 1) * P].tolist(), "side": {"sub": s, "inner": k % 4}}
             for k in range(len(e)) for s in range(S)]
    got = stream_test(dut, {"i": items}, {"o": len(e)}, seed=lanes)["o"]
    assert [g["acc"] for g in got] == e.sum(axis=1).tolist()
    assert [g["side"] for g in got] == [k % 4 for k in range(len(e))]


def test_folded_counts_shrink():
    """Per-beat lanes of NUQD, DPFI and the adder tree are ceil(lanes / F): the multipliers of an
    iq_l8c8 8 -> 8 layer shrink F-fold; the ROM bits stay."""
    m = random_model("iq_l8c8", 0)
    for fold in FOLDS:
        ec = EC(m, 1, 16, fold=fold)
        assert ec.nuqd.multipliers[0] == 16 // fold
        assert ec.dpfi.multipliers[0] == 256 // fold
        assert ec.rom.lanes_per_beat == 32 // fold and ec.sub_beats == fold
        assert ec.rom_bits == m.config.layers[1].rom_bits(m.config.entry_bits)
        # the window FIFO pushes into the window serializer when a window takes >= 4 cycles
        assert (ec.window_fifo.push is not None) == (fold >= Serializer.PUSH_MIN_SUB_BEATS)
        assert fold == 1 or ec.win_serializer.push == (fold >= Serializer.PUSH_MIN_SUB_BEATS)


@pytest.mark.parametrize("fold", [2, 4, 16])
@pytest.mark.parametrize("cfg,n,ports", [(small_config(), 0, "dual"), (small_config(), 1, "banked"),
                                         (small_config(kernel=3, channels=2, blocks=2), 1, "dual"),
                                         (small_config(act_bits=10, frac_bits=6, channels=2, gate_bits=5), 1, "banked")])
def test_folded_ec_equals_golden(cfg, n, ports, fold):
    m = random_model(cfg, seed=n + fold, extreme=fold == 4)
    fr = frames(m, n, seed=n)
    dut = EC(m, n, MAX_WIDTH, rom_ports=ports, residual=cfg.layers[n].gated, fold=fold)
    items = concat(pixel_beats(f) for f in fr)
    got = stream_test(dut, {"i": items}, {"o": len(items)}, seed=n)["o"]
    assert [g["acc"] for g in got] == concat(per_pixel(iqlut.ec(f, m, n)) for f in fr)
    if cfg.layers[n].gated:
        assert [g["side"]["residual"] for g in got] == concat(per_pixel(f) for f in fr)


@pytest.mark.parametrize("name,fold", [(n, f) for n in ("c2b3", "k3", "a10") for f in (4, 16)]
                         + [("f0", 4), ("c1b1", 16)])
def test_folded_top_equals_golden_under_stalls(name, fold):
    """The whole top at folds 4 and 16 (fold 1: ``tests/test_hw_top.py``, the same harness) =
    ``golden.iqlut.upscale`` under random stalls on both sides, frames back to back."""
    cfg, seed = MODELS[name]
    model = random_model(cfg, seed=seed)
    dut = IQLUT(model, max_width=13, rom_ports="banked" if seed % 2 else "dual", fold=fold)
    got, expect = simulate(dut, lr_frames(seed, [(8, 8), (1, 1), (5, 1), (1, 6), (3, 13)]), seed=seed)
    assert first_mismatch(got, expect) is None and len(got) == len(expect)


def test_dsp_layers_top_equals_golden():
    """DPFI products as DSP multipliers (``dsp_layers``; here every layer) change no bit: the top
    at fold 4 = golden under stalls."""
    cfg, seed = MODELS["c2b3"]
    model = random_model(cfg, seed=seed)
    dut = IQLUT(model, max_width=13, fold=4, dsp_layers=range(len(cfg.layers)))
    assert all(b.ec.dpfi.dsp for b in [*dut.blocks, dut.upsampler])
    got, expect = simulate(dut, lr_frames(seed, [(7, 9), (1, 1), (2, 13)]), seed=seed)
    assert first_mismatch(got, expect) is None and len(got) == len(expect)


def test_dsp_layers_choice_and_checks():
    """``auto_dsp_layers`` fills a DSP budget from the upsampler down with the layers that still
    fit (iq_l8c8 at fold 8: 17 NUQD products + 64 + 32 + 32 + 8 = 153 of 156); bad layer lists
    are refused with the reason."""
    from hw.top import auto_dsp_layers, check_dsp_layers, dsp_multipliers
    m = random_model("iq_l8c8", 0)
    layers = auto_dsp_layers(m, 156, fold=8)
    assert layers == (0, 6, 7, 8)
    core = IQLUT(m, fold=8, dsp_layers=layers)
    assert dsp_multipliers(core) == 153 == dsp_multipliers(IQLUT(m, fold=8)) + 64 + 32 + 32 + 8
    assert auto_dsp_layers(m, 156, fold=1) == ()          # 256 products a layer: none fits
    assert auto_dsp_layers(m, 17, fold=8) == ()           # the NUQD products alone fill it
    assert check_dsp_layers(m, [8, 0, 8]) == (0, 8)
    for bad, msg in ((9, "0..8"), (-1, "0..8"), (True, "0..8"), ("7", "0..8"), (None, "collection")):
        with pytest.raises(ValueError, match=msg):
            IQLUT(m, dsp_layers=bad if bad is None else [bad])
    with pytest.raises(ValueError, match="no DPFI products"):
        IQLUT(random_model("ecnn_l8c8", 0), dsp_layers=[0])


@pytest.mark.parametrize("name,fold", [("x2", 16), ("x3", 4)])
def test_folded_x2_x3_top_equals_golden(name, fold):
    """The fold knob at the other scales: the x2 upsampler has 4 outputs (fewer lanes than 16),
    the x3 one 9."""
    cfg, seed = MODELS[name]
    dut = IQLUT(random_model(cfg, seed=seed), max_width=13, fold=fold)
    got, expect = simulate(dut, lr_frames(seed, [(6, 7), (1, 1), (3, 13)]), seed=seed)
    assert first_mismatch(got, expect) is None and len(got) == len(expect)


@pytest.mark.parametrize("cfg,fold,uniform", [
    (MODELS["c2b2"][0], 2, True), (MODELS["c2b3"][0], 4, True),
    (small_config(channels=4, blocks=2), 8, True),      # 8-lane columns, 16-lane windows
    (MODELS["c2b2"][0], 8, False),                      # columns of 4 lanes: 4 sub-beats, windows 8
])
def test_folded_throughput(cfg, fold, uniform):
    """Sink always ready: a frame of H x W takes exactly F (H + 1)(W + 1) cycles (F cycles per
    pixel and ghost position) when every layer's column and window take F sub-beats (fewer when
    some take fewer: ``frame_cycles`` is then a bound), and the first output comes no later than
    ``latency(W)``."""
    dut = IQLUT(random_model(cfg, seed=fold), max_width=12, fold=fold)
    assert dut.cycles_per_pixel == fold
    h, w = 6, 12
    cycles = measure(dut, lr_frames(0, [(h, w)] * 3))
    ends = [cycles[(k + 1) * h * w - 1] for k in range(3)]
    per_frame = [b - a for a, b in itertools.pairwise(ends)]
    assert dut.frame_cycles(h, w) == fold * (h + 1) * (w + 1)
    if uniform:
        assert per_frame == [fold * (h + 1) * (w + 1)] * 2
    else:
        assert per_frame[0] == per_frame[1] and fold * h * w <= per_frame[0] < dut.frame_cycles(h, w)
    assert cycles[0] <= dut.latency(w)


def test_fold_validation():
    m = random_model(small_config(), 0)
    for bad in (0, 3, 32, 2.0, True, "4"):
        with pytest.raises(ValueError, match="fold"):
            IQLUT(m, fold=bad)
        with pytest.raises(ValueError, match="fold"):
            EC(m, 1, 8, fold=bad)
    with pytest.raises(ValueError, match="fold"):
        NUQD(m.grids[1], m.recips[1], m.widths[1], 4, fold=3)
    with pytest.raises(ValueError, match="fold"):
        DPFI(m.widths[1], 4, 3, fold=0)
    with pytest.raises(ValueError, match="nothing to serialize"):
        Serializer({"a": 4}, 4, 1)


def test_folded_shipped_model():
    """The shipped iq_l8c8 at fold 8 on a small frame."""
    from golden.modelfile import MODELS_DIR, load_model
    if not (MODELS_DIR / "iq_l8c8.npz").exists():
        pytest.skip("models/iq_l8c8.npz is not shipped in this checkout")
    dut = IQLUT(load_model("iq_l8c8"), max_width=5, fold=8)
    got, expect = simulate(dut, lr_frames(11, [(3, 5), (1, 1)]), idle=0.2, stall=0.2)
    assert first_mismatch(got, expect) is None and len(got) == len(expect)
    assert spec.CONFIGS["iq_l8c8"].layers[1].c_in * 4 // 8 == dut.blocks[1].ec.rom.lanes_per_beat

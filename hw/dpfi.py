"""DPFI: dual-port fractional interpolation between two LUT entries."""
from __future__ import annotations

from amaranth import Cat, Const, Module, Shape, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden import spec

from .fold import fold_plan, fold_side
from .rom import rom_layout
from .streams import Pipe, array_shape, check_positive_int, local, with_side

__all__ = ["DPFI", "dpfi_layout"]


def dpfi_layout(lanes: int, c_out: int, entry_bits: int, side):
    return with_side({"e": array_shape(signed(entry_bits), lanes, c_out)}, side)


class DPFI(wiring.Component):
    """``golden.iqlut.dpfi`` for ``lanes`` x ``c_out`` entry pairs per beat:
    e = lo + round_shift((hi - lo) * t, F) = ((lo << F) + 2^(F-1) + (hi - lo) * t) >> F (lo << F
    is a multiple of 2^F, so adding it before the rounding shift is exact; the rounding constant
    fills the low bits of lo << F, no adder). Widths from ``Model.widths``: hi - lo is
    ``diff_bits`` signed, the product ``product_bits`` signed, e ``entry_bits`` signed (it lies
    between lo and hi, so the sum is computed modulo 2^(entry_bits + F), exactly). Differences
    that do not fit ``diff_bits`` only occur with t = 0 (index L-1, banked ROM) and wrap
    harmlessly. Three pipeline stages: [hi - lo], [partial products (hi - lo) * t[:h] and
    (hi - lo) * t[h:], h = ceil(F / 2) for F > 2], [lo << F + 2^(F-1) + pp_lo + pp_hi << h]
    (F = 0: one, e = lo); the fraction t is registered once per output channel (fan-out). ``fold``:
    P = ``lanes_per_beat`` of the ``lanes`` per beat (``hw.fold``), ``side`` in ``fold_side``.

    ``dsp=True``: each product is one multiplication (hi - lo) * t of registered operands into a
    registered product (the operand register named ``dspmul_diff2_*``), which ``hw.synth`` maps to
    an ECP5 MULT18X18D with both operand registers and the product register inside it
    (``absorb_dsp_registers``), instead of ~46 LUT4-eq. of partial products and adders. The DSPs
    sit in a few rows of the die, often far from the layer's ROMs, so the operands and the product
    also get a fabric register on the near side: [hi - lo, t copy] -> [DSP operand registers] ->
    [DSP product register] -> [fabric product register] -> [lo << F + 2^(F-1) + product], five
    stages (with the difference computed straight into the DSP's register, the route from the
    subtracter to a DSP 65 columns away was the whole design's critical path at fold 8 with four
    layers in DSPs: 1.0 ns logic + 12.4 ns routing, 68.93 MHz). Same result."""

    #: the tag in the name of every DSP product's operand register (``hw.synth`` keeps the ``$mul``
    #: cells it feeds on A / B for DSPs)
    DSP_TAG = "dspmul"

    def __init__(self, widths: spec.LayerWidths, lanes: int, c_out: int, side=0, fold: int = 1, *,
                 dsp: bool = False):
        per, sub_beats = fold_plan(lanes, fold)
        check_positive_int("c_out", c_out)
        if not isinstance(dsp, bool):
            raise ValueError(f"dsp must be a bool, got {dsp!r}")
        if dsp and not widths.frac_bits:
            raise ValueError("dsp=True needs DPFI products: this layer has no fraction bits (e = lo)")
        self.dsp = dsp
        Shape.cast(side)
        side = fold_side(side, sub_beats)
        self.widths, self.lanes, self.c_out, self.side = widths, lanes, c_out, side
        self.fold, self.lanes_per_beat, self.sub_beats = fold, per, sub_beats
        f = widths.frac_bits
        self.latency = (5 if dsp else 3) if f else 1
        self.multipliers = (per * c_out, (widths.diff_bits, f)) if f else (0, None)
        super().__init__({
            "i": In(stream.Signature(rom_layout(per, c_out, widths.entry_bits, f, side))),
            "o": Out(stream.Signature(dpfi_layout(per, c_out, widths.entry_bits, side))),
        })

    def elaborate(self, platform):
        m = Module()
        w, f = self.widths, self.widths.frac_bits
        pipe = Pipe(m, self.o, self.i, name="dpfi")
        i, o = self.i.p, self.o.p
        m.d.comb += self.o.valid.eq(pipe.valid_chain(self.i.valid, self.latency))
        pipe.carry(i, o, "side", stages=self.latency)
        if not f:
            m.d.comb += o.e.eq(pipe.reg(i.lo, name="e1"))
            return m
        lo_in, hi_in = local(m, i.lo, "lo_in"), local(m, i.hi, "hi_in")
        frac, e_out = local(m, i.frac, "frac_in"), Signal(o.e.shape(), name="e_out")
        half = Const(1 << (f - 1), f)
        h = (f + 1) // 2 if f > 2 else f     # t[:h] x diff and t[h:] x diff, f = 5: 3 + 2 bits
        self.diff_signals, self.product_signals = [], []
        for n in range(self.lanes_per_beat):
            lo_n, hi_n, e_n = local(m, lo_in[n], f"lo_in{n}"), local(m, hi_in[n], f"hi_in{n}"), e_out[n]
            for c in range(self.c_out):
                # t: one register copy per output channel (``_dup`` names: kept apart through
                # synthesis, ``hw.synth``): one shared copy fanned out to every channel's product
                # was the whole design's critical path at fold 16 (5.9 ns of routing on one net)
                t1 = pipe.reg(frac[n], name=f"t1_{n}_dup{c}")
                diff = Signal(signed(w.diff_bits), name=f"diff{n}_{c}")
                m.d.comb += diff.eq((hi_n[c] - lo_n[c])[:w.diff_bits].as_signed())
                diff1 = pipe.reg(diff, name=f"diff1_{n}_{c}")
                lo_k = pipe.carry_value(lo_n[c], self.latency - 1, f"lo_{n}_{c}")
                prod = Signal(signed(w.product_bits), name=f"prod{n}_{c}")
                if self.dsp:
                    # fabric [diff1, t1] -> DSP [diff2, t2] -> DSP [prod3] -> fabric [prod4]; the
                    # operand register carries the tag: ``hw.synth`` finds the multipliers by the
                    # wire on their A input
                    diff2 = pipe.reg(diff1, name=f"{self.DSP_TAG}_diff2_{n}_{c}")
                    t2 = pipe.reg(t1, name=f"t2_{n}_{c}")
                    prod3 = pipe.reg((diff2 * t2)[:w.product_bits].as_signed(), signed(w.product_bits),
                                     name=f"prod3_{n}_{c}")
                    m.d.comb += prod.eq(pipe.reg(prod3, name=f"prod4_{n}_{c}"))
                else:
                    # the product as two partial products by t[:h] and t[h:] (registered), summed
                    # in the last stage's add: half the multiplier logic per stage
                    pp_lo = pipe.reg(diff1 * t1[:h], name=f"pplo2_{n}_{c}")
                    pp_hi = pipe.reg(diff1 * t1[h:], name=f"pphi2_{n}_{c}") if h < f else None
                    m.d.comb += prod.eq(pp_lo if pp_hi is None else pp_lo + (pp_hi << h))
                total = (Cat(half, lo_k).as_signed() + prod)[:w.entry_bits + f]
                m.d.comb += e_n[c].eq(pipe.reg(total[f:], signed(w.entry_bits), name=f"e{n}_{c}"))
                self.diff_signals.append(diff)
                self.product_signals.append(prod)
        m.d.comb += o.e.eq(e_out)
        return m

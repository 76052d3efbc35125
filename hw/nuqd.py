"""NUQD: non-uniform quantization of activations to (index, fraction) with a comparator bank."""
from __future__ import annotations

import numpy as np
from amaranth import Cat, Const, Module, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import spec

from .fold import fold_plan, fold_side
from .streams import Pipe, check_positive_int, local, with_side

__all__ = ["NUQD", "nuqd_layout"]


def nuqd_layout(lanes: int, index_bits: int, frac_bits: int, side):
    return with_side({"index": data.ArrayLayout(unsigned(index_bits), lanes),
                      "frac": data.ArrayLayout(unsigned(frac_bits), lanes)}, side)


def _const_table(m: Module, values, shape, index, name: str) -> Signal:
    """A signal of ``shape`` = ``values[index]`` (constants), bit by bit: bit j is bit ``index``
    of the mask of the values' bits j. Indices past the table read 0."""
    out = Signal(shape, name=name)
    width = Shape.cast(shape).width
    words = [int(v) & ((1 << width) - 1) for v in values]
    for j in range(width):
        mask = sum(((v >> j) & 1) << k for k, v in enumerate(words))
        m.d.comb += out[j].eq(Const(mask, len(words)).bit_select(index, 1))
    return out


def _ge_const(m: Module, u, threshold: int, name: str) -> Signal:
    """``u >= threshold`` for an unsigned signal ``u`` and a constant, without a carry chain:
    u = (H, L) with L the low 4 bits, threshold = (gh, gl); the result is [H > gh] | [H == gh] &
    [L >= gl], each term a constant mask indexed by H or L (one LUT each, then one LUT to combine:
    two LUT levels for u of up to 8 bits, against a CCU2C chain plus two LUT4 for ``>=``)."""
    width = len(u)
    c = Signal(name=name)
    if threshold <= 0:
        m.d.comb += c.eq(1)
        return c
    if threshold >= 1 << width:
        m.d.comb += c.eq(0)
        return c
    lo = min(4, width)
    gh, gl = threshold >> lo, threshold & ((1 << lo) - 1)
    ge_l = Const(sum(1 << v for v in range(gl, 1 << lo)), 1 << lo).bit_select(u[:lo], 1)
    if width == lo:
        m.d.comb += c.eq(ge_l)
        return c
    hs = 1 << (width - lo)
    gt_h = Const(sum(1 << v for v in range(gh + 1, hs)), hs).bit_select(u[lo:], 1)
    eq_h = Const(1 << gh, hs).bit_select(u[lo:], 1)
    m.d.comb += c.eq(gt_h | (eq_h & ge_l))
    return c


def _thermometer_to_binary(therm, bits: int) -> list:
    """The count of ones of a thermometer code t (t_j = [count >= j + 1], so t_j >= t_{j+1}) as
    ``bits`` binary digits without an adder: bit b is set iff the count lies in one of the
    intervals [q 2^(b+1) + 2^b, (q + 1) 2^(b+1) - 1], i.e. t[q 2^(b+1) + 2^b - 1] & ~t[(q + 1)
    2^(b+1) - 1] (the second term dropped past the code's end)."""
    n = len(therm)
    out = []
    for b in range(bits):
        terms = []
        for q in range(n):
            lo = q * (2 << b) + (1 << b) - 1
            if lo >= n:
                break
            hi = (q + 1) * (2 << b) - 1
            terms.append(therm[lo] & ~therm[hi] if hi < n else therm[lo])
        term = terms[0] if terms else Const(0, 1)
        for t in terms[1:]:
            term = term | t
        out.append(term)
    return out


class NUQD(wiring.Component):
    """``golden.iqlut.nuqd`` on ``lanes`` activations per beat (one layer's grid for all lanes).

    Per lane: a bank of L-1 constant comparators c_j = [g_j <= x] (``_ge_const``: table lookups on
    4-bit chunks of x in offset binary, no carry chain); index i = the number of c_j set, encoded
    straight from that thermometer code (``_thermometer_to_binary``; ``index_bits`` unsigned); fraction t = ((x - g_i) * R_i) >> RECIP_SHIFT (``frac_bits``
    unsigned) with g_i, R_i selected by i from constant tables (R_i of ``recip_bits``). The offset
    x - g_i is an A-bit unsigned value and the product is F + RECIP_SHIFT bits (it is < 2^(F+S),
    docs/fixed-point.md section 2). With the identity grid (L = 2^A, the ECNN case) the comparator
    bank reduces to i = x - g_0. Six pipeline stages (for >= 150 MHz on ECP5): [input copy],
    [comparators], [index = their count], [select g_i, R_i; offset], [copy], [multiply]. The
    input copy is the one load of the source's register on each bit, so the placer can put it by
    the comparators it fans out to (without it, at fold 8 on c33d442 (seed 2), block 3's column
    register ``col_in.data`` (53,21) drove the comparators at (27,88) over one 5.48 ns net). The copy stage gives the
    multiplier operands that are plain register copies: yosys turns a registered constant-table
    bit into a flip-flop with a synchronous reset, which no MULT18X18D input register can take
    (``hw.synth.absorb_dsp_registers``), and an ECP5 DSP with one operand registered and the
    other not is timed by nextpnr as if neither were (the whole design's critical path at fold 16).

    grid, recip : ``Model.grids[n]``, ``Model.recips[n]``; widths : ``Model.widths[n]``.
    fold : ``lanes`` are shared over ``fold`` cycles (``hw.fold``): each beat is a sub-beat of
    P = ``lanes_per_beat`` lanes, ``side`` is wrapped in ``fold_side`` (the sub-beat number).
    """

    def __init__(self, grid, recip, widths: spec.LayerWidths, lanes: int, side=0, fold: int = 1):
        grid = np.asarray(grid, dtype=np.int64)
        recip = np.asarray(recip, dtype=np.int64)
        per, sub_beats = fold_plan(lanes, fold)
        a, f = widths.act_in_bits, widths.frac_bits
        if grid.ndim != 1 or len(grid) < 2 or np.any(np.diff(grid) <= 0):
            raise ValueError("grid must be a strictly increasing 1-D array of at least 2 levels")
        if grid[0] != -(1 << (a - 1)) or grid[-1] != (1 << (a - 1)) - 1:
            raise ValueError(f"grid must span the {a}-bit activation range, got [{grid[0]}, {grid[-1]}]")
        if not np.array_equal(recip, spec.nuqd_recip(grid, f)):
            raise ValueError("recip does not match spec.nuqd_recip(grid, frac_bits)")
        if widths.index_bits != max(1, int(np.ceil(np.log2(len(grid))))):
            raise ValueError(f"index_bits {widths.index_bits} does not fit {len(grid)} levels")
        Shape.cast(side)
        self.grid, self.recip, self.widths, self.lanes = grid, recip, widths, lanes
        self.fold, self.lanes_per_beat, self.sub_beats = fold, per, sub_beats
        self.side = side = fold_side(side, sub_beats)
        self.levels = len(grid)
        self.identity = bool(np.array_equal(grid, np.arange(grid[0], grid[0] + len(grid))))
        self.latency = 6
        #: comparators in the bank (all lanes of a beat) and multipliers (count, operand widths)
        self.comparators = 0 if self.identity else per * (self.levels - 1)
        self.multipliers = (per, (a, widths.recip_bits)) if f else (0, None)
        super().__init__({
            "i": In(stream.Signature(with_side({"x": data.ArrayLayout(signed(a), per)}, side))),
            "o": Out(stream.Signature(nuqd_layout(per, widths.index_bits, f, side))),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.widths
        a, f, ib = w.act_in_bits, w.frac_bits, w.index_bits
        pipe = Pipe(m, self.o, self.i, name="nuqd")
        valid = pipe.valid_chain(self.i.valid, self.latency)
        m.d.comb += self.o.valid.eq(valid)
        pipe.carry(self.i.p, self.o.p, "side", stages=self.latency)
        self.offset_signals, self.product_signals = [], []
        x_in = local(m, self.i.p.x, "x_in")
        for n in range(self.lanes_per_beat):
            x = pipe.reg(x_in[n], name=f"x0_{n}")        # stage 0: the input copy
            # stage 1: the comparator bank (thermometer code), or x - g_0 for the identity grid
            if self.identity:
                bank = pipe.reg((x - int(self.grid[0]))[:ib], unsigned(ib), name=f"bank1_{n}")
            else:
                # offset binary u = x + 2^(A-1): the signed compare x >= g becomes u >= g + 2^(A-1)
                u = Signal(unsigned(a), name=f"u{n}")
                m.d.comb += u.eq(x.as_unsigned() ^ (1 << (a - 1)))
                therm = Signal(self.levels - 1, name=f"c{n}")
                m.d.comb += [therm[j].eq(_ge_const(m, u, int(g) + (1 << (a - 1)), f"c{n}_{j}"))
                             for j, g in enumerate(self.grid[1:])]
                bank = pipe.reg(therm, name=f"bank1_{n}")
            x1 = pipe.reg(x, name=f"x1_{n}")
            # stage 2: index = the number of comparators set
            index2 = pipe.reg(bank if self.identity else Cat(*_thermometer_to_binary(bank, ib)),
                              unsigned(ib), name=f"index2_{n}")
            x2 = pipe.reg(x1, name=f"x2_{n}")
            # stage 3: select g_i and R_i, offset x - g_i in [0, w_i - 1]
            index3 = pipe.reg(index2, name=f"index3_{n}")
            index4 = pipe.reg(index3, name=f"index4_{n}")
            m.d.comb += self.o.p.index[n].eq(pipe.reg(index4, name=f"index5_{n}"))
            if f == 0:
                continue
            # g_i and R_i: each output bit is one constant L-bit mask indexed by i, i.e. one LUT
            # of the index bits (a word_select of the concatenated table became an index * width
            # adder and a barrel shifter: 6 logic levels, the 110 MHz critical path at fold 16)
            g_sel = _const_table(m, self.grid, signed(a), index2, f"g_sel{n}")
            r_sel = _const_table(m, self.recip, unsigned(w.recip_bits), index2, f"r_sel{n}")
            offset = Signal(unsigned(a), name=f"offset{n}")
            m.d.comb += offset.eq(x2 - g_sel)
            offset3 = pipe.reg(offset, name=f"offset3_{n}")
            r3 = pipe.reg(r_sel, name=f"recip3_{n}")
            # stage 4: plain copies of both operands (the multiplier's input registers)
            offset4 = pipe.reg(offset3, name=f"offset4_{n}")
            r4 = pipe.reg(r3, name=f"recip4_{n}")
            # stage 5: t = (offset * R_i) >> RECIP_SHIFT
            product = Signal(unsigned(f + spec.RECIP_SHIFT), name=f"product{n}")
            m.d.comb += product.eq(offset4 * r4)
            self.offset_signals.append(offset)
            self.product_signals.append(product)
            m.d.comb += self.o.p.frac[n].eq(pipe.reg(product >> spec.RECIP_SHIFT, unsigned(f),
                                                     name=f"frac5_{n}"))
        return m

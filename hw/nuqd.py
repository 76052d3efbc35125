"""NUQD: non-uniform quantization of activations to (index, fraction) with a comparator bank."""
from __future__ import annotations

import numpy as np
from amaranth import Cat, Const, Module, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import spec

from .streams import Pipe, check_positive_int, local, with_side

__all__ = ["NUQD", "nuqd_layout"]


def nuqd_layout(lanes: int, index_bits: int, frac_bits: int, side):
    return with_side({"index": data.ArrayLayout(unsigned(index_bits), lanes),
                      "frac": data.ArrayLayout(unsigned(frac_bits), lanes)}, side)


class NUQD(wiring.Component):
    """``golden.iqlut.nuqd`` on ``lanes`` activations per beat (one layer's grid for all lanes).

    Per lane: a bank of L-1 constant comparators c_j = [g_j <= x]; index i = sum of c_j
    (``index_bits`` unsigned); fraction t = ((x - g_i) * R_i) >> RECIP_SHIFT (``frac_bits``
    unsigned) with g_i, R_i selected by i from constant tables (R_i of ``recip_bits``). The offset
    x - g_i is an A-bit unsigned value and the product is F + RECIP_SHIFT bits (it is < 2^(F+S),
    docs/fixed-point.md section 2). With the identity grid (L = 2^A, the ECNN case) the comparator
    bank reduces to i = x - g_0. Two pipeline stages: [comparators, index] then [select, multiply].

    grid, recip : ``Model.grids[n]``, ``Model.recips[n]``; widths : ``Model.widths[n]``.
    """

    def __init__(self, grid, recip, widths: spec.LayerWidths, lanes: int, side=0):
        grid = np.asarray(grid, dtype=np.int64)
        recip = np.asarray(recip, dtype=np.int64)
        check_positive_int("lanes", lanes)
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
        self.grid, self.recip, self.widths, self.lanes, self.side = grid, recip, widths, lanes, side
        self.levels = len(grid)
        self.identity = bool(np.array_equal(grid, np.arange(grid[0], grid[0] + len(grid))))
        self.latency = 2
        #: comparators in the bank (all lanes) and multipliers (count, operand widths)
        self.comparators = 0 if self.identity else lanes * (self.levels - 1)
        self.multipliers = (lanes, (a, widths.recip_bits)) if f else (0, None)
        super().__init__({
            "i": In(stream.Signature(with_side({"x": data.ArrayLayout(signed(a), lanes)}, side))),
            "o": Out(stream.Signature(nuqd_layout(lanes, widths.index_bits, f, side))),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.widths
        a, f, ib = w.act_in_bits, w.frac_bits, w.index_bits
        pipe = Pipe(m, self.o, self.i, name="nuqd")
        v1 = pipe.reg(self.i.valid, 1, valid=True)
        pipe.carry(self.i.p, self.o.p, "side", stages=2)
        idx1, x1 = [], []
        x_in = local(m, self.i.p.x, "x_in")
        for n in range(self.lanes):
            x = x_in[n]
            if self.identity:
                index = (x - int(self.grid[0]))[:ib]
            else:
                bank = [Signal(name=f"c{n}_{j}") for j in range(1, self.levels)]
                m.d.comb += [c.eq(x >= int(g)) for c, g in zip(bank, self.grid[1:])]
                index = sum(bank)
            idx1.append(pipe.reg(index, unsigned(ib), name=f"index1_{n}"))
            x1.append(pipe.reg(x, name=f"x1_{n}"))
        m.d.comb += self.o.valid.eq(pipe.reg(v1, 1, valid=True))
        # constant tables indexed by i: one shift-extract each (a mux tree after synthesis)
        g_tab = Cat(*[Const(int(g), signed(a)) for g in self.grid])
        r_tab = Cat(*[Const(int(r), unsigned(w.recip_bits)) for r in self.recip])
        self.offset_signals, self.product_signals = [], []
        for n in range(self.lanes):
            m.d.comb += self.o.p.index[n].eq(pipe.reg(idx1[n], name=f"index2_{n}"))
            if f == 0:
                continue
            offset = Signal(unsigned(a), name=f"offset{n}")        # x - g_i in [0, w_i - 1]
            product = Signal(unsigned(f + spec.RECIP_SHIFT), name=f"product{n}")
            g_i = g_tab.word_select(idx1[n], a).as_signed()
            r_i = r_tab.word_select(idx1[n], w.recip_bits)
            m.d.comb += [offset.eq(x1[n] - g_i), product.eq(offset * r_i)]
            self.offset_signals.append(offset)
            self.product_signals.append(product)
            m.d.comb += self.o.p.frac[n].eq(pipe.reg(product >> spec.RECIP_SHIFT, unsigned(f),
                                                     name=f"frac2_{n}"))
        return m

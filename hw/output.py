"""Output assembly: the final combine of upsampler and bilinear paths (``golden.iqlut.combine``),
and the optional reordering of scale x scale HR blocks into HR raster order."""
from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden import spec
from golden.modelfile import Model

from .arith import clamp
from .bilinear import bil_bits
from .ec import acc_layout
from .streams import FLAGS, Pipe, array_shape, check_positive_int

__all__ = ["LANES", "Combine", "RasterOrder", "block_layout", "divide_by_constant"]

#: HR pixels per LR pixel at x4; lane r * 4 + c of a block is HR pixel (4 qy + r, 4 qx + c).
#: (x``scale``: scale^2 lanes, r * scale + c.)
LANES = 16


def divide_by_constant(d: int, n_max: int) -> tuple[int, int]:
    """(M, k) with floor(u / d) == (u * M) >> k for every integer u in [0, n_max]: the smallest k
    for M = ceil(2^k / d), checked exhaustively (n_max is small: 256 * D - 1)."""
    if d < 1 or n_max < 0:
        raise ValueError(f"divide_by_constant: need d >= 1 and n_max >= 0, got {d}, {n_max}")
    u = np.arange(n_max + 1, dtype=np.int64)
    for k in range(0, 48):
        mult = -(-(1 << k) // d)
        if np.array_equal((u * mult) >> k, u // d):
            return mult, k
    raise AssertionError("unreachable: k = bits(n_max) + bits(d) always works")


def block_layout(lanes: int = LANES):
    return data.StructLayout({"data": data.ArrayLayout(unsigned(8), lanes), **FLAGS})


class Combine(wiring.Component):
    """Joins the upsampler stream (acc, scale^2 lanes) and the bilinear stream (bil, scale^2 lanes,
    in 1/D, D = ``spec.bilinear_den(scale)``) beat by beat and computes every HR pixel as golden's
    ``combine``: clamp(round_div(total, D 2^s), 0, 255), total = (bil << s) + acc * D, s = the
    upsampler's shift. ``total`` (rounding constant included) is ``out_bits`` signed
    (``Model.widths[-1].out_bits``). x4 / x2 (D = 64 / 16, a power of two): clamp((total +
    2^(s+b-1)) >> (s+b), 0, 255), b = log2 D. x3 (D = 9): u = (2 total + D 2^s) >> (s+1), clamped to
    [0, 256 D - 1], then floor(u / D) as (u * M) >> k (``divide_by_constant``, exact on that range).
    One stage. ``misaligned`` is a sticky flag: the two inputs disagreed on the framing bits (never
    set in a correct design; a debugging aid)."""

    def __init__(self, model: Model):
        w = model.widths[-1]
        self.scale = model.config.scale
        self.lanes = self.scale ** 2
        self.den = spec.bilinear_den(self.scale)
        self.shift, self.out_bits, self.acc_bits = model.layers[-1].shift, w.out_bits, w.acc_bits
        pow2 = self.den & (self.den - 1) == 0
        #: x3: the constant divider (M, k) of floor(u / D), u in [0, 256 D - 1]; None for a power of two
        self.divider = None if pow2 else divide_by_constant(self.den, 256 * self.den - 1)
        self.latency = 1
        super().__init__({
            "up": In(stream.Signature(acc_layout(self.lanes, w.acc_bits, data.StructLayout(FLAGS)))),
            "bil": In(stream.Signature(data.StructLayout({
                "bil": data.ArrayLayout(unsigned(bil_bits(self.scale)), self.lanes), **FLAGS}))),
            "o": Out(stream.Signature(block_layout(self.lanes))),
            "misaligned": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        s, den = self.shift, self.den
        pipe = Pipe(m, self.o, name="combine")
        up, bil, o = self.up, self.bil, self.o
        both = up.valid & bil.valid
        m.d.comb += [up.ready.eq(pipe.en & bil.valid), bil.ready.eq(pipe.en & up.valid)]
        m.d.comb += [self.o.valid.eq(pipe.reg(both, 1, valid=True)),
                     o.p.eol.eq(pipe.reg(up.p.side.eol, 1)), o.p.eof.eq(pipe.reg(up.p.side.eof, 1))]
        with m.If(both & ((up.p.side.eol != bil.p.eol) | (up.p.side.eof != bil.p.eof))):
            m.d.sync += self.misaligned.eq(1)
        self.total_signals = []
        for n in range(self.lanes):
            total = Signal(signed(self.out_bits), name=f"total{n}")
            if self.divider is None:
                b = den.bit_length() - 1
                m.d.comb += total.eq((bil.p.bil[n] << s) + (up.p.acc[n] << b) + (1 << (s + b - 1)))
                hr = clamp(total >> (s + b), 0, 255)
            else:
                mult, k = self.divider
                m.d.comb += total.eq((bil.p.bil[n] << s) + up.p.acc[n] * den)
                u = Signal(signed(self.out_bits + 1), name=f"u{n}")
                m.d.comb += u.eq(((total << 1) + (den << s)) >> (s + 1))
                uc = Signal(unsigned((256 * den - 1).bit_length()), name=f"uc{n}")
                m.d.comb += uc.eq(clamp(u, 0, 256 * den - 1))
                hr = (uc * mult) >> k
            self.total_signals.append(total)
            m.d.comb += o.p.data[n].eq(pipe.reg(hr, unsigned(8), name=f"hr{n}"))
        return m


class RasterOrder(wiring.Component):
    """S x S HR blocks (one per LR pixel, raster order; S = ``scale``) -> HR raster order, S HR
    pixels (one block row) per beat: HR row S qy + r of LR row qy is W beats, ``eol`` on the last of
    each HR row.

    While the W blocks of LR row qy come in, HR row S qy leaves at once (lanes 0..S-1 of each
    block) and block rows 1..S-1 are written to a buffer (``max_width`` words of (S-1) x S pixels);
    then HR rows S qy + 1 .. S qy + S - 1 are read out ((S-1) W beats, input stalled). Throughput:
    S HR pixels per clock = 1/S LR pixel per clock, which is the output port's limit."""

    def __init__(self, max_width: int, scale: int = 4):
        check_positive_int("max_width", max_width)
        if scale not in spec.SCALES:
            raise ValueError(f"scale must be one of {spec.SCALES}, got {scale!r}")
        self.max_width, self.scale = max_width, scale
        self.latency = 1
        self.buffer_bits = max_width * (scale - 1) * scale * 8
        super().__init__({"i": In(stream.Signature(block_layout(scale * scale))),
                          "o": Out(stream.Signature(block_layout(scale)))})

    def elaborate(self, platform):
        m = Module()
        maxw, S = self.max_width, self.scale
        i, o = self.i, self.o
        pipe = Pipe(m, o, name="raster")
        en = pipe.en
        replay = Signal()                       # 0: pass row 0 through, 1: read rows 1..S-1
        row = Signal(range(S))
        col = Signal(range(maxw))
        width = Signal(range(maxw + 1))
        last_block_row = Signal()
        issue = Mux(replay, 1, i.valid)
        m.d.comb += i.ready.eq(en & ~replay)

        m.submodules.buffer = buf = Memory(shape=array_shape(unsigned(8), S - 1, S), depth=maxw, init=[])
        wp, rp = buf.write_port(), buf.read_port()
        m.d.comb += [wp.en.eq(i.valid & i.ready), wp.addr.eq(col),
                     rp.en.eq(en), rp.addr.eq(col)]
        for r in range(1, S):
            for c in range(S):
                m.d.comb += wp.data[r - 1][c].eq(i.p.data[r * S + c])

        end_of_row = replay & (col == width - 1)
        s1_replay = pipe.reg(replay, 1, name="s1_replay")
        rb = max(1, (S - 2).bit_length())
        s1_row = pipe.reg((row - 1)[:rb], unsigned(rb), name="s1_row")   # buffered row 1..S-1 -> 0..S-2
        s1_pass = pipe.reg(i.p.data.as_value()[:8 * S], unsigned(8 * S), name="s1_pass")
        m.d.comb += [o.valid.eq(pipe.reg(issue, 1, valid=True)),
                     o.p.eol.eq(pipe.reg(Mux(replay, end_of_row, i.p.eol), 1)),
                     o.p.eof.eq(pipe.reg(end_of_row & (row == S - 1) & last_block_row, 1)),
                     o.p.data.eq(Mux(s1_replay, rp.data.as_value().word_select(s1_row, 8 * S),
                                     s1_pass))]
        with m.If(en & issue):
            m.d.sync += col.eq(col + 1)
            with m.If(~replay & i.p.eol):
                m.d.sync += [width.eq(col + 1), col.eq(0), replay.eq(1), row.eq(1),
                             last_block_row.eq(i.p.eof)]
            with m.If(end_of_row):
                m.d.sync += [col.eq(0), row.eq(row + 1)]
                with m.If(row == S - 1):
                    m.d.sync += replay.eq(0)
        return m

"""Output assembly: the final combine of upsampler and bilinear paths (``golden.iqlut.combine``),
and the optional reordering of 4 x 4 HR blocks into HR raster order."""
from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden import spec
from golden.modelfile import Model

from .arith import clamp
from .bilinear import BIL_BITS
from .ec import acc_layout
from .streams import FLAGS, Pipe, array_shape, check_positive_int

__all__ = ["LANES", "Combine", "RasterOrder", "block_layout"]

#: HR pixels per LR pixel; lane r * 4 + c of a block is HR pixel (4 qy + r, 4 qx + c).
LANES = 16


def block_layout(lanes: int = LANES):
    return data.StructLayout({"data": data.ArrayLayout(unsigned(8), lanes), **FLAGS})


class Combine(wiring.Component):
    """Joins the upsampler stream (acc, 16 lanes) and the bilinear stream (bil64, 16 lanes) beat
    by beat and computes every HR pixel as golden's ``combine``:
    clamp((bil64 << s) + (acc << 6) + 2^(s+5)) >> (s+6), 0, 255), s = the upsampler's shift. The
    sum is ``out_bits`` signed (``Model.widths[-1].out_bits``, rounding constant included). One
    stage. ``misaligned`` is a sticky flag: the two inputs disagreed on the framing bits (never set
    in a correct design; a debugging aid)."""

    def __init__(self, model: Model):
        w = model.widths[-1]
        self.shift, self.out_bits, self.acc_bits = model.layers[-1].shift, w.out_bits, w.acc_bits
        self.latency = 1
        super().__init__({
            "up": In(stream.Signature(acc_layout(LANES, w.acc_bits, data.StructLayout(FLAGS)))),
            "bil": In(stream.Signature(data.StructLayout({
                "bil": data.ArrayLayout(unsigned(BIL_BITS), LANES), **FLAGS}))),
            "o": Out(stream.Signature(block_layout())),
            "misaligned": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        s, b = self.shift, spec.BILINEAR_BITS
        pipe = Pipe(m, self.o, name="combine")
        up, bil, o = self.up, self.bil, self.o
        both = up.valid & bil.valid
        m.d.comb += [up.ready.eq(pipe.en & bil.valid), bil.ready.eq(pipe.en & up.valid)]
        m.d.comb += [self.o.valid.eq(pipe.reg(both, 1, valid=True)),
                     o.p.eol.eq(pipe.reg(up.p.side.eol, 1)), o.p.eof.eq(pipe.reg(up.p.side.eof, 1))]
        with m.If(both & ((up.p.side.eol != bil.p.eol) | (up.p.side.eof != bil.p.eof))):
            m.d.sync += self.misaligned.eq(1)
        self.total_signals = []
        for n in range(LANES):
            total = Signal(signed(self.out_bits), name=f"total{n}")
            m.d.comb += total.eq((bil.p.bil[n] << s) + (up.p.acc[n] << b) + (1 << (s + b - 1)))
            self.total_signals.append(total)
            m.d.comb += o.p.data[n].eq(pipe.reg(clamp(total >> (s + b), 0, 255), unsigned(8),
                                                name=f"hr{n}"))
        return m


class RasterOrder(wiring.Component):
    """4 x 4 HR blocks (one per LR pixel, raster order) -> HR raster order, 4 HR pixels (one block
    row) per beat: HR row 4 qy + r of LR row qy is W beats, ``eol`` on the last of each HR row.

    While the W blocks of LR row qy come in, HR row 4 qy leaves at once (lanes 0..3 of each
    block) and block rows 1..3 are written to a buffer (``max_width`` words of 3 x 4 pixels); then
    HR rows 4 qy + 1 .. 4 qy + 3 are read out (3 W beats, input stalled). Throughput: 4 HR pixels
    per clock = 1/4 LR pixel per clock, which is the output port's limit."""

    def __init__(self, max_width: int):
        check_positive_int("max_width", max_width)
        self.max_width = max_width
        self.latency = 1
        self.buffer_bits = max_width * 3 * 4 * 8
        super().__init__({"i": In(stream.Signature(block_layout())),
                          "o": Out(stream.Signature(block_layout(4)))})

    def elaborate(self, platform):
        m = Module()
        maxw = self.max_width
        i, o = self.i, self.o
        pipe = Pipe(m, o, name="raster")
        en = pipe.en
        replay = Signal()                       # 0: pass row 0 through, 1: read rows 1..3
        row = Signal(range(4))
        col = Signal(range(maxw))
        width = Signal(range(maxw + 1))
        last_block_row = Signal()
        issue = Mux(replay, 1, i.valid)
        m.d.comb += i.ready.eq(en & ~replay)

        m.submodules.buffer = buf = Memory(shape=array_shape(unsigned(8), 3, 4), depth=maxw, init=[])
        wp, rp = buf.write_port(), buf.read_port()
        m.d.comb += [wp.en.eq(i.valid & i.ready), wp.addr.eq(col),
                     rp.en.eq(en), rp.addr.eq(col)]
        for r in range(1, 4):
            for c in range(4):
                m.d.comb += wp.data[r - 1][c].eq(i.p.data[r * 4 + c])

        end_of_row = replay & (col == width - 1)
        s1_replay = pipe.reg(replay, 1, name="s1_replay")
        s1_row = pipe.reg((row - 1)[:2], unsigned(2), name="s1_row")     # buffered row 1..3 -> 0..2
        s1_pass = pipe.reg(i.p.data.as_value()[:32], unsigned(32), name="s1_pass")
        m.d.comb += [o.valid.eq(pipe.reg(issue, 1, valid=True)),
                     o.p.eol.eq(pipe.reg(Mux(replay, end_of_row, i.p.eol), 1)),
                     o.p.eof.eq(pipe.reg(end_of_row & (row == 3) & last_block_row, 1)),
                     o.p.data.eq(Mux(s1_replay, rp.data.as_value().word_select(s1_row, 32),
                                     s1_pass))]
        with m.If(en & issue):
            m.d.sync += col.eq(col + 1)
            with m.If(~replay & i.p.eol):
                m.d.sync += [width.eq(col + 1), col.eq(0), replay.eq(1), row.eq(1),
                             last_block_row.eq(i.p.eof)]
            with m.If(end_of_row):
                m.d.sync += [col.eq(0), row.eq(row + 1)]
                with m.If(row == 3):
                    m.d.sync += replay.eq(0)
        return m

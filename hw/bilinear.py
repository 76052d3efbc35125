# amaranth: UnusedElaboratable=no
"""Bilinear x4 skip path (``golden.iqlut.bilinear``)."""
from __future__ import annotations

from amaranth import Module, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import iqlut, spec

from .streams import (
    FLAGS,
    Pipe,
    SkidBuffer,
    check_positive_int,
    pixel_layout,
)
from .window import WindowGen

__all__ = ["BIL_BITS", "Bilinear", "bilinear_phases"]

SCALE = 4
#: unsigned bits of a bilinear output (64ths of a grey level: 255 * 64 at most)
BIL_BITS = spec.unsigned_bits(255 << spec.BILINEAR_BITS)


def bilinear_phases():
    """Per HR phase r (0..3) along one axis: ((offset0, weight0), (offset1, weight1)), the two LR
    taps relative to the LR pixel and their weights in eighths, read from
    ``golden.iqlut._bilinear_taps`` on an interior pixel (the edges clamp, as the window does)."""
    i0, i1, w0, w1 = iqlut._bilinear_taps(3, SCALE)
    return tuple(((int(i0[SCALE + r]) - 1, int(w0[SCALE + r])), (int(i1[SCALE + r]) - 1, int(w1[SCALE + r])))
                 for r in range(SCALE))


class Bilinear(wiring.Component):
    """Exact integer bilinear x4 with half-pixel centres and replicate edges: for every LR pixel q
    (raster order) the 4 x 4 HR block bil64[r * 4 + c] (64ths, ``BIL_BITS`` unsigned) at HR pixels
    (4 qy + r, 4 qx + c), same lane order as the upsampler. A 3 x 3 window (``WindowGen``, origin
    -1, so tap (jy, jx) is source q + 1 - j), then rows first (eighths, 11 bits) and columns
    (64ths), as golden: constant weights only, no multipliers. Ends in a skid buffer."""

    def __init__(self, max_width: int):
        check_positive_int("max_width", max_width)
        self.window = WindowGen(unsigned(8), 1, 3, -1, max_width)
        self.phases = bilinear_phases()
        out = data.StructLayout({"bil": data.ArrayLayout(unsigned(BIL_BITS), SCALE * SCALE), **FLAGS})
        self.skid = SkidBuffer(out)
        self.latency = self.window.latency + 2 + self.skid.latency
        self.line_buffer_bits = self.window.line_buffer_bits
        super().__init__({
            "i": In(stream.Signature(pixel_layout(unsigned(8), 1))),
            "o": Out(stream.Signature(out)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.window, m.submodules.skid = win, skid = self.window, self.skid
        wiring.connect(m, wiring.flipped(self.i), win.i)
        pipe = Pipe(m, skid.i, win.o, name="bil")
        taps = win.o.p.taps

        def tap(dy, dx):                     # source q + (dy, dx), dy, dx in -1..1
            return taps[(1 - dy) * 3 + (1 - dx)][0]

        # stage 1: vertical pass, eighths: rows[r][dx] for the three columns dx = -1, 0, 1
        rows = [[pipe.reg(sum(wt * tap(dy, dx) for dy, wt in self.phases[r]),
                          unsigned(spec.unsigned_bits(255 * 8)), name=f"rows{r}_{dx + 1}")
                 for dx in (-1, 0, 1)] for r in range(SCALE)]
        # stage 2: horizontal pass, 64ths
        for r in range(SCALE):
            for c in range(SCALE):
                v = sum(wt * rows[r][dx + 1] for dx, wt in self.phases[c])
                m.d.comb += skid.i.p.bil[r * SCALE + c].eq(pipe.reg(v, unsigned(BIL_BITS),
                                                                    name=f"bil{r}_{c}"))
        m.d.comb += [skid.i.valid.eq(pipe.valid_chain(win.o.valid, 2)),
                     skid.i.p.eol.eq(pipe.reg(pipe.reg(win.o.p.eol, 1), 1)),
                     skid.i.p.eof.eq(pipe.reg(pipe.reg(win.o.p.eof, 1), 1))]
        wiring.connect(m, skid.o, wiring.flipped(self.o))
        return m

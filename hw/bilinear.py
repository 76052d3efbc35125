# amaranth: UnusedElaboratable=no
"""Bilinear skip path, x2 / x3 / x4 (``golden.iqlut.bilinear``)."""
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

__all__ = ["Bilinear", "bil_bits", "bilinear_phases"]


def bil_bits(scale: int = 4) -> int:
    """Unsigned bits of a bilinear output: at most 255 * D, D = ``spec.bilinear_den(scale)`` (x4: 14,
    x2: 12, x3: 12)."""
    return spec.unsigned_bits(255 * spec.bilinear_den(scale))


def bilinear_phases(scale: int = 4):
    """Per HR phase r (0..scale-1) along one axis: ((offset0, weight0), (offset1, weight1)), the two
    LR taps relative to the LR pixel and their weights over ``spec.bilinear_axis_den(scale)``, read
    from ``golden.iqlut._bilinear_taps`` on an interior pixel (the edges clamp, as the window does)."""
    i0, i1, w0, w1 = iqlut._bilinear_taps(3, scale)
    return tuple(((int(i0[scale + r]) - 1, int(w0[scale + r])), (int(i1[scale + r]) - 1, int(w1[scale + r])))
                 for r in range(scale))


class Bilinear(wiring.Component):
    """Exact integer bilinear x``scale`` (2, 3, 4) with half-pixel centres and replicate edges: for
    every LR pixel q (raster order) the scale x scale HR block bil[r * scale + c] (in 1/D,
    D = ``spec.bilinear_den(scale)``: 64ths at x4, 16ths at x2, ninths at x3; ``bil_bits(scale)``
    unsigned) at HR pixels (scale qy + r, scale qx + c), same lane order as the upsampler. A 3 x 3
    window (``WindowGen``, origin -1, so tap (jy, jx) is source q + 1 - j), then rows first (over the
    axis denominator) and columns (over D), as golden: constant weights only, no multipliers. Each
    pass takes two stages: the distinct constant products (weight x source) registered, then their
    sums (one adder level per stage; a pass in one stage was the bilinear's critical path at
    142 MHz on ECP5).

    Three skid buffers (registered ``ready``) cut the stall path into three short ones: ``in_skid``
    before the window, ``win_skid`` between the window and the two passes, ``skid`` at the end.
    Without the first two, the output skid's ``ready`` ran through the passes' stall enable, the
    window shift's, the column generator's and into the read of the FIFO in front (``IQLUT``'s
    ``bil_fifo``) and its fill level: the whole design's critical path at fold 8 on 8214a7d
    (2.48 ns logic + 7.34 ns routing, 101.90 MHz). Latency: the window's + ``STAGES`` + 3.

    The ``wt * source`` products and sums are exact in their registers' widths: a product is at
    most 255 x den (vertical) or 255 x D (horizontal)."""

    #: pipeline stages between the window and the skid buffer
    STAGES = 4

    def __init__(self, max_width: int, scale: int = 4):
        check_positive_int("max_width", max_width)
        if scale not in spec.SCALES:
            raise ValueError(f"scale must be one of {spec.SCALES}, got {scale!r}")
        self.scale = scale
        self.window = WindowGen(unsigned(8), 1, 3, -1, max_width)
        self.phases = bilinear_phases(scale)
        self.bits = bil_bits(scale)
        out = data.StructLayout({"bil": data.ArrayLayout(unsigned(self.bits), scale * scale), **FLAGS})
        self.in_skid = SkidBuffer(pixel_layout(unsigned(8), 1))
        self.win_skid = SkidBuffer(self.window.o.p.shape())
        self.skid = SkidBuffer(out)
        self.latency = (self.in_skid.latency + self.window.latency + self.win_skid.latency
                        + self.STAGES + self.skid.latency)
        self.line_buffer_bits = self.window.line_buffer_bits
        super().__init__({
            "i": In(stream.Signature(pixel_layout(unsigned(8), 1))),
            "o": Out(stream.Signature(out)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.window, m.submodules.skid = win, skid = self.window, self.skid
        m.submodules.in_skid, m.submodules.win_skid = self.in_skid, self.win_skid
        wiring.connect(m, wiring.flipped(self.i), self.in_skid.i)
        wiring.connect(m, self.in_skid.o, win.i)
        wiring.connect(m, win.o, self.win_skid.i)
        src = self.win_skid.o
        pipe = Pipe(m, skid.i, src, name="bil")
        taps = src.p.taps

        def tap(dy, dx):                     # source q + (dy, dx), dy, dx in -1..1
            return taps[(1 - dy) * 3 + (1 - dx)][0]

        S, den = self.scale, spec.bilinear_axis_den(self.scale)
        rows_shape = unsigned(spec.unsigned_bits(255 * den))

        def products(src, shape, phases, name):
            """Stage: every distinct (source, weight) product of ``phases`` registered (one
            constant multiply = at most one adder per stage; the sum of two is the next stage)."""
            out = {}
            for ph in phases:
                for off, wt in ph:
                    for key in src:
                        if (key, off, wt) not in out:
                            out[key, off, wt] = pipe.reg(wt * src[key](off), shape,
                                                         name=f"{name}_{key}_{off + 1}_{wt}")
            return out

        # stages 1-2: vertical pass, axis denominator: rows[r][dx] for the three columns dx = -1, 0, 1
        pv = products({dx + 1: (lambda dy, dx=dx: tap(dy, dx)) for dx in (-1, 0, 1)}, rows_shape,
                      self.phases, "pv")
        rows = [[pipe.reg(sum(pv[dx + 1, dy, wt] for dy, wt in self.phases[r]), rows_shape,
                          name=f"rows{r}_{dx + 1}")
                 for dx in (-1, 0, 1)] for r in range(S)]
        # stages 3-4: horizontal pass, 1/D
        ph = products({r: (lambda dx, r=r: rows[r][dx + 1]) for r in range(S)}, unsigned(self.bits),
                      self.phases, "ph")
        for r in range(S):
            for c in range(S):
                v = sum(ph[r, dx, wt] for dx, wt in self.phases[c])
                m.d.comb += skid.i.p.bil[r * S + c].eq(pipe.reg(v, unsigned(self.bits),
                                                                name=f"bil{r}_{c}"))
        flags = [src.p.eol, src.p.eof]
        for _ in range(self.STAGES):
            flags = [pipe.reg(f, 1) for f in flags]
        m.d.comb += [skid.i.valid.eq(pipe.valid_chain(src.valid, self.STAGES)),
                     skid.i.p.eol.eq(flags[0]), skid.i.p.eof.eq(flags[1])]
        wiring.connect(m, skid.o, wiring.flipped(self.o))
        return m

"""Input framing: an AXI4-Stream video input (tdata / tlast = end of line / tuser = start of
frame) with the frame size as run-time inputs -> the internal pixel stream with ``eol``/``eof``."""
from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .streams import check_positive_int, pixel_layout

__all__ = ["HEIGHT_BITS", "INPUT_STATUS", "InputFraming", "video_layout"]

#: bits of the run-time height input (frames up to 65535 rows)
HEIGHT_BITS = 16
#: sticky status bits of the input (``status`` output)
INPUT_STATUS = {
    "bad_size": 1,      # a start of frame with width 0, width > max_width or height 0: frame dropped
    "bad_last": 1,      # tlast differs from the end of line the width implies (data kept)
    "bad_user": 1,      # tuser inside a frame: the frame was cut short and completed with zeros
}


def video_layout(lanes: int):
    """AXI4-Stream video beat: ``lanes`` 8-bit pixels, ``last`` = end of line, ``user`` = start of frame."""
    data_shape = unsigned(8) if lanes == 1 else data.ArrayLayout(unsigned(8), lanes)
    return data.StructLayout({"data": data_shape, "last": 1, "user": 1})


class InputFraming(wiring.Component):
    """Latches ``width`` and ``height`` at each start of frame (the beat with ``user`` set) and
    counts the frame's pixels to produce ``eol``/``eof``; the framing is therefore always exactly
    W x H. Beats before a start of frame are dropped (ready held high), as are whole frames of an
    invalid size (``bad_size``). ``tlast`` is checked, not trusted (``bad_last``). A start of frame
    that arrives while a frame is still running (it was sent short, e.g. a short line) is held
    while the running frame is completed with zero pixels (``bad_user``), then starts the next
    frame: the design re-synchronises on every ``tuser``. Combinational (no register); the top puts
    a skid buffer after it."""

    def __init__(self, max_width: int):
        check_positive_int("max_width", max_width)
        self.max_width = max_width
        self.width_bits = max_width.bit_length()
        super().__init__({
            "i": In(stream.Signature(video_layout(1))),
            "o": Out(stream.Signature(pixel_layout(unsigned(8), 1))),
            "width": In(self.width_bits),
            "height": In(HEIGHT_BITS),
            "status": Out(data.StructLayout(INPUT_STATUS)),
        })

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        running = Signal()
        # Down counters: ``xr`` = pixels left in the row after the current one, ``yr`` = rows left
        # after the current row, so end of line / frame are zero tests of registers (no
        # subtract-and-compare carry chain between the ``running`` flip-flop and the payload);
        # ``wm1`` = the frame's width - 1, reloaded into ``xr`` at each end of line.
        wm1, xr = Signal(self.width_bits), Signal(self.width_bits)
        yr = Signal(HEIGHT_BITS)
        size_ok = (self.width != 0) & (self.width <= self.max_width) & (self.height != 0)
        start = ~running & i.p.user
        pad = running & i.p.user        # the next frame began: finish this one with zeros
        forward = running | (start & size_ok)
        cur_wm1 = Mux(running, wm1, self.width - 1)
        cur_xr = Mux(running, xr, self.width - 1)
        cur_yr = Mux(running, yr, self.height - 1)
        eol = Mux(running, xr == 0, self.width == 1)
        eof = eol & Mux(running, yr == 0, self.height == 1)
        m.d.comb += [o.valid.eq(i.valid & forward), o.p.data[0].eq(Mux(pad, 0, i.p.data)),
                     o.p.eol.eq(eol), o.p.eof.eq(eof),
                     i.ready.eq(~forward | (o.ready & ~pad))]
        with m.If(i.valid & i.ready & start & ~size_ok):
            m.d.sync += self.status.bad_size.eq(1)
        with m.If(o.valid & o.ready):           # a pixel leaves: the input's, or padding
            with m.If(pad):
                m.d.sync += self.status.bad_user.eq(1)
            with m.Elif(i.p.last != eol):
                m.d.sync += self.status.bad_last.eq(1)
            m.d.sync += [running.eq(~eof), wm1.eq(cur_wm1), xr.eq(cur_xr - 1), yr.eq(cur_yr)]
            with m.If(eol):
                m.d.sync += [xr.eq(cur_wm1), yr.eq(cur_yr - 1)]
        return m

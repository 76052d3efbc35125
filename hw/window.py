# amaranth: UnusedElaboratable=no
"""Line buffers and the k x k window generator with replicate edges.

The window generator is two stream components so that a per-column transform (NUQD in
``hw.ec.EC``) can sit between them: ``ColumnGen`` (sequencer + line buffer: one column of k source
rows per position) and ``WindowShift`` (the k-column shift register). ``WindowGen`` chains the two.
"""
from __future__ import annotations

from amaranth import Const, Module, Mux, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .streams import (
    FLAGS,
    Pipe,
    array_shape,
    check_positive_int,
    pixel_layout,
    stream_map,
)

__all__ = ["CTRL", "ColumnGen", "WindowGen", "WindowShift", "column_layout", "window_layout"]

#: Per-column control bits from ColumnGen to WindowShift: ``first`` (first column of a row: fill
#: the window with it), ``ghost`` (ghost column: repeat the newest column; payload unused),
#: ``out`` (a window is complete: emit it), ``eol``/``eof`` (framing of that output pixel).
CTRL = data.StructLayout({"first": 1, "ghost": 1, "out": 1, **FLAGS})


def column_layout(elem, channels: int, kernel: int):
    """``x[jy * C + c]``: row jy (source row clamp(iy - jy)) of channel c, plus ``side`` = CTRL."""
    return data.StructLayout({"x": data.ArrayLayout(elem, kernel * channels), "side": CTRL})


def window_layout(elem, channels: int, kernel: int):
    """``taps[jy * k + jx][c]`` plus the framing bits of the output pixel."""
    return data.StructLayout({"taps": array_shape(elem, kernel * kernel, channels), **FLAGS})


def _check_window(channels, kernel, origin, max_width):
    check_positive_int("channels", channels)
    check_positive_int("kernel", kernel)
    check_positive_int("max_width", max_width)
    if not isinstance(origin, int) or not -(kernel - 1) <= origin <= 0:
        raise ValueError(f"origin must be in {-(kernel - 1)}..0 for kernel {kernel}, got {origin!r}")


class ColumnGen(wiring.Component):
    """Sequencer and line buffer of the window generator. Output q of a k x k window with origin o
    reads sources clamp(q - o - j), j = (jy, jx) in 0..k-1 (``golden.iqlut.ec``). With lag
    d = -o the generator walks an extended raster of (H + d) x (W + d) positions (iy, ix) and emits,
    per position, the column of source rows clamp(iy - jy), jy = 0..k-1, at column clamp(ix); the
    window of output q = (iy - d, ix - d) is complete at position (iy, ix) (``ctrl.out``).

    The d *ghost* columns after each row and the d ghost rows after the last one consume no input
    and replicate the right / bottom edge; the top edge comes from filling the line buffer with
    row 0, the left edge from ``ctrl.first``. The frame size comes from the framing bits of the
    input (``eol``, ``eof``): any W <= ``max_width``, any H >= 1, frame after frame. A frame takes
    (H + d)(W + d) beats (d = 0: exactly H W).

    Storage: k - 1 row slots x C channels, one memory of ``max_width`` words of one element
    each. Row iy is written into slot iy mod (k - 1) (row 0 into every slot: the top edge), one
    write per position at the same address and in the same cycle as the read (read-before-write:
    one block-RAM port with its clock enable, ECP5: one 2048 x 9 DP16KD per memory), so the write
    data is the input pixel alone and never depends on a read. Ghost rows write nothing: source
    row clamp(iy - jy) is slot (iy - max(jy, g)) mod (k - 1) in ghost row g (g = 0 in a real row),
    or the input pixel itself (jy = 0 of a real row, every jy of row 0). Each read is registered
    before any logic (block RAM -> register -> slot mux; a read feeding logic directly, or a
    transparent read's bypass mux after the block RAM, was the whole design's critical path).
    Latency 3 (k = 1: 2). ``line_buffer_memories``: (memories, word bits)."""

    def __init__(self, elem, channels: int, kernel: int, origin: int, max_width: int):
        Shape.cast(elem)
        _check_window(channels, kernel, origin, max_width)
        self.elem, self.channels, self.kernel, self.origin = elem, channels, kernel, origin
        self.lag = -origin
        self.max_width = max_width
        self.latency = 3 if kernel > 1 else 2
        self.line_buffer_bits = max_width * (kernel - 1) * channels * Shape.cast(elem).width
        self.line_buffer_memories = ((kernel - 1) * channels, Shape.cast(elem).width) if kernel > 1 else (0, 0)
        super().__init__({
            "i": In(stream.Signature(pixel_layout(elem, channels))),
            "o": Out(stream.Signature(column_layout(elem, channels, kernel))),
        })

    def elaborate(self, platform):
        m = Module()
        k, d, C, maxw = self.kernel, self.lag, self.channels, self.max_width
        i, o = self.i, self.o
        pipe = Pipe(m, o, name="colgen")
        en = pipe.en

        # ---- sequencer: which extended-raster position enters stage 1 this cycle
        REAL, GCOL, GROW = 0, 1, 2
        phase = Signal(2, init=REAL)
        col = Signal(range(maxw + d))        # extended column of the next position
        last = Signal(range(maxw + d))       # W - 1 of the current frame (the column of each row's eol)
        sat = max(d, 1)
        rows = Signal(range(sat + 1))        # completed rows of this frame, saturating
        slot = Signal(range(max(k - 1, 1)))  # row slot of the line buffer: row number mod (k - 1)
        if d:
            gcount = Signal(range(d + 1))    # ghost columns issued in this row
            grows = Signal(range(d + 1))     # number of the current ghost row (1..d)
            frame_end = Signal()             # the eof beat is in; ghost columns / rows follow

        real = phase == REAL
        issue = Mux(real, i.valid, 1)
        m.d.comb += i.ready.eq(en & real)
        if d:
            last_gcol = (phase == GCOL) & (gcount == d - 1)
            eol_out, eof_out = last_gcol, last_gcol & frame_end & (grows == d)
        else:
            eol_out, eof_out = i.p.eol, i.p.eof

        # ---- stage 1: position descriptor + line-buffer read
        s1_valid = pipe.reg(issue, 1, valid=True, name="s1_valid")
        s1_pix = pipe.reg(i.p.data, name="s1_pix")
        ctrl0 = Signal(CTRL, name="ctrl0")
        m.d.comb += [ctrl0.first.eq(col == 0), ctrl0.ghost.eq(phase == GCOL),
                     ctrl0.out.eq((rows >= d) & (col >= d) if d else 1), ctrl0.eol.eq(eol_out),
                     ctrl0.eof.eq(eof_out)]
        s1_ctrl = pipe.reg(ctrl0, name="s1_ctrl")

        def end_of_row(frame_done):
            m.d.sync += col.eq(0)
            if k > 2:
                m.d.sync += slot.eq(Mux(slot == k - 2, 0, slot + 1))
            with m.If(rows != sat):
                m.d.sync += rows.eq(rows + 1)
            with m.If(frame_done):
                m.d.sync += [rows.eq(0), phase.eq(REAL)]
                if k > 2:
                    m.d.sync += slot.eq(0)
                if d:
                    m.d.sync += [grows.eq(0), frame_end.eq(0)]
            if d:
                with m.Elif(frame_end):
                    m.d.sync += [grows.eq(grows + 1), phase.eq(GROW)]
                with m.Else():
                    m.d.sync += phase.eq(REAL)

        with m.If(en & issue):
            m.d.sync += col.eq(col + 1)
            with m.If(real), m.If(i.p.eol):
                m.d.sync += last.eq(col)
                if d:
                    m.d.sync += [phase.eq(GCOL), gcount.eq(0), frame_end.eq(i.p.eof)]
                else:
                    end_of_row(i.p.eof)
            if d:
                with m.Elif(phase == GCOL):
                    m.d.sync += gcount.eq(gcount + 1)
                    with m.If(gcount == d - 1):
                        end_of_row(frame_end & (grows == d))
                with m.Else(), m.If(col == last):      # equality only: no subtractor
                    m.d.sync += [phase.eq(GCOL), gcount.eq(0)]

        # ---- stage 2: the column (rows clamp(iy - jy)) from the registered reads of the row slots
        elem_c = array_shape(self.elem, C)
        vec = [Signal(elem_c, name=f"vec{jy}") for jy in range(k)]
        valid, ctrl = s1_valid, s1_ctrl
        if k > 1:
            S = k - 1
            # per jy, decided in stage 0: the input pixel (jy = 0 of a real row, every jy of row 0),
            # else the slot (slot - max(jy, g)) mod S holding row clamp(iy - jy)
            use_pix, sel = [], []
            for jy in range(k):
                u = Signal(name=f"use_pix{jy}")
                m.d.comb += u.eq(real & ((rows == 0) | (jy == 0)))
                use_pix.append(pipe.reg(pipe.reg(u, name=f"s1_use_pix{jy}"), name=f"s2_use_pix{jy}"))
                if S > 1:
                    eff = Mux(grows > jy, grows, jy) if jy < d else Const(jy)   # grows <= d
                    diff = Signal(range(-S, S), name=f"slot_diff{jy}")
                    v = Signal(range(S), name=f"sel{jy}")
                    m.d.comb += [diff.eq(slot - eff), v.eq(Mux(diff < 0, diff + S, diff))]
                    sel.append(pipe.reg(pipe.reg(v, name=f"s1_sel{jy}"), name=f"s2_sel{jy}"))
            # one memory per (slot, channel): read and written at col in the same cycle
            # (read-before-write), write enable en & a real input beat & (its slot | row 0), read
            # enable en; the read data goes straight into a register (the DP16KD output register).
            rd = [Signal(elem_c, name=f"s2_rd{sl}") for sl in range(S)]
            for sl in range(S):
                wen = Signal(name=f"lb_wen{sl}")
                m.d.comb += wen.eq(en & real & i.valid & ((slot == sl) | (rows == 0)))
                for c in range(C):
                    name = f"linebuf{sl}_{c}" if S > 1 else f"linebuf{c}"
                    m.submodules[name] = lb = Memory(shape=self.elem, depth=maxw, init=[])
                    wp, rp = lb.write_port(), lb.read_port()
                    rdata = Signal(self.elem, name=f"lb_rdata{sl}_{c}")   # a stable, unique port name
                    m.d.comb += [wp.addr.eq(col), wp.en.eq(wen), wp.data.eq(i.p.data[c]),
                                 rp.en.eq(en), rp.addr.eq(col), rdata.eq(rp.data),
                                 rd[sl][c].eq(pipe.reg(rdata, name=f"s2_rd{sl}_{c}", memory_out=True))]
            pix = pipe.reg(s1_pix, name="s2_pix")
            for jy in range(k):
                slots = rd[0]
                for sl in range(1, S):                 # a plain mux chain (an Array index emits a
                    slots = Mux(sel[jy] == sl, rd[sl], slots)   # casez Verilator flags as overlapping)
                m.d.comb += vec[jy].eq(Mux(use_pix[jy], pix, slots))
            valid, ctrl = pipe.reg(s1_valid, 1, valid=True, name="s2_valid"), pipe.reg(s1_ctrl, name="s2_ctrl")
        else:
            m.d.comb += vec[0].eq(s1_pix)
        x = Signal(o.p.x.shape(), name="column")
        for jy in range(k):
            for c in range(C):
                m.d.comb += x[jy * C + c].eq(vec[jy][c])
        m.d.comb += [o.valid.eq(pipe.reg(valid, 1, valid=True)),
                     o.p.x.eq(pipe.reg(x, name="out_x")), o.p.side.eq(pipe.reg(ctrl, name="out_ctrl"))]
        return m


class WindowShift(wiring.Component):
    """The k-column shift register of the window generator: per input column (any payload shape
    ``col_shape``, with ``CTRL``), shifts it in (``first``: fill all k columns; ``ghost``: repeat
    the newest) and, when ``ctrl.out``, emits ``cols[jx]`` = column ix - jx, jx = 0..k-1 (newest
    first), with the framing bits. Latency 1 (the register is the output)."""

    def __init__(self, col_shape, kernel: int):
        Shape.cast(col_shape)
        check_positive_int("kernel", kernel)
        self.col_shape, self.kernel = col_shape, kernel
        self.latency = 1
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"col": col_shape, "side": CTRL}))),
            "o": Out(stream.Signature(data.StructLayout({
                "cols": data.ArrayLayout(col_shape, kernel), **FLAGS}))),
        })

    def elaborate(self, platform):
        m = Module()
        k, i, o = self.kernel, self.i, self.o
        pipe = Pipe(m, o, i, name="shift")
        ctrl = i.p.side
        cols = [Signal(self.col_shape, name=f"col{jx}", reset_less=True) for jx in range(k)]
        # the shift register advances on real columns only; pipe.update spreads its enable over
        # copies (the whole-design critical path was this register's one enable net)
        nxt = [Mux(ctrl.ghost, cols[0], i.p.col)] + \
            [Mux(ctrl.first, i.p.col, cols[jx - 1]) for jx in range(1, k)]
        for jx in range(k):
            pipe.update(cols[jx], nxt[jx], i.valid)
        m.d.comb += [o.valid.eq(pipe.reg(i.valid & ctrl.out, 1, valid=True)),
                     o.p.eol.eq(pipe.reg(ctrl.eol, 1)), o.p.eof.eq(pipe.reg(ctrl.eof, 1))]
        m.d.comb += [o.p.cols[jx].eq(cols[jx]) for jx in range(k)]
        return m


class WindowGen(wiring.Component):
    """For every pixel q of a frame, in raster order, the k x k window of source pixels
    x[clamp(q - origin - j)] (replicate edges): tap ``jy * k + jx`` holds the source at
    j = (jy, jx). ``ColumnGen`` -> ``WindowShift``; latency 3."""

    def __init__(self, elem, channels: int, kernel: int, origin: int, max_width: int):
        self.columns = ColumnGen(elem, channels, kernel, origin, max_width)
        self.shift = WindowShift(data.ArrayLayout(elem, kernel * channels), kernel)
        self.elem, self.channels, self.kernel, self.origin = elem, channels, kernel, origin
        self.lag, self.max_width = -origin, max_width
        self.latency = self.columns.latency + self.shift.latency
        self.line_buffer_bits = self.columns.line_buffer_bits
        super().__init__({
            "i": In(stream.Signature(pixel_layout(elem, channels))),
            "o": Out(stream.Signature(window_layout(elem, channels, kernel))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.columns, m.submodules.shift = cg, sh = self.columns, self.shift
        k, C = self.kernel, self.channels
        wiring.connect(m, wiring.flipped(self.i), cg.i)
        stream_map(m, cg.o, sh.i, sh.i.p.col.eq(cg.o.p.x), sh.i.p.side.eq(cg.o.p.side))
        stream_map(m, sh.o, self.o, self.o.p.eol.eq(sh.o.p.eol), self.o.p.eof.eq(sh.o.p.eof),
                   *[self.o.p.taps[jy * k + jx][c].eq(sh.o.p.cols[jx][jy * C + c])
                     for jy in range(k) for jx in range(k) for c in range(C)])
        return m

# amaranth: UnusedElaboratable=no
"""EC: expanded convolution of one layer = window generator -> NUQD -> LUT ROM -> DPFI -> adder
tree (``golden.iqlut.ec``)."""
from __future__ import annotations

from amaranth import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import spec
from golden.modelfile import Model

from .credit import CreditGate, credits_for
from .dpfi import DPFI, dpfi_layout
from .fold import Deserializer, Serializer, check_fold, fold_plan, fold_side
from .nuqd import NUQD, nuqd_layout
from .rom import LutRom
from .streams import (
    FLAGS,
    Pipe,
    RegisterStage,
    StreamFIFO,
    check_positive_int,
    has,
    local,
    pixel_layout,
    stream_map,
    struct,
    with_side,
)
from .window import CTRL, ColumnGen, WindowShift

__all__ = ["EC", "Accumulate", "acc_layout"]



def acc_layout(c_out: int, acc_bits: int, side):
    return with_side({"acc": data.ArrayLayout(signed(acc_bits), c_out)}, side)


class Accumulate(wiring.Component):
    """Adder tree: acc[o] = sum over the ``lanes`` terms e[n][o] (the c_in x k^2 DPFI outputs of
    one output pixel). Every adder is ``acc_bits`` wide: two's-complement sums wrap consistently
    and the true sum lies in [acc_lo, acc_hi] (interval analysis), so the final value is exact even
    where a partial sum would not fit. A register after every ``levels_per_stage`` tree levels.

    ``fold`` (``hw.fold``): the tree sums the P = ``lanes_per_beat`` terms of a sub-beat and an
    accumulator register (also ``acc_bits``, wrapping) sums the S sub-beats of a pixel; the pixel
    leaves after its last sub-beat (one more stage)."""

    def __init__(self, widths: spec.LayerWidths, lanes: int, c_out: int, side=0,
                 levels_per_stage: int = 2, fold: int = 1):
        per, sub_beats = fold_plan(lanes, fold)
        check_positive_int("c_out", c_out)
        check_positive_int("levels_per_stage", levels_per_stage)
        Shape.cast(side)
        self.widths, self.lanes, self.c_out, self.side = widths, lanes, c_out, side
        self.fold, self.lanes_per_beat, self.sub_beats = fold, per, sub_beats
        self.levels_per_stage = levels_per_stage
        self.levels = max(0, (per - 1).bit_length())
        self.tree_latency = max(1, -(-self.levels // levels_per_stage))
        self.latency = self.tree_latency + (sub_beats > 1)
        self.adders = (per - 1 + (sub_beats > 1)) * c_out
        super().__init__({
            "i": In(stream.Signature(dpfi_layout(per, c_out, widths.entry_bits,
                                                 fold_side(side, sub_beats)))),
            "o": Out(stream.Signature(acc_layout(c_out, widths.acc_bits, side))),
        })

    def elaborate(self, platform):
        m = Module()
        ab = self.widths.acc_bits
        pipe = Pipe(m, self.o, self.i, name="acc")
        terms = [[Signal(signed(ab), name=f"t{n}_{o}") for o in range(self.c_out)]
                 for n in range(self.lanes_per_beat)]
        e_in = local(m, self.i.p.e, "e_in")
        for n in range(self.lanes_per_beat):
            e_n = local(m, e_in[n], f"e_in{n}")
            m.d.comb += [terms[n][o].eq(e_n[o]) for o in range(self.c_out)]
        valid, side = self.i.valid, self.i.p.side if has(self.i.p, "side") else None
        # folded: "first sub-beat of a pixel" decoded at the input and carried as a flag, its last
        # register copied per output channel (``first_dup<o>``): decoding it from the side
        # register after the tree put a comparator and a c_out x acc_bits fan-out in front of
        # every accumulator adder (the upsampler's critical path at fold 16)
        first = [side.sub == 0] if self.sub_beats > 1 else None
        level, stages = 0, 0
        while True:
            if len(terms) > 1:
                nxt = []
                for a in range(0, len(terms) - 1, 2):
                    row = []
                    for o in range(self.c_out):
                        s = Signal(signed(ab), name=f"s{level}_{a // 2}_{o}")
                        m.d.comb += s.eq(terms[a][o] + terms[a + 1][o])
                        row.append(s)
                    nxt.append(row)
                if len(terms) % 2:
                    nxt.append(terms[-1])
                terms, level = nxt, level + 1
            if len(terms) == 1 or level % self.levels_per_stage == 0:
                terms = [[pipe.reg(t, name=f"r{level}_{n}_{o}") for o, t in enumerate(row)]
                         for n, row in enumerate(terms)]
                valid = pipe.reg(valid, 1, valid=True)
                side = pipe.reg(side, name=f"side{level}") if side is not None else None
                if first is not None:
                    first = ([pipe.reg(first[0], 1, name=f"first_dup{o}") for o in range(self.c_out)]
                             if len(terms) == 1 else [pipe.reg(first[0], 1, name=f"first{level}")])
                stages += 1
                if len(terms) == 1:
                    break
        assert stages == self.tree_latency
        sums = terms[0]
        if self.sub_beats > 1:      # sum the sub-beats: acc = (first ? 0 : acc) + tree
            last = side.sub == self.sub_beats - 1
            sums = []
            for o, t in enumerate(terms[0]):
                acc = Signal(signed(ab), name=f"fold_acc{o}", reset_less=True)
                total = Signal(signed(ab), name=f"fold_total{o}")
                m.d.comb += total.eq(Mux(first[o], 0, acc) + t)
                pipe.update(acc, total, valid)
                sums.append(pipe.reg(total, name=f"fold_sum{o}"))
            side = pipe.reg(side.inner, name="fold_side") if Shape.cast(self.side).width else None
            valid = pipe.reg(valid & last, 1, valid=True)
        m.d.comb += self.o.valid.eq(valid)
        if side is not None:
            m.d.comb += self.o.p.side.eq(side)
        m.d.comb += [self.o.p.acc[o].eq(sums[o]) for o in range(self.c_out)]
        return m


class EC(wiring.Component):
    """Expanded convolution of layer ``n`` of ``model``: a stream of activation pixels
    (c_in x signed A bits, raster order, framing bits) in, the accumulator acc[o] of every output
    pixel (c_out x signed ``acc_bits``) out, in raster order (``golden.iqlut.ec``).

    ``ColumnGen`` (line buffer: one column of k source rows per position) -> ``NUQD`` of the
    column (k c_in lanes: each source pixel is quantized once per window row it appears in, not
    once per tap) -> ``WindowShift`` (k x k window of (index, fraction)) -> ``LutRom`` (two reads
    of each tap's table, c_in k^2 lanes) -> ``DPFI`` (c_in k^2 c_out multiply-adds) ->
    ``Accumulate`` (adder tree over the c_in k^2 terms of each output channel). With ``residual``
    the side output also carries x[q] (the window tap at j = -origin), for the gate.

    ``fold`` F (``hw.fold``): the NUQD handles ceil(k c_in / F) lanes per cycle (a column is
    serialized into it and gathered again before the window shift), and ROM, DPFI and adder tree
    ceil(c_in k^2 / F) lanes per cycle (the window is serialized, the accumulator sums the
    sub-beats): one output pixel per ``sub_beats`` <= F cycles, datapath ~1/F. ``dsp``: the DPFI
    products as DSP multipliers (``hw.dpfi.DPFI``).

    **Credit loops** (``hw.credit``): the column serializer (fold 1: a ``CreditGate``) -> NUQD ->
    deserializer -> window shift run free into ``window_fifo`` (``col_credits`` entries; the
    windows in the ROM's lane order), which feeds the window serializer (fold 1: a
    ``CreditGate``) -> ROM -> DPFI -> adder tree -> ``post`` (an IQ-Block's ``BlockOutput``; its
    layout is then the output's), running free into the output FIFO ``fifo`` (``credits``
    entries), which is what ``o`` reads. A gate starts a beat only with a credit; each beat that
    leaves the loop's FIFO returns one (``RETURN_STAGES`` registers later), and so does each
    column that completes no window, as it leaves the shift. Only ColumnGen (enabled by the
    column gate's registered ready) and the FIFOs' output registers keep stall enables.
    """

    #: registers on the credit return path (the FIFO's read side -> the gate): the one backward
    #: net of a loop, from one end of a layer to the other. With 2, the placer put the first of
    #: them next to the gate: the whole design's critical path at fold 16 on a3723d4 (block 3's
    #: window FIFO valid -> serializer load -> credit return, 0.76 ns logic + 9.40 ns routing,
    #: 8.06 ns of it one net across the die, 98.37 MHz). More stages cost only credits (FIFO
    #: entries: the loops are sized from the round trip).
    RETURN_STAGES = 4

    def _loop(self, folded: bool, sub_beats: int, chain: list, out_shape, push: int | None = None):
        """(credits, FIFO) of a credit loop: a gate (a ``Serializer`` of latency 2 when
        ``folded``, else a ``CreditGate``), ``chain``, the FIFO (``push``: its read side's
        credits, ``StreamFIFO``); full rate at one beat per ``sub_beats`` cycles
        (``hw.credit.credits_for``)."""
        gate_latency = 2 if folded else CreditGate.latency
        round_trip = (gate_latency + sub_beats + sum(p_.latency for p_ in chain)
                      + StreamFIFO.LUTRAM_LATENCY + self.RETURN_STAGES + 1)
        credits = credits_for(round_trip, sub_beats)
        # a credit comes back when its beat leaves the FIFO's memory for the output register
        # (``read_seen``), so the memory holds ``credits`` entries and the output register one more
        return credits, StreamFIFO(out_shape, credits, lutram=True, push=push)

    def __init__(self, model: Model, n: int, max_width: int, *, rom_ports: str = "dual",
                 residual: bool = False, fold: int = 1, post: wiring.Component | None = None,
                 dsp: bool = False):
        cfg = model.config
        if not isinstance(n, int) or not 0 <= n < len(cfg.layers):
            raise ValueError(f"layer index must be in 0..{len(cfg.layers) - 1}, got {n!r}")
        check_positive_int("max_width", max_width)
        check_fold(fold)
        layer, w = cfg.layers[n], model.widths[n]
        self.model, self.n, self.layer, self.widths = model, n, layer, w
        a, k, c_in = cfg.act_bits, layer.kernel, layer.c_in
        self.lanes = c_in * k * k
        self.residual, self.fold = residual, fold
        res = {"residual": data.ArrayLayout(signed(a), c_in)} if residual else {}
        col_side = data.StructLayout({**res, "ctrl": CTRL})
        col_shape = struct({"index": data.ArrayLayout(unsigned(w.index_bits), k * c_in),
                            "frac": data.ArrayLayout(unsigned(w.frac_bits), k * c_in), **res})
        side = data.StructLayout({**res, **FLAGS})
        q_fields = {"index": unsigned(w.index_bits), **({"frac": unsigned(w.frac_bits)} if w.frac_bits else {})}
        self.columns = ColumnGen(signed(a), c_in, k, layer.origin, max_width)
        self.nuqd = NUQD(model.grids[n], model.recips[n], w, k * c_in, col_side, fold=fold)
        self.shift = WindowShift(col_shape, k)
        self.rom = LutRom(model.layers[n].lut, cfg.entry_bits, w, rom_ports, side, fold=fold)
        self.dpfi = DPFI(w, self.lanes, layer.c_out, side, fold=fold, dsp=dsp)
        self.accumulate = Accumulate(w, self.lanes, layer.c_out, side, fold=fold)
        folded_nuqd, folded_rom = self.nuqd.sub_beats > 1, self.rom.sub_beats > 1
        self.col_deserializer = Deserializer(q_fields, k * c_in, fold, col_side) if folded_nuqd else None
        # Two credit loops (``hw.credit``), each a free-running pipeline (its last o.ready is 1:
        # no stall enables, no skid buffers) into a FIFO of ``credits`` entries, entered through a
        # gate that starts a beat only with a credit, returned when the beat leaves the FIFO:
        #   column loop: column serializer (fold 1: ``CreditGate``) -> NUQD -> deserializer ->
        #     window shift -> window_fifo (windows, in the ROM lane order);
        #   window loop: window serializer (fold 1: ``CreditGate``) -> ROM -> DPFI -> adder tree
        #     -> post -> fifo (the EC's output).
        # The stall enables of these parts were the whole design's critical paths at fold 16
        # (single flip-flops whose enable nets span a layer placed across the die): 74.4 MHz on
        # b02a4f6 (block 4's ROM skid ready -> the window serializer's load enables, 0.76 ns
        # logic + 12.68 ns routing), 102.3 MHz on 6d2cce5 with only the window loop (block 5's
        # NUQD output skid ready -> NUQD enable -> NUQD input skid take -> its clock enables,
        # 1.23 + 8.54 ns), 99.2 MHz on 52444ad with the shift outside the loops (block 5's window
        # serializer ready -> the window shift's clock enables, 1.23 + 8.85 ns). What still
        # stalls: ColumnGen (its enable is the column gate's registered ready) and the FIFOs'
        # output registers (enable copies per group of bits).
        # The window shift is not 1:1: a column with ctrl.out low (the first ``lag`` columns and
        # rows of the extended raster) completes no window, so it returns its credit as it leaves
        # the shift (a second return source of the column gate) instead of at the FIFO.
        if post is not None:
            acc = acc_layout(layer.c_out, w.acc_bits, side)
            if not hasattr(post, "i") or not hasattr(post, "o") or post.i.p.shape() != acc:
                raise ValueError(f"post must be a component with a stream input of the adder "
                                 f"tree's output layout {acc!r}")
        self.post = post
        #: sticky: a FIFO of a credit loop (or the window serializer's push slot) was offered a
        #: beat it had no room for (never, by the credits; ``hw.testing.run`` watches it)
        self.overflow = Signal(name="fifo_overflow")
        # folded: a register after each serializer's sub-beat multiplexer (without it, IQ-Block
        # 1's critical path at fold 16: window serializer sub -> multiplexer -> ROM address
        # registers, 3.8 ns logic + 5.5 ns routing, 107.7 MHz)
        self.col_in = RegisterStage(self.nuqd.i.p.shape()) if folded_nuqd else None
        self.rom_in = RegisterStage(self.rom.i.p.shape()) if folded_rom else None
        col_chain = [p_ for p_ in (self.col_in, self.nuqd, self.col_deserializer, self.shift) if p_ is not None]
        win_chain = [p_ for p_ in (self.rom_in, self.rom, self.dpfi, self.accumulate, post) if p_ is not None]
        window = nuqd_layout(self.lanes, w.index_bits, w.frac_bits, side)   # the window gate's input
        out_shape = post.o.p.shape() if post is not None else acc_layout(layer.c_out, w.acc_bits, side)
        # The window FIFO (by the window shift) pushes into the window serializer (by the ROMs,
        # 50-90 rows away at fold 8) on the serializer's credits (``Serializer`` with ``push``)
        # when a window takes at least PUSH_MIN_SUB_BEATS cycles: no handshake between the two
        # (``StreamFIFO`` with ``push``)
        push = folded_rom and self.rom.sub_beats >= Serializer.PUSH_MIN_SUB_BEATS
        #: credits of the column loop and its FIFO of windows (``StreamFIFO`` of depth credits - 1)
        self.col_credits, self.window_fifo = self._loop(folded_nuqd, self.nuqd.sub_beats, col_chain, window,
                                                        Serializer.PUSH_SLOTS if push else None)
        #: credits of the window loop and the output FIFO
        self.credits, self.fifo = self._loop(folded_rom, self.rom.sub_beats, win_chain, out_shape)
        if folded_nuqd:
            self.col_serializer = Serializer({"x": signed(a)}, k * c_in, fold, col_side,
                                             credits=self.col_credits, returns=2)
            self.col_gate = None
        else:
            self.col_serializer = None
            self.col_gate = CreditGate(self.nuqd.i.p.shape(), self.col_credits, returns=2)
        if folded_rom:
            self.win_serializer = Serializer(q_fields, self.lanes, fold, side, credits=self.credits, push=push)
            self.win_gate = None
        else:
            self.win_serializer, self.win_gate = None, CreditGate(self.rom.i.p.shape(), self.credits)
        assert (self.win_serializer or self.win_gate).i.p.shape() == window
        #: cycles per output pixel (one pixel per cycle unfolded); a column takes nuqd.sub_beats
        self.sub_beats = max(self.nuqd.sub_beats, self.rom.sub_beats)
        parts = {"columns": self.columns, "col_serializer": self.col_serializer,
                 "col_gate": self.col_gate, "col_in": self.col_in, "nuqd": self.nuqd,
                 "col_deserializer": self.col_deserializer, "shift": self.shift,
                 "window_fifo": self.window_fifo, "win_serializer": self.win_serializer,
                 "win_gate": self.win_gate, "rom_in": self.rom_in, "rom": self.rom, "dpfi": self.dpfi,
                 "accumulate": self.accumulate, "output": post, "fifo": self.fifo}
        self.parts = {k_: p for k_, p in parts.items() if p is not None}
        self.latency = sum(p.latency for p in self.parts.values())
        self.lag = self.columns.lag
        self.line_buffer_bits = self.columns.line_buffer_bits
        self.rom_bits = self.rom.rom_bits
        super().__init__({
            "i": In(stream.Signature(pixel_layout(signed(a), c_in))),
            "o": Out(stream.Signature(out_shape)),
        })

    def _close_loop(self, m: Module, gate, src, fifo, name: str, payload=None, skip=None):
        """Close a credit loop from ``gate`` (already wired up to the stream ``src``, the last
        output of a free-running pipeline: its ``ready`` is tied to 1 here) into ``fifo``
        (``payload``: what ``src`` writes into it, default its own payload); a credit back to the
        gate per beat read out of the FIFO, and (``skip``, 1 bit) per beat the pipeline took that
        never reaches the FIFO, each ``RETURN_STAGES`` registers later; the FIFO refusing a beat
        sets ``overflow``."""
        m.d.comb += [fifo.i.valid.eq(src.valid), src.ready.eq(1),
                     fifo.i.payload.eq(src.payload if payload is None else payload)]
        with m.If(fifo.i.valid & ~fifo.i.ready):
            m.d.sync += self.overflow.eq(1)
        # the FIFO's return starts at its own ``read_seen`` flip-flop, the first of the
        # RETURN_STAGES registers (on 064fe91 the first return register, fed by the read
        # transfer's logic, was placed at the gate's end of the loop: block 5's window FIFO ->
        # window serializer load -> ``col_credit_return1``, 0.76 + 8.61 ns, the critical path of
        # the whole design at F = 8, 106.68 MHz)
        returns = [(fifo.read_seen, 1)] + ([(skip, 0)] if skip is not None else [])
        for r_, (ret, done) in enumerate(returns):
            for k in range(done, self.RETURN_STAGES):
                r = Signal(name=f"{name}_{'skip' if r_ else 'credit'}_return{k + 1}")
                m.d.sync += r.eq(ret)
                ret = r
            m.d.comb += gate.credit[r_].eq(ret)

    @staticmethod
    def _chain(m: Module, parts: list):
        """Wire ``parts`` one after the other; the last one's output stream."""
        for a_, b_ in zip(parts, parts[1:]):
            wiring.connect(m, a_.o, b_.i)
        return parts[-1].o

    def elaborate(self, platform):
        m = Module()
        for name, part in self.parts.items():
            m.submodules[name] = part
        cg, sh = self.columns, self.shift
        k, c_in, d = self.layer.kernel, self.layer.c_in, self.lag
        wiring.connect(m, wiring.flipped(self.i), cg.i)
        # the column loop: gate -> [register] -> NUQD -> [deserializer] -> window shift -> window FIFO
        col_gate = self.col_serializer if self.col_serializer is not None else self.col_gate
        nuqd_i = col_gate.i
        nuqd_o = self._chain(m, [p_ for p_ in (col_gate, self.col_in, self.nuqd, self.col_deserializer)
                                 if p_ is not None])
        # column -> NUQD (the residual x[q] is row d of the column, delayed d columns by the shift)
        res_bits = c_in * self.model.config.act_bits
        res_in = [nuqd_i.p.side.residual.eq(cg.o.p.x.as_value().word_select(d, res_bits))] \
            if self.residual else []
        stream_map(m, cg.o, nuqd_i, nuqd_i.p.x.eq(cg.o.p.x), nuqd_i.p.side.ctrl.eq(cg.o.p.side), *res_in)
        # NUQD -> window shift register
        res_mid = [sh.i.p.col.residual.eq(nuqd_o.p.side.residual)] if self.residual else []
        frac_mid = [sh.i.p.col.frac.eq(nuqd_o.p.frac)] if self.widths.frac_bits else []
        stream_map(m, nuqd_o, sh.i, sh.i.p.col.index.eq(nuqd_o.p.index),
                   sh.i.p.side.eq(nuqd_o.p.side.ctrl), *frac_mid, *res_mid)
        # the window in the ROM's lane order n = (jy * k + jx) * c_in + c -> window FIFO
        window = Signal(self.window_fifo.i.p.shape(), name="window")
        cols = [local(m, sh.o.p.cols[jx], f"col{jx}") for jx in range(k)]
        fields = ("index", "frac") if self.widths.frac_bits else ("index",)
        for name in fields:
            lanes = Signal(window[name].shape(), name=name)
            for jy in range(k):
                for jx in range(k):
                    for c in range(c_in):
                        m.d.comb += lanes[(jy * k + jx) * c_in + c].eq(cols[jx][name][jy * c_in + c])
            m.d.comb += window[name].eq(lanes)
        m.d.comb += [window.side.eol.eq(sh.o.p.eol), window.side.eof.eq(sh.o.p.eof)]
        if self.residual:
            m.d.comb += window.side.residual.eq(cols[d].residual)
        # a column that completes no window (ctrl.out low) returns its credit as it leaves the
        # shift (free-running in the loop: i.valid is a transfer)
        skip = Signal(name="col_skip")
        m.d.comb += skip.eq(sh.i.valid & ~sh.i.p.side.out)
        self._close_loop(m, col_gate, sh.o, self.window_fifo, "col", payload=window, skip=skip)
        # the window loop: gate -> [register] -> ROM -> DPFI -> adder tree -> [post] -> fifo
        win_gate = self.win_serializer if self.win_serializer is not None else self.win_gate
        wiring.connect(m, self.window_fifo.o, win_gate.i)
        if self.window_fifo.push is not None:
            m.d.comb += self.window_fifo.credit.eq(win_gate.freed)
            with m.If(win_gate.overrun):
                m.d.sync += self.overflow.eq(1)
        win_o = self._chain(m, [p_ for p_ in (win_gate, self.rom_in, self.rom, self.dpfi,
                                              self.accumulate, self.post) if p_ is not None])
        self._close_loop(m, win_gate, win_o, self.fifo, "win")
        wiring.connect(m, self.fifo.o, wiring.flipped(self.o))
        return m

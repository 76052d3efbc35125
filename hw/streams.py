"""Stream plumbing shared by every component: payload layouts, the stall-all pipeline helper, skid
buffer, broadcast fork and stream FIFO.

Conventions (``amaranth.lib.stream``, as in Glasgow gateware):

* ``valid`` never depends on ``ready``; a payload holds while ``valid & ~ready``; ``ready`` may
  depend on ``valid``.
* A *pipelined component* advances all its registers together: ``en = ~o.valid | o.ready`` and
  ``i.ready = en`` (:class:`Pipe`). Its output is registered, its ``ready`` path is combinational.
  Every layer ends in a :class:`SkidBuffer`, whose registered ``ready`` cuts that path.
* Pixel streams carry two framing bits besides the data: ``eol`` (last pixel of a row) and ``eof``
  (last pixel of the frame; implies ``eol``). The start of a frame is the first beat after ``eof``
  (or after reset).
"""
from __future__ import annotations

from amaranth import Cat, Elaboratable, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = [
    "FLAGS",
    "Fork",
    "Pipe",
    "RegisterStage",
    "SkidBuffer",
    "StreamFIFO",
    "array_shape",
    "check_positive_int",
    "has",
    "local",
    "pixel_layout",
    "stream_map",
    "struct",
    "with_side",
]

#: Framing bits of every pixel stream.
FLAGS = {"eol": 1, "eof": 1}


def pixel_layout(elem, channels: int) -> data.StructLayout:
    """One pixel of ``channels`` values of shape ``elem`` plus the framing bits."""
    return data.StructLayout({"data": data.ArrayLayout(elem, channels), **FLAGS})


def struct(fields: dict) -> data.StructLayout:
    """StructLayout of the fields that have a non-zero width (zero-width members would become
    ``[-1:0]`` wires in the Verilog)."""
    return data.StructLayout({k: v for k, v in fields.items() if Shape.cast(v).width})


def with_side(fields: dict, side) -> data.StructLayout:
    """Layout of ``fields`` plus a pass-through member ``side`` (carried with the pixel);
    zero-width members are left out."""
    return struct({**fields, "side": side})


def has(view, name: str) -> bool:
    """Whether the struct view has member ``name``."""
    return name in view.shape().members


def array_shape(elem, *dims: int):
    """Nested ArrayLayout: ``array_shape(e, a, b)[i][j]`` has shape ``e``, i < a, j < b."""
    shape = elem
    for d in reversed(dims):
        shape = data.ArrayLayout(shape, d)
    return shape


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def local(m: Module, value, name: str):
    """A signal driven by ``value`` (a field of a wide payload). Indexing the copy elaborates in
    time proportional to the element instead of the whole payload (Amaranth builds nested slices
    net by net), which keeps the emission of the large configurations fast. No hardware."""
    sig = Signal(value.shape(), name=name)
    m.d.comb += sig.eq(value)
    return sig


class Pipe:
    """Stall-all pipeline helper for the inside of one component.

    ``en`` is high when the output register is empty or being read; every register made by
    :meth:`reg` / :meth:`update` (and every memory read port given ``en``) advances only then, so
    the whole pipeline holds while the output is stalled and the output payload is stable.
    ``i.ready = en``.

    **Enable fan-out.** One enable net into every flip-flop of a wide stage was the whole-design
    critical path on ECP5 (the window shift's enable, 1.2 ns of logic + 13.5 ns of routing at fold
    16). So the payload registers are spread over groups of at most ``FANOUT`` bits, each advanced
    by its own copy of the enable, ``~valid_dup<g> | o.ready``, where ``valid_dup<g>`` is a copy
    of the output valid register (the last resettable register :meth:`reg` makes with
    ``valid=True`` — every component makes ``o.valid`` last — loaded with the same value under the
    same enable, so always equal to it). The copies carry ``keep`` (``hw.synth`` marks their
    cells so yosys' ``opt_merge`` does not merge them back). The registers are placed when the
    component's module is elaborated (after its ``elaborate`` has made them all)."""

    #: payload flip-flops per copy of the enable
    FANOUT = 48

    def __init__(self, m: Module, o, i=None, *, name: str = "pipe"):
        self.m = m
        self.o = o
        self.en = Signal(name=f"{name}_en")
        m.d.comb += self.en.eq(~o.valid | o.ready)
        if i is not None:
            m.d.comb += i.ready.eq(self.en)
        self._valid, self._payload = [], []     # (sig, value); (sig, value, cond: None | when | "memory_out")
        m.submodules[f"{name}_regs"] = _PipeRegs(self)
        self._n = 0
        self._name = name

    def reg(self, value, shape=None, *, name: str | None = None, valid: bool = False,
            memory_out: bool = False):
        """A register loaded with ``value`` when ``en``. Payload registers have no reset;
        ``valid=True`` makes a resettable 1-bit valid flag. ``memory_out=True``: the register
        right after a memory read port enabled by ``en`` — it is clocked by ``en`` itself, not by a
        copy, so that all of its bits share the read port's enable and synthesis can move it into
        the block RAM's own output register (``hw.synth.absorb_bram_outreg``)."""
        if shape is None:
            shape = value.shape() if hasattr(value, "shape") else Value.cast(value).shape()
        self._n += 1
        sig = Signal(shape, name=name or f"{self._name}_r{self._n}", reset_less=not valid)
        if valid:
            self._valid.append((sig, value))
        else:
            self._payload.append((sig, value, "memory_out" if memory_out else None))
        return sig

    def update(self, sig, value, when=None):
        """``sig`` (a reset-less register made by the caller) loaded with ``value`` when ``en``
        and ``when``: state that advances only on some beats (a window shift register)."""
        self._payload.append((sig, value, when))

    def carry(self, src, dst, *names, stages: int = 1):
        """dst.name = src.name delayed by ``stages`` registers, for each name both views have."""
        for name in names:
            if has(src, name) and has(dst, name):
                self.m.d.comb += dst[name].eq(self.carry_value(src[name], stages, name))

    def carry_value(self, v, stages: int, name: str):
        """``v`` delayed by ``stages`` registers (named ``<name>_d<k>``)."""
        for k in range(stages):
            v = self.reg(v, name=f"{name}_d{k + 1}")
        return v

    def valid_chain(self, v, stages: int):
        """Delay the valid bit ``v`` by ``stages`` registers; returns the last one."""
        for _ in range(stages):
            v = self.reg(v, 1, valid=True)
        return v


class _PipeRegs(Elaboratable):
    """The registers of a :class:`Pipe`, elaborated after the component has made them all: the
    valid flags under ``en``, the payload in groups of ``Pipe.FANOUT`` bits, each under its own
    copy of ``en`` (see :class:`Pipe`)."""

    def __init__(self, pipe: Pipe):
        self.pipe = pipe

    def elaborate(self, platform):
        p = self.pipe
        m = Module()
        # one flat module (the emitted Verilog has one module per pipe, as before the enable
        # copies), driving every register whole or by slices of it, so no port of this module is
        # a slice (plain and escaped Verilog name those differently). A wide register is loaded
        # slice by slice from one comb copy of its value, never reassembled from part registers
        # by a comb Cat: that made Icarus slower by two orders of magnitude (the IP testbench went
        # from 5 s to past its 600 s timeout)
        with m.If(p.en):
            for sig, value in p._valid:
                m.d.sync += sig.eq(value)
        groups, bits = [], 0

        def group(width):               # the enable of the group of the next ``width`` bits
            nonlocal bits
            if not p._valid:            # no output valid register to copy: one enable
                return p.en
            if not groups or bits + width > Pipe.FANOUT and bits:
                g = len(groups)
                dup = Signal(name=f"{p._name}_valid_dup{g}", attrs={"keep": 1})
                with m.If(p.en):
                    m.d.sync += dup.eq(p._valid[-1][1])     # = o.valid, always
                en_g = Signal(name=f"{p._name}_en_dup{g}")
                m.d.comb += en_g.eq(~dup | p.o.ready)
                groups.append(en_g)
                bits = 0
            bits += width
            return groups[-1]

        for n, (sig, value, cond) in enumerate(p._payload):
            target = Value.cast(sig)
            if isinstance(cond, str):           # "memory_out": on en itself
                with m.If(p.en):
                    m.d.sync += target.eq(value)
                continue
            width = len(target)
            if width > Pipe.FANOUT:     # a wide register: its slices in groups, in this module
                src = Signal(target.shape(), name=f"{p._name}_wide{n}")
                m.d.comb += src.eq(value)
                parts = [(target[lo:lo + Pipe.FANOUT], src[lo:lo + Pipe.FANOUT])
                         for lo in range(0, width, Pipe.FANOUT)]
            else:
                parts = [(target, value)]
            for dst, v in parts:
                en_g = group(len(dst))
                with m.If(en_g if cond is None else en_g & cond):
                    m.d.sync += dst.eq(v)
        return m


class SkidBuffer(wiring.Component):
    """Two-entry stream buffer with registered ``i.ready`` and ``o.valid``: cuts the combinational
    ready path between pipelined components at full throughput. The skid register loads
    ``i.payload`` on every cycle it is empty (its enable is its own ``~skid_valid`` flip-flop, no
    logic and no dependence on ``o.ready``); its content matters only once ``skid_valid`` is set.

    **Fan-out.** ``skid_valid`` selects and enables every payload bit and ``~o.valid | o.ready``
    enables every output bit: on a wide payload (a window of 355 bits) those two nets were among
    the longest routes of an IQ-Block at fold 16 (4.8 ns, 7.7 ns to the farthest load). So the
    payload is cut into groups of at most ``Pipe.FANOUT`` bits; group g > 0 uses its own copies
    ``skid_valid_dup<g>`` and ``valid_dup<g>`` of the two state flip-flops (loaded with the same
    value under the same condition, so always equal to them; kept apart by ``hw.synth``), and
    its own enable ``take_dup<g>`` = ``~valid_dup<g> | o.ready`` for both its state and its
    payload: each group is a self-contained skid buffer that shares only ``i.valid``,
    ``o.ready`` and ``i.payload`` with the others (one shared enable was the critical path of an
    IQ-Block at fold 16: ``o.ready`` → take → every copy's CE, 6.4 ns of routing). ``i.ready`` is
    driven by one more copy of ``skid_valid`` with no other load."""

    def __init__(self, shape):
        Shape.cast(shape)
        self.shape = shape
        self.width = Shape.cast(shape).width
        self.latency = 1
        #: payload groups (each with its own copies of the state flip-flops, the first excepted)
        self.groups = max(1, -(-self.width // Pipe.FANOUT))
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        skid = Signal(self.width, reset_less=True)
        skid_valid = Signal()
        inp, out = Value.cast(self.i.payload), Value.cast(self.o.payload)
        take = Signal()                 # the output register advances
        # i.ready from its own copy of skid_valid (``skid_valid_dup0``) that drives nothing inside:
        # placed near the upstream enables it feeds, not among this buffer's payload selects
        # (block 1's critical path at fold 16: dpfi_skid.skid_valid -> the ROM's and DPFI's
        # enables -> the ROM skid's payload enables, 1.2 ns logic + 5.9 ns routing)
        ready_sv = Signal(name="skid_valid_dup0", attrs={"keep": 1})
        m.d.comb += [self.i.ready.eq(~ready_sv), take.eq(~self.o.valid | self.o.ready)]
        with m.If(take & skid_valid):
            m.d.sync += ready_sv.eq(0)
        with m.Elif(~take & self.i.valid & ~skid_valid):
            m.d.sync += ready_sv.eq(1)

        def state(sv, ov, take):        # next state of (skid_valid, o.valid) into the pair sv, ov
            with m.If(take):
                with m.If(skid_valid):
                    m.d.sync += [ov.eq(1), sv.eq(0)]
                with m.Else():
                    m.d.sync += ov.eq(self.i.valid)
            with m.Elif(self.i.valid & ~skid_valid):
                m.d.sync += sv.eq(1)
        state(skid_valid, self.o.valid, take)
        for g, lo in enumerate(range(0, self.width, Pipe.FANOUT)):
            hi = min(lo + Pipe.FANOUT, self.width)
            if g == 0:
                sv, take_g = skid_valid, take
            else:
                sv = Signal(name=f"skid_valid_dup{g}", attrs={"keep": 1})
                ov = Signal(name=f"valid_dup{g}", attrs={"keep": 1})
                take_g = Signal(name=f"take_dup{g}")
                m.d.comb += take_g.eq(~ov | self.o.ready)
                state(sv, ov, take_g)
            with m.If(~sv):
                m.d.sync += skid[lo:hi].eq(inp[lo:hi])
            with m.If(take_g):
                with m.If(sv):
                    m.d.sync += out[lo:hi].eq(skid[lo:hi])
                with m.Else():
                    m.d.sync += out[lo:hi].eq(inp[lo:hi])
        return m


class RegisterStage(wiring.Component):
    """One pipeline register (a :class:`Pipe` of one stage): latency 1, full rate, ``i.ready`` =
    ``~o.valid | o.ready`` (combinational). Inside a credit loop (``hw.credit``, ``o.ready`` = 1)
    it is a plain register with no enable: e.g. after a serializer's sub-beat multiplexer."""

    latency = 1

    def __init__(self, shape):
        Shape.cast(shape)
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        pipe = Pipe(m, self.o, self.i, name="stage")
        m.d.comb += [self.o.valid.eq(pipe.reg(self.i.valid, 1, valid=True)),
                     self.o.payload.eq(pipe.reg(self.i.payload, name="data"))]
        return m


class Fork(wiring.Component):
    """Broadcast one stream to ``n`` outputs; each output takes the beat in its own time (a
    per-output "sent" flag), the input advances when all have it. ``o[k].valid`` depends on
    ``i.valid`` and registers only."""

    def __init__(self, shape, n: int = 2):
        Shape.cast(shape)
        check_positive_int("n", n, 2)
        self.shape, self.n = shape, n
        super().__init__({"i": In(stream.Signature(shape)),
                          "o": Out(stream.Signature(shape)).array(n)})

    def elaborate(self, platform):
        m = Module()
        sent = Signal(self.n)
        done = [Signal(name=f"done{k}") for k in range(self.n)]
        for k, o in enumerate(self.o):
            m.d.comb += [o.valid.eq(self.i.valid & ~sent[k]), o.payload.eq(self.i.payload),
                         done[k].eq(sent[k] | o.ready)]
        m.d.comb += self.i.ready.eq(Cat(*done).all())
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += sent.eq(0)
        with m.Else():
            for k, o in enumerate(self.o):
                with m.If(o.valid & o.ready):
                    m.d.sync += sent[k].eq(1)
        return m


#: attribute on memories with one write and one read port where the read never reads the address
#: written in the same cycle (a FIFO: when the pointers are equal it is empty or full, so only one
#: of the two happens); ``hw.synth`` lets yosys map their cross-port collision as don't-care
#: (``RD_COLLISION_X_MASK``), so no read-old-data emulation (a bypass multiplexer after the block
#: RAM) is built
NO_COLLISION = "iqlut_no_collision"


def _pointer(m: Module, n: int, advance, name: str, attrs=None) -> Signal:
    """An address into a ring of ``n`` entries, advanced (modulo ``n``) in each cycle of ``advance``
    (``attrs``: the register's attributes, e.g. ``keep`` for a copy)."""
    p = Signal(range(n), name=name, attrs=attrs or {})
    with m.If(advance):
        m.d.sync += p.eq(Mux(p == n - 1, 0, p + 1))
    return p


def _levels(m: Module, n: int, do_write, do_read, read_seen, w_read=None, write_seen=None, w_write=None):
    """The two fill levels of a ring of ``n`` memory entries, each kept on its own side: the
    writer's ``w_level`` (writes minus the reads it has seen one register late, ``read_seen``,
    a 1-bit signal the caller names and this registers from ``do_read``; or ``w_read``, a later
    copy of it the caller registers) and the reader's ``r_level`` (the writes it has seen one
    register late, minus reads). So no path runs from one side's enable to the other side's
    counters in one cycle; the writer's view is conservative (a slot read is free for it one
    cycle later, or as many as ``w_read`` lags ``do_read``), the reader sees a write one cycle
    late (``write_seen``: the caller's register for it, else one made here; ``w_write``: the
    writes the writer counts, default ``do_write``, or a registered copy the caller makes).
    Returns (w_level, r_level)."""
    w_level, r_level = Signal(range(n + 1), name="w_level"), Signal(range(n + 1), name="r_level")
    write_seen = Signal(name="write_seen") if write_seen is None else write_seen
    w_read = read_seen if w_read is None else w_read
    w_write = do_write if w_write is None else w_write
    m.d.sync += [write_seen.eq(do_write), read_seen.eq(do_read),
                 w_level.eq(w_level + w_write - w_read), r_level.eq(r_level + write_seen - do_read)]
    return w_level, r_level


class StreamFIFO(wiring.Component):
    """A first-in first-out queue of ``depth`` + 1 entries with stream ports and a structured
    payload, for block RAM: ``depth`` - 1 entries in a memory (one write port, one synchronous
    read port), one in the read port's data register (``SyncFIFOBuffered``'s scheme) and one in an
    output register. The read data only ever loads that register, so synthesis can move it into
    the DP16KD's own output register (``hw.synth.absorb_bram_outreg``); with ``NO_COLLISION`` no
    bypass logic sits between the block RAM and that register either. Without both, the bilinear
    path's FIFO read (5.8 ns DP16KD clock-to-output, then 4 ns of routing into the window
    generator's framing logic) was the whole design's critical path at fold 16 (82.5 MHz).
    ``latency`` cycles from a write to the entry being at ``o``. Both forms keep one fill level
    per side (``_levels``; below): with one shared level, the bilinear path's FIFO — written
    next to the input skid, read next to the bilinear unit — was the whole design's critical path
    at fold 16 on ca18aee (bilinear skid valid -> FIFO output enable -> read -> the level's clock
    enable at the write side, 1.88 ns logic + 7.42 ns routing, 107.56 MHz).

    ``lutram=True``, for small FIFOs (the credit loops' of ``hw.ec``): ``depth`` entries in a
    memory with an asynchronous read port (LUT RAM, or flip-flops when tiny), then the output
    register, whose payload groups load under their own copies of the enable (``Pipe``), so
    ``o.ready`` drives one gate per 48 bits and the pointers, not a read-data register's single
    clock-enable net (with the block-RAM form as the column FIFO, its read enable from the window
    shift's stall enable was the whole design's critical path at fold 16 on 34005fd: 1.23 ns
    logic + 12.07 ns routing, 75.18 MHz). Each side keeps its own fill level and sees the other
    side's transfers one register later, so write enable and read enable never meet in one
    cycle (one shared level was the critical path at fold 16 on 6143ab4 and bb468d4: block 2's
    window FIFO level -> write enable -> level, 1.00 + 9.01 ns, and the upsampler's window serializer
    -> read enable -> level, 1.23 + 7.72 ns); the writer's view is conservative (an entry read
    is free for it two cycles later). ``depth`` + 2 entries (``depth`` + 1 words of memory,
    ``_elaborate_lutram``); latency ``LUTRAM_LATENCY``.

    ``push`` (an int, with ``lutram``): a **credit-driven read side** for a reader that sits far
    away. ``o`` is then an ``always_ready`` stream, and the reader has room for ``push`` beats: the
    FIFO reads an entry only while it holds a credit (``push`` at reset, ``hw.credit``), one spent
    per beat sent, one returned per cycle of the ``credit`` input (the reader frees a slot; it
    should come from a flip-flop at the reader). So the read decision is made of flip-flops at the
    FIFO only (fill level, credit flag), and the output register loads the memory's read data in
    every cycle (no clock enable) with ``o.valid`` = the registered read. Nothing in the FIFO
    waits on a signal from the reader in the same cycle: with the handshake (``o.ready``), the
    window serializer's ``full_a`` -> the FIFO's output enable -> read -> ``consume`` pointer was
    the whole design's critical path at fold 8 on c33d442 (block 4, 1.00 + 8.58 ns). Latency
    ``LUTRAM_LATENCY`` too."""

    #: cycles from a write to the entry being readable at ``o`` (block RAM form)
    latency = 4
    #: the same for ``lutram=True``
    LUTRAM_LATENCY = 3

    def __init__(self, shape, depth: int, *, lutram: bool = False, push: int | None = None):
        Shape.cast(shape)
        check_positive_int("depth", depth, 2)
        if push is not None:
            check_positive_int("push", push)
            if not lutram:
                raise ValueError("push (a credit-driven read side) needs lutram=True")
        self.shape, self.depth, self.lutram, self.push = shape, depth, bool(lutram), push
        self.width = Shape.cast(shape).width
        #: words of the memory: ``depth`` (block RAM form: ``depth`` - 1, plus the read
        #: register); ``lutram``: ``depth`` + 1 (the "not full" flag is registered without the
        #: cycle's write, one entry of slack)
        self.words = depth + 1 if lutram else depth
        self.bits = self.width * self.words
        if lutram:
            self.latency = self.LUTRAM_LATENCY
            #: (``lutram``) a flip-flop, 1 in the cycle after an entry left the memory for the
            #: output register: a credit loop's first return register (``hw.ec``), anchored at the
            #: FIFO by the writer's fill level that it also feeds
            self.read_seen = Signal(name="read_seen")
        ports = {"i": In(stream.Signature(shape)),
                 "o": Out(stream.Signature(shape, always_ready=push is not None))}
        if push is not None:
            ports["credit"] = In(1)
        super().__init__(ports)

    def elaborate(self, platform):
        if self.lutram:
            return self._elaborate_lutram()
        m = Module()
        inner = self.depth - 1
        m.submodules.storage = storage = Memory(shape=self.width, depth=inner, init=[],
                                                attrs={NO_COLLISION: "1"})
        w_port, r_port = storage.write_port(), storage.read_port(domain="sync")
        do_write, do_read = Signal(name="do_write"), Signal(name="do_read")
        produce, consume = _pointer(m, inner, do_write, "produce"), _pointer(m, inner, do_read, "consume")
        w_level, r_level = _levels(m, inner, do_write, do_read, Signal(name="read_seen"))
        held = Signal(name="held")                         # r_port.data holds an entry
        pipe = Pipe(m, self.o, name="out")
        m.d.comb += [self.i.ready.eq(w_level != inner), do_write.eq(self.i.valid & self.i.ready),
                     do_read.eq((r_level != 0) & (~held | pipe.en)),
                     w_port.addr.eq(produce), w_port.data.eq(self.i.payload), w_port.en.eq(do_write),
                     r_port.addr.eq(consume), r_port.en.eq(do_read)]
        with m.If(do_read):
            m.d.sync += held.eq(1)
        with m.Elif(pipe.en):
            m.d.sync += held.eq(0)
        out = pipe.reg(r_port.data, name="out_data", memory_out=True)
        m.d.comb += [self.o.payload.eq(out), self.o.valid.eq(pipe.reg(held, 1, valid=True))]
        return m

    def _elaborate_lutram(self):
        """The memory in groups of ``Pipe.FANOUT`` bits, each its own LUT RAM with its own write
        enable ``i.valid & room_dup<g>`` and its own ``produce_dup<g>`` / ``consume_dup<g>``
        pointers (kept copies, equal to the originals): one ``do_write`` into the write enables
        of a 270-bit FIFO's ~75 LUT-RAM cells was placed at their centre, far from the fill
        level it also updates (the whole design's critical path at fold 8 on e778f4b: block 2's
        window FIFO, ``w_level`` -> ``do_write`` -> ``w_level``, 1.00 + 8.48 ns). ``room`` is
        the writer's "not full" (``w_level != depth``), registered from the level's next value.
        The writer sees a read two registers late, through ``read_seen_w``, a copy of
        ``read_seen`` of its own: ``read_seen`` also starts the credit return (``hw.ec``) and so
        sits at the read side, and with it feeding ``room_next`` directly that was the whole
        design's critical path at fold 8 on 8e80c88 (block 4's window FIFO, ``read_seen`` -> a
        3.74 ns net -> ``room_next`` -> the ``room_dup`` copies, 109.06 MHz). An entry read is
        free for the writer one cycle later than before: the loops' credits return later still.
        The writer also counts its own writes a register late (``write_seen_dup1``; the reader's
        copy is ``write_seen_dup0``, both kept), so ``room_next`` is a function of flip-flops
        only: with ``w_level + do_write`` (``do_write`` = ``i.valid & room``) it was the whole
        design's critical path at fold 8 on a617bc9 (block 0's window FIFO: ``room`` -> 2.69 ns
        -> ``do_write``, placed by the writer, -> 2.85 ns back -> the level's carry chain ->
        ``room``, 2.22 + 6.94 ns, 109.08 MHz). Not knowing the cycle's write, ``room`` says "not
        full" only with two entries free, so the memory has ``depth`` + 1 words: ``depth``
        entries fit whatever the timing of the writes."""
        m = Module()
        n, width = self.words, self.width
        spans = [(lo, min(lo + Pipe.FANOUT, width)) for lo in range(0, width, Pipe.FANOUT)]
        do_write, do_read = Signal(name="do_write"), Signal(name="do_read")
        read_seen_w = Signal(name="read_seen_w")
        m.d.sync += read_seen_w.eq(self.read_seen)
        write_seen_r = Signal(name="write_seen_dup0", attrs={"keep": 1})
        write_seen_w = Signal(name="write_seen_dup1", attrs={"keep": 1})
        m.d.sync += write_seen_w.eq(do_write)
        w_level, r_level = _levels(m, n, do_write, do_read, self.read_seen, read_seen_w,
                                   write_seen_r, write_seen_w)
        room_next = Signal(name="room_next")
        m.d.comb += room_next.eq(w_level + write_seen_w - read_seen_w <= n - 2)
        data = []
        for g, (lo, hi) in enumerate(spans or [(0, 0)]):
            # every group's copies named ``_dup<g>`` and kept when there are several: yosys'
            # opt_merge merges an unkept register into a kept copy, and a copy that is also an
            # output port (``i.ready``) loses its ``keep`` (the flip-flop drives the port's
            # net, which ``hw.synth``'s setattr does not select), so ``i.ready`` is one more copy
            sfx, attrs = (f"_dup{g}", {"keep": 1}) if len(spans) > 1 else ("", {})
            room = Signal(init=1, name="room" + sfx, attrs=attrs)
            m.d.sync += room.eq(room_next)
            write = do_write if g == 0 else Signal(name="do_write" + sfx)
            m.d.comb += write.eq(self.i.valid & room)
            if g == 0:
                ready = room
                if sfx:
                    ready = Signal(init=1, name="room")
                    m.d.sync += ready.eq(room_next)
                m.d.comb += self.i.ready.eq(ready)
            produce = _pointer(m, n, write, "produce" + sfx, attrs)
            consume = _pointer(m, n, do_read, "consume" + sfx, attrs)
            if hi == lo:
                continue
            m.submodules[f"storage{g}"] = storage = Memory(shape=hi - lo, depth=n, init=[])
            w_port, r_port = storage.write_port(), storage.read_port(domain="comb")
            m.d.comb += [w_port.addr.eq(produce), w_port.data.eq(self.i.payload.as_value()[lo:hi]),
                         w_port.en.eq(write), r_port.addr.eq(consume)]
            data.append(local(m, r_port.data, f"read_data{g}"))     # (one port name per group)
        read_data = Cat(*data)
        if self.push is not None:       # credit-driven read side; no enable on the output register
            from .credit import credit_counter      # (hw.credit imports this module)
            ok, = credit_counter(m, self.push, do_read, self.credit, 1, name="push_credit")
            out = Signal(width, name="out_data", reset_less=True)
            m.d.comb += [do_read.eq((r_level != 0) & ok), self.o.payload.eq(out)]
            m.d.sync += [out.eq(read_data), self.o.valid.eq(do_read)]
            return m
        pipe = Pipe(m, self.o, name="out")
        m.d.comb += do_read.eq((r_level != 0) & pipe.en)
        out = pipe.reg(read_data, unsigned(width), name="out_data")
        m.d.comb += [self.o.payload.eq(out), self.o.valid.eq(pipe.reg(r_level != 0, 1, valid=True))]
        return m


def stream_map(m: Module, src, dst, *assigns):
    """Connect ``src`` to ``dst`` combinationally (valid/ready pass through) with payload
    assignments ``assigns`` (statements on ``dst.payload``)."""
    m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready), *assigns]

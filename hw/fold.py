# amaranth: UnusedElaboratable=no
"""The fold knob: a layer's lanes shared over several cycles.

With ``fold`` F, a component that handles ``lanes`` parallel lanes per pixel handles
P = ceil(lanes / F) of them per cycle, in S = ceil(lanes / P) <= F *sub-beats* (sub-beat s carries
lanes s P .. s P + P - 1; the last one is padded when P does not divide ``lanes``). F = 1 is the
unfolded design (P = lanes, S = 1, no serializer, no extra field). The sub-beat number travels in
the side channel (``fold_side``), so every component between a ``Serializer`` and the component
that gathers the sub-beats again (``Deserializer``, or ``hw.ec.Accumulate`` summing them) only
carries it along.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .credit import credit_counter
from .streams import Pipe, check_positive_int, struct, with_side

__all__ = ["FOLDS", "Deserializer", "Serializer", "check_fold", "fold_plan", "fold_side"]

#: supported fold factors
FOLDS = (1, 2, 4, 8, 16)


def check_fold(fold) -> int:
    if not isinstance(fold, int) or isinstance(fold, bool) or fold not in FOLDS:
        raise ValueError(f"fold must be one of {FOLDS}, got {fold!r}")
    return fold


def fold_plan(lanes: int, fold: int) -> tuple[int, int]:
    """(lanes per sub-beat P, sub-beats per pixel S) for ``lanes`` lanes folded ``fold`` times."""
    check_positive_int("lanes", lanes)
    check_fold(fold)
    per = -(-lanes // fold)
    return per, -(-lanes // per)


def fold_side(side, sub_beats: int):
    """Side channel of a sub-beat stream: ``sub`` (the sub-beat number, 0..S-1) and ``inner`` (the
    pixel's own side, valid on every sub-beat). S = 1: ``side`` itself."""
    Shape.cast(side)
    if sub_beats == 1:
        return side
    return struct({"sub": range(sub_beats), "inner": side})


def _array_fields(fields: dict, lanes: int) -> dict:
    return {name: data.ArrayLayout(elem, lanes) for name, elem in fields.items()}


def _setup(obj, fields: dict, lanes: int, fold: int, side, what: str):
    """Parameters of a (de)serializer: sets per, sub_beats, fields, lanes, fold, side on
    ``obj``; returns the (whole beat, sub-beat) payload layouts."""
    obj.per, obj.sub_beats = fold_plan(lanes, fold)
    for elem in fields.values():
        Shape.cast(elem)
    Shape.cast(side)
    if obj.sub_beats == 1:
        raise ValueError(f"nothing to {what}: {lanes} lanes at fold {fold}")
    obj.fields, obj.lanes, obj.fold, obj.side = fields, lanes, fold, side
    return (with_side(_array_fields(fields, lanes), side),
            with_side(_array_fields(fields, obj.per), fold_side(side, obj.sub_beats)))


class Serializer(wiring.Component):
    """One beat of ``lanes`` lanes (``fields``: {name: element shape}, each an array of
    ``lanes``) -> S sub-beats of P lanes (``fold_plan``), back to back, sub-beat number in
    ``side.sub``. Padding lanes are zero. Latency 2.

    **Hold register, then serialize register.** The input beat is written into the hold
    register ``A`` when it is free (``i.ready = ~full_a``, a flip-flop: a registered-ready cut, as
    a ``SkidBuffer``); ``A`` moves into the serialize register ``B`` when ``B`` is empty or its
    last sub-beat is being taken; the output is sub-beat ``sub`` of ``B`` through an S-input
    multiplexer. So ``A``'s load enable is ``i.valid`` and flip-flops, and ``B``'s is one gate of
    flip-flops and the downstream ``o.ready`` (``full_a & (~full_b | o.ready & last)``): no enable
    passes through another component's logic. One pixel per S cycles at full rate (S >= 2: ``A``
    is refilled while ``B`` serializes). (A skid buffer in front of a serializer that held its
    input until the last sub-beat made the skid's output-register enable ``o.ready & last`` plus
    the skid's own logic: the upsampler's critical path at fold 16, 1.2 ns logic + 7.0 ns routing
    into the 418-bit window buffer. A two-buffer ping-pong, written and read alternately, had the
    same timing property but a 2 S-input multiplexer per output bit: +1,100 LUT4-eq. per IQ-Block,
    +15,800 in the whole design at fold 16.) The flip-flops of a skid buffer, no bypass
    multiplexer.

    Fan-out: the payload is cut into groups of at most ``Pipe.FANOUT`` bits; each group of ``A``
    and ``B`` loads under its own copies of ``full_a``, ``full_b`` and ``last`` (``*_dup<g>``), and
    each group of output bits selects with its own copy of ``sub`` (same value under the same
    condition as the originals; ``keep``, see ``hw.synth``).

    **Credits** (``credits``: an int, ``hw.credit``): ``B`` also waits for a credit before it takes
    the next beat (one spent per beat, one returned per cycle per high bit of the ``credit`` port,
    ``returns`` bits: one per return source; each
    group of ``B`` loads under its own copy of the "credit held" flip-flop): the entry of a layer's
    credit loop, whose downstream ``o.ready`` is tied to 1.

    **Push input** (``push=True``, for a far-away writer: ``hw.streams.StreamFIFO`` with ``push``):
    ``i`` is an ``always_ready`` stream and the writer sends a beat only with a credit for the one
    slot ``A`` (``PUSH_SLOTS``): ``freed`` (a flip-flop) pulses in the cycle after ``A``'s beat
    moved into ``B``, returning it. ``A`` then loads the input in every cycle in which it is
    empty (its enables are copies of ``~full_a``, flip-flops here) and ``full_a`` is set by
    ``i.valid``, so the writer's signals reach only flip-flop inputs here, and nothing at the
    writer waits on this side. A beat arriving while ``A`` is full (never, by the credit) sets the
    sticky ``overrun``. Full rate needs ``S >= PUSH_MIN_SUB_BEATS``: from ``B`` taking a beat to
    ``A`` holding the next one the credit goes round ``freed`` -> the writer's credit flag ->
    read -> its output register -> ``A``: 4 cycles."""

    #: beats the push input holds (the writer's credits)
    PUSH_SLOTS = 1
    #: sub-beats per beat at which the push input keeps up with a writer that holds beats
    PUSH_MIN_SUB_BEATS = 4

    def __init__(self, fields: dict, lanes: int, fold: int, side=0, *, credits: int | None = None,
                 returns: int = 1, push: bool = False):
        wide, narrow = _setup(self, fields, lanes, fold, side, "serialize")
        if credits is not None:
            check_positive_int("credits", credits)
        check_positive_int("returns", returns)
        if not isinstance(push, bool):
            raise ValueError(f"push must be a bool, got {push!r}")
        self.credits, self.returns, self.push = credits, returns, push
        self.latency = 2
        ports = {"i": In(stream.Signature(wide, always_ready=push)), "o": Out(stream.Signature(narrow))}
        if credits is not None:
            ports["credit"] = In(returns)
        if push:
            ports["freed"] = Out(1)
        #: (``push``) sticky: a beat arrived while the hold register was full
        self.overrun = Signal(name="push_overrun")
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        P, S = self.per, self.sub_beats
        i, o = self.i, self.o
        width = Shape.cast(i.p.shape()).width
        sub = Signal(range(S))
        groups = max(1, -(-width // Pipe.FANOUT))
        take = Signal(name="take")          # B takes a beat (spends a credit)
        # B loads at most every other cycle when S >= 2 (it holds a beat for S cycles)
        oks = credit_counter(m, self.credits, take, self.credit, groups, spaced=S >= 2) \
            if self.credits is not None else [1] * groups

        def state_copy(g):
            """The (full_a, full_b, last) flip-flops of group g (g = 0: the originals, which drive
            the handshake) and the (A load, B load) enables they make."""
            attrs = {"keep": 1} if g else {}
            sfx = f"_dup{g}" if g else ""
            full_a = Signal(name=f"full_a{sfx}", attrs=attrs)
            full_b = Signal(name=f"full_b{sfx}", attrs=attrs)
            last = Signal(name=f"last{sfx}", attrs=attrs)     # registered sub == S - 1
            load_a = Signal(name=f"load_a{sfx}")
            load_b = Signal(name=f"load_b{sfx}")
            done = o.ready & last                             # B's last sub-beat leaves (B full)
            m.d.comb += load_b.eq(full_a & (~full_b | done) & oks[g])
            if self.push:       # A takes whatever arrives while it is empty; i.valid marks a beat
                m.d.comb += load_a.eq(~full_a)
                with m.If(~full_a):
                    m.d.sync += full_a.eq(i.valid)
                with m.Elif(load_b):
                    m.d.sync += full_a.eq(0)
            else:
                m.d.comb += load_a.eq(i.valid & ~full_a)
                with m.If(load_a):
                    m.d.sync += full_a.eq(1)
                with m.Elif(load_b):
                    m.d.sync += full_a.eq(0)
            with m.If(load_b):
                m.d.sync += full_b.eq(1)
            with m.Elif(full_b & done):
                m.d.sync += full_b.eq(0)
            with m.If(full_b & o.ready):
                m.d.sync += last.eq(~last & (sub == S - 2))
            return full_a, full_b, last, load_a, load_b

        full_a, full_b, last, load_a0, load_b0 = state_copy(0)
        m.d.comb += take.eq(load_b0)
        take_out = Signal()
        m.d.comb += [o.valid.eq(full_b), take_out.eq(full_b & o.ready)]
        if self.push:
            m.d.sync += self.freed.eq(load_b0)
            with m.If(i.valid & full_a):
                m.d.sync += self.overrun.eq(1)
        else:
            m.d.comb += i.ready.eq(~full_a)
        with m.If(take_out):
            m.d.sync += sub.eq(Mux(last, 0, sub + 1))
        # A and B, loaded in groups of Pipe.FANOUT bits
        buf_a = Signal(width, name="buf_a", reset_less=True)
        buf_b = Signal(width, name="buf_b", reset_less=True)
        inp = i.p.as_value()
        for g, lo in enumerate(range(0, width, Pipe.FANOUT)):
            hi = min(lo + Pipe.FANOUT, width)
            load_a, load_b = state_copy(g)[3:] if g else (load_a0, load_b0)
            with m.If(load_a):
                m.d.sync += buf_a[lo:hi].eq(inp[lo:hi])
            with m.If(load_b):
                m.d.sync += buf_b[lo:hi].eq(buf_a[lo:hi])
        view = data.View(i.p.shape(), buf_b)
        m.d.comb += o.p.side.sub.eq(sub)
        if Shape.cast(self.side).width:
            m.d.comb += o.p.side.inner.eq(view.side)
        # the multiplexer of each group of output bits selects with its own copy of sub
        n = 0
        for name, elem in self.fields.items():
            w = Shape.cast(elem).width
            out = o.p[name].as_value()
            src_all = view[name].as_value()
            for lo in range(0, len(out), Pipe.FANOUT):
                hi = min(lo + Pipe.FANOUT, len(out))
                if n == 0:
                    sel = sub
                else:
                    sel = Signal(range(S), name=f"sub_dup{n}", attrs={"keep": 1})
                    with m.If(take_out):
                        m.d.sync += sel.eq(Mux(last, 0, sel + 1))
                n += 1
                with m.Switch(sel):
                    for s in range(S):
                        with m.Case(s):
                            src = src_all[s * P * w:min((s + 1) * P, self.lanes) * w]
                            # output bits lo..hi of this sub-beat (padding lanes: zero)
                            m.d.comb += out[lo:hi].eq(src[lo:hi] if lo < len(src) else 0)
        return m


class Deserializer(wiring.Component):
    """The inverse of ``Serializer``: S sub-beats of P lanes (``side.sub`` = 0..S-1, in order)
    -> one beat of ``lanes`` lanes with the ``inner`` side of the last sub-beat. A shift register
    takes each sub-beat; the output register is loaded at the last one (stall-all pipeline,
    ``Pipe``). Latency 1."""

    def __init__(self, fields: dict, lanes: int, fold: int, side=0):
        wide, narrow = _setup(self, fields, lanes, fold, side, "deserialize")
        self.latency = 1
        super().__init__({"i": In(stream.Signature(narrow)), "o": Out(stream.Signature(wide))})

    def elaborate(self, platform):
        m = Module()
        P, S = self.per, self.sub_beats
        i, o = self.i, self.o
        pipe = Pipe(m, o, i, name="deser")
        last = i.p.side.sub == S - 1
        m.d.comb += o.valid.eq(pipe.reg(i.valid & last, 1, valid=True))
        for name, elem in self.fields.items():
            w = Shape.cast(elem).width
            # the S - 1 earlier sub-beats, oldest in the low bits; advances only on a real sub-beat
            older = Signal((S - 1) * P * w, name=f"older_{name}", reset_less=True)
            whole = Signal(S * P * w, name=f"whole_{name}")
            m.d.comb += whole.eq(Cat(older, i.p[name].as_value()))
            pipe.update(older, whole[P * w:], i.valid)
            m.d.comb += o.p[name].eq(pipe.reg(whole[:self.lanes * w], name=f"out_{name}"))
        if Shape.cast(self.side).width:
            m.d.comb += o.p.side.eq(pipe.reg(i.p.side.inner, name="side_out"))
        return m

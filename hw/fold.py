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
    ``side.sub``. No buffer: sub-beat ``sub`` is a multiplexer over the input beat, which holds
    until it is taken with the last sub-beat (Amaranth's stream rule), so ``o.valid`` is
    ``i.valid`` and ``i.ready`` is ``o.ready`` at the last sub-beat. Padding lanes are zero.
    Latency 0: put a ``SkidBuffer`` before it (the next beat ready at once: one pixel per S
    cycles) and one after it (registers the sub-beat; cuts the ready path). A shift-register
    serializer loaded from the input made the load enable of its whole-window buffer (648 bits at
    fold 16) combinational in the next component's stall enable: IQ-Block 1's critical path."""

    def __init__(self, fields: dict, lanes: int, fold: int, side=0):
        wide, narrow = _setup(self, fields, lanes, fold, side, "serialize")
        self.latency = 0
        super().__init__({"i": In(stream.Signature(wide)), "o": Out(stream.Signature(narrow))})

    def elaborate(self, platform):
        m = Module()
        P, S = self.per, self.sub_beats
        i, o = self.i, self.o
        sub = Signal(range(S))
        last = Signal()                 # registered sub == S - 1
        m.d.comb += [o.valid.eq(i.valid), i.ready.eq(o.ready & last), o.p.side.sub.eq(sub)]
        if Shape.cast(self.side).width:
            m.d.comb += o.p.side.inner.eq(i.p.side)
        with m.If(o.valid & o.ready):
            m.d.sync += [sub.eq(Mux(last, 0, sub + 1)), last.eq(sub == S - 2)]
        # the multiplexer of each group of Pipe.FANOUT output bits is selected by its own copy of
        # ``sub`` (``sub_dup<g>``, same value under the same enable, kept apart by hw.synth): one
        # ``sub`` net into every output bit's multiplexer was the upsampler's critical path at
        # fold 16 (1.8 ns logic + 5.3 ns routing into the next skid buffer)
        n = 0
        for name, elem in self.fields.items():
            w = Shape.cast(elem).width
            out = o.p[name].as_value()
            for lo in range(0, len(out), Pipe.FANOUT):
                hi = min(lo + Pipe.FANOUT, len(out))
                if n == 0:
                    sel = sub
                else:
                    sel = Signal(range(S), name=f"sub_dup{n}", attrs={"keep": 1})
                    with m.If(o.valid & o.ready):
                        m.d.sync += sel.eq(Mux(last, 0, sub + 1))
                n += 1
                with m.Switch(sel):
                    for s in range(S):
                        with m.Case(s):
                            src = i.p[name].as_value()[s * P * w:min((s + 1) * P, self.lanes) * w]
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

# amaranth: UnusedElaboratable=no
"""Credit-based flow control for the free-running part of a layer.

A layer's datapath after its window (ROM -> DPFI -> adder tree -> block output) is a *free-running*
pipeline: its final ``o.ready`` is tied to 1, so every stall enable in it (``Pipe.en`` =
``~o.valid | o.ready``) is the constant 1 and synthesis removes it. Those enables were the
whole design's critical paths at fold 16 (single flip-flops whose enable nets span a layer
that is placed across the die: 12.7 ns of routing, 74 MHz). Back-pressure is handled at the two
ends instead: the layer's results go into an output FIFO of ``credits`` entries, and the entry
point (``CreditGate``, or a ``hw.fold.Serializer`` with ``credits``) starts a pixel only while it
holds a credit; each pixel read out of the FIFO returns one (``credit`` port, a pulse). So at
most ``credits`` pixels are ever in flight or stored, and the FIFO never overflows.

``credits_for(round_trip, sub_beats)`` sizes the loop for full rate: a credit comes back
``round_trip`` cycles after it was spent (start, pipeline, FIFO, return registers), and a pixel
starts every ``sub_beats`` cycles.
"""
from __future__ import annotations

from amaranth import Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .streams import Pipe, check_positive_int

__all__ = ["CreditGate", "credit_counter", "credits_for"]


def credits_for(round_trip: int, sub_beats: int = 1) -> int:
    """Credits for full rate: the pixels that start during one ``round_trip`` (cycles from spending
    a credit to having it back) at one pixel per ``sub_beats`` cycles, plus one; at least 3 (a
    ``StreamFIFO`` holds >= 3 entries)."""
    check_positive_int("round_trip", round_trip)
    check_positive_int("sub_beats", sub_beats)
    return max(3, -(-round_trip // sub_beats) + 1)


def credit_counter(m: Module, credits: int, take, give, copies: int, name: str = "credit", *,
                   spaced: bool = False) -> list:
    """A counter of the credits held (``credits`` at reset): ``take`` (1 bit) spends one in a
    cycle, each bit of ``give`` (one per return source, ``returns`` bits) returns one. Returns
    ``copies`` flip-flops, each equal to "at least one credit is held": registered from the
    counter's next value (no logic between the counter and the enables they drive), one per group
    of enables so that each copy is placed next to its loads (``keep``, see ``hw.synth``).
    ``take`` must be 0 while the copies are 0.

    ``spaced``: the caller never takes in two consecutive cycles (a serializer of S >= 2
    sub-beats). Then the copies are registered from the count and the returns only, not from
    ``take`` — after a take they are stale for one cycle, the cycle in which no take can follow —
    so the take decision reaches only the counter, not the copies spread over the payload (on
    817326b, block 2's window serializer ``last`` -> take -> counter -> ``credit_ok_dup2`` was the
    whole design's critical path at fold 16: 1.23 ns logic + 8.04 ns routing, 107.89 MHz)."""
    check_positive_int("credits", credits)
    check_positive_int("copies", copies)
    count = Signal(range(credits + 1), init=credits, name=f"{name}_count")
    given = Signal(range(credits + 1 + len(give)), name=f"{name}_given")
    nxt = Signal(range(credits + 1 + len(give)), name=f"{name}_next")
    m.d.comb += [given.eq(count + sum(give[b] for b in range(len(give)))), nxt.eq(given - take)]
    m.d.sync += count.eq(nxt)
    oks = []
    for g in range(copies):
        ok = Signal(init=1, name=f"{name}_ok" + (f"_dup{g}" if g else ""), attrs={"keep": 1} if g else {})
        m.d.sync += ok.eq((given if spaced else nxt) != 0)
        oks.append(ok)
    return oks


class CreditGate(wiring.Component):
    """A register stage that passes a beat only while it holds a credit (``credits`` at reset; one
    spent per beat it takes, one returned per cycle per high bit of ``credit``, ``returns`` bits:
    one per return source): the entry of a layer's
    credit loop at fold 1 (folded: ``hw.fold.Serializer`` with ``credits``). Latency 1, full rate
    while credits last. ``o.valid`` is a flip-flop; ``i.ready = ok & (~o.valid | o.ready)``.

    Fan-out: the payload register is cut into groups of ``Pipe.FANOUT`` bits, each loaded under its
    own copies of the full flag and of the credit flag (``*_dup<g>``, kept apart by ``hw.synth``)."""

    latency = 1

    def __init__(self, shape, credits: int, *, returns: int = 1):
        Shape.cast(shape)
        check_positive_int("credits", credits)
        check_positive_int("returns", returns)
        self.shape, self.credits, self.returns = shape, credits, returns
        self.width = Shape.cast(shape).width
        self.groups = max(1, -(-self.width // Pipe.FANOUT))
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "credit": In(returns)})

    def elaborate(self, platform):
        m = Module()
        take = Signal(name="take")
        oks = credit_counter(m, self.credits, take, self.credit, self.groups)
        inp, out = self.i.payload.as_value(), self.o.payload.as_value()
        for g in range(self.groups):
            full = Signal(name="full" + (f"_dup{g}" if g else ""), attrs={"keep": 1} if g else {})
            load = Signal(name="load" + (f"_dup{g}" if g else ""))
            free = ~full | self.o.ready
            m.d.comb += load.eq(self.i.valid & oks[g] & free)
            with m.If(load):
                m.d.sync += full.eq(1)
            with m.Elif(self.o.ready):
                m.d.sync += full.eq(0)
            lo = g * Pipe.FANOUT
            hi = min(lo + Pipe.FANOUT, self.width)
            if hi > lo:
                with m.If(load):
                    m.d.sync += out[lo:hi].eq(inp[lo:hi])
            if g == 0:
                m.d.comb += [take.eq(load), self.o.valid.eq(full), self.i.ready.eq(oks[0] & free)]
        return m

"""Amaranth-simulator helpers for the hw tests: stream sources and sinks with random stalls that
also check the stream rules (valid never depends on ready; valid and payload hold until the
transfer), and a runner with a cycle budget.

Payloads go in as anything ``Layout.const`` accepts (dicts, lists, ints) and come out as plain
Python values (dicts, lists, ints) via :func:`to_py`.
"""
from __future__ import annotations

import random
import sys

from amaranth.lib import data
from amaranth.sim import Simulator

# Amaranth's Python simulator compiles constants (wide ROM words, payload masks) into Python source
# as decimal literals; iq_l8c16's exceed CPython's default 4,300-digit int/str conversion limit.
if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(0)

__all__ = ["overflow_flags", "recv", "run", "send", "to_py"]


class ProtocolError(AssertionError):
    pass


def to_py(value):
    """data.Const (nested struct/array layouts) -> dicts / lists / ints."""
    if isinstance(value, data.Const):
        layout = value.shape()
        if isinstance(layout, data.ArrayLayout):
            return [to_py(value[i]) for i in range(layout.length)]
        return {name: to_py(value[name]) for name, _ in layout}
    return value


def _raw(value):
    return value.as_value().value if isinstance(value, data.Const) else int(value)


async def send(ctx, s, items, rng: random.Random | None = None, idle: float = 0.0):
    """Drive stream ``s`` with ``items``; before each item, stay idle (valid low) with
    probability ``idle`` per cycle."""
    rng = rng or random.Random(0)
    for item in items:
        while idle and rng.random() < idle:
            ctx.set(s.valid, 0)
            await ctx.tick()
        ctx.set(s.payload, item)
        ctx.set(s.valid, 1)
        while True:
            _, _, ready = await ctx.tick().sample(s.ready)
            if ready:
                break
    ctx.set(s.valid, 0)


async def recv(ctx, s, count: int, rng: random.Random | None = None, stall: float = 0.0,
               max_cycles: int = 100_000, on_beat=None) -> list:
    """Collect ``count`` payloads from stream ``s``, holding ready low with probability ``stall``
    per cycle. Checks that valid does not depend on ready and that a stalled beat is held.
    ``on_beat(cycle, payload)`` is called at each transfer."""
    rng = rng or random.Random(1)
    out, held, cycle = [], None, 0
    while len(out) < count:
        if cycle >= max_cycles:
            raise ProtocolError(f"timeout: {len(out)} of {count} beats after {cycle} cycles")
        ready = 0 if (stall and rng.random() < stall) else 1
        ctx.set(s.ready, 1 - ready)
        other = ctx.get(s.valid)
        ctx.set(s.ready, ready)
        if ctx.get(s.valid) != other:
            raise ProtocolError(f"cycle {cycle}: valid depends on ready")
        _, _, valid, payload = await ctx.tick().sample(s.valid, s.payload)
        if held is not None and (not valid or _raw(payload) != held):
            raise ProtocolError(f"cycle {cycle}: a stalled beat was dropped or changed")
        if valid and ready:
            p = to_py(payload)
            out.append(p)
            if on_beat is not None:
                on_beat(cycle, p)
            held = None
        else:
            held = _raw(payload) if valid else None
        cycle += 1
    ctx.set(s.ready, 0)
    return out


def overflow_flags(dut) -> dict:
    """{name: signal} of the sticky output-FIFO overflow flag of every EC in ``dut`` (an EC, an
    IQ-Block or upsampler, or the whole ``IQLUT``; or the ``overrun`` flag of a push link, as
    ``hw.fold.Serializer``'s): each must stay low (``hw.credit``)."""
    if hasattr(dut, "overrun"):
        return {"push slot": dut.overrun}
    if hasattr(dut, "overflow") and hasattr(dut, "credits"):
        return {"ec": dut.overflow}
    if hasattr(dut, "ec"):
        return {"ec": dut.ec.overflow}
    layers = [*getattr(dut, "blocks", []), *([dut.upsampler] if hasattr(dut, "upsampler") else [])]
    return {f"layer {n}": b.ec.overflow for n, b in enumerate(layers)}


def run(dut, *testbenches, vcd: str | None = None):
    """Simulate ``dut`` with a 1 MHz sync clock until every testbench has returned; then assert
    that no EC output FIFO in it overflowed (``overflow_flags``)."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for tb in testbenches:
        sim.add_testbench(tb)
    flags = overflow_flags(dut)
    if flags:
        async def watch(ctx):
            async for _, _, *values in ctx.tick().sample(*flags.values()):
                seen = [name for name, v in zip(flags, values) if v]
                if seen:
                    raise ProtocolError(f"overflow in {seen}: a credit loop let more beats in "
                                        f"than its buffer holds")
        sim.add_testbench(watch, background=True)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()


# ------------------------------------------------------------------ frames <-> beats

def concat(lists) -> list:
    """Concatenate an iterable of lists (e.g. the beats of several frames)."""
    return [item for items in lists for item in items]


def pixel_beats(img) -> list:
    """(C, H, W) integer array -> internal pixel-stream payloads (data per channel, eol, eof)."""
    _, h, w = img.shape
    return [{"data": [int(v) for v in img[:, y, x]], "eol": int(x == w - 1),
             "eof": int(x == w - 1 and y == h - 1)} for y in range(h) for x in range(w)]


def video_beats(lr) -> list:
    """uint8 (H, W) LR frame -> AXI4-Stream video payloads (data, last = end of line, user = SOF)."""
    h, w = lr.shape
    return [{"data": int(lr[y, x]), "last": int(x == w - 1), "user": int(x == 0 and y == 0)}
            for y in range(h) for x in range(w)]


def block_beats(hr, scale: int = 4) -> list:
    """uint8 (SH, SW) HR frame (S = ``scale``) -> block-order output payloads: lane r * S + c =
    HR (S y + r, S x + c)."""
    S = scale
    h, w = hr.shape[0] // S, hr.shape[1] // S
    return [{"data": [int(hr[S * y + r, S * x + c]) for r in range(S) for c in range(S)],
             "last": int(x == w - 1), "user": int(x == 0 and y == 0)}
            for y in range(h) for x in range(w)]


def raster_beats(hr, scale: int = 4) -> list:
    """uint8 (SH, SW) HR frame (S = ``scale``) -> raster-order output payloads, S pixels per beat."""
    S = scale
    hs, ws = hr.shape
    return [{"data": [int(v) for v in hr[y, S * x:S * x + S]], "last": int(x == ws // S - 1),
             "user": int(x == 0 and y == 0)} for y in range(hs) for x in range(ws // S)]


def stream_test(dut, inputs: dict, outputs: dict, *, seed: int = 0, idle: float = 0.3,
                stall: float = 0.3, max_cycles: int = 200_000) -> dict:
    """Drive ``inputs`` {stream name: payloads} into ``dut`` and collect ``outputs``
    {stream name: beat count}, with random idle cycles on the inputs and random stalls on the
    outputs. Returns {name: payloads}."""
    got = {}

    def source(s, items, k):
        async def tb(ctx):
            await send(ctx, s, items, random.Random(seed * 1000 + k), idle=idle)
        return tb

    def sink(s, count, name, k):
        async def tb(ctx):
            got[name] = await recv(ctx, s, count, random.Random(seed * 1000 + 500 + k), stall=stall,
                                   max_cycles=max_cycles)
        return tb

    run(dut, *[source(getattr(dut, name), items, k) for k, (name, items) in enumerate(inputs.items())],
        *[sink(getattr(dut, name), count, name, k) for k, (name, count) in enumerate(outputs.items())])
    return got

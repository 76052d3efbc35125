# amaranth: UnusedElaboratable=no
"""The credit loop (``hw.credit``): the gates (``CreditGate``, ``Serializer`` with credits) never
let more beats in than they hold credits for, stop when they run out and go on when credits come
back, pass every beat intact under random stalls; an EC whose output FIFO is smaller than its
credits is caught by the overflow check of ``hw.testing.run``; the credits of every layer of
iq_l8c8 at every fold suffice for full rate (the throughput tests of the whole top measure it)."""
import random

import pytest
from amaranth import unsigned

from golden import iqlut
from golden.modelfile import random_model
from hw import ec as ec_module
from hw.credit import CreditGate, credits_for
from hw.ec import EC
from hw.fold import FOLDS, Serializer, fold_plan
from hw.streams import StreamFIFO, pixel_layout
from hw.testing import ProtocolError, concat, pixel_beats, run, send, stream_test, to_py
from tests.test_golden import small_config
from tests.test_hw_layers import MAX_WIDTH, frames, per_pixel

LAYOUT = pixel_layout(unsigned(13), 6)        # 80 bits: two groups of Pipe.FANOUT


def _items(n, seed):
    rng = random.Random(seed)
    return [{"data": [rng.randrange(1 << 13) for _ in range(6)], "eol": int(rng.random() < 0.2),
             "eof": 0} for _ in range(n)]


def _gate(kind, credits, returns=1):
    """(dut, sub-beats per beat, item maker)"""
    if kind == "gate":
        return CreditGate(LAYOUT, credits, returns=returns), 1, lambda n, s: _items(n, s)
    lanes, fold = 10, 4
    _, S = fold_plan(lanes, fold)

    def items(n, seed):
        rng = random.Random(seed)
        return [{"a": [rng.randrange(128) for _ in range(lanes)], "side": k % 4} for k in range(n)]
    return Serializer({"a": unsigned(7)}, lanes, fold, unsigned(2), credits=credits,
                      returns=returns), S, items


@pytest.mark.parametrize("returns", [1, 2])
@pytest.mark.parametrize("kind", ["gate", "serializer"])
@pytest.mark.parametrize("credits,delay,stall", [(1, 0, 0.0), (3, 6, 0.3), (4, 20, 0.0), (5, 3, 0.6)])
def test_gate_holds_at_most_its_credits(kind, credits, delay, stall, returns):
    """A testbench returns each beat's credit ``delay`` cycles (plus a random 0..3) after the
    beat's last sub-beat left, on a random one of the ``returns`` bits of the credit port (two
    in one cycle on different bits: the EC's column gate gets FIFO reads and skipped columns),
    and counts the beats started and not yet returned: never more than ``credits``, reaching
    ``credits`` when the returns are slow; every beat arrives in order."""
    dut, S, make = _gate(kind, credits, returns)
    items = make(40, credits * 10 + delay)
    rng = random.Random(delay)
    state = {"out": 0, "max": 0, "got": []}
    pending = []                       # (cycle, port bit) at which a credit comes back

    async def tb_in(ctx):
        await send(ctx, dut.i, items, random.Random(1), idle=0.2)

    async def tb_out(ctx):
        cycle, beats = 0, 0
        while len(state["got"]) < len(items) * S:
            assert cycle < 20_000, "timeout: the gate never went on"
            ready = int(not (stall and rng.random() < stall))
            ctx.set(dut.o.ready, ready)
            now = [r for r in pending if r[0] == cycle]
            for r in now:
                pending.remove(r)
            ctx.set(dut.credit, sum(1 << b for _, b in now))
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            state["out"] -= len(now)
            if valid and ready:
                p = to_py(payload)
                state["got"].append(p)
                first = S == 1 or p["side"]["sub"] == 0
                last = S == 1 or p["side"]["sub"] == S - 1
                if first:
                    state["out"] += 1
                    state["max"] = max(state["max"], state["out"])
                    assert state["out"] <= credits, f"cycle {cycle}: {state['out']} beats on {credits} credits"
                if last:
                    beats += 1
                    t, b = cycle + 1 + delay + rng.randrange(4), rng.randrange(returns)
                    while (t, b) in pending:
                        t += 1
                    pending.append((t, b))
            cycle += 1
        ctx.set(dut.o.ready, 0)
    run(dut, tb_in, tb_out)
    if S == 1:
        assert state["got"] == items
    else:
        assert [g["side"]["inner"] for g in state["got"][::S]] == [it["side"] for it in items]
    if delay >= 6:
        assert state["max"] == credits


@pytest.mark.parametrize("kind", ["gate", "serializer"])
def test_gate_stops_without_credits(kind):
    """No credit ever returned: exactly ``credits`` beats come out, then none, with input always
    offered and the output always ready."""
    dut, S, make = _gate(kind, 3)
    items = make(10, 0)
    got = []

    async def tb(ctx):
        ctx.set(dut.credit, 0)
        ctx.set(dut.o.ready, 1)
        k = 0
        for _ in range(60 * S):
            ctx.set(dut.i.payload, items[k])
            ctx.set(dut.i.valid, 1)
            _, _, valid, ready = await ctx.tick().sample(dut.o.valid, dut.i.ready)
            k += ready
            got.append(valid)
    run(dut, tb)
    assert sum(got) == 3 * S and not any(got[-S * 20:])


def test_gate_full_rate():
    """Credits from ``credits_for``: with a round trip of 9 cycles, one beat per cycle."""
    credits = credits_for(9, 1)
    dut = CreditGate(LAYOUT, credits)
    items = _items(60, 3)
    cycles, returns = [], []

    async def tb_in(ctx):
        await send(ctx, dut.i, items)

    async def tb_out(ctx):
        cycle = 0
        while len(cycles) < len(items):
            ctx.set(dut.o.ready, 1)
            ctx.set(dut.credit, int(cycle in returns))
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            if valid:
                cycles.append(cycle)
                returns.append(cycle + 8)       # back 9 cycles after the credit was spent
            cycle += 1
    run(dut, tb_in, tb_out)
    assert cycles[-1] - cycles[0] == len(items) - 1


def test_credit_parameters():
    with pytest.raises(ValueError, match="credits"):
        CreditGate(LAYOUT, 0)
    with pytest.raises(ValueError, match="credits"):
        Serializer({"a": unsigned(3)}, 4, 2, credits=0)
    with pytest.raises(ValueError, match="round_trip"):
        credits_for(0, 1)
    assert credits_for(1, 16) == 3 and credits_for(20, 1) == 21 and credits_for(36, 16) == 4


@pytest.mark.parametrize("fold", [1, 4])
def test_ec_fifo_overflow_is_caught(monkeypatch, fold):
    """The test harness's overflow check can fail: an EC whose output FIFO holds 3 entries but
    whose gate holds more credits overflows under output stalls, and ``run`` says so."""
    class SmallFIFO(StreamFIFO):
        def __init__(self, shape, depth, **kw):
            super().__init__(shape, 2, **kw)
    monkeypatch.setattr(ec_module, "StreamFIFO", SmallFIFO)
    monkeypatch.setattr(ec_module, "credits_for", lambda round_trip, sub_beats: 12)
    cfg = small_config()
    m = random_model(cfg, seed=1)
    fr = frames(m, 1, seed=1)
    dut = EC(m, 1, MAX_WIDTH, residual=cfg.layers[1].gated, fold=fold)
    assert dut.credits == 12 and dut.fifo.depth == 2
    items = concat(pixel_beats(f) for f in fr)
    with pytest.raises(ProtocolError, match="overflow"):
        stream_test(dut, {"i": items}, {"o": len(items)}, idle=0.0, stall=0.8)


@pytest.mark.parametrize("fold", [1, 4])
def test_ec_fifos_hold_every_credit_under_long_stalls(fold):
    """With the sink stalled most of the time every credit ends up spent and both loop FIFOs fill
    to the brim: they hold all of them (a FIFO one entry short overflows here; the harness's
    overflow watch is the check, see the test above), and every beat still equals golden."""
    cfg = small_config()
    m = random_model(cfg, seed=2)
    fr = frames(m, 1, seed=2)
    dut = EC(m, 1, MAX_WIDTH, residual=cfg.layers[1].gated, fold=fold)
    items = concat(pixel_beats(f) for f in fr)
    got = stream_test(dut, {"i": items}, {"o": len(items)}, idle=0.0, stall=0.95, seed=fold)["o"]
    assert [g["acc"] for g in got] == concat(per_pixel(iqlut.ec(f, m, 1)) for f in fr)


def test_iq_l8c8_credit_loops():
    """Every layer of iq_l8c8 at every fold, both loops: the FIFO's memory holds exactly the credits, and
    the credits cover at least the beats in flight in the free-running pipeline at one beat per
    sub-beat count (full rate itself: the throughput tests of the whole top)."""
    m = random_model("iq_l8c8", 0)
    for fold in FOLDS:
        for n in range(len(m.config.layers)):
            ec = EC(m, n, 16, fold=fold)
            loops = [(ec.col_credits, ec.window_fifo, ec.nuqd.sub_beats,
                      [ec.col_in, ec.nuqd, ec.col_deserializer, ec.shift]),
                     (ec.credits, ec.fifo, ec.rom.sub_beats,
                      [ec.rom_in, ec.rom, ec.dpfi, ec.accumulate])]
            for credits, fifo, S, chain in loops:
                assert fifo.depth == credits        # the memory; credits return as beats leave it
                pipeline = sum(p.latency for p in chain if p is not None) + fifo.latency
                assert credits * S >= pipeline + S

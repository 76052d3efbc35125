# amaranth: UnusedElaboratable=no
"""Stream plumbing (hw.streams) and the window generator (hw.window) in the Amaranth simulator,
with random stalls on both sides; the harness itself checks the stream rules."""
import random

import numpy as np
import pytest
from amaranth import signed, unsigned

from hw.streams import Fork, RegisterStage, SkidBuffer, StreamFIFO, pixel_layout
from hw.testing import ProtocolError, concat, pixel_beats, recv, run, send, stream_test
from hw.window import ColumnGen, WindowGen

LAYOUT = pixel_layout(signed(8), 2)


def random_items(n, seed=0):
    rng = random.Random(seed)
    return [{"data": [rng.randint(-128, 127), rng.randint(-128, 127)], "eol": rng.random() < 0.2,
             "eof": 0} for _ in range(n)]


@pytest.mark.parametrize("make", [lambda: SkidBuffer(LAYOUT), lambda: StreamFIFO(LAYOUT, 2),
                                  lambda: StreamFIFO(LAYOUT, 7), lambda: RegisterStage(LAYOUT),
                                  lambda: StreamFIFO(LAYOUT, 2, lutram=True),
                                  lambda: StreamFIFO(LAYOUT, 9, lutram=True)],
                         ids=["skid", "fifo2", "fifo7", "stage", "lutfifo2", "lutfifo9"])
@pytest.mark.parametrize("idle,stall", [(0.0, 0.0), (0.4, 0.4), (0.0, 0.7), (0.7, 0.0)])
def test_buffers_pass_everything_in_order(make, idle, stall):
    items = [{**it, "eol": int(it["eol"])} for it in random_items(150)]
    got = stream_test(make(), {"i": items}, {"o": len(items)}, idle=idle, stall=stall)
    assert got["o"] == items


WIDE = pixel_layout(unsigned(13), 10)          # 132 bits: three groups of Pipe.FANOUT


@pytest.mark.parametrize("idle,stall", [(0.0, 0.0), (0.3, 0.5), (0.0, 0.8), (0.8, 0.1)])
def test_wide_skid_buffer_groups_pass_everything(idle, stall):
    """A payload wider than ``Pipe.FANOUT`` is held in groups, each behind its own copies of the
    state flip-flops: every bit of every beat still arrives, in order, under stalls (a group whose
    copy disagreed with the first would corrupt its slice of the payload)."""
    rng = random.Random(5)
    items = [{"data": [rng.randrange(1 << 13) for _ in range(10)], "eol": int(rng.random() < 0.2),
              "eof": 0} for _ in range(200)]
    dut = SkidBuffer(WIDE)
    assert dut.groups == 3
    got = stream_test(dut, {"i": items}, {"o": len(items)}, idle=idle, stall=stall)
    assert got["o"] == items
    # the LUT-RAM FIFO: three memories, each with its own write enable and pointer copies
    got = stream_test(StreamFIFO(WIDE, 5, lutram=True), {"i": items}, {"o": len(items)}, idle=idle, stall=stall)
    assert got["o"] == items


def test_skid_buffer_full_rate():
    """No stalls: one beat per cycle after the first (registered ready does not cost throughput)."""
    dut, items, cycles = SkidBuffer(LAYOUT), random_items(50), []

    async def tb_in(ctx):
        await send(ctx, dut.i, items)

    async def tb_out(ctx):
        await recv(ctx, dut.o, len(items), on_beat=lambda c, p: cycles.append(c))
    run(dut, tb_in, tb_out)
    assert cycles[-1] - cycles[0] == len(items) - 1


def test_fork_broadcasts_with_independent_stalls():
    dut, items, got = Fork(LAYOUT, 3), random_items(120, 1), {}

    async def tb_in(ctx):
        await send(ctx, dut.i, items, random.Random(2), idle=0.3)

    def sink(k, stall):
        async def tb(ctx):
            got[k] = await recv(ctx, dut.o[k], len(items), random.Random(10 + k), stall=stall)
        return tb
    run(dut, tb_in, sink(0, 0.6), sink(1, 0.1), sink(2, 0.3))
    expect = [{**it, "eol": int(it["eol"])} for it in items]
    assert got[0] == got[1] == got[2] == expect


def test_harness_catches_a_protocol_violation():
    """A sink that sees valid drop before the transfer must fail (the checker is not vacuous)."""
    from amaranth import Module
    from amaranth.lib import stream, wiring
    from amaranth.lib.wiring import Out

    class Flaky(wiring.Component):
        o: Out(stream.Signature(8))

        def elaborate(self, platform):
            m = Module()
            m.d.sync += self.o.valid.eq(~self.o.valid)   # valid toggles regardless of ready
            return m
    dut = Flaky()

    async def tb(ctx):
        await recv(ctx, dut.o, 10, random.Random(0), stall=0.9)
    with pytest.raises(ProtocolError):
        run(dut, tb)


def test_bad_parameters():
    with pytest.raises(ValueError):
        StreamFIFO(LAYOUT, 1)
    with pytest.raises(ValueError):
        Fork(LAYOUT, 1)
    with pytest.raises(ValueError):
        WindowGen(signed(8), 1, 2, 1, 16)       # origin must be in -(k-1)..0
    with pytest.raises(ValueError):
        WindowGen(signed(8), 1, 2, -2, 16)
    with pytest.raises(ValueError):
        WindowGen(signed(8), 0, 2, 0, 16)
    with pytest.raises(ValueError):
        WindowGen(signed(8), 1, 2, 0, 0)


# ------------------------------------------------------------------ window generator

def golden_windows(img, k, origin):
    """Tap (jy, jx) of output q = source clamp(q - origin - j), as golden.iqlut.ec gathers."""
    _, h, w = img.shape
    out = []
    for qy in range(h):
        for qx in range(w):
            taps = [[int(v) for v in img[:, min(max(qy - origin - jy, 0), h - 1),
                                         min(max(qx - origin - jx, 0), w - 1)]]
                    for jy in range(k) for jx in range(k)]
            out.append({"taps": taps, "eol": int(qx == w - 1), "eof": int(qx == w - 1 and qy == h - 1)})
    return out


SIZES = [(8, 8), (7, 13), (1, 1), (1, 9), (6, 1), (2, 2), (3, 4)]


@pytest.mark.parametrize("k,origin", [(2, 0), (2, -1), (1, 0), (3, -1), (3, 0), (3, -2), (4, 0), (4, -2), (4, -3),
                                     (5, -2), (5, -4)])
def test_window_generator_replicates_edges(k, origin):
    """Back-to-back frames of different sizes (1x1, one row, one column included), max width
    reached, random stalls both sides."""
    rng = np.random.default_rng(k * 10 - origin)
    frames = [rng.integers(-128, 128, (2, h, w)) for h, w in SIZES]
    dut = WindowGen(signed(8), 2, k, origin, 13)
    items = concat(pixel_beats(f) for f in frames)
    expect = concat(golden_windows(f, k, origin) for f in frames)
    got = stream_test(dut, {"i": items}, {"o": len(expect)}, seed=k)
    assert got["o"] == expect


@pytest.mark.parametrize("k,origin", [(2, 0), (2, -1), (3, -1)])
def test_column_generator_cycle_count(k, origin):
    """Without stalls a frame of H x W takes exactly (H + d)(W + d) beats, d = -origin."""
    h, w, d = 5, 7, -origin
    frame = np.arange(h * w).reshape(1, h, w) % 256
    dut, cycles = ColumnGen(unsigned(8), 1, k, origin, w), []

    async def tb_in(ctx):
        await send(ctx, dut.i, pixel_beats(frame) * 2)

    async def tb_out(ctx):
        await recv(ctx, dut.o, 2 * (h + d) * (w + d), on_beat=lambda c, p: cycles.append(c))
    run(dut, tb_in, tb_out)
    assert cycles[-1] - cycles[0] == 2 * (h + d) * (w + d) - 1


def test_window_line_buffer_bits():
    g = WindowGen(signed(10), 8, 3, -1, 1920)
    assert g.line_buffer_bits == 1920 * 2 * 8 * 10
    assert WindowGen(signed(8), 8, 1, 0, 1920).line_buffer_bits == 0


@pytest.mark.parametrize("slots,depth", [(1, 3), (3, 9)])
def test_push_fifo_sends_only_on_credit(slots, depth):
    """``StreamFIFO(push=slots)``: the read side sends a beat only while it holds a credit; a
    receiver of ``slots`` slots that frees them after random delays (returning one credit per
    freed slot) gets every beat in order and never more than ``slots`` at once; ``o.valid`` is a
    flip-flop (unchanged within a cycle whatever the inputs)."""
    from amaranth.sim import Simulator
    from hw.testing import to_py
    items = [{**it, "eol": int(it["eol"])} for it in random_items(120, seed=slots)]
    dut = StreamFIFO(LAYOUT, depth, lutram=True, push=slots)
    assert dut.o.ready.value == 1           # an always-ready stream: no ready net at all
    got, rng = [], random.Random(depth)

    async def writer(ctx):
        await send(ctx, dut.i, items, rng=random.Random(1), idle=0.3)

    async def reader(ctx):
        held, returns = [], []          # cycles at which held slots are freed
        cycle = 0
        while len(got) < len(items):
            assert cycle < 20_000, "timeout"
            ctx.set(dut.credit, int(cycle in returns))
            if cycle in returns:
                returns.remove(cycle)
            before = ctx.get(dut.o.valid)
            ctx.set(dut.i.valid, 1 - ctx.get(dut.i.valid))      # poke an input: valid must not move
            assert ctx.get(dut.o.valid) == before
            ctx.set(dut.i.valid, 1 - ctx.get(dut.i.valid))
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                got.append(to_py(payload))
                held.append(cycle)
                assert len(held) <= slots, "more beats pushed than the receiver has slots"
            if held and rng.random() < 0.3:         # free the oldest slot; its credit comes later
                held.pop(0)
                returns.append(cycle + 1 + rng.randrange(4))
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.run()
    assert got == items


def test_push_fifo_parameters():
    with pytest.raises(ValueError, match="lutram"):
        StreamFIFO(LAYOUT, 4, push=1)
    with pytest.raises(ValueError, match="push"):
        StreamFIFO(LAYOUT, 4, lutram=True, push=0)


@pytest.mark.parametrize("depth", [2, 5, 9])
@pytest.mark.parametrize("gap", [0, 1, 3])
def test_lutram_fifo_holds_depth_entries(depth, gap):
    """``StreamFIFO(lutram=True)`` with its reader stalled takes at least ``depth`` beats
    whatever the spacing of the writes (its "not full" flag is registered without the cycle's
    write, so it keeps one word of slack: ``words`` = ``depth`` + 1), never more than its memory
    plus the output register, and then gives them all back in order."""
    from amaranth.sim import Simulator
    from hw.testing import to_py
    dut = StreamFIFO(LAYOUT, depth, lutram=True)
    assert dut.words == depth + 1 and dut.bits == dut.width * (depth + 1)
    items = [{**it, "eol": int(it["eol"])} for it in random_items(depth + 4, seed=depth)]
    taken, got = [], []

    async def tb(ctx):
        ctx.set(dut.o.ready, 0)
        for it in items:                        # offer beats with ``gap`` idle cycles between
            for _ in range(gap):
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            ctx.set(dut.i.payload, it)
            ctx.set(dut.i.valid, 1)
            for _ in range(20):
                _, _, ready = await ctx.tick().sample(dut.i.ready)
                if ready:
                    taken.append(it)
                    break
            else:
                break                           # full: no room for 20 cycles
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.o.ready, 1)
        while len(got) < len(taken):
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                got.append(to_py(payload))
        for _ in range(5):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert depth <= len(taken) <= depth + 2
    assert got == taken

# amaranth: UnusedElaboratable=no
"""hw.framing.InputFraming against a reference model of its rules (docs: the input port), on edge
cases and random streams — frames of 1 x 1 up to max_width, invalid sizes, beats before a start of
frame, wrong tlast, short frames cut by the next tuser — with random idle cycles and stalls."""
import random

import pytest

from hw.framing import InputFraming
from hw.testing import recv, run

MAX_WIDTH = 7


def reference(frames, max_width):
    """``frames``: [(width, height, beats)], each ``beats`` a list of (data, last, user) sent with
    that width/height on the ports. Returns (output pixels [(data, eol, eof)], status dict)."""
    out, status = [], {"bad_size": 0, "bad_last": 0, "bad_user": 0}
    running, x, y, w, h = False, 0, 0, 0, 0
    for width, height, beats in frames:
        for data, last, user in beats:
            if running and user:                    # the next frame began: pad this one
                status["bad_user"] = 1
                while running:
                    eol, eof = x == w - 1, x == w - 1 and y == h - 1
                    out.append((0, int(eol), int(eof)))
                    x, y, running = (0, y + 1, not eof) if eol else (x + 1, y, True)
            if not running:
                if not user:
                    continue                        # no start of frame yet: dropped
                if not (1 <= width <= max_width and height >= 1):
                    status["bad_size"] = 1          # frame dropped (its beats have no tuser)
                    continue
                running, x, y, w, h = True, 0, 0, width, height
            eol, eof = x == w - 1, x == w - 1 and y == h - 1
            if last != eol:
                status["bad_last"] = 1
            out.append((data, int(eol), int(eof)))
            x, y, running = (0, y + 1, not eof) if eol else (x + 1, y, True)
    return out, status


def frame_beats(rng, w, h, *, drop=(), flip_last=()):
    """Beats of a w x h frame; beat indices in ``drop`` are left out, in ``flip_last`` get the
    wrong tlast."""
    return [(rng.randrange(256), int((i % w == w - 1) != (i in flip_last)), int(i == 0))
            for i in range(w * h) if i not in drop]


def random_frames(rng, n):
    frames = []
    for _ in range(n):
        kind = rng.random()
        w, h = rng.randint(1, MAX_WIDTH), rng.randint(1, 4)
        if kind < 0.1:                              # junk before a start of frame
            frames.append((w, h, [(rng.randrange(256), rng.randrange(2), 0)
                                   for _ in range(rng.randint(1, 3))]))
        elif kind < 0.2:                            # invalid size: dropped
            bw, bh = rng.choice([(0, h), (MAX_WIDTH + 1, h), (w, 0), (MAX_WIDTH + 5, 0)])
            frames.append((bw, bh, frame_beats(rng, max(bw, 1), max(bh, 1))))
        elif kind < 0.35 and w * h > 2:             # short: cut by the next tuser
            cut = rng.sample(range(1, w * h), rng.randint(1, min(3, w * h - 1)))
            frames.append((w, h, frame_beats(rng, w, h, drop=cut)))
        elif kind < 0.45:                           # a wrong tlast somewhere
            frames.append((w, h, frame_beats(rng, w, h, flip_last={rng.randrange(w * h)})))
        else:
            frames.append((w, h, frame_beats(rng, w, h)))
    frames.append((1, 1, [(5, 1, 1)]))              # a last good frame completes any short one
    return frames


def simulate(frames, seed, idle, stall):
    dut = InputFraming(MAX_WIDTH)
    expect, status = reference(frames, MAX_WIDTH)
    got = {}

    async def tb_in(ctx):
        rng, waited = random.Random(seed), 0
        for width, height, beats in frames:
            ctx.set(dut.width, width)
            ctx.set(dut.height, height)
            for data, last, user in beats:
                while idle and rng.random() < idle:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                ctx.set(dut.i.payload, {"data": data, "last": last, "user": user})
                ctx.set(dut.i.valid, 1)
                while True:
                    _, _, ready = await ctx.tick().sample(dut.i.ready)
                    if ready:
                        break
                    waited += 1
                    assert waited < 1000, "the input was never ready again"
        ctx.set(dut.i.valid, 0)

    async def tb_out(ctx):
        beats = await recv(ctx, dut.o, len(expect), random.Random(seed + 1), stall=stall,
                           max_cycles=20 * len(expect) + 100)
        got["o"] = [(b["data"][0], b["eol"], b["eof"]) for b in beats]
        for _ in range(3):
            await ctx.tick()
        got["status"] = {k: ctx.get(getattr(dut.status, k)) for k in status}
    run(dut, tb_in, tb_out)
    return got, expect, status


def test_edge_cases():
    rng = random.Random(0)
    frames = [
        (3, 2, [(9, 0, 0)]),                        # before any start of frame: dropped
        (1, 1, frame_beats(rng, 1, 1)),             # 1 x 1
        (MAX_WIDTH, 1, frame_beats(rng, MAX_WIDTH, 1)),
        (1, 5, frame_beats(rng, 1, 5)),             # one column
        (MAX_WIDTH + 1, 2, frame_beats(rng, MAX_WIDTH + 1, 2)),     # too wide: dropped
        (3, 0, frame_beats(rng, 3, 1)),             # height 0: dropped
        (4, 3, frame_beats(rng, 4, 3, drop={5, 6})),                # short, padded
        (2, 2, frame_beats(rng, 2, 2, flip_last={0})),              # tlast early
        (3, 1, frame_beats(rng, 3, 1, flip_last={2})),              # tlast missing
        (MAX_WIDTH, 3, frame_beats(rng, MAX_WIDTH, 3)),
    ]
    got, expect, status = simulate(frames, 0, idle=0, stall=0)
    assert got["o"] == expect
    assert got["status"] == status == {"bad_size": 1, "bad_last": 1, "bad_user": 1}


@pytest.mark.parametrize("seed", range(4))
def test_random_streams_with_stalls(seed):
    frames = random_frames(random.Random(100 + seed), 14)
    got, expect, status = simulate(frames, seed, idle=0.3, stall=0.3)
    assert got["o"] == expect
    assert got["status"] == status


@pytest.mark.parametrize("flip", [1, 3], ids=["early", "missing"])
def test_tlast_is_checked_not_trusted(flip):
    """A tlast one beat early, or none at the end of a line: flagged, the framing still counts."""
    rng = random.Random(flip)
    frames = [(4, 2, frame_beats(rng, 4, 2, flip_last={flip})), (2, 1, frame_beats(rng, 2, 1))]
    got, expect, status = simulate(frames, flip, idle=0.2, stall=0.2)
    assert got["o"] == expect
    assert got["status"] == status == {"bad_size": 0, "bad_last": 1, "bad_user": 0}


def test_full_rate():
    """Without idle cycles or stalls a frame passes at one pixel per clock (combinational)."""
    rng = random.Random(3)
    frames = [(5, 3, frame_beats(rng, 5, 3))]
    dut = InputFraming(MAX_WIDTH)
    cycles = []

    async def tb_in(ctx):
        ctx.set(dut.width, 5)
        ctx.set(dut.height, 3)
        for data, last, user in frames[0][2]:
            ctx.set(dut.i.payload, {"data": data, "last": last, "user": user})
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
        ctx.set(dut.i.valid, 0)

    async def tb_out(ctx):
        await recv(ctx, dut.o, 15, on_beat=lambda c, p: cycles.append(c))
    run(dut, tb_in, tb_out)
    assert cycles == list(range(15))


def test_bad_parameters():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            InputFraming(bad)

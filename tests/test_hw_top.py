# amaranth: UnusedElaboratable=no
"""The whole upscaler (hw.top.IQLUT) against golden.iqlut.upscale, pixel for pixel, in the
Amaranth simulator: small random models, frames 8x8, 13x7, 7x13, 1x1, one row, one column,
back-to-back frames of different sizes, random stalls on input and output, both output orders;
plus throughput, latency and the input framing rules."""
import itertools
import random

import numpy as np
import pytest

from golden import iqlut
from golden.modelfile import random_model
from hw.testing import block_beats, raster_beats, recv, run, send, video_beats
from hw.top import IQLUT
from tests.test_golden import small_config

SIZES = [(8, 8), (13, 7), (1, 1), (1, 6), (5, 1), (7, 13)]
MAX_WIDTH = 13

MODELS = {
    "c2b2": (small_config(channels=2, blocks=2), 0),                       # lag 1 (= bilinear)
    "c2b3": (small_config(channels=2, blocks=3, levels=(7, 4), levels_up=3), 1),
    "c1b1": (small_config(channels=1, blocks=1), 2),                       # lag 0: network FIFO
    "k3": (small_config(kernel=3, channels=2, blocks=2), 3),               # lag 3
    "f0": (small_config(frac_bits=0, levels=(256, 256), levels_up=256, channels=1, blocks=2), 4),
    "a10": (small_config(act_bits=10, frac_bits=6, channels=2, blocks=2, gate_bits=5, entry_bits=10), 5),
    "x2": (small_config(channels=2, blocks=2, scale=2), 6),
    "x3": (small_config(channels=2, blocks=3, levels=(7, 4), levels_up=3, scale=3), 7),
}


def lr_frames(seed, sizes=SIZES):
    rng = np.random.default_rng(seed)
    out = [rng.integers(0, 256, s).astype(np.uint8) for s in sizes]
    out[0][0, :] = 0
    out[0][-1, :] = 255
    return out


def simulate(dut, frames, *, seed=0, idle=0.3, stall=0.3, raster=False, gap_beats=()):
    """Send ``frames`` back to back (width/height set before each SOF), collect the output."""
    expect = []
    for f in frames:
        hr = iqlut.upscale(dut.model, f)
        s = dut.model.config.scale
        expect += raster_beats(hr, s) if raster else block_beats(hr, s)
    got = {}

    async def tb_in(ctx):
        for f in frames:
            ctx.set(dut.width, f.shape[1])
            ctx.set(dut.height, f.shape[0])
            await send(ctx, dut.i, list(gap_beats) + video_beats(f), random.Random(seed), idle=idle)

    async def tb_out(ctx):
        got["o"] = await recv(ctx, dut.o, len(expect), random.Random(seed + 1), stall=stall,
                              max_cycles=50_000)
    run(dut, tb_in, tb_out)
    return got["o"], expect


def first_mismatch(got, expect):
    for k, (g, e) in enumerate(zip(got, expect)):
        if g != e:
            return k, g, e
    return None


@pytest.mark.parametrize("name", sorted(MODELS))
def test_top_equals_golden_under_stalls(name):
    cfg, seed = MODELS[name]
    model = random_model(cfg, seed=seed)
    dut = IQLUT(model, max_width=MAX_WIDTH, rom_ports="banked" if seed % 2 else "dual")
    got, expect = simulate(dut, lr_frames(seed), seed=seed)
    assert first_mismatch(got, expect) is None
    assert len(got) == len(expect)


@pytest.mark.parametrize("name", ["c2b2", "k3", "x3"])
def test_top_extreme_model(name):
    cfg, seed = MODELS[name]
    dut = IQLUT(random_model(cfg, seed=seed, extreme=True), max_width=MAX_WIDTH)
    frames = lr_frames(seed + 10, [(8, 8), (3, 13)])
    frames.append((np.indices((4, 6)).sum(0) % 2 * 255).astype(np.uint8))     # checkerboard
    got, expect = simulate(dut, frames, seed=seed)
    assert first_mismatch(got, expect) is None


@pytest.mark.parametrize("name", ["c2b3", "c1b1", "x2", "x3"])
def test_top_raster_order(name):
    cfg, seed = MODELS[name]
    dut = IQLUT(random_model(cfg, seed=seed), max_width=MAX_WIDTH, output_order="raster")
    got, expect = simulate(dut, lr_frames(seed, [(5, 7), (1, 1), (2, 13), (4, 1)]), seed=seed,
                           stall=0.2, raster=True)
    assert first_mismatch(got, expect) is None


def frame_source(dut, frames):
    """Testbench that sends ``frames`` back to back, setting width/height for each, no stalls."""
    async def tb_in(ctx):
        for f in frames:
            ctx.set(dut.width, f.shape[1])
            ctx.set(dut.height, f.shape[0])
            await send(ctx, dut.i, video_beats(f))
    return tb_in


def test_top_status_stays_clear():
    cfg, seed = MODELS["c2b2"]
    dut = IQLUT(random_model(cfg, seed=seed), max_width=MAX_WIDTH)
    status = {}
    frames = lr_frames(1, [(3, 4), (2, 2)])

    tb_in = frame_source(dut, frames)

    async def tb_out(ctx):
        await recv(ctx, dut.o, 16)
        status["v"] = ctx.get(dut.status.as_value())
    run(dut, tb_in, tb_out)
    assert status["v"] == 0


def measure(dut, frames):
    """Cycle of every output beat, without stalls."""
    cycles = []

    tb_in = frame_source(dut, frames)

    async def tb_out(ctx):
        await recv(ctx, dut.o, sum(f.size for f in frames), on_beat=lambda c, p: cycles.append(c))
    run(dut, tb_in, tb_out)
    return cycles


@pytest.mark.parametrize("name", ["c2b2", "k3", "c1b1"])
def test_top_throughput_and_latency(name):
    """Steady state: a frame of H x W LR pixels takes (H + 1)(W + 1) cycles (one ghost column per
    row and one ghost row per frame, see ColumnGen), i.e. one LR pixel per clock within a row; the
    first output comes ``dut.latency(W)`` cycles after the first input."""
    cfg, seed = MODELS[name]
    dut = IQLUT(random_model(cfg, seed=seed), max_width=12)
    h, w = 6, 12
    cycles = measure(dut, lr_frames(0, [(h, w)] * 4))
    ends = [cycles[(k + 1) * h * w - 1] for k in range(4)]
    assert [b - a for a, b in itertools.pairwise(ends)] == [(h + 1) * (w + 1)] * 3
    assert cycles[0] == dut.latency(w)
    assert dut.frame_cycles(h, w) == (h + 1) * (w + 1)


def test_top_back_to_back_different_sizes_without_stalls():
    cfg, seed = MODELS["c2b3"]
    dut = IQLUT(random_model(cfg, seed=seed), max_width=MAX_WIDTH)
    got, expect = simulate(dut, lr_frames(9, [(2, 13), (1, 1), (9, 3), (1, 1), (1, 2)]), idle=0, stall=0)
    assert first_mismatch(got, expect) is None


def test_top_input_framing_rules():
    """Beats before a start of frame are dropped; a frame of invalid size is dropped and flagged;
    tlast is checked against the width, not trusted."""
    cfg, seed = MODELS["c2b2"]
    model = random_model(cfg, seed=seed)
    dut = IQLUT(model, max_width=8)
    good = lr_frames(3, [(3, 5)])[0]
    bad = lr_frames(4, [(2, 9)])[0]                     # wider than max_width
    junk = [{"data": 7, "last": 0, "user": 0}] * 3      # no SOF: dropped
    expect = block_beats(iqlut.upscale(model, good))
    got, status = {}, {}

    async def tb_in(ctx):
        ctx.set(dut.width, 9)
        ctx.set(dut.height, 2)
        await send(ctx, dut.i, junk + video_beats(bad), random.Random(0), idle=0.2)
        ctx.set(dut.width, 5)
        ctx.set(dut.height, 3)
        beats = video_beats(good)
        beats[2] = {**beats[2], "last": 1}              # a wrong tlast: flagged, ignored
        await send(ctx, dut.i, junk + beats, random.Random(1), idle=0.2)

    async def tb_out(ctx):
        got["o"] = await recv(ctx, dut.o, len(expect), random.Random(2), stall=0.3)
        status["v"] = {k: ctx.get(getattr(dut.status, k)) for k in ("bad_size", "bad_last", "bad_user", "misaligned")}
    run(dut, tb_in, tb_out)
    assert got["o"] == expect
    assert status["v"] == {"bad_size": 1, "bad_last": 1, "bad_user": 0, "misaligned": 0}


def test_top_resyncs_on_the_next_start_of_frame():
    """A frame with two short lines (tlast one pixel early): bad_last; the next frame's tuser
    arrives while the short frame still runs, so the design completes it with zeros (bad_user)
    — its output is golden on exactly that frame (``golden.iqlut.received_frame``) — and the
    next frame, and the one after, are exact."""
    cfg, seed = MODELS["k3"]
    model = random_model(cfg, seed=seed)
    dut = IQLUT(model, max_width=MAX_WIDTH)
    short, good, more = lr_frames(11, [(6, 9), (5, 9), (4, 9)])
    beats = [b for n, b in enumerate(video_beats(short)) if n not in (9 * 2 + 8, 9 * 4 + 8)]
    for n in (9 * 2 + 7, 9 * 4 + 7 - 1):
        beats[n] = {**beats[n], "last": 1}
    expect = []
    for f in (iqlut.received_frame(short, [2, 4]), good, more):
        expect += block_beats(iqlut.upscale(model, f))
    got, status = {}, {}

    async def tb_in(ctx):
        ctx.set(dut.width, 9)
        ctx.set(dut.height, 6)
        await send(ctx, dut.i, beats, random.Random(0), idle=0.2)
        for f in (good, more):
            ctx.set(dut.width, f.shape[1])
            ctx.set(dut.height, f.shape[0])
            await send(ctx, dut.i, video_beats(f), random.Random(1), idle=0.2)

    async def tb_out(ctx):
        got["o"] = await recv(ctx, dut.o, len(expect), random.Random(2), stall=0.3, max_cycles=20_000)
        status["v"] = {k: ctx.get(getattr(dut.status, k)) for k in ("bad_size", "bad_last", "bad_user", "misaligned")}
    run(dut, tb_in, tb_out)
    assert first_mismatch(got["o"], expect) is None
    assert status["v"] == {"bad_size": 0, "bad_last": 1, "bad_user": 1, "misaligned": 0}


def test_top_validation():
    m = random_model(small_config(), 0)
    with pytest.raises(ValueError, match="max_width"):
        IQLUT(m, max_width=0)
    with pytest.raises(ValueError, match="output_order"):
        IQLUT(m, output_order="column")
    with pytest.raises(ValueError, match="rom_ports"):
        IQLUT(m, rom_ports="triple")
    with pytest.raises(TypeError, match="Model"):
        IQLUT("iq_l8c8")


def shipped_models():
    from golden.modelfile import MODELS_DIR
    return sorted(p.stem for p in MODELS_DIR.glob("*.npz")) or ["none shipped"]


@pytest.mark.parametrize("name", shipped_models())
def test_top_shipped_model(name):
    """Every shipped trained model (iq_l8c8, iq_l8c8_x2, ...) end to end on small frames: a model
    the RTL cannot build is not shipped. The default model at fold 1 (the default build), the
    others at fold 16 (the build that fits an LFE5U-85F; same widths and ROM words, half the
    simulator time: iq_l8c16 takes 100-200 s at fold 1)."""
    from golden.modelfile import MODELS_DIR, load_model
    if not (MODELS_DIR / f"{name}.npz").exists():
        pytest.skip("no model is shipped in this checkout")
    dut = IQLUT(load_model(name), max_width=5, fold=1 if name == "iq_l8c8" else 16)
    got, expect = simulate(dut, lr_frames(11, [(3, 5), (1, 1), (2, 3)]), idle=0.2, stall=0.2)
    assert first_mismatch(got, expect) is None and len(got) == len(expect)

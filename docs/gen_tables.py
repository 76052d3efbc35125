"""Generate the tables of docs/fixed-point.md from golden.spec (markdown on stdout).

    python docs/gen_tables.py            # print both tables
    python docs/gen_tables.py --write    # replace the generated blocks in docs/fixed-point.md
    python docs/gen_tables.py --check    # exit 1 if docs/fixed-point.md is out of date

The generated blocks in fixed-point.md sit between ``<!-- BEGIN generated: NAME -->`` and
``<!-- END generated: NAME -->`` lines (NAME = configs, widths, bilinear). Nothing is typed by hand: LUT
bytes come from ``ModelConfig.lut_bytes()``, bit-widths from ``Model.widths``
(``golden.spec.layer_widths``), including ``acc_round_bits`` and ``gate_bits`` (shown as — where the
layer has no such sum: the upsampler has no block-output rounding, an ungated layer no gate).
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from golden import spec  # noqa: E402
from golden.modelfile import random_model  # noqa: E402

DOC = ROOT / "docs" / "fixed-point.md"


def _layer_bytes(layer: spec.LayerConfig, entry_bits: int) -> int:
    return layer.rom_bits(entry_bits) // 8


def configs_table() -> str:
    rows = ["| config | scale | blocks | C | k | L (block 0 / blocks 1.. / upsampler) | F | E | "
            "per-layer bytes c_in·L·k²·c_out·E/8 | `lut_bytes()` | budget | margin |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, cfg in spec.CONFIGS.items():
        b, up = cfg.blocks, cfg.upsampler
        total = cfg.lut_bytes()
        parts = [_layer_bytes(layer, cfg.entry_bits) for layer in cfg.layers]
        # group equal consecutive terms: 512 + 7×4096 + 5120
        terms, n = [], 0
        while n < len(parts):
            m = n
            while m + 1 < len(parts) and parts[m + 1] == parts[n]:
                m += 1
            cnt = m - n + 1
            terms.append(f"{cnt}×{parts[n]:,}" if cnt > 1 else f"{parts[n]:,}")
            n = m + 1
        assert sum(parts) == total, (name, parts, total)
        levels = f"{b[0].levels} / {b[1].levels if len(b) > 1 else '-'} / {up.levels}"
        budget = spec.BUDGETS.get(name)
        bud = f"{budget:,} ({budget // 1024} KiB)" if budget else "—"
        margin = f"{budget - total:,}" if budget else "—"
        rows.append(f"| `{name}` | x{cfg.scale} | {len(b)} | {b[0].c_out} | {b[0].kernel} | {levels} | "
                    f"{b[0].frac_bits} | {cfg.entry_bits} | {' + '.join(terms)} | "
                    f"{total:,} | {bud} | {margin} |")
    return "\n".join(rows)


def widths_table(config: str = "iq_l8c8", seed: int = 0) -> str:
    m = random_model(config, seed, extreme=True)
    cfg = m.config
    rows = [f"`random_model('{config}', {seed}, extreme=True).widths` (act_bits A = {cfg.act_bits}, "
            f"entry_bits E = {cfg.entry_bits}, gate_bits G = {cfg.gate_bits}):",
            "",
            "| layer | c_in→c_out | L | origin | shift | gate | index | F | recip | entry [min, max] | "
            "diff (hi−lo) | product (hi−lo)·t + 2^(F−1) | acc [lo, hi] (over channels) | acc | "
            "acc + 2^(s−1) | gate g·(y−x) + 2^(G−1) | out |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, (layer, p, w) in enumerate(zip(cfg.layers, m.layers, m.widths)):
        is_up = n == len(cfg.blocks)
        name = "upsampler" if is_up else f"block {n}"
        # the upsampler's shift acts in the final combine (its rounding is in out_bits): no acc + 2^(s-1)
        acc_round = "—" if is_up else f"{w.acc_round_bits} s"
        gate_sum = f"{w.gate_bits} s" if layer.gated else "—"
        rows.append(
            f"| {name} | {layer.c_in}→{layer.c_out} | {layer.levels} | {layer.origin} | {w.shift} | "
            f"{'—' if p.gate is None else p.gate} | {w.index_bits} u | {w.frac_bits} u | "
            f"{w.recip_bits} u | {w.entry_bits} s [{w.entry_min}, {w.entry_max}] | {w.diff_bits} s | "
            f"{w.product_bits} s | [{min(w.acc_lo)}, {max(w.acc_hi)}] | {w.acc_bits} s | "
            f"{acc_round} | {gate_sum} | {w.out_bits} s |")
    return "\n".join(rows)


def bilinear_table() -> str:
    """Per scale and HR phase r: the two LR taps and their weights (``spec.bilinear_phases``)."""
    rows = ["| scale | axis denominator | 2-D denominator D | phase r | coordinate i + (2r+1−σ)/(2σ) | "
            "taps (before clamping) | weights (left, right) |",
            "|---|---|---|---|---|---|---|"]
    for scale in spec.SCALES:
        den = spec.bilinear_axis_den(scale)
        left, w0, w1 = spec.bilinear_phases(scale)
        for r in range(scale):
            num, d = 2 * r + 1 - scale, 2 * scale
            g = math.gcd(abs(num), d) or d
            off = "i" if num == 0 else f"i {'−' if num < 0 else '+'} {abs(num) // g}/{d // g}"
            lt = "i" if left[r] == 0 else "i−1"
            rt = "i+1" if left[r] == 0 else "i"
            rows.append(f"| x{scale} | {den} | {den * den} | {r} | {off} | {lt}, {rt} | "
                        f"{w0[r]}, {w1[r]} /{den} |")
    return "\n".join(rows)


TABLES = {"configs": configs_table, "widths": widths_table, "bilinear": bilinear_table}


def render() -> dict[str, str]:
    return {name: fn() for name, fn in TABLES.items()}


def substitute(text: str, tables: dict[str, str]) -> str:
    for name, body in tables.items():
        pat = re.compile(rf"(<!-- BEGIN generated: {name} -->\n).*?(<!-- END generated: {name} -->)", re.S)
        if not pat.search(text):
            raise SystemExit(f"{DOC}: no generated block '{name}'")
        text = pat.sub(lambda mo: mo.group(1) + body + "\n" + mo.group(2), text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true", help=f"update the generated blocks of {DOC.name}")
    g.add_argument("--check", action="store_true", help=f"exit 1 if {DOC.name} is out of date")
    args = ap.parse_args(argv)
    tables = render()
    if not (args.write or args.check):
        for name, body in tables.items():
            print(f"<!-- {name} -->\n{body}\n")
        return 0
    old = DOC.read_text()
    new = substitute(old, tables)
    if args.check:
        if new != old:
            print(f"{DOC} is out of date: run python docs/gen_tables.py --write", file=sys.stderr)
            return 1
        print(f"{DOC}: generated tables up to date")
        return 0
    DOC.write_text(new)
    print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

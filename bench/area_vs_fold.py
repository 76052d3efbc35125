# amaranth: UnusedElaboratable=no
"""Area and speed against the fold knob: for each fold F of a model (default iq_l8c8, F = 1, 2, 4,
8, 16), the per-component ECP5 synthesis summed over the design (LUT4-eq., FF, MULT18X18D, DP16KD;
``hw.synth.synth_blocks``), the Fmax of the largest IQ-Block placed and routed alone, out of
context (``hw.synth.pnr_ecp5``), the LR pixel rate at that Fmax (Fmax / F, the per-row and
per-frame overhead of a 960 x 540 LR frame included), the largest output format it sustains, and
the generic gate count of the whole design (``--synth gates``: memories kept as bits).

Usage::

    python -m bench.area_vs_fold [--model iq_l8c8] [--folds 1 2 4 8 16] [--skip gates,pnr]
    python -m bench.area_vs_fold --table          # only redraw the table and the plot
    python -m bench.area_vs_fold --whole 16       # the whole design in one synth_ecp5 + nextpnr run
    python -m bench.area_vs_fold --whole 8 --dsp-layers auto --seeds 1 2 --jobs 2

Long (hours on one core): every finished step is saved at once in ``results/area_vs_fold.json``
and a rerun skips the steps already there (``--redo`` forces them). Writes
``docs/area_vs_fold.png`` and prints the Markdown table for hw/README.md. ``--whole F`` places and
routes the whole design at fold F out of context on the LFE5U-85F and writes
``results/pnr_<model>_fold<F>.json`` (``..._dsp.json`` with ``--dsp-layers``); nextpnr's log and
the netlist it placed stay in ``runs/``. Not part of CI.

Exit code 0; 1 if a tool fails; 2 on bad arguments or a missing tool.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "area_vs_fold.json"
PLOT = REPO / "docs" / "area_vs_fold.png"
#: ``--whole F`` results (``str.format`` with model, fold)
WHOLE = REPO / "results" / "pnr_{model}_fold{fold}.json"

#: output formats by the LR pixel rate they need (LR px/s; x4: HR = 16 LR)
FORMATS = (("4K60", 3840 * 2160 * 60 / 16), ("4K30", 3840 * 2160 * 30 / 16),
           ("1080p60", 1920 * 1080 * 60 / 16), ("1080p30", 1920 * 1080 * 30 / 16))
#: LFE5U-85F limits for "fits": 85 % of the LUT4s, all MULT18X18D and DP16KD
FIT_FILL = 0.85
FIT = {"lut4_equiv": int(FIT_FILL * 83_640), "dsp": 156, "bram": 208}
#: LR frame used for the overhead (H + d)(W + d) / (H W) of the pixel rate
LR_FRAME = (540, 960)


def lr_rate(core, fmax_mhz: float) -> float:
    """Sustained LR pixels per second at ``fmax_mhz``: H W pixels per frame_cycles(H, W)."""
    h, w = LR_FRAME
    return fmax_mhz * 1e6 * h * w / core.frame_cycles(h, w)


def best_format(rate: float) -> str:
    return next((name for name, need in FORMATS if rate >= need), "below 1080p30")


def _save(data: dict) -> None:
    from golden.fileutil import atomic_open
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(RESULTS, "w") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def measure(model, folds, skip: set, redo: bool, max_width: int, seeds=(1,)) -> dict:
    from hw import synth as hs
    from hw.build import build, top_name
    from hw.report import design_report
    from hw.top import IQLUT
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if data.get("model") not in (None, model.name) or data.get("max_width") not in (None, max_width):
        data = {}
    data.update({"model": model.name, "max_width": max_width, "fit_limits_lfe5u_85f": FIT})
    runs = data.setdefault("folds", {})
    top = top_name(model.name)
    for fold in folds:
        row = runs.setdefault(str(fold), {})
        core = IQLUT(model, max_width=max_width, fold=fold)
        rep = design_report(core)
        row.update({"fold": fold, "cycles_per_lr_pixel": core.cycles_per_pixel,
                    "multipliers": rep["totals"]["multipliers"],
                    "dp16kd_expected": rep["totals"]["dp16kd_expected"]})
        if redo or "blocks" not in row:
            _log(f"fold {fold}: synth_ecp5 of every component")
            s = hs.synth_blocks(core, top, progress=_log)
            row["blocks"] = {"total": s["total"], "seconds": s["seconds"], "tool": s["tool"], "commit": _commit(),
                             "script": s["script"], "peak_child_mb": s["peak_child_mb"],
                             "instances": {i["instance"]: i["resources"] for i in s["instances"]}}
            _save(data)
        if "pnr" not in skip and (redo or "pnr" not in row):
            _log(f"fold {fold}: place and route of the largest IQ-Block")
            p = hs.pnr_ecp5(IQLUT(model, max_width=max_width, fold=fold), top, progress=_log,
                            keep_log=REPO / "runs" / f"pnr_{model.name}_fold{fold}_block.nextpnr.log",
                            seeds=seeds)
            row["pnr"] = {k: p[k] for k in ("block", "device", "fmax_mhz_min", "critical_path",
                                            "seconds", "tool", "mode", "seed", "fmax_by_seed") if k in p}
            row["pnr"]["commit"] = _commit()
            _save(data)
        if "gates" not in skip and (redo or "gates" not in row):
            _log(f"fold {fold}: generic gates of the whole design")
            t0 = time.monotonic()
            text, report, _ = build(model, max_width=max_width, synth="gates", fold=fold)
            g = report["synth"]
            row["gates"] = {"cells": g.get("cells"), "cell_types": g.get("cell_types"),
                            "seconds": round(time.monotonic() - t0, 1), "commit": _commit()}
            _save(data)
        if "pnr" in row:
            fmax = row["pnr"]["fmax_mhz_min"]
            row["lr_mpx_per_s"] = round(lr_rate(core, fmax) / 1e6, 2)
            row["best_format"] = best_format(lr_rate(core, fmax))
        t = row["blocks"]["total"]
        row["fits_lfe5u_85f"] = all(t[k] <= v for k, v in FIT.items())
        _save(data)
    return data


def whole_results(model: str) -> dict:
    """{fold: the ``--whole F`` result} for every ``results/pnr_<model>_fold<F>.json`` there is."""
    out = {}
    for path in sorted(WHOLE.parent.glob(WHOLE.name.format(model=model, fold="*"))):
        r = json.loads(path.read_text())
        if not r.get("dsp_layers"):         # the ``_dsp`` runs: another design per fold
            out[int(r["fold"])] = r
    return out


def _whole_cell(w: dict | None) -> str:
    """The table's whole-design cell: one synthesis, placed and routed on the 85F."""
    if w is None:
        return "—"
    return (f"{w['resources']['lut4_equiv']:,} LUT4-eq., {w['fmax_mhz_min']:.2f} MHz, "
            f"{w['lr_mpx_per_s_at_fmax']} Mpx/s, {w['best_format']} ({w.get('commit', '?')})")


def table(data: dict, whole: dict | None = None) -> str:
    """The Markdown table of hw/README.md: per fold the per-component sums (``data``, the
    contents of results/area_vs_fold.json) and, where ``whole`` ({fold: ``--whole`` result}) has
    one, the whole design as one synthesis placed and routed. "fits 85F" is that run's verdict
    when there is one (one synthesis shares logic the per-component sum counts twice), else the
    sum's."""
    whole = whole or {}
    head = ("| F | cycles / LR px | LUT4-eq. | FF | MULT18X18D | DP16KD | fits 85F | Fmax (block) | "
            "LR Mpx/s | sustains | whole design placed and routed | gates (cells) | commit |")
    lines = [head, "|" + "---:|" * 10 + "---|---:|---|"]
    for key in sorted(data.get("folds", {}), key=int):
        r = data["folds"][key]
        t = r.get("blocks", {}).get("total")
        if t is None:
            continue
        w = whole.get(r["fold"])
        fits = ("yes (whole)" if all(w["fits"].values()) else "no (whole)") if w is not None else \
            ("yes" if r.get("fits_lfe5u_85f") else "no")
        fmax = f"{r['pnr']['fmax_mhz_min']:.1f} MHz" if "pnr" in r else "—"
        gates = f"{r['gates']['cells']:,}" if r.get("gates", {}).get("cells") else "—"
        lines.append(f"| {r['fold']} | {r['cycles_per_lr_pixel']} | {t['lut4_equiv']:,} | {t['ff']:,} | "
                     f"{t['dsp']} | {t['bram']} | {fits} | {fmax} | "
                     f"{r.get('lr_mpx_per_s', '—')} | {r.get('best_format', '—')} | {_whole_cell(w)} | {gates} | "
                     f"{r['blocks'].get('commit', '?')} |")
    return "\n".join(lines)


def plot(data: dict, whole: dict | None = None) -> None:
    """docs/area_vs_fold.png: the per-component sums against F, the whole-design syntheses
    (``whole``, as in ``table``) as separate points, and the LR pixel rate at the block's Fmax."""
    whole = whole or {}
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [data["folds"][k] for k in sorted(data.get("folds", {}), key=int) if "blocks" in data["folds"][k]]
    if not rows:
        return
    folds = [r["fold"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(folds, [r["blocks"]["total"]["lut4_equiv"] for r in rows], "o-", label="LUT4-eq.")
    ax.plot(folds, [r["blocks"]["total"]["ff"] for r in rows], "s-", label="FF")
    if whole:
        wf = sorted(whole)
        ax.plot(wf, [whole[f]["resources"]["lut4_equiv"] for f in wf], "D", color="C2", ms=8,
                label="LUT4-eq., whole design (one synthesis, routed)")
    ax.axhline(FIT["lut4_equiv"], color="grey", ls="--", lw=1, label="85 % of LFE5U-85F LUT4s")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(folds, [str(f) for f in folds])
    ax.set_xlabel("fold F (cycles per LR pixel)")
    ax.set_ylabel("ECP5 cells (sum of per-component synth_ecp5)")
    ax.set_title(f"{data['model']}: area vs fold")
    with_rate = [r for r in rows if "lr_mpx_per_s" in r]
    if with_rate:
        ax2 = ax.twinx()
        ax2.plot([r["fold"] for r in with_rate], [r["lr_mpx_per_s"] for r in with_rate], "^:",
                 color="C3", label="LR Mpx/s at Fmax")
        ax2.set_yscale("log")
        ax2.set_ylabel("LR Mpx/s at the block's Fmax")
    handles = [h for a in fig.axes for h in a.get_legend_handles_labels()[0]]
    ax.legend(handles, [h.get_label() for h in handles], loc="lower left", fontsize=8)
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=120)


@functools.lru_cache(maxsize=None)
def _commit() -> str:
    """The commit checked out when this process started measuring (short hash, "+dirty" with
    uncommitted changes to the measured code, hw/ or golden/), or "unknown": taken once (``main`` calls it before importing ``hw``), so
    commits made while a long run goes on do not relabel the code it already loaded."""
    import subprocess
    try:
        h = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "hw", "golden"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return h + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def whole(model, fold: int, max_width: int, seeds=(1,), dsp_layers=(), jobs: int = 1,
          router: str | None = None) -> dict:
    """The whole design (``IQLUT``) at ``fold`` in one synth_ecp5 run, placed and routed out of
    context with nextpnr-ecp5 -> results/pnr_<model>_fold<F>.json (``..._dsp.json`` with DSP
    layers). ``dsp_layers``: as ``hw.build --dsp-layers`` (a tuple or "auto"). ``jobs``: nextpnr
    runs (seeds) at once; ``router``: nextpnr's (``hw.synth.PNR_ROUTERS``; None: its default).
    nextpnr's log and the netlist it placed are kept in runs/."""
    from golden.fileutil import atomic_open
    from hw import synth as hs
    from hw.build import BuildError, resolve_dsp_layers, top_name
    from hw.top import IQLUT
    dsp_layers = resolve_dsp_layers(dsp_layers, model, max_width=max_width, fold=fold)
    try:
        core = IQLUT(model, max_width=max_width, fold=fold, dsp_layers=dsp_layers)
    except ValueError as e:
        raise BuildError(str(e)) from None
    _log(f"fold {fold}: the whole design through synth_ecp5 and nextpnr-ecp5"
         + (f", DPFI of layers {', '.join(map(str, core.dsp_layers))} in DSPs" if core.dsp_layers else ""))
    # the fit bound (85 % of the LUT4s) rather than the 80 % hw.synth picks devices by
    stem = f"pnr_{model.name}_fold{fold}" + ("_dsp" if core.dsp_layers else "")
    p = hs.pnr_ecp5(core, top_name(model.name), instance="core", progress=_log,
                    keep_log=REPO / "runs" / f"{stem}.nextpnr.log", seeds=seeds, jobs=jobs,
                    keep_netlist=REPO / "runs" / f"{stem}.netlist.json", fill=FIT_FILL,
                    router=router or hs.PNR_ROUTER)
    rate = lr_rate(core, p["fmax_mhz_min"])
    out = {"model": model.name, "fold": fold, "max_width": max_width, "commit": _commit(),
           "dsp_layers": list(core.dsp_layers),
           "cycles_per_lr_pixel": core.cycles_per_pixel, **p,
           "lr_mpx_per_s_at_fmax": round(rate / 1e6, 2), "best_format": best_format(rate),
           "formats": {name: rate >= need for name, need in FORMATS},
           "fits": {k: p["resources"][k] <= v for k, v in FIT.items()}}
    path = REPO / "results" / f"{stem}.json"
    with atomic_open(path, "w") as f:
        f.write(json.dumps(out, indent=1, sort_keys=True, default=str) + "\n")
    _log(f"wrote {path}: Fmax {p['fmax_mhz_min']} MHz, {out['best_format']}")
    return out


def main(argv=None) -> int:
    _commit()                       # the code this process loads (see _commit)
    from hw.build import BuildError, parse_dsp_layers
    from hw.fold import FOLDS
    from hw.synth import PNR_ROUTERS
    ap = argparse.ArgumentParser(prog="python -m bench.area_vs_fold", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="iq_l8c8")
    ap.add_argument("--folds", type=int, nargs="+", default=list(FOLDS), choices=FOLDS)
    ap.add_argument("--skip", default="", help="comma-separated steps to skip: pnr, gates")
    ap.add_argument("--redo", action="store_true", help="re-measure steps already in the results")
    ap.add_argument("--max-width", type=int, default=1920)
    ap.add_argument("--table", action="store_true", help="only print the table and redraw the plot")
    ap.add_argument("--whole", type=int, choices=FOLDS, metavar="F",
                    help="place and route the whole design at fold F (LFE5U-85F, out of context)")
    ap.add_argument("--dsp-layers", type=parse_dsp_layers, default=(), metavar="{none,auto,N[,N...]}",
                    help="with --whole: layers whose DPFI products are DSP multipliers (as hw.build)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1], metavar="SEED",
                    help="nextpnr placer seeds (one run each on the same netlist; the median "
                         "Fmax is reported, every seed's listed)")
    ap.add_argument("--router", choices=PNR_ROUTERS, default=None,
                    help="with --whole: nextpnr's router (default: hw.synth.PNR_ROUTER)")
    ap.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="with --whole: nextpnr runs (seeds) at once, one core and a few GB each")
    args = ap.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    if args.jobs < 1 or len(set(args.seeds)) != len(args.seeds):
        print(f"area_vs_fold: error: --jobs takes a positive count and --seeds distinct seeds; got "
              f"--jobs {args.jobs} --seeds {' '.join(map(str, args.seeds))}", file=sys.stderr)
        return 2
    if skip - {"pnr", "gates"}:
        print(f"area_vs_fold: error: --skip takes pnr, gates; got {args.skip!r}", file=sys.stderr)
        return 2
    from golden.modelfile import ModelFileError, load_model
    from hw import synth as hs
    try:
        if not args.table:
            hs.require_tool("yosys")
            if "pnr" not in skip or args.whole:
                hs.require_tool("nextpnr-ecp5")
        model = load_model(args.model)
        if args.whole:
            whole(model, args.whole, args.max_width, args.seeds, args.dsp_layers, args.jobs, args.router)
            return 0
        data = json.loads(RESULTS.read_text()) if args.table else \
            measure(model, args.folds, skip, args.redo, args.max_width, args.seeds)
    except (hs.ToolMissing, ModelFileError, FileNotFoundError, BuildError) as e:
        print(f"area_vs_fold: error: {e}", file=sys.stderr)
        return 2
    except hs.ToolError as e:
        print(f"area_vs_fold: error: {e}", file=sys.stderr)
        return 1
    done = whole_results(data.get("model", args.model))
    plot(data, done)
    print(table(data, done))
    return 0


if __name__ == "__main__":
    sys.exit(main())

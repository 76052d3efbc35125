"""Ablation of the training levers, same iterations with and without each:
``python -m training.ablation --config iq_l8c8 --iters 2000 --teacher models/ecnn_l8c8.npz``.

Variants (``VARIANTS``): ``mse`` (plain QAT, uniform NUQD grids), ``kd`` (+ distillation from the
teacher, weight ``--kd``), ``search`` (+ the greedy NUQD (a, b) search at ``--search-at``), ``kd+search``,
``shifts`` (``mse`` with the accumulator shifts ``--block-shift`` / ``--up-shift`` instead of 3: the
entry range lever — with 8-bit entries one window tap moves a layer's output by at most
128 / 2^shift; recorded under ``shifts <block>/<up>``).
Each variant trains from scratch in ``<out>/<variant>`` (resumable: a finished variant is not
re-run, an interrupted one continues from its checkpoint), is exported with a golden check and
evaluated by ``golden.eval`` on the test sets; results are merged into ``--json`` (default
``results/ablation_<config>.json``) as each variant finishes, so two processes with different
``--variants`` can share the two cores. ``--table`` prints the Markdown table from the JSON.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("mse", "kd", "search", "kd+search", "shifts")


def run_variant(args, variant: str) -> dict:
    from golden import eval as geval
    from training import export, train
    out = args.out / variant
    cmd = ["--config", args.config, "--iters", str(args.iters), "--lr", str(args.lr), "--warmup",
           str(args.warmup), "--threads", "1", "--out", str(out), "--val-every", str(args.val_every),
           "--no-progress", "--seed", str(args.seed), "--batch", str(args.batch), "--patch", str(args.patch),
           "--train-sets", *args.train_sets,
           "--nuqd-search-at", str(args.search_at if "search" in variant else 0)]
    if "kd" in variant:
        cmd += ["--teacher", args.teacher, "--kd", str(args.kd)]
    if variant == "shifts":
        cmd += ["--block-shift", args.block_shift, "--up-shift", str(args.up_shift)]
        out = args.out / f"shifts_{args.block_shift.replace(',', '-')}_{args.up_shift}"
        cmd[cmd.index("--out") + 1] = str(out)
    if args.data:
        cmd += ["--data", str(args.data)]
    ckpt = out / "ckpt.pt"
    if ckpt.exists():
        import torch
        if torch.load(ckpt, weights_only=False)["iter"] < args.iters:
            cmd += ["--resume"]
        else:
            cmd = None
    t0 = time.time()
    if cmd is not None and train.main(cmd) != 0:
        raise RuntimeError(f"training variant {variant} failed")
    model = out / "model.npz"
    ex = [str(ckpt), "--out", str(model), "--check", "2"] + (["--data", str(args.data)] if args.data else [])
    if export.main(ex) != 0:
        raise RuntimeError(f"export of variant {variant} failed the golden check")
    ev = out / "eval.json"
    gargs = ["--model", str(model), "--sets", *args.sets, "--json", str(ev)]
    if args.data:
        gargs += ["--data", str(args.data)]
    if geval.main(gargs) != 0:
        raise RuntimeError(f"golden.eval of variant {variant} failed")
    d = json.loads(ev.read_text())
    with open(out / "log.csv", newline="") as f:
        vals = [row["val_psnr"] for row in csv.DictReader(f) if row.get("val_psnr")]
    name = f"shifts {args.block_shift}/{args.up_shift}" if variant == "shifts" else variant
    return {"variant": name, "iters": args.iters, "lr": args.lr, "kd": args.kd if "kd" in variant else 0.0,
            "teacher": args.teacher if "kd" in variant else None,
            "nuqd_search_at": args.search_at if "search" in variant else 0,
            "block_shift": args.block_shift if variant == "shifts" else "3",
            "up_shift": args.up_shift if variant == "shifts" else 3,
            "held_out_psnr": float(vals[-1]) if vals else None,
            "sets": {s: {"psnr_y": round(v["psnr_y"], 3), "ssim_y": round(v["ssim_y"], 4)}
                     for s, v in d["sets"].items()},
            "minutes_this_process": round((time.time() - t0) / 60, 1)}


def merge(path: Path, row: dict) -> dict:
    from golden.fileutil import atomic_open
    data = json.loads(path.read_text()) if path.exists() else {"variants": {}}
    data["variants"][row["variant"]] = row
    data["date"] = time.strftime("%Y-%m-%d")
    with atomic_open(path, "w") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return data


def table(data: dict) -> str:
    rows = ["| variant | iterations | held-out | Set5 | Set14 | B100 |", "|---|---:|---:|---|---|---|"]
    base = data["variants"].get("mse")
    order = [v for v in VARIANTS if v in data["variants"]] + \
        sorted(v for v in data["variants"] if v not in VARIANTS)
    for v in order:
        r = data["variants"][v]
        cells = []
        for s in ("Set5", "Set14", "B100"):
            p = r["sets"].get(s, {}).get("psnr_y")
            d = "" if base is None or v == "mse" or p is None else f" ({p - base['sets'][s]['psnr_y']:+.2f})"
            cells.append("—" if p is None else f"{p:.2f}{d}")
        rows.append(f"| {v} | {r['iters']:,} | {r['held_out_psnr']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.ablation", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="iq_l8c8")
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--teacher", default="models/ecnn_l8c8.npz")
    p.add_argument("--kd", type=float, default=3.0)
    p.add_argument("--search-at", type=int, default=None, help="NUQD search iteration (default iters/8)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--block-shift", default="2", help="the shifts variant's IQ-Block shift(s): one int "
                   "or one per block, comma-separated")
    p.add_argument("--up-shift", type=int, default=2, help="the shifts variant's upsampler shift")
    p.add_argument("--sets", nargs="+", default=["Set5", "Set14", "B100"])
    p.add_argument("--train-sets", nargs="+", default=["T91", "BSD200"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None, help="runs directory (default runs/ablation_<config>)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--table", action="store_true", help="only print the table from --json")
    a = p.parse_args(argv)
    a.out = a.out or REPO / "runs" / f"ablation_{a.config}"
    a.json = a.json or REPO / "results" / f"ablation_{a.config}.json"
    a.search_at = a.search_at if a.search_at is not None else max(1, a.iters // 8)
    if a.iters < 1:
        p.error("--iters must be >= 1")
    if a.table:
        if not a.json.exists():
            print(f"error: {a.json} does not exist", file=sys.stderr)
            return 2
        print(table(json.loads(a.json.read_text())))
        return 0
    if any("kd" in v for v in a.variants) and not Path(a.teacher).exists() and "/" in a.teacher:
        print(f"error: --teacher {a.teacher} not found", file=sys.stderr)
        return 2
    data = None
    for v in a.variants:
        try:
            data = merge(a.json, run_variant(a, v))
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    print(table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())

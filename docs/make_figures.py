"""Results table and figures from the evaluation JSONs: ``python docs/make_figures.py``.

Reads ``results/*.json`` (written by ``python -m golden.eval --model NAME --json results/NAME.json``),
prints the README results table (markdown), and writes

* ``docs/psnr_vs_bytes.png``: Set5 PSNR-Y against LUT bytes (log axis), our measured models beside
  the published points;
* ``docs/visual_crop.png``: one crop, bicubic / a model / HR (``--crop-model``, default iq_l8c8);
* ``docs/training_curve.png``: held-out validation PSNR (every 29th T91/BSD200 image, the
  ``val_psnr`` of training.train's log.csv) against CPU-hours, one line per committed training log
  ``results/training/NAME.csv`` (the validation rows of the run's log.csv: ``awk -F, 'NR==1 || $5!=""'``; single-thread runs, so wall minutes
  = CPU minutes up to machine sharing), with the shipped file's golden Set5 PSNR-Y in the legend.

Needs matplotlib (``pip install -e '.[docs]'``); the table needs nothing but the JSONs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Published x4 Set5 PSNR-Y and LUT bytes (papers; bytes of SR-LUT/MuLUT/TinyLUT from their tables).
PUBLISHED = [
    ("SR-LUT", 1_336_336, 29.82),
    ("MuLUT", 4_259_571, 30.61),
    ("TinyLUT-S", 37_776, 30.22),
    ("IQ-L8C8 (paper)", 34_816, 31.14),
    ("IQ-L8C16 (paper)", 126_976, 31.50),
]
#: ECNN-L8C8's size is not stated with its PSNR; its LUT (8-bit index, same layers) is the size of
#: our ecnn_l8c8 config.
ECNN_PAPER = ("ECNN-L8C8 (paper)", 31.06)


#: Published methods run here from their authors' tables (golden.srlut / golden.mulut): drawn as
#: "measured", not "ours".
BASELINES = {"srlut": "SR-LUT-S", "mulut": "MuLUT-SDY-X2", "tinylut": "TinyLUT-S"}


def load_results(folder: Path) -> dict[str, dict]:
    """The ``golden.eval`` JSONs in ``folder`` (other JSONs there, e.g. co-simulation summaries,
    have no "sets" and are skipped)."""
    out = {}
    for p in sorted(folder.glob("*.json")):
        d = json.loads(p.read_text())
        if isinstance(d, dict) and "sets" in d:
            out[p.stem] = d
    return out


def table(results: dict[str, dict], sets=("Set5", "Set14", "B100")) -> str:
    rows = ["| model | LUT bytes | iterations | " + " | ".join(sets) + " | measured |",
            "|---|---:|---:|" + "---|" * len(sets) + "---|"]
    for name, d in results.items():
        info = d.get("model_info", {})
        b = info.get("lut_bytes")
        cells = []
        for s in sets:
            r = d["sets"].get(s)
            cells.append(f"{r['psnr_y']:.2f} / {r['ssim_y']:.4f}" if r else "—")
        rows.append(f"| {name} | {f'{b:,}' if b else '—'} | {info.get('trained_iterations') or '—'} | "
                    + " | ".join(cells) + f" | {d['date'][:10]} |")
    return "\n".join(rows)


def plot_psnr_vs_bytes(results: dict[str, dict], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from golden import spec
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, b, p in PUBLISHED:
        ax.scatter(b, p, marker="s", color="0.5")
        ax.annotate(name, (b, p), textcoords="offset points", xytext=(5, -10), fontsize=8, color="0.35")
    eb = spec.CONFIGS["ecnn_l8c8"].lut_bytes()
    ax.scatter(eb, ECNN_PAPER[1], marker="s", color="0.5")
    ax.annotate(ECNN_PAPER[0], (eb, ECNN_PAPER[1]), textcoords="offset points", xytext=(5, -10),
                fontsize=8, color="0.35")
    for name, d in results.items():
        b = d.get("model_info", {}).get("lut_bytes")
        r = d["sets"].get("Set5")
        if not b or not r or d.get("scale", 4) != 4:     # the plot is x4
            continue
        label = f"{BASELINES[name]} (measured)" if name in BASELINES else f"{name} (ours)"
        ax.scatter(b, r["psnr_y"], marker="o", color="tab:red", zorder=3)
        right = b > 2e6  # near the right edge: label to the left of the point
        # under the point: ECNN (MuLUT's label ends above it) and the 34 KB iq_l8c8 (iq_l12c8's
        # label, 1.5x its bytes, starts right of it at the same height)
        below = 3e5 < b < 1e6 or (name == "iq_l8c8")
        ax.annotate(label, (b, r["psnr_y"]), textcoords="offset points",
                    xytext=(-5 if right else 5, -12 if below else 4),
                    ha="right" if right else "left", fontsize=8, color="tab:red")
    bic = results.get("bicubic")
    if bic:
        ax.axhline(bic["sets"]["Set5"]["psnr_y"], color="0.7", ls="--", lw=1)
        ax.text(0.99, bic["sets"]["Set5"]["psnr_y"] + 0.03, "bicubic", fontsize=8, color="0.5",
                ha="right", transform=ax.get_yaxis_transform())
    ax.set_xscale("log")
    ax.set_xlabel("LUT bytes (log scale)")
    ax.set_ylabel("Set5 PSNR-Y x4 (dB)")
    ax.set_title("x4 super-resolution: quality vs LUT size (grey: published, red: measured here)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


def visual_crop(model_name: str, data: Path, out: Path, image="Set14/HR/barbara.png",
                box=(170, 90, 120, 120)) -> None:
    """Crop (x, y, w, h in HR pixels) of bicubic / model / HR, side by side, 3x nearest zoom."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from golden.bicubic import imresize
    from golden.imageio import load_image
    from golden.iqlut import upscale
    from golden.modelfile import load_model
    set_name, _, fname = image.split("/")
    stem = Path(fname).stem
    hr = load_image(data / image)
    lr = load_image(data / set_name / "LR_bicubic_sym" / "X4" / f"{stem}x4.png")
    bic = np.stack([imresize(lr[..., c], 4) for c in range(3)], -1)
    ours = upscale(load_model(model_name), lr)
    x, y, w, h = box
    crops = [a[y:y + h, x:x + w] for a in (bic, ours, hr)]
    fig, axs = plt.subplots(1, 3, figsize=(9, 3.3), dpi=120)
    for a, c, t in zip(axs, crops, ("bicubic", f"{model_name} (golden integer model)", "HR")):
        a.imshow(c, interpolation="nearest")
        a.set_title(t, fontsize=9)
        a.axis("off")
    fig.suptitle(f"{set_name} {stem}, x4, HR crop {w}x{h} at ({x}, {y})", fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


def plot_training_curves(folder: Path, results: dict[str, dict], out: Path) -> bool:
    """docs/training_curve.png from results/training/*.csv; False if there are no logs."""
    import csv
    logs = sorted(folder.glob("*.csv"))
    if not logs:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for path in logs:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("val_psnr")]
        if not rows:
            continue
        hours = [float(r["minutes"]) / 60 for r in rows]
        psnr = [float(r["val_psnr"]) for r in rows]
        s5 = results.get(path.stem, {}).get("sets", {}).get("Set5", {}).get("psnr_y")
        label = path.stem + (f" (shipped: Set5 {s5:.2f})" if s5 else "")
        ax.plot(hours, psnr, marker=".", label=label)
    ax.set_xlabel("CPU-hours (one thread)")
    ax.set_ylabel("held-out PSNR (dB, training-image split)")
    ax.set_title("Training runs behind the shipped files")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python docs/make_figures.py")
    p.add_argument("--results", type=Path, default=ROOT / "results")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets")
    p.add_argument("--crop-model", default="iq_l8c8")
    p.add_argument("--no-figures", action="store_true")
    a = p.parse_args(argv)
    res = load_results(a.results)
    print(table(res))
    if not a.no_figures:
        plot_psnr_vs_bytes(res, ROOT / "docs" / "psnr_vs_bytes.png")
        plot_training_curves(a.results / "training", res, ROOT / "docs" / "training_curve.png")
        if (ROOT / "models" / f"{a.crop_model}.npz").exists():
            visual_crop(a.crop_model, a.data, ROOT / "docs" / "visual_crop.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

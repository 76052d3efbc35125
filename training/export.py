"""Export a training checkpoint to the golden model file: ``python -m training.export CKPT --out models/NAME.npz``.

The integer tables, NUQD parameters, shifts and gates are taken from the checkpoint's QAT model
(exactly what its "int" mode computes); the file is validated and written atomically. With
``--check N`` the exported file is run through golden on N Set5 images and compared with the torch
"int" mode pixel for pixel (must be 0 differing pixels).
"""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import numpy as np
import torch

from golden import iqlut
from golden.modelfile import ModelFileError, load_model, save_model
from training.model import IQLUT
from training.train import build_net, load_val, restore_net
from training.data import default_data_dir


def load_ckpt(path: Path) -> tuple[IQLUT, dict]:
    st = torch.load(path, weights_only=False, map_location="cpu")
    args = argparse.Namespace(**st["args"])
    net = build_net(args)
    restore_net(net, st)
    return net, st


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.split("\n\n")[0])
    p.add_argument("ckpt", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--name", default=None, help="model name stored in the file (default: file stem)")
    p.add_argument("--check", type=int, default=0, help="compare golden vs torch int mode on N Set5 images")
    p.add_argument("--data", type=Path, default=None)
    a = p.parse_args(argv)
    if not a.ckpt.exists():
        print(f"error: checkpoint not found: {a.ckpt}", file=sys.stderr)
        return 2
    try:
        net, st = load_ckpt(a.ckpt)
    except Exception as e:  # noqa: BLE001
        print(f"error: {a.ckpt} is not a training checkpoint ({e})", file=sys.stderr)
        return 2
    meta = {
        "trained_iterations": st["iter"] + st.get("prior", {}).get("iter", 0),
        "trained_minutes": round(st["minutes"] + st.get("prior", {}).get("minutes", 0.0), 1),
        "train_args": {k: str(v) for k, v in st["args"].items()},
        "earlier_stages": [{"iterations": f["iter"], "train_args": {k: str(v) for k, v in f["args"].items()}}
                           for f in st.get("prior", {}).get("from", [])],
        "exported": datetime.date.today().isoformat(), "source_checkpoint": a.ckpt.name,
    }
    model = net.to_golden(meta)
    try:
        path = save_model(model, a.out)
        model = load_model(path)
    except ModelFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {model.lut_bytes()} B of LUT ROM, {st['iter']} iterations")
    if a.check:
        diffs = 0
        for lr, _ in load_val(a.data or default_data_dir(), "Set5", model.config.scale)[: a.check]:
            ch = lr[..., 0] if lr.ndim == 3 else lr
            g = iqlut.upscale(model, ch)
            t = net(torch.tensor(ch, dtype=torch.float32)[None, None], "int")[0, 0].numpy()
            diffs += int(np.count_nonzero(g != t))
        print(f"golden vs torch int mode: {diffs} differing pixels")
        if diffs:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train an IQ-LUT model on CPU: ``python -m training.train --config iq_l8c8 --data DIR``.

Quantization-aware from the first step (``IQLUT`` mode "qat"): the tables are the parameters,
every rounding of the golden spec is applied in the forward pass with straight-through gradients.
Optional knowledge distillation (``--teacher MODEL``, weight ``--kd``, default 3.0): the teacher is
any golden model file (e.g. ``ecnn_l8c8``), run in exact integer mode.

A run lives in ``--out`` (default runs/<config>): ``ckpt.pt`` (written atomically every
``--ckpt-min`` minutes and at the end), ``log.csv`` (iteration, minutes, loss, lr, Set5 PSNR-Y).
``--resume`` continues a run exactly where its checkpoint stopped (same RNG streams).
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from golden import spec
from golden.imageio import load_image
from golden.metrics import psnr_y
from training.data import PatchSampler, default_data_dir, load_pairs
from training.model import IQLUT


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help=f"architecture: {', '.join(spec.CONFIGS)}")
    p.add_argument("--data", type=Path, default=None, help="dataset root (default $IQLUT_DATA or ../shared/datasets)")
    p.add_argument("--train-sets", nargs="+", default=["T91", "BSD200"])
    p.add_argument("--out", type=Path, default=None, help="run directory (default runs/<config>)")
    p.add_argument("--iters", type=int, default=20000, help="total iterations of the schedule")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--patch", type=int, default=48, help="LR patch side (pixels)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak Adam learning rate (cosine decay to 1%%)")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--block-shift", type=int, default=3)
    p.add_argument("--up-shift", type=int, default=3)
    p.add_argument("--teacher", default=None, help="golden model (name or path) to distil from")
    p.add_argument("--kd", type=float, default=3.0, help="distillation loss weight")
    p.add_argument("--nuqd-search-at", type=int, default=None,
                   help="iteration of the greedy NUQD (a, b) search (default iters/4; 0 = never)")
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--val-set", default="Set5")
    p.add_argument("--ckpt-min", type=float, default=5.0, help="minutes between checkpoints")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init", type=Path, default=None,
                   help="start from the tables/NUQD/gates of this checkpoint (fresh optimizer and schedule)")
    p.add_argument("--export", type=Path, default=None,
                   help="at the end, export the model file here (training.export, with a golden check)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.config not in spec.CONFIGS:
        p.error(f"unknown --config '{a.config}'; known: {', '.join(spec.CONFIGS)}")
    for name in ("iters", "batch", "patch", "val_every", "threads"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return a


HOLDOUT_EVERY = 29


def lr_at(it: int, args) -> float:
    if it < args.warmup:
        return args.lr * (it + 1) / args.warmup
    frac = min(1.0, (it - args.warmup) / max(1, args.iters - args.warmup))
    return args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))


def load_val(data_dir: Path, set_name: str):
    d = data_dir / set_name
    if not d.is_dir():
        return []
    out = []
    for hr_path in sorted((d / "HR").glob("*.png")):
        lr = load_image(d / "LR_bicubic_sym" / "X4" / f"{hr_path.stem}x4.png")
        out.append((lr, load_image(hr_path)))
    return out


@torch.no_grad()
def validate(net: IQLUT, val, mode="qat") -> float:
    """Mean PSNR-Y of the val set, each RGB channel run independently (the eval protocol)."""
    ps = []
    for lr, hr in val:
        chans = [lr] if lr.ndim == 2 else [lr[..., c] for c in range(3)]
        x = torch.tensor(np.stack(chans)[:, None], dtype=torch.float32)
        y = net(x, mode)[:, 0].round().clamp(0, 255).numpy().astype(np.uint8)
        sr = y[0] if lr.ndim == 2 else np.stack(list(y), axis=-1)
        ps.append(psnr_y(sr, hr))
    return float(np.mean(ps)) if ps else float("nan")


def save_ckpt(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def build_net(args) -> IQLUT:
    return IQLUT(spec.get_config(args.config), block_shift=args.block_shift, up_shift=args.up_shift)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data_dir = args.data or default_data_dir()
    out = args.out or Path("runs") / args.config
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out / "ckpt.pt", out / "log.csv"
    try:
        pairs = load_pairs(data_dir, args.train_sets, cache_dir=Path("runs") / "cache")
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # every HOLDOUT_EVERY-th training channel-image is held out for the NUQD search
    held = [p for n, p in enumerate(pairs) if n % HOLDOUT_EVERY == 0]
    sampler = PatchSampler([p for n, p in enumerate(pairs) if n % HOLDOUT_EVERY], args.patch, seed=args.seed)
    search_at = args.iters // 4 if args.nuqd_search_at is None else args.nuqd_search_at
    val = load_val(data_dir, args.val_set)
    net = build_net(args)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    it, minutes = 0, 0.0
    prior = {"iter": 0, "minutes": 0.0, "from": []}   # training before --init (for provenance)
    if args.init and not args.resume:
        st = torch.load(args.init, weights_only=False)
        net.load_state_dict(st["net"])
        for layer, (a, b) in zip(net.layers, st["nuqd"]):
            layer.set_nuqd(a, b)
        p0 = st.get("prior", {"iter": 0, "minutes": 0.0, "from": []})
        prior = {"iter": p0["iter"] + st["iter"], "minutes": p0["minutes"] + st["minutes"],
                 "from": p0["from"] + [{"ckpt": str(args.init), "iter": st["iter"], "args": st["args"]}]}
        print(f"initialised from {args.init} (trained {st['iter']} iterations)")
    if args.resume:
        if not ckpt_path.exists():
            print(f"error: --resume but no checkpoint at {ckpt_path}", file=sys.stderr)
            return 2
        st = torch.load(ckpt_path, weights_only=False)
        net.load_state_dict(st["net"])
        for layer, (a, b) in zip(net.layers, st["nuqd"]):
            layer.set_nuqd(a, b)
        opt.load_state_dict(st["opt"])
        sampler.set_state(st["sampler"])
        torch.set_rng_state(st["torch_rng"])
        it, minutes = st["iter"], st["minutes"]
        prior = st.get("prior", prior)
        print(f"resumed {ckpt_path} at iteration {it} ({minutes:.1f} min trained)")
    teacher = None
    if args.teacher:
        from golden.modelfile import load_model
        teacher = IQLUT.from_golden(load_model(args.teacher))

    def state():
        return {"net": net.state_dict(), "opt": opt.state_dict(), "sampler": sampler.state(),
                "torch_rng": torch.get_rng_state(), "iter": it, "minutes": minutes,
                "nuqd": [(layer.a, layer.b) for layer in net.layers], "args": vars(args),
                "config": args.config, "prior": prior}

    new_log = not log_path.exists() or not args.resume
    logf = open(log_path, "w" if new_log else "a", newline="")
    log = csv.writer(logf)
    if new_log:
        log.writerow(["iter", "minutes", "loss", "lr", "val_psnr_y"])
    bar = None
    if not args.no_progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=args.iters, initial=it, dynamic_ncols=True)
        except ImportError:
            pass
    last_ckpt = time.time()
    t0 = time.time() - minutes * 60
    loss_avg = None
    while it < args.iters:
        lrate = lr_at(it, args)
        for g in opt.param_groups:
            g["lr"] = lrate
        lr_b, hr_b = sampler.batch(args.batch)
        lr_t, hr_t = torch.from_numpy(lr_b), torch.from_numpy(hr_b)
        pred = net(lr_t, "qat")
        loss = torch.mean((pred - hr_t) ** 2) / 255.0 ** 2
        if teacher is not None:
            with torch.no_grad():
                tgt = teacher(lr_t, "int").float()
            loss = loss + args.kd * torch.mean((pred - tgt) ** 2) / 255.0 ** 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        it += 1
        if it == search_at:
            from training.nuqd_search import greedy_search
            hl, hh = PatchSampler(held, args.patch, seed=12345).batch(4 * args.batch)
            greedy_search(net, torch.from_numpy(hl), torch.from_numpy(hh),
                          log=(bar.write if bar is not None else print))
        minutes = (time.time() - t0) / 60
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        vp = ""
        if it % args.val_every == 0 or it == args.iters:
            vp = f"{validate(net, val):.3f}" if val else ""
        log.writerow([it, f"{minutes:.2f}", f"{loss.item():.6g}", f"{lrate:.3g}", vp])
        logf.flush()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_avg:.3g}", **({"set5": vp} if vp else {}))
        elif vp:
            print(f"iter {it} {minutes:.1f} min loss {loss_avg:.4g} val {vp}", flush=True)
        if time.time() - last_ckpt > args.ckpt_min * 60 or it == args.iters:
            save_ckpt(ckpt_path, state())
            last_ckpt = time.time()
    if bar is not None:
        bar.close()
    logf.close()
    save_ckpt(ckpt_path, state())
    print(f"done: {it} iterations, {minutes:.1f} min; checkpoint {ckpt_path}")
    if args.export:
        from training import export
        return export.main([str(ckpt_path), "--out", str(args.export), "--check", "5",
                            "--data", str(data_dir)])
    return 0


if __name__ == "__main__":
    sys.exit(main())

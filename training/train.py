"""Train an IQ-LUT model on CPU: ``python -m training.train --config iq_l8c8 --data DIR``.

Quantization-aware from the first step (``IQLUT`` mode "qat"): the tables are the parameters,
every rounding of the golden spec is applied in the forward pass with straight-through gradients.
Optional knowledge distillation (``--teacher MODEL``, weight ``--kd``, default 3.0): the teacher is
any golden model file (e.g. ``ecnn_l8c8``), run in exact integer mode.

A run lives in ``--out`` (default runs/<config>): ``ckpt.pt`` (written atomically every
``--ckpt-min`` minutes and at the end; ``--save-to checkpoints/NAME.pt`` writes the same small file
there too, to commit), ``log.csv`` (iteration, minutes, loss, lr, validation PSNR, optional test-set
PSNR-Y). ``--resume`` continues a run exactly where its checkpoint stopped (same RNG streams);
``--resume FILE`` continues from that checkpoint file (e.g. a committed one) into ``--out``.
``--init`` starts a new run from a checkpoint or from a golden model file (``models/NAME.npz`` or a
model name): tables, NUQD grids, shifts and gates.

Validation: every ``HOLDOUT_EVERY``-th training image (whole images, all their channels) is held out
of the patch sampler; the mean PSNR over its channels (4-pixel border removed) is ``val_psnr``. The
NUQD search uses patches of the same held-out images. Test sets (Set5/Set14/B100) are for shipped
files (``python -m golden.eval``); ``--test-set Set5`` logs one for information only.

The EC runs as a value table with a fused C++ kernel (training/ec_table.py) and glibc's malloc is
told to keep big blocks on the heap (``tune_malloc``).
"""
from __future__ import annotations

import argparse
import csv
import ctypes
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
from golden.modelfile import ModelFileError, load_model
from training.data import PatchSampler, default_data_dir, load_pairs
from training.model import IQLUT, block_shifts
from training.optim import LazyAdam


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
    p.add_argument("--optim", choices=("adam", "lazy-adam"), default="adam",
                   help="adam, or lazy-adam (training.optim.LazyAdam: moments per table entry, advanced only "
                        "when the entry has a gradient; for tables of many levels, e.g. ecnn_l8c8)")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--table-param", choices=("entries", "mlp"), default=None,
                   help="entries (default): every table entry a parameter; mlp: each table a small MLP of the "
                        "activation value evaluated at the grid points (training.model.TableMLP; for the "
                        "256-level ecnn_l8c8). A resumed run keeps its checkpoint's choice")
    p.add_argument("--block-shift", type=shift_list, default=3,
                   help="IQ-Block accumulator right shift: one int, or one per block comma-separated "
                        "(e.g. 2,3,3,3,3,3,3,3); a tap moves a block output by at most 128 / 2^shift")
    p.add_argument("--up-shift", type=int, default=3, help="the upsampler's accumulator right shift")
    p.add_argument("--teacher", default=None, help="golden model (name or path) to distil from")
    p.add_argument("--kd", type=float, default=3.0, help="distillation loss weight")
    p.add_argument("--nuqd-search-at", type=int, default=None,
                   help="iteration of the greedy NUQD (a, b) search (default iters/4; 0 = never)")
    p.add_argument("--val-every", type=int, default=500, help="iterations between validations")
    p.add_argument("--test-set", default=None,
                   help="also log this test set's PSNR-Y (information only; validation is the held-out split)")
    p.add_argument("--ckpt-min", type=float, default=5.0, help="minutes between checkpoints")
    p.add_argument("--save-to", type=Path, default=None,
                   help="at every checkpoint also write it here (e.g. checkpoints/NAME.pt, to commit)")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="FILE",
                   help="continue the run in --out (or from the checkpoint FILE, writing into --out)")
    p.add_argument("--init", default=None,
                   help="start from this checkpoint (.pt) or golden model file (models/NAME.npz or a name): "
                        "tables, NUQD grids, shifts, gates (fresh optimizer and schedule)")
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
    try:
        block_shifts(spec.get_config(a.config), a.block_shift, a.up_shift)
    except ValueError as e:
        p.error(f"--block-shift / --up-shift: {e}")
    return a


#: every HOLDOUT_EVERY-th training image (file order) is held out for validation and the NUQD search
HOLDOUT_EVERY = 29


def split_holdout(pairs):
    """(lr, hr, image) items -> (training pairs, held-out pairs): whole images (every channel) with
    image number % HOLDOUT_EVERY == 0 are held out."""
    train = [(lr, hr) for lr, hr, img in pairs if img % HOLDOUT_EVERY]
    held = [(lr, hr) for lr, hr, img in pairs if img % HOLDOUT_EVERY == 0]
    return train, held


def _mallopt(mmap_threshold: int, trim_threshold: int) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, mmap_threshold)    # M_MMAP_THRESHOLD
        libc.mallopt(-1, trim_threshold)    # M_TRIM_THRESHOLD
    except (OSError, AttributeError):       # not glibc: nothing to tune
        pass


def tune_malloc() -> None:
    """Keep blocks up to 1 GB on glibc's heap and do not trim it: no mmap/munmap and page faults for
    each big tensor of each step. (MALLOC_MMAP_THRESHOLD_=1073741824 in the environment alone does
    less: the heap top is still trimmed; mallopt works from inside the process.) No-op without glibc."""
    _mallopt(1 << 30, 1 << 30)


def default_malloc() -> None:
    """glibc's steady state without tuning (for bench.train_speed's old loop): the dynamic mmap
    threshold tops out at 32 MB, the trim threshold at twice that."""
    _mallopt(32 << 20, 64 << 20)


def lr_at(it: int, args) -> float:
    if it < args.warmup:
        return args.lr * (it + 1) / args.warmup
    frac = min(1.0, (it - args.warmup) / max(1, args.iters - args.warmup))
    return args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))


def load_val(data_dir: Path, set_name: str, scale: int = 4):
    """(lr, hr) of a test set at x``scale`` as golden.eval makes them (x4: the LR_bicubic_sym files;
    x2/x3: MATLAB-exact bicubic of the cropped HR). [] if the set is absent."""
    from golden.eval import make_lr, modcrop
    d = data_dir / set_name
    if not d.is_dir():
        return []
    out = []
    for hr_path in sorted((d / "HR").glob("*.png")):
        hr = modcrop(load_image(hr_path), scale)
        lr = load_image(d / "LR_bicubic_sym" / "X4" / f"{hr_path.stem}x4.png") if scale == 4 else make_lr(hr, scale)
        out.append((lr, hr))
    return out


@torch.no_grad()
def validate(net: IQLUT, val, mode="qat") -> float:
    """Mean PSNR-Y (dB) of (lr, hr) images, each RGB channel run independently (the eval protocol);
    a single-channel image's PSNR is on that channel."""
    ps = []
    for lr, hr in val:
        chans = [lr] if lr.ndim == 2 else [lr[..., c] for c in range(3)]
        x = torch.tensor(np.stack(chans)[:, None], dtype=torch.float32)
        y = net(x, mode)[:, 0].round().clamp(0, 255).numpy().astype(np.uint8)
        sr = y[0] if lr.ndim == 2 else np.stack(list(y), axis=-1)
        ps.append(psnr_y(sr, hr, border=net.cfg.scale))
    return float(np.mean(ps)) if ps else float("nan")


def shift_list(text: str):
    """``--block-shift``: "3" -> 3, "2,3,3" -> (2, 3, 3) (argparse type; bad text: ValueError)."""
    vals = tuple(int(v) for v in text.split(","))
    return vals[0] if len(vals) == 1 else vals


def save_ckpt(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def build_net(args) -> IQLUT:
    return IQLUT(spec.get_config(args.config), block_shift=args.block_shift, up_shift=args.up_shift,
                 table_param=getattr(args, "table_param", None) or "entries")


def net_state(net: IQLUT) -> dict:
    """What a checkpoint needs besides the parameters: NUQD (a, b), integer grids, shifts."""
    return {"nuqd": [(layer.a, layer.b) for layer in net.layers],
            "grids": [layer.grid.long().tolist() for layer in net.layers],
            "shifts": [layer.shift for layer in net.layers]}


def restore_net(net: IQLUT, st: dict) -> None:
    """Load a checkpoint's tables, gates, NUQD grids and shifts (older checkpoints: grids from (a, b))."""
    net.load_state_dict(st["net"])
    grids = st.get("grids") or [None] * len(net.layers)
    for layer, (a, b), g in zip(net.layers, st["nuqd"], grids):
        layer.set_nuqd(a, b, g)
    for layer, s in zip(net.layers, st.get("shifts") or []):
        layer.shift = s


def init_from_model(net: IQLUT, name: str, config: str) -> dict:
    """Copy a golden model file's tables, grids, shifts and gates into net; returns its provenance."""
    m = load_model(name)
    want = spec.get_config(config)
    if m.config.layers != want.layers or (m.config.act_bits, m.config.entry_bits, m.config.gate_bits) != \
            (want.act_bits, want.entry_bits, want.gate_bits):
        raise ModelFileError(f"{name}: its architecture is not --config {config}")
    src = IQLUT.from_golden(m)
    for layer, s in zip(net.layers, src.layers):
        layer.set_nuqd(s.a, s.b, s._grid_np)
        layer.shift = s.shift
        layer.set_table(s.lut.detach(), log=print)
        if s.alpha is not None:
            with torch.no_grad():
                layer.alpha.copy_(s.alpha)
    return {"iter": int(m.meta.get("trained_iterations", 0)), "minutes": float(m.meta.get("trained_minutes", 0.0)),
            "args": dict(m.meta.get("train_args", {}))}


LOG_HEADER = ["iter", "minutes", "loss", "lr", "val_psnr", "test_psnr_y"]


def open_log(path: Path, append: bool, upto: int = 0):
    """log.csv for writing. Appending (a resume at iteration ``upto``): rows after ``upto`` (logged
    after the checkpoint by the interrupted process) are dropped, and an older log (other columns) is
    rewritten with the current header, columns kept by name (the old Set5 column 'val_psnr_y'
    becomes 'test_psnr_y')."""
    if append and path.exists():
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        later = any(r and r[0].isdigit() and int(r[0]) > upto for r in rows[1:])
        if rows and (rows[0] != LOG_HEADER or later):
            old = [dict(zip(rows[0], r)) for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= upto]
            if "val_psnr_y" in rows[0]:       # older runs validated on Set5, a test set
                for r in old:
                    r["test_psnr_y"] = r.pop("val_psnr_y")
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(LOG_HEADER)
                w.writerows([r.get(k, "") for k in LOG_HEADER] for r in old)
            os.replace(tmp, path)
        logf = open(path, "a", newline="")
        return logf, csv.writer(logf)
    logf = open(path, "w", newline="")
    w = csv.writer(logf)
    w.writerow(LOG_HEADER)
    return logf, w


def main(argv=None) -> int:
    args = parse_args(argv)
    tune_malloc()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data_dir = args.data or default_data_dir()
    out = args.out or Path("runs") / args.config
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out / "ckpt.pt", out / "log.csv"
    try:
        pairs = load_pairs(data_dir, args.train_sets, cache_dir=Path("runs") / "cache", with_image=True,
                           scale=spec.get_config(args.config).scale)
        train_pairs, held = split_holdout(pairs)
        sampler = PatchSampler(train_pairs, args.patch, seed=args.seed)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    search_at = args.iters // 4 if args.nuqd_search_at is None else args.nuqd_search_at
    test = load_val(data_dir, args.test_set, spec.get_config(args.config).scale) if args.test_set else []
    if args.test_set and not test:
        print(f"error: --test-set {args.test_set}: no images under {data_dir / args.test_set}", file=sys.stderr)
        return 2
    st = None
    if args.resume:
        src_path = ckpt_path if args.resume is True else Path(args.resume)
        if not src_path.exists():
            print(f"error: --resume but no checkpoint at {src_path}", file=sys.stderr)
            return 2
    elif args.init and str(args.init).endswith(".pt"):
        src_path = Path(args.init)
        if not src_path.exists():
            print(f"error: --init: no checkpoint at {src_path}", file=sys.stderr)
            return 2
    if args.resume or (args.init and str(args.init).endswith(".pt")):
        st = torch.load(src_path, weights_only=False)
        was = st["args"].get("table_param") or "entries"
        if args.table_param not in (None, was):
            print(f"error: --table-param {args.table_param}, but {src_path} was trained with {was}",
                  file=sys.stderr)
            return 2
        args.table_param = was
    args.table_param = args.table_param or "entries"
    net = build_net(args)
    opt = (LazyAdam if args.optim == "lazy-adam" else torch.optim.Adam)(net.parameters(), lr=args.lr)
    it, minutes = 0, 0.0
    prior = {"iter": 0, "minutes": 0.0, "from": []}   # training before --init (for provenance)
    if args.init and not args.resume:
        if str(args.init).endswith(".pt"):
            restore_net(net, st)
            p0 = st.get("prior", {"iter": 0, "minutes": 0.0, "from": []})
            prior = {"iter": p0["iter"] + st["iter"], "minutes": p0["minutes"] + st["minutes"],
                     "from": p0["from"] + [{"ckpt": str(args.init), "iter": st["iter"], "args": st["args"]}]}
        else:
            try:
                src = init_from_model(net, args.init, args.config)
            except (ModelFileError, FileNotFoundError, ValueError) as e:
                print(f"error: --init: {e}", file=sys.stderr)
                return 2
            prior = {"iter": src["iter"], "minutes": src["minutes"],
                     "from": [{"ckpt": str(args.init), "iter": src["iter"], "args": src["args"]}]}
        print(f"initialised from {args.init} (trained {prior['iter']} iterations before)")
    if args.resume:
        if "opt" not in st:
            print(f"error: {src_path} has no optimizer state (a committed net-only checkpoint): "
                  "start from it with --init instead of --resume", file=sys.stderr)
            return 2
        restore_net(net, st)
        opt.load_state_dict(st["opt"])
        sampler.set_state(st["sampler"])
        torch.set_rng_state(st["torch_rng"])
        it, minutes = st["iter"], st["minutes"]
        prior = st.get("prior", prior)
        print(f"resumed {src_path} at iteration {it} ({minutes:.1f} min trained)")
    teacher = None
    if args.teacher:
        from golden.modelfile import load_model
        teacher = IQLUT.from_golden(load_model(args.teacher))

    def state():
        return {"net": net.state_dict(), "opt": opt.state_dict(), "sampler": sampler.state(),
                "torch_rng": torch.get_rng_state(), "iter": it, "minutes": minutes, **net_state(net),
                "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "config": args.config, "prior": prior}

    def checkpoint():
        st = state()
        save_ckpt(ckpt_path, st)
        if args.save_to:
            args.save_to.parent.mkdir(parents=True, exist_ok=True)
            save_ckpt(args.save_to, st)

    logf, log = open_log(log_path, append=bool(args.resume), upto=it)
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
        vp = tp = ""
        if it % args.val_every == 0 or it == args.iters:
            vp = f"{validate(net, held):.3f}"
            tp = f"{validate(net, test):.3f}" if test else ""
        log.writerow([it, f"{minutes:.2f}", f"{loss.item():.6g}", f"{lrate:.3g}", vp, tp])
        logf.flush()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_avg:.3g}", **({"val": vp} if vp else {}))
        elif vp:
            print(f"iter {it} {minutes:.1f} min loss {loss_avg:.4g} val {vp}"
                  + (f" {args.test_set} {tp}" if tp else ""), flush=True)
        if time.time() - last_ckpt > args.ckpt_min * 60 or it == args.iters:
            checkpoint()
            last_ckpt = time.time()
    if bar is not None:
        bar.close()
    logf.close()
    checkpoint()
    print(f"done: {it} iterations, {minutes:.1f} min; checkpoint {ckpt_path}")
    if args.export:
        from training import export
        return export.main([str(ckpt_path), "--out", str(args.export), "--check", "5",
                            "--data", str(data_dir)])
    return 0


if __name__ == "__main__":
    sys.exit(main())

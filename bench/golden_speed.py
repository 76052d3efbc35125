"""Speed of the golden integer model on one 960x540 LR frame (-> 3840x2160 HR).

Usage::

    python -m bench.golden_speed [--model NAME | --config iq_l8c8] [--repeat 3]
                                 [--size 960x540] [--target 2.0] [--only luma|rgb] [--strict]

Times ``golden.iqlut.upscale`` on a deterministic synthetic LR frame (smooth gradients plus
noise), once as a single channel (luma) and once as RGB (three independent channels), and
prints the best of ``--repeat`` runs in seconds and LR megapixels per second, with pass/fail
against the target (default 2 s per frame). The model is a seeded random model of
``--config`` (default iq_l8c8; random LUT contents run at the same speed as trained ones), or
with ``--model`` a shipped model name or a path to a ``.npz`` model file.

Exit code 0 (also when the target is missed, unless ``--strict``: then 1); 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

from golden import iqlut, spec
from golden.modelfile import ModelFileError, load_model, random_model

TARGET_SECONDS = 2.0


def synthetic_frame(w: int, h: int, channels: int, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 (h, w) or (h, w, 3) frame: gradients + texture + noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(channels):
        base = 128 + 60 * np.sin(xx / (37.0 + 11 * c)) * np.cos(yy / (23.0 + 7 * c))
        base += 40 * (xx / max(w - 1, 1) - 0.5) + rng.normal(0, 12, (h, w))
        planes.append(np.clip(np.round(base), 0, 255).astype(np.uint8))
    return planes[0] if channels == 1 else np.stack(planes, axis=-1)


def time_best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def parse_size(s: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, e.g. 960x540, got {s!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {s!r}")
    return w, h


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.golden_speed",
                                description="Time the golden integer model on one LR frame.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", default=None, help="shipped model name or .npz path (default: a random model)")
    g.add_argument("--config", default="iq_l8c8", help=f"config of the random model: {', '.join(spec.CONFIGS)}")
    p.add_argument("--seed", type=int, default=0, help="seed of the random model and the frame")
    p.add_argument("--size", type=parse_size, default=(960, 540), help="LR frame WxH (default 960x540)")
    p.add_argument("--repeat", type=int, default=3, help="runs per mode, the best is reported (default 3)")
    p.add_argument("--target", type=float, default=TARGET_SECONDS, help="seconds per frame (default 2)")
    p.add_argument("--only", choices=("luma", "rgb"), default=None, help="time one mode only")
    p.add_argument("--strict", action="store_true", help="exit 1 if a mode misses the target")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error(f"--repeat must be >= 1, got {args.repeat}")

    try:
        if args.model:
            model, desc = load_model(args.model), f"model file {args.model}"
        else:
            model = random_model(args.config, seed=args.seed)
            desc = f"random model of {args.config} (seed {args.seed})"
    except (ModelFileError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    w, h = args.size
    s = model.config.scale
    mpx = w * h / 1e6
    print(f"golden.iqlut.upscale, {desc}: {model.config.name}, LUT {model.lut_bytes():,} B")
    print(f"LR {w}x{h} -> HR {w * s}x{h * s}, best of {args.repeat}; "
          f"python {platform.python_version()}, numpy {np.__version__}")
    modes = [m for m in ("luma", "rgb") if args.only in (None, m)]
    failed = False
    for mode in modes:
        lr = synthetic_frame(w, h, 1 if mode == "luma" else 3, args.seed)
        hr = iqlut.upscale(model, lr[:4, :4])                    # warm-up (cached grids, widths)
        sec = time_best(lambda: iqlut.upscale(model, lr), args.repeat)
        ok = sec <= args.target
        failed |= not ok
        label = "luma (1 channel)" if mode == "luma" else "RGB (3 channels)"
        print(f"{label:<17} {sec:8.2f} s/frame  {mpx / sec:6.3f} LR Mpx/s  "
              f"target {args.target:g} s: {'PASS' if ok else 'FAIL'}")
        del hr
    return 1 if (failed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())

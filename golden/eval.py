"""Super-resolution benchmark CLI (x2, x3, x4).

Usage::

    python -m golden.eval --model NAME --data DIR --sets Set5 Set14 B100 \
        [--json OUT] [--save DIR] [--limit N] [--ref-luts DIR]

Protocol (see :mod:`golden.metrics`): HR from ``<DIR>/<set>/HR/<name>.png``
cropped to a multiple of the scale s at the bottom / right; LR at x4 from
``<DIR>/<set>/LR_bicubic_sym/X4/<name>x4.png`` (MATLAB bicubic files), at x2/x3
made from the cropped HR by the MATLAB-exact bicubic ``imresize(hr, 1/s)`` of
``golden.bicubic`` (the same recipe; at x4 it reproduces the files bit for
bit); the model runs on each RGB channel independently (a grayscale image is
one channel); PSNR on unrounded BT.601 Y (offset 16) with an s-px border,
SSIM (11x11 Gaussian, sigma 1.5) on the whole Y image; grayscale images are
scored as gray -> RGB.

``--scale`` defaults to the model's own scale (4 for the published tables and
bicubic).

Models: ``bicubic`` (MATLAB-exact imresize, symmetric boundary),
``srlut`` (published SR-LUT-S x4 table, from ``--ref-luts``, default
``<repo>/../shared/reference_luts``), ``mulut`` (MuLUT-SDY-X2 tables, same folder,
``golden.mulut``), ``tinylut`` (TinyLUT-S tables in its ``tinylut/``; needs the model's
clip scales, ``$TINYLUT_SCALES``, see ``golden.tinylut``), anything else is an IQ-LUT model
resolved with ``golden.modelfile.load_model`` and run with
``golden.iqlut.upscale``.

Exit codes: 0 success, 2 bad arguments / missing data / unknown model.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from typing import Callable, Sequence

import numpy as np

from . import metrics
from .bicubic import imresize
from .imageio import ImageError, load_image, save_image
from .spec import SCALES

SCALE = 4
LR_SUBDIR = os.path.join("LR_bicubic_sym", "X4")
HR_SUBDIR = "HR"

#: the published tables run at x4 only
X4_ONLY = ("srlut", "mulut", "tinylut")


def protocol(scale: int) -> str:
    """The protocol text recorded in a results JSON."""
    lr = ("LR = <set>/LR_bicubic_sym/X4 (MATLAB bicubic, symmetric boundary)" if scale == SCALE else
          f"LR = golden.bicubic.imresize(HR, 1/{scale}) (MATLAB-exact bicubic, symmetric boundary)")
    return PROTOCOL.replace("x4; LR = <set>/LR_bicubic_sym/X4 (MATLAB bicubic, symmetric boundary)",
                            f"x{scale}; {lr}").replace("a multiple of 4", f"a multiple of {scale}") \
        .replace("a 4-px border", f"a {scale}-px border")


PROTOCOL = (
    "x4; LR = <set>/LR_bicubic_sym/X4 (MATLAB bicubic, symmetric boundary); HR = <set>/HR "
    "modcropped to a multiple of 4; model applied to each RGB channel independently "
    "(grayscale = one channel); PSNR on unrounded BT.601 Y = 16 + (65.481 R + 128.553 G + "
    "24.966 B)/255 with a 4-px border removed; SSIM (Wang et al., 11x11 Gaussian sigma 1.5, "
    "valid filtering, C1=(0.01*255)^2, C2=(0.03*255)^2) on the whole Y image; grayscale "
    "images scored as gray->RGB; set figures are means over images"
)

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EvalError(Exception):
    """A user-facing error: printed on stderr, exit code 2."""


def default_data_dir() -> str:
    """``$IQLUT_DATA`` or ``<repo>/../shared/datasets``."""
    return os.environ.get("IQLUT_DATA") or os.path.join(os.path.dirname(_REPO), "shared", "datasets")


def default_ref_luts_dir() -> str:
    return os.path.join(os.path.dirname(_REPO), "shared", "reference_luts")


def portable_path(path: str) -> str:
    """``path`` relative to the repository, '/'-separated (e.g. ``../shared/datasets``), so that a
    results JSON names no machine-specific folder; the base name if no relative path exists."""
    try:
        rel = os.path.relpath(os.path.abspath(path), _REPO)
    except ValueError:  # another drive (Windows)
        return os.path.basename(os.path.normpath(path))
    return rel.replace(os.sep, "/")


def modcrop(img: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """Crop the bottom/right so that H and W are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR of a uint8 HR image (H, W[, 3]) whose sides are multiples of ``scale``: MATLAB-exact
    ``imresize(hr, 1/scale, 'bicubic')`` per channel (antialiased, symmetric boundary)."""
    return per_channel(lambda ch: imresize(ch, 1 / scale, "symmetric"))(hr)


def per_channel(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a 2-D uint8 -> 2-D uint8 upscaler to run on every channel of an image."""

    def run(lr: np.ndarray) -> np.ndarray:
        if lr.ndim == 2:
            return np.asarray(fn(lr))
        return np.stack([np.asarray(fn(np.ascontiguousarray(lr[:, :, c]))) for c in range(lr.shape[2])], axis=2)

    return run


def make_model(name: str, ref_luts: str | None = None,
               scale: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Return a function uint8 LR (H, W[, 3]) -> uint8 HR (sH, sW[, 3]); its ``scale`` attribute
    (if set; else 4) is s. ``scale`` None = the model's own (bicubic: 4)."""
    if scale is not None and scale not in SCALES:
        raise EvalError(f"--scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    if name == "bicubic":
        s = scale or SCALE
        run = per_channel(lambda ch: imresize(ch, s, "symmetric"))
        run.scale = s
        return run
    if name in X4_ONLY and scale not in (None, SCALE):
        raise EvalError(f"model {name!r} is a published x4 table: it cannot run at x{scale}")
    if name == "srlut":
        from .srlut import DEFAULT_LUT_NAME, load_srlut, srlut_upscale

        path = os.path.join(ref_luts or default_ref_luts_dir(), DEFAULT_LUT_NAME)
        try:
            load_srlut(path)
        except (OSError, ValueError) as exc:
            raise EvalError(f"cannot load the SR-LUT table: {exc}") from exc
        run = per_channel(lambda ch: srlut_upscale(ch, path))
        run.info = {"lut_bytes": int(load_srlut(path).size), "table": portable_path(path)}  # int8 entries
        return run
    if name == "mulut":
        from .mulut import load_mulut, lut_bytes, mulut_upscale

        folder = ref_luts or default_ref_luts_dir()
        try:
            tables = load_mulut(folder)
        except (OSError, ValueError) as exc:
            raise EvalError(f"cannot load the MuLUT tables: {exc}") from exc
        run = per_channel(lambda ch: mulut_upscale(ch, folder))
        run.info = {"lut_bytes": lut_bytes(tables), "tables": "MuLUT-SDY-X2 (mulut_sdy_x2_x4_4bit_int8_*.npy)"}
        return run
    if name == "tinylut":
        from . import tinylut

        folder = os.path.join(ref_luts or default_ref_luts_dir(), "tinylut")
        try:
            tables = tinylut.load_tinylut(folder)
            scales_path = tinylut.default_scales_path(folder)
            scales = tinylut.load_scales(scales_path)
            tinylut.check_scales(tables, scales)
        except (OSError, ValueError) as exc:
            raise EvalError(f"cannot run TinyLUT: {exc}") from exc
        run = per_channel(lambda ch: tinylut.tinylut_upscale(ch, scales, folder))
        run.info = {"lut_bytes": tinylut.lut_bytes(tables), "tables": "TinyLUT-S (tinylut/*.npy)",
                    "scales": portable_path(scales_path)}
        return run
    try:
        from .modelfile import load_model
        from .iqlut import upscale
    except ImportError as exc:
        raise EvalError(f"model {name!r}: IQ-LUT support is not available ({exc})") from exc
    try:
        model = load_model(name)
    except (ValueError, OSError) as exc:
        raise EvalError(f"cannot load model: {exc}") from exc
    if scale not in (None, model.config.scale):
        raise EvalError(f"model {name!r} is x{model.config.scale}, not x{scale}")
    run = per_channel(lambda ch: upscale(model, ch))
    run.scale = model.config.scale
    run.info = {"config": model.config.name, "lut_bytes": model.lut_bytes(),
                "trained_iterations": model.meta.get("trained_iterations"), "meta": model.meta}
    return run


def list_images(data: str, set_name: str, scale: int = SCALE) -> list[str]:
    """Image names (HR stems) of a set; at x4 the LR file folder must exist too."""
    set_dir = os.path.join(data, set_name)
    if not os.path.isdir(set_dir):
        avail = sorted(d for d in os.listdir(data) if os.path.isdir(os.path.join(data, d)))
        raise EvalError(f"unknown set {set_name!r}: no directory {set_dir} (available: {', '.join(avail) or 'none'})")
    hr_dir = os.path.join(set_dir, HR_SUBDIR)
    lr_dir = os.path.join(set_dir, LR_SUBDIR)
    for d in (hr_dir, lr_dir) if scale == SCALE else (hr_dir,):
        if not os.path.isdir(d):
            raise EvalError(f"set {set_name!r}: missing directory {d}")
    names = sorted(f[:-4] for f in os.listdir(hr_dir) if f.lower().endswith(".png"))
    if not names:
        raise EvalError(f"set {set_name!r}: no PNG images in {hr_dir}")
    return names


def _progress(it, desc: str, total: int):
    try:
        from tqdm import tqdm
    except ImportError:
        return it
    return tqdm(it, desc=desc, total=total, leave=False, file=sys.stderr, disable=not sys.stderr.isatty())


def evaluate(
    model_name: str,
    data: str,
    sets: Sequence[str],
    *,
    limit: int | None = None,
    save_dir: str | None = None,
    ref_luts: str | None = None,
    scale: int | None = None,
) -> dict:
    """Run the benchmark and return the result dict (the JSON document). ``scale`` None: the
    model's own."""
    if not os.path.isdir(data):
        raise EvalError(f"data directory not found: {data}")
    run = make_model(model_name, ref_luts, scale)
    scale = getattr(run, "scale", SCALE)
    image_lists = {s: list_images(data, s, scale) for s in sets}  # check every set before running
    result = {
        "model": model_name,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "scale": scale,
        "protocol": protocol(scale),
        "data": portable_path(data),
        "model_info": getattr(run, "info", {}),
        "sets": {},
    }
    for s in sets:
        names = image_lists[s][: limit if limit else None]
        per_image = []
        t0 = time.perf_counter()
        for name in _progress(names, s, len(names)):
            lr_path = os.path.join(data, s, LR_SUBDIR, f"{name}x{SCALE}.png")
            hr_path = os.path.join(data, s, HR_SUBDIR, f"{name}.png")
            try:
                hr = modcrop(load_image(hr_path), scale)
                lr = load_image(lr_path) if scale == SCALE else make_lr(hr, scale)
            except ImageError as exc:
                raise EvalError(str(exc)) from exc
            if lr.ndim != hr.ndim or hr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
                raise EvalError(f"{s}/{name}: LR {lr.shape} and HR {hr.shape} do not match at x{scale}")
            sr = np.asarray(run(lr))
            if sr.shape != hr.shape or sr.dtype != np.uint8:
                raise EvalError(
                    f"{s}/{name}: model {model_name!r} returned {sr.dtype} {sr.shape}, expected uint8 {hr.shape}"
                )
            per_image.append(
                {"name": name, "psnr_y": metrics.psnr_y(sr, hr, border=scale), "ssim_y": metrics.ssim_y(sr, hr)}
            )
            if save_dir:
                out_dir = os.path.join(save_dir, s)
                os.makedirs(out_dir, exist_ok=True)
                save_image(os.path.join(out_dir, f"{name}.png"), sr)
        result["sets"][s] = {
            "psnr_y": float(np.mean([r["psnr_y"] for r in per_image])),
            "ssim_y": float(np.mean([r["ssim_y"] for r in per_image])),
            "images": len(per_image),
            "seconds": round(time.perf_counter() - t0, 3),
            "per_image": per_image,
        }
    return result


def format_table(result: dict) -> str:
    info = result.get("model_info", {})
    extra = f", LUT {info['lut_bytes']:,} B" if info.get("lut_bytes") else ""
    if info.get("trained_iterations"):
        extra += f", {info['trained_iterations']} iterations"
    lines = [f"model: {result['model']}  (x{result['scale']}, PSNR/SSIM on Y{extra})",
             f"{'set':<10} {'PSNR (dB)':>10} {'SSIM':>8} {'images':>7}"]
    for s, r in result["sets"].items():
        lines.append(f"{s:<10} {r['psnr_y']:>10.2f} {r['ssim_y']:>8.4f} {r['images']:>7d}")
    return "\n".join(lines)


def _write_json_atomic(path: str, doc: dict) -> None:
    from .fileutil import atomic_open
    with atomic_open(path, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m golden.eval", description="SR benchmark (PSNR/SSIM on Y), x2/x3/x4.")
    p.add_argument("--model", required=True, help="bicubic, srlut, mulut, tinylut, or an IQ-LUT model name/path")
    p.add_argument("--data", default=None, help="dataset root (default: $IQLUT_DATA or <repo>/../shared/datasets)")
    p.add_argument("--sets", nargs="+", default=["Set5", "Set14", "B100"], help="set names under --data")
    p.add_argument("--json", dest="json_out", default=None, help="write results (per image and per set) to this JSON file")
    p.add_argument("--save", dest="save_dir", default=None, help="write SR PNGs to DIR/<set>/<name>.png")
    p.add_argument("--scale", type=int, choices=SCALES, default=None,
                   help="upscaling factor (default: the model's own; bicubic: 4); x2/x3 LR is made from HR "
                        "by MATLAB-exact bicubic")
    p.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    p.add_argument("--ref-luts", default=None, help="folder of the published tables (default <repo>/../shared/reference_luts)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # argparse exits with code 2 on bad syntax
    data = args.data or default_data_dir()
    try:
        if args.limit is not None and args.limit < 1:
            raise EvalError(f"--limit must be >= 1, got {args.limit}")
        result = evaluate(args.model, data, args.sets, limit=args.limit, save_dir=args.save_dir,
                          ref_luts=args.ref_luts, scale=args.scale)
    except EvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    if args.json_out:
        _write_json_atomic(args.json_out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Upscale your own pictures with a shipped IQ-LUT model (the golden integer model).

Usage::

    python -m golden.upscale [--model NAME | --scale S] [--compare] [--drop-alpha] IN... --out DIR

Writes ``DIR/<stem>_x<S>.png`` for every input (``<stem>_x<S>_compare.png`` too with
``--compare``: a crop of bicubic | ours, side by side, at most 256 x 256 HR pixels each, from
the image centre). The output equals ``golden.iqlut.upscale(model, image)``: RGB channels run
independently, a grey image stays grey.

Model: ``--model`` takes a shipped name (``models/<name>.npz``) or a path to a model file;
without it, ``--scale S`` (default 4) picks the shipped model whose ``config.scale`` is S:
``iq_l8c8`` at x4, ``iq_l8c8_x<S>`` at other scales, or the only model of that scale.

Inputs: any size, any format Pillow reads (PNG, JPEG, BMP, ...), 8-bit:

* grey (L) and RGB as they are; 1-bit -> grey, palette (without transparency), CMYK and
  YCbCr -> RGB, losslessly or as Pillow converts them;
* alpha (RGBA, LA, palette with transparency) is refused, since upscaling colour under a
  transparent area gives wrong edges: flatten it first, or pass ``--drop-alpha`` to upscale the
  colour channels only (the alpha is discarded and the output is RGB or grey; a note says so);
* 16/32-bit integer and float images are refused (convert to 8 bits first).

All inputs are checked (exist, decodable header, mode) before anything is written; outputs
are written atomically (temporary file + ``os.replace``), so a failure never leaves a
half-written file. Errors a user can cause print one line ``error: ...`` on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["main", "pick_model", "read_picture", "compare_crop", "UpscaleError"]

DEFAULT_SCALE = 4
COMPARE_CROP = 256  # HR pixels per side of each half of the --compare image
_GAP = 4  # white pixels between the two halves

_TO_GREY = {"1": "L"}
_TO_RGB = {"P": "RGB", "CMYK": "RGB", "YCbCr": "RGB"}
_ALPHA = {"RGBA": "RGB", "LA": "L", "PA": "RGB", "RGBa": "RGB", "La": "L"}


class UpscaleError(Exception):
    """A user-facing error: one line on stderr, exit code 2."""


def _default_name(scale: int) -> str:
    return "iq_l8c8" if scale == DEFAULT_SCALE else f"iq_l8c8_x{scale}"


def shipped_models() -> dict[str, int]:
    """``{name: scale}`` of the model files in ``models/`` (unreadable files are skipped)."""
    from .modelfile import MODELS_DIR, load_model

    out = {}
    for p in sorted(MODELS_DIR.glob("*.npz")):
        try:
            out[p.stem] = load_model(p).config.scale
        except (ValueError, OSError):
            continue
    return out


def pick_model(name: str | None, scale: int | None):
    """The Model to run: ``name`` (checked against ``scale`` if both are given) or the shipped
    model of ``scale`` (see the module docstring). Raises UpscaleError."""
    from .modelfile import load_model
    from .spec import SCALES

    if scale is not None and scale not in SCALES:
        raise UpscaleError(f"--scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    if name is None:
        s = scale or DEFAULT_SCALE
        models = shipped_models()
        of_scale = sorted(n for n, ms in models.items() if ms == s)
        if _default_name(s) in of_scale:
            name = _default_name(s)
        elif len(of_scale) == 1:
            name = of_scale[0]
        elif not of_scale:
            have = ", ".join(f"{n} (x{ms})" for n, ms in sorted(models.items())) or "none"
            raise UpscaleError(f"no shipped model at x{s} (shipped: {have}); pass --model PATH")
        else:
            raise UpscaleError(f"several shipped models at x{s} ({', '.join(of_scale)}): pick one with --model")
    try:
        model = load_model(name)
    except (ValueError, OSError) as exc:
        raise UpscaleError(f"cannot load model: {exc}") from None
    if scale is not None and model.config.scale != scale:
        raise UpscaleError(f"model {name!r} upscales x{model.config.scale}, not x{scale} (--scale)")
    return model


@dataclass
class Picture:
    path: str
    mode: str  # Pillow mode of the file
    size: tuple[int, int]  # (width, height)
    note: str = ""  # what the conversion did, if anything worth saying


def _open(path: str):
    from PIL import Image, UnidentifiedImageError

    if not os.path.exists(path):
        raise UpscaleError(f"{path}: file not found")
    if os.path.isdir(path):
        raise UpscaleError(f"{path}: is a directory, not an image file")
    try:
        return Image.open(path)
    except UnidentifiedImageError:
        raise UpscaleError(f"{path}: not a recognised image file") from None
    except Image.DecompressionBombError as exc:
        raise UpscaleError(f"{path}: {exc}") from None
    except OSError as exc:
        raise UpscaleError(f"{path}: cannot read: {exc}") from None


def _target_mode(im, path: str, drop_alpha: bool) -> tuple[str, str]:
    """(mode to convert to, note) for an open image; raises UpscaleError if it is refused."""
    mode = im.mode
    if mode == "P" and "transparency" in im.info:
        mode = "PA"
    if mode in ("L", "RGB"):
        return mode, ""
    if mode in _ALPHA:
        if not drop_alpha:
            raise UpscaleError(f"{path}: image mode {im.mode!r} has an alpha channel; flatten it first, "
                               f"or pass --drop-alpha to upscale the colour channels only")
        return _ALPHA[mode], "alpha channel dropped"
    if mode in _TO_GREY:
        return _TO_GREY[mode], ""
    if mode in _TO_RGB:
        return _TO_RGB[mode], ""
    raise UpscaleError(f"{path}: image mode {mode!r} is not 8-bit grey or colour "
                       f"(16/32-bit and float images: convert to 8 bits first)")


def check_picture(path: str, drop_alpha: bool = False) -> Picture:
    """Open the header of ``path`` and check it can be upscaled (no full decode)."""
    with _open(path) as im:
        _target_mode(im, path, drop_alpha)
        if im.size[0] < 1 or im.size[1] < 1:
            raise UpscaleError(f"{path}: image has zero size {im.size}")
        return Picture(path, im.mode, im.size)


def read_picture(path: str, drop_alpha: bool = False) -> tuple[np.ndarray, str]:
    """Decode ``path`` to uint8 (H, W) grey or (H, W, 3) RGB; returns (array, note)."""
    with _open(path) as im:
        target, note = _target_mode(im, path, drop_alpha)
        try:
            im.load()
            if im.mode == "P" and target == "RGB" and "transparency" in im.info:
                im = im.convert("RGBA")  # palette transparency -> alpha, then dropped below
            arr = np.asarray(im.convert(target) if im.mode != target else im, dtype=np.uint8).copy()
        except (OSError, ValueError, SyntaxError) as exc:
            raise UpscaleError(f"{path}: cannot decode image: {exc}") from None
    return arr, note


def compare_crop(lr: np.ndarray, hr: np.ndarray, scale: int, size: int = COMPARE_CROP) -> np.ndarray:
    """Bicubic (MATLAB-exact) | ``hr``, the same centre crop of at most ``size`` x ``size`` HR
    pixels from each, side by side with a 4-pixel white gap. uint8, same channels as ``lr``."""
    from .bicubic import imresize

    bic = imresize(lr, scale, "symmetric")
    h, w = hr.shape[:2]
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    gap = np.full((ch, _GAP) + hr.shape[2:], 255, np.uint8)
    return np.concatenate([bic[y:y + ch, x:x + cw], gap, hr[y:y + ch, x:x + cw]], axis=1)


def _outputs(inputs: Sequence[str], out: Path, scale: int, compare: bool) -> list[tuple[Path, Path | None]]:
    names: dict[Path, str] = {}
    res = []
    for p in inputs:
        stem = Path(p).stem
        dst = out / f"{stem}_x{scale}.png"
        if dst in names:
            raise UpscaleError(f"{p} and {names[dst]} would both be written to {dst}: rename one")
        names[dst] = p
        res.append((dst, out / f"{stem}_x{scale}_compare.png" if compare else None))
    return res


def _progress(i: int, n: int, msg: str) -> None:
    """One plain progress line per file on stderr (readable in logs and on any terminal)."""
    print(f"[{i}/{n}] {msg}", file=sys.stderr, flush=True)


def run(inputs: Sequence[str], out_dir: str, model_name: str | None = None, scale: int | None = None,
        compare: bool = False, drop_alpha: bool = False, quiet: bool = False) -> list[Path]:
    """Check everything, then upscale each input into ``out_dir``; returns the files written."""
    from .imageio import save_image
    from .iqlut import upscale

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UpscaleError(f"--out {out_dir}: exists and is not a directory")
    model = pick_model(model_name, scale)
    s = model.config.scale
    pictures = [check_picture(p, drop_alpha) for p in inputs]  # every input, before any output
    targets = _outputs(inputs, out, s, compare)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UpscaleError(f"--out {out_dir}: cannot create the directory: {exc}") from None
    written = []
    for i, (pic, (dst, cmp_dst)) in enumerate(zip(pictures, targets), 1):
        t0 = time.perf_counter()
        lr, note = read_picture(pic.path, drop_alpha)
        hr = upscale(model, lr)
        try:
            save_image(dst, hr)
            written.append(dst)
            if cmp_dst is not None:
                save_image(cmp_dst, compare_crop(lr, hr, s))
                written.append(cmp_dst)
        except OSError as exc:
            raise UpscaleError(f"cannot write {dst}: {exc}") from None
        if not quiet:
            w, h = pic.size
            _progress(i, len(pictures), f"{pic.path} -> {dst} ({w}x{h} -> {w * s}x{h * s}, "
                                        f"{model.config.name}, {time.perf_counter() - t0:.1f} s"
                                        f"{', ' + note if note else ''})")
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m golden.upscale",
                                description="Upscale pictures with a shipped IQ-LUT model (golden integer model).")
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files (PNG, JPEG, BMP, ...; grey or RGB)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--model", default=None, help="shipped model name or model file path "
                                                 "(default: the shipped model of --scale)")
    p.add_argument("--scale", type=int, default=None, help="upscaling factor: picks the shipped model "
                                                           "of that scale (default 4)")
    p.add_argument("--compare", action="store_true", help="also write <stem>_x<S>_compare.png: "
                                                          "bicubic | ours, a centre crop")
    p.add_argument("--drop-alpha", action="store_true", help="upscale images with alpha by discarding it")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # argparse exits with code 2 on bad syntax
    try:
        run(args.inputs, args.out, args.model, args.scale, args.compare, args.drop_alpha, args.quiet)
    except UpscaleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

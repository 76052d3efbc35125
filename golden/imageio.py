"""Strict 8-bit image loading/saving (Pillow) and in-memory LR validation.

Accepted images are 8-bit grayscale (PIL mode ``L``) -> uint8 (H, W) and
8-bit RGB (mode ``RGB``) -> uint8 (H, W, 3). Everything else (alpha, palette,
16/32-bit integer, float, 1-bit, CMYK, YCbCr, ...) is refused with an
:class:`ImageError` naming the file, the mode found and what is accepted,
rather than being silently converted.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from .fileutil import atomic_open

__all__ = ["ImageError", "load_image", "save_image", "check_lr_array", "ACCEPTED_MODES"]

ACCEPTED_MODES = ("L", "RGB")
_ACCEPTED_TEXT = "8-bit grayscale (mode L) or 8-bit RGB (mode RGB)"

_MODE_HINTS = {
    "RGBA": "has an alpha channel",
    "LA": "has an alpha channel",
    "La": "has an alpha channel",
    "RGBa": "has an alpha channel",
    "PA": "is a palette image with alpha",
    "P": "is a palette (indexed colour) image",
    "1": "is a 1-bit bilevel image",
    "I;16": "is a 16-bit image",
    "I;16B": "is a 16-bit image",
    "I;16L": "is a 16-bit image",
    "I;16N": "is a 16-bit image",
    "I": "is a 32-bit integer image",
    "F": "is a 32-bit floating-point image",
    "CMYK": "is a CMYK image",
    "YCbCr": "is a YCbCr image",
    "LAB": "is a Lab image",
    "HSV": "is an HSV image",
}


class ImageError(ValueError):
    """An image file cannot be used: unreadable, not an image, or unsupported mode/size."""


def _pil():
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:  # pragma: no cover - environment problem
        raise ImportError("golden.imageio needs Pillow (pip install pillow)") from exc
    return Image, UnidentifiedImageError


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png_header(p: str) -> None:
    """Report a zero-size PNG clearly (Pillow only says "cannot identify image file")."""
    try:
        with open(p, "rb") as fh:
            head = fh.read(24)
    except OSError as exc:
        raise ImageError(f"{p}: cannot read file: {exc}") from exc
    if head[:8] == _PNG_SIGNATURE and len(head) == 24 and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        if width == 0 or height == 0:
            raise ImageError(f"{p}: image has zero size ({width}x{height})")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Load an 8-bit L or RGB image file.

    Returns
    -------
    np.ndarray, uint8, shape (H, W) for mode L or (H, W, 3) for mode RGB;
    8-bit code values 0..255.

    Raises
    ------
    ImageError
        File missing/unreadable/empty/not an image/truncated, an unsupported
        mode (message names the mode found and the accepted ones), or zero size.
    """
    Image, UnidentifiedImageError = _pil()
    p = os.fspath(path)
    if not os.path.exists(p):
        raise ImageError(f"{p}: file not found")
    if os.path.isdir(p):
        raise ImageError(f"{p}: is a directory, not an image file")
    try:
        if os.path.getsize(p) == 0:
            raise ImageError(f"{p}: file is empty (0 bytes), not an image")
    except OSError as exc:
        raise ImageError(f"{p}: cannot read file: {exc}") from exc
    _check_png_header(p)
    try:
        with Image.open(p) as im:
            mode = im.mode
            size = im.size
            if mode not in ACCEPTED_MODES:
                hint = _MODE_HINTS.get(mode, "is not supported")
                raise ImageError(
                    f"{p}: image mode {mode!r} {hint}; accepted: {_ACCEPTED_TEXT}"
                )
            if size[0] == 0 or size[1] == 0:
                raise ImageError(f"{p}: image has zero size ({size[0]}x{size[1]})")
            im.load()
            arr = np.asarray(im, dtype=np.uint8).copy()
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(f"{p}: not a recognised image file") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # truncated / corrupt data
        raise ImageError(f"{p}: cannot decode image: {exc}") from exc
    if arr.size == 0:
        raise ImageError(f"{p}: image has zero size {arr.shape}")
    return arr


def check_lr_array(arr: np.ndarray) -> np.ndarray:
    """Validate an in-memory LR image; returns it unchanged.

    Requirements: numpy array, dtype uint8, shape (H, W) or (H, W, 3),
    H >= 1 and W >= 1. Raises ValueError naming the problem.
    """
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"LR image must be a numpy array, got {type(arr).__name__}")
    if arr.dtype != np.uint8:
        raise ValueError(f"LR image must have dtype uint8 (code values 0..255), got {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"LR image must be HxW or HxWx3, got {arr.ndim} dimensions (shape {arr.shape})")
    if arr.ndim == 3 and arr.shape[2] != 3:
        raise ValueError(f"LR image must have 3 channels (RGB) when 3-D, got {arr.shape[2]} (shape {arr.shape})")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"LR image must be at least 1x1, got shape {arr.shape}")
    return arr


def save_image(path: str | os.PathLike, arr: np.ndarray) -> None:
    """Write a uint8 (H, W) or (H, W, 3) image atomically.

    The image is written to a temporary file in the destination directory and
    moved into place with ``os.replace``, so readers never see a half-written
    file. The format follows the file extension (e.g. ``.png``).
    """
    Image, _ = _pil()
    check_lr_array(arr)
    p = os.fspath(path)
    ext = os.path.splitext(p)[1]
    fmt = Image.registered_extensions().get(ext.lower())
    if fmt is None:
        raise ValueError(f"{p}: unknown image file extension {ext!r}")
    with atomic_open(p, "wb") as fh:
        Image.fromarray(np.ascontiguousarray(arr)).save(fh, format=fmt)

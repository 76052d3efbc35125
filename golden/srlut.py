"""Runner of the published SR-LUT-S x4 table (Jo & Kim, CVPR 2021), numpy only, and the
rotation-ensemble / 4-simplex machinery shared with :mod:`golden.mulut`.

Vectorised re-implementation of yhjo09/SR-LUT ``3_Test_using_LUT/Test_Model_S.py``:

* table: int8, (17^4, 16) (stored as (17^4, 1, 4, 4)); entry
  ``a*L^3 + b*L^2 + c*L + d`` (L = 17) holds the 4x4 HR patch, in 8-bit code
  values, for the 2x2 LR window [[a, b], [c, d]] sampled every q = 16 grey
  levels (vertex v <-> grey level 16 v; v = 16 stands for 256);
* 4-simplex interpolation on the 4 fractional parts (x % 16), weights in units
  of 1/16;
* rotation ensemble: the LR is rotated by 0/90/180/270 degrees, padded by one
  pixel at the bottom and right, run through the table and rotated back;
  output = clip(sum of the 4 rotations / 255, 0, 1) * 255, rounded half to
  even (``np.round``), uint8. The sum of 4 rotations is intentional (the
  table was trained to be summed over the ensemble).

Padding: the published script pads with ``np.pad(..., mode='reflect')``;
``pad_mode`` selects it ("reflect", the default, matches the published
figures) or "edge" (replication). Both are kept for comparison.

Shared code (:func:`four_simplex`, :func:`rotation_ensemble`, :func:`load_lut`): a table
over the 4 pixels of a kernel (``KERNELS``: MuLUT's "s" 2x2 square, "d" dilated 3x3 corners,
"y" Y shape), K = upscale^2 outputs per entry; all sums are exact integers in units of 1/16
code value.

Channels are processed independently (any number of channels).
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

__all__ = ["srlut_upscale", "load_srlut", "load_lut", "four_simplex", "rotation_ensemble",
           "KERNELS", "DEFAULT_LUT_NAME", "default_lut_path", "ref_luts_dir"]

DEFAULT_LUT_NAME = "srlut_s_x4_4bit_int8.npy"
UPSCALE = 4
SAMPLING_BITS = 4
Q = 2 ** SAMPLING_BITS  # sampling interval, grey levels
L = 2 ** (8 - SAMPLING_BITS) + 1  # 17 vertices per dimension

#: Kernel shapes: the (dy, dx) offsets of the 4 table inputs a, b, c, d (MuLUT's naming).
KERNELS = {
    "s": ((0, 0), (0, 1), (1, 0), (1, 1)),
    "d": ((0, 0), (0, 2), (2, 0), (2, 2)),
    "y": ((0, 0), (1, 1), (1, 2), (2, 1)),
}


def ref_luts_dir() -> str:
    """``<repo>/../shared/reference_luts``: the published tables (see its README.md)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(os.path.dirname(repo), "shared", "reference_luts")


def default_lut_path() -> str:
    """``<repo>/../shared/reference_luts/srlut_s_x4_4bit_int8.npy``."""
    return os.path.join(ref_luts_dir(), DEFAULT_LUT_NAME)


@lru_cache(maxsize=16)
def _load_cached(path: str, mtime: float, outputs: int) -> np.ndarray:
    raw = np.load(path, allow_pickle=False)
    if raw.dtype != np.int8 or raw.size != L ** 4 * outputs:
        raise ValueError(
            f"{path}: expected an int8 table of {L}^4 x {outputs} entries, "
            f"got dtype {raw.dtype} shape {raw.shape}"
        )
    lut = raw.reshape(L ** 4, outputs).astype(np.int32)
    lut.setflags(write=False)
    return lut


def load_lut(path: str | os.PathLike, outputs: int) -> np.ndarray:
    """Load a 4-D int8 table as int32, shape (17^4, outputs), values -128..127 (cached).

    Raises FileNotFoundError if absent, ValueError if its dtype/size is not that of such a table.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"LUT table not found: {path}")
    return _load_cached(path, os.path.getmtime(path), outputs)


def load_srlut(path: str | os.PathLike | None = None) -> np.ndarray:
    """Load the SR-LUT-S table as int32, shape (17^4, 16), values -128..127 (cached)."""
    return load_lut(path if path is not None else default_lut_path(), UPSCALE * UPSCALE)


def four_simplex(lut: np.ndarray, img_in: np.ndarray, kernel: str = "s") -> np.ndarray:
    """Interpolate a (17^4, K) table, K = up^2, on a padded (C, h+p, w+p) array of 0..255 ints.

    ``kernel`` picks the 4 input pixels (:data:`KERNELS`); p = 1 for "s", 2 for "d"/"y".
    Returns int32 (C, h*up, w*up) in units of 1/16 code value (16x the interpolated output),
    exact.
    """
    offs = KERNELS[kernel]
    pad = max(max(dy, dx) for dy, dx in offs)
    c, hp, wp = img_in.shape
    h, w = hp - pad, wp - pad
    up = int(round(lut.shape[1] ** 0.5))
    px = np.stack([img_in[:, dy:dy + h, dx:dx + w] for dy, dx in offs], axis=-1).reshape(-1, 4)
    px = px.astype(np.int64)
    msb, lsb = px // Q, px % Q
    strides = np.array([L ** 3, L ** 2, L, 1], dtype=np.int64)
    base = msb @ strides  # (N,)
    # Sort fractions in decreasing order; ties are harmless (zero weight on the
    # vertex between tied coordinates), so the result equals the published
    # branch-by-branch code exactly.
    order = np.argsort(-lsb, axis=1, kind="stable")
    fs = np.take_along_axis(lsb, order, axis=1).astype(np.int32)  # descending
    step = strides[order]  # (N, 4)
    weights = [Q - fs[:, 0], fs[:, 0] - fs[:, 1], fs[:, 1] - fs[:, 2], fs[:, 2] - fs[:, 3], fs[:, 3]]
    idx = base.copy()
    out = weights[0][:, None] * lut[idx]
    for k in range(4):  # loop over the 4 remaining simplex vertices
        idx = idx + step[:, k]
        out += weights[k + 1][:, None] * lut[idx]
    out = out.reshape(c, h, w, up, up).transpose(0, 1, 3, 2, 4)
    return out.reshape(c, h * up, w * up)


_four_simplex = four_simplex  # name used by tests/test_srlut.py


def rotation_ensemble(img: np.ndarray, lut: np.ndarray, kernel: str = "s", pad_mode: str = "edge") -> np.ndarray:
    """Sum of the table's output over the 4 rotations of ``img`` (H, W, C), 0..255 ints.

    Each rotation is padded at the bottom/right (by the kernel's reach, ``np.pad`` ``pad_mode``),
    interpolated (:func:`four_simplex`) and rotated back. Returns int64 (C, H*up, W*up) in units
    of 1/16 code value, exact.
    """
    offs = KERNELS[kernel]
    pad = max(max(dy, dx) for dy, dx in offs)
    total = None
    for rot in range(4):
        r = np.rot90(img, rot, axes=(0, 1))
        r = np.pad(r, ((0, pad), (0, pad), (0, 0)), mode=pad_mode).transpose(2, 0, 1)
        o = np.rot90(four_simplex(lut, r, kernel), (4 - rot) % 4, axes=(1, 2)).astype(np.int64)
        total = o if total is None else total + o
    return total


def check_uint8_image(lr: np.ndarray, who: str) -> np.ndarray:
    """Validate an (H, W) or (H, W, C) uint8 image (ValueError naming ``who``)."""
    lr = np.asarray(lr)
    if lr.dtype != np.uint8:
        raise ValueError(f"{who} expects uint8, got dtype {lr.dtype}")
    if lr.ndim not in (2, 3) or lr.shape[0] < 1 or lr.shape[1] < 1:
        raise ValueError(f"{who} expects an HxW or HxWxC image, got shape {lr.shape}")
    return lr


def srlut_upscale(
    lr: np.ndarray,
    lut_path: str | os.PathLike | None = None,
    *,
    pad_mode: str = "reflect",
) -> np.ndarray:
    """Upscale a uint8 image x4 with the SR-LUT-S table.

    Parameters
    ----------
    lr : np.ndarray, uint8, shape (H, W) or (H, W, C)
        Low-resolution image, 8-bit code values; channels are independent.
    lut_path : path, optional
        The (17^4, 16) int8 table; default :func:`default_lut_path`.
    pad_mode : {"reflect", "edge"}
        Padding of the rotated input by one pixel at bottom/right.

    Returns
    -------
    np.ndarray, uint8, shape (4H, 4W) or (4H, 4W, C)
    """
    lr = check_uint8_image(lr, "srlut_upscale")
    if pad_mode not in ("reflect", "edge"):
        raise ValueError(f"pad_mode must be 'reflect' or 'edge', got {pad_mode!r}")
    if pad_mode == "reflect" and (lr.shape[0] < 2 or lr.shape[1] < 2):
        pad_mode = "edge"  # reflect needs >= 2 pixels; edge is the only sensible choice
    lut = load_srlut(lut_path)
    squeeze = lr.ndim == 2
    img = (lr[:, :, None] if squeeze else lr).astype(np.int32)  # (H, W, C)
    # sum of the 4 rotations / 16: exact in float64, the same value as the original's float sum
    total = rotation_ensemble(img, lut, "s", pad_mode).astype(np.float64) / Q
    out = total / 255.0
    out = np.round(np.clip(out, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
    return np.ascontiguousarray(out[:, :, 0] if squeeze else out)

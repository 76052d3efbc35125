"""Runner of the published MuLUT-SDY-X2 x4 tables (Li et al., ECCV 2022), numpy only.

Vectorised re-implementation of ddlee-cn/MuLUT ``sr/4_test_lut.py`` (tables from
``models/sr_x2sdy``; copies in ``<repo>/../shared/reference_luts``,
``mulut_sdy_x2_x4_4bit_int8_s{1,2}_{s,d,y}.npy``):

* two cascaded stages, each the sum of three kernels s/d/y (:data:`golden.srlut.KERNELS`)
  over the 4 rotations (:func:`golden.srlut.rotation_ensemble`: pad edge at the bottom/right
  by 1 (s) or 2 (d, y) pixels, 4-simplex interpolation in 17^4 tables, rotate back);
  with S the exact sum in 1/16 code values over the 3 x 4 = 12 terms:
* stage 1 (tables (17^4, 1), same size out): x1 = round(clip(S/16 / 12 + 127, 0, 255));
* stage 2 (tables (17^4, 16), x4 out, input x1): y = round(clip(S/16 / 3, 0, 255)), uint8.

Rounding is numpy's half-to-even on float64, as the original (its float32 products are exact
integers, so the float64 values are the same). Channels are independent.
"""

from __future__ import annotations

import os

import numpy as np

from .srlut import Q, check_uint8_image, load_lut, ref_luts_dir, rotation_ensemble

__all__ = ["mulut_upscale", "load_mulut", "lut_bytes", "table_paths", "MODES", "STAGES", "UPSCALE"]

UPSCALE = 4
MODES = ("s", "d", "y")
STAGES = 2
PREFIX = "mulut_sdy_x2_x4_4bit_int8"
#: per stage: (outputs per entry, divisor of the rotation/kernel sum, bias), as the original
_STAGE_PARAMS = {1: (1, len(MODES) * 4, 127), 2: (UPSCALE * UPSCALE, len(MODES), 0)}


def table_paths(folder: str | os.PathLike | None = None) -> dict[str, str]:
    """``{"s1_s": path, ...}``: the 6 table files in ``folder`` (default :func:`ref_luts_dir`)."""
    folder = os.fspath(folder) if folder is not None else ref_luts_dir()
    return {f"s{s}_{m}": os.path.join(folder, f"{PREFIX}_s{s}_{m}.npy")
            for s in range(1, STAGES + 1) for m in MODES}


def load_mulut(folder: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Load the 6 tables as int32: ``s1_*`` (17^4, 1), ``s2_*`` (17^4, 16) (cached).

    Raises FileNotFoundError / ValueError naming the file at fault.
    """
    return {key: load_lut(path, _STAGE_PARAMS[int(key[1])][0]) for key, path in table_paths(folder).items()}


def lut_bytes(tables: dict[str, np.ndarray]) -> int:
    """Table data in bytes (int8 entries)."""
    return int(sum(t.size for t in tables.values()))


def mulut_upscale(lr: np.ndarray, folder: str | os.PathLike | None = None) -> np.ndarray:
    """Upscale a uint8 image x4 with MuLUT-SDY-X2.

    Parameters
    ----------
    lr : np.ndarray, uint8, shape (H, W) or (H, W, C)
        Low-resolution image, 8-bit code values; channels are independent.
    folder : path, optional
        Folder of the 6 tables; default :func:`golden.srlut.ref_luts_dir`.

    Returns
    -------
    np.ndarray, uint8, shape (4H, 4W) or (4H, 4W, C)
    """
    lr = check_uint8_image(lr, "mulut_upscale")
    tables = load_mulut(folder)
    squeeze = lr.ndim == 2
    img = (lr[:, :, None] if squeeze else lr).astype(np.int32)  # (H, W, C), 0..255
    for s in range(1, STAGES + 1):
        _, avg, bias = _STAGE_PARAMS[s]
        total = sum(rotation_ensemble(img, tables[f"s{s}_{m}"], m, "edge") for m in MODES)
        val = np.clip(total.astype(np.float64) / Q / avg + bias, 0, 255)
        img = np.round(val).astype(np.int32).transpose(1, 2, 0)  # (H', W', C)
    out = img.astype(np.uint8)
    return np.ascontiguousarray(out[:, :, 0] if squeeze else out)

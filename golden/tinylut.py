"""Runner of the published TinyLUT-S x4 tables (Li et al., NeurIPS 2024), numpy only.

Vectorised re-implementation of Jonas-KD/TinyLUT ``TinyLUT_LUT`` test script (tables in
``<repo>/../shared/reference_luts/tinylut``, 37,776 B of int8):

* input x = LR - 128 (-128..127) split into MSB x_h = floor(x / 4) (-32..31, 6 bits, "H6") and
  LSB x_l = x mod 4 (0..3, 2 bits, "L2"); the two branches run the same layers on their own
  tables and are added at the end;
* depthwise (``Model_V_L1_Depth_x4_{H6,L2}``, (9 * V, 16), V = 64 or 4 input values): for each
  of the 9 pixels of the 3x3 window a 16-vector, summed, / 9, rounded; plus the window's
  bottom-right pixel; clamped to the branch range (H: -32..31, L: 0..3);
* requantisation: y_c = clamp(round(y_c * s_c), range) per channel c (16 scales per branch and
  layer: ``clip_hh1``, ``clip_hl1``, ``clip_hh2``, ``clip_hl2``);
* pointwise (``Model_V_L1_Point_x4_*``) and upsampling (``Model_V_UP_x4_*``): one segment of
  rows per channel c, indexed by y_c, each row a 16-vector; the 16 channels' rows summed, / 16,
  rounded; pointwise adds y and clamps to the branch range, then requantises with the layer-2
  scales; upsampling adds y (channel k to output k), clamps to -128..127;
* H + L, clamped to -128..127, pixel shuffle x4; rotation ensemble: the LR rotated by 0/90/180/
  270 degrees, reflect-padded by 2 pixels at the top and left, run, rotated back; the 4 results
  summed, clamped to -128..127, + 128 -> uint8.

Rounding is half to even (``torch.round``); the requantisation multiplies in float32 as the
original.

**The scales are not in the published tables.** Segment c of a pointwise/upsampling H table
holds the rows for y = round(-32 s_c) .. round(31 s_c) (L: 0 .. round(3 s_c)), so the 64 scales
fix where each channel's rows start and how y is requantised; they are stored only in the
authors' ``model_TinyLUT.pth`` (``module.clip_{hh1,hl1,hh2,hl2}``). :func:`scales_from_pth`
extracts them (needs torch) into a JSON file, read from ``$TINYLUT_SCALES`` or
``<ref_luts>/tinylut/scales.json`` (:func:`default_scales_path`).
The tables' row counts check the scales (:func:`check_scales`).

Without the ``.pth`` the method cannot be run exactly as published. :func:`infer_scales`
(``python -m golden.tinylut infer OUT.json``, about 15 min on one core) reconstructs scales
consistent with the tables: the H tables' channel boundaries stand out (a row-to-row jump far
above its neighbours), while the L splits (31 and 34 rows over 16 channels) and the scale within
the interval each segment length allows are chosen by PSNR on 10 T91 *training* images. With
the result (``results/tinylut_scales_inferred.json``) ``golden.eval --model tinylut`` measures
Set5 30.17 / Set14 27.29 / B100 26.69 dB against the paper's 30.22 / 27.33 / 26.71.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

import numpy as np

from .srlut import check_uint8_image, ref_luts_dir

__all__ = ["tinylut_upscale", "load_tinylut", "load_scales", "check_scales", "segment_starts",
           "scales_from_pth", "default_folder", "default_scales_path", "TABLES", "SCALE_KEYS", "lut_bytes"]

UPSCALE = 4
CHANNELS = 16
#: table key -> file name in the tinylut folder
TABLES = {
    "dw_h": "Model_V_L1_Depth_x4_H6.npy", "dw_l": "Model_V_L1_Depth_x4_L2.npy",
    "pw_h": "Model_V_L1_Point_x4_H6.npy", "pw_l": "Model_V_L1_Point_x4_L2.npy",
    "up_h": "Model_V_UP_x4_H6.npy", "up_l": "Model_V_UP_x4_L2.npy",
}
SCALE_KEYS = ("hh1", "hl1", "hh2", "hl2")
#: branch -> (range of the requantised values, the input values the segments are built from)
_BRANCH = {"h": ((-32, 31), np.arange(-32, 32)), "l": ((0, 3), np.arange(0, 4))}


def default_folder() -> str:
    """``<repo>/../shared/reference_luts/tinylut``."""
    return os.path.join(ref_luts_dir(), "tinylut")


@lru_cache(maxsize=4)
def _load_cached(folder: str) -> dict[str, np.ndarray]:
    tables = {}
    for key, name in TABLES.items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"TinyLUT table not found: {path}")
        raw = np.load(path, allow_pickle=False)
        if raw.dtype != np.int8 or raw.size % CHANNELS:
            raise ValueError(f"{path}: expected int8 rows of {CHANNELS}, got dtype {raw.dtype} shape {raw.shape}")
        t = raw.reshape(-1, CHANNELS).astype(np.int32)
        t.setflags(write=False)
        tables[key] = t
    want = {"dw_h": 9 * 64, "dw_l": 9 * 4}
    for key, rows in want.items():
        if tables[key].shape[0] != rows:
            raise ValueError(f"{os.path.join(folder, TABLES[key])}: expected {rows} rows, got {tables[key].shape[0]}")
    return tables


def load_tinylut(folder: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The 6 tables as int32 (rows, 16) (cached); FileNotFoundError / ValueError name the file."""
    return _load_cached(os.path.abspath(os.fspath(folder if folder is not None else default_folder())))


def lut_bytes(tables: dict[str, np.ndarray]) -> int:
    """Table data in bytes (int8 entries): 37,776 for TinyLUT-S."""
    return int(sum(t.size for t in tables.values()))


def default_scales_path(folder: str | os.PathLike | None = None) -> str:
    """``$TINYLUT_SCALES`` or ``<folder>/scales.json`` (folder: :func:`default_folder`)."""
    return os.environ.get("TINYLUT_SCALES") or os.path.join(
        os.fspath(folder if folder is not None else default_folder()), "scales.json")


def load_scales(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read ``{"hh1": [16 floats], "hl1": ..., "hh2": ..., "hl2": ...}`` as float32 arrays."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"TinyLUT scales not found: {path} (the 64 clip scales of the authors' model_TinyLUT.pth; "
            f"python -m golden.tinylut extract model_TinyLUT.pth OUT.json, and export TINYLUT_SCALES=OUT.json; "
            f"approximate scales inferred from the tables: results/tinylut_scales_inferred.json)")
    try:
        with open(path) as fh:
            d = json.load(fh)
        out = {k: np.asarray(d[k], dtype=np.float32).reshape(-1) for k in SCALE_KEYS}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: expected a JSON object with 16 floats for each of {', '.join(SCALE_KEYS)} ({exc})") from None
    for k, v in out.items():
        if v.shape != (CHANNELS,) or not np.all(np.isfinite(v)) or np.any(v < 0):
            raise ValueError(f"{path}: {k} must be 16 finite non-negative numbers, got {v.tolist()}")
    return out


def _quantised_range(s: np.float32, branch: str) -> tuple[int, int]:
    """(min, max) of round(v * s) over the branch's input values v (float32, half to even)."""
    q = np.round(_BRANCH[branch][1].astype(np.float32) * np.float32(s))
    return int(q.min()), int(q.max())


def segment_starts(scales: np.ndarray, branch: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Per channel: (first row of its segment, the y its first row stands for), total rows."""
    lo = np.array([_quantised_range(s, branch)[0] for s in scales], dtype=np.int64)
    n = np.array([_quantised_range(s, branch)[1] for s in scales], dtype=np.int64) - lo + 1
    if branch == "l":
        lo = np.zeros_like(lo)  # the original indexes the L segments by y itself
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    return starts, lo, int(n.sum())


def check_scales(tables: dict[str, np.ndarray], scales: dict[str, np.ndarray]) -> None:
    """ValueError unless each pointwise/upsampling table has the rows the scales imply."""
    for key, sk in (("pw_h", "hh1"), ("pw_l", "hl1"), ("up_h", "hh2"), ("up_l", "hl2")):
        rows = segment_starts(scales[sk], key[-1])[2]
        if rows != tables[key].shape[0]:
            raise ValueError(f"scales {sk} imply {rows} rows in {TABLES[key]}, the table has {tables[key].shape[0]}: "
                             f"these scales are not the tables' model")


def _round_div(total: np.ndarray, d: int) -> np.ndarray:
    """round(total / d), half to even, exact for integers (as torch.round(total / d))."""
    return np.round(total / d).astype(np.int64)


def _requant(y: np.ndarray, scales: np.ndarray, branch: str) -> np.ndarray:
    """clamp(round(y_c * s_c)) per channel; y int (16, h, w); float32 product as the original."""
    lo, hi = _BRANCH[branch][0]
    q = np.round(y.astype(np.float32) * scales.astype(np.float32)[:, None, None])
    return np.clip(q, lo, hi).astype(np.int64)


def _segment_sum(table: np.ndarray, y: np.ndarray, scales: np.ndarray, branch: str) -> np.ndarray:
    """sum over channels c of table[start_c + y_c - first_c] (16-vectors), / 16, rounded.
    y int (16, h, w) -> int64 (16, h, w)."""
    starts, first, _ = segment_starts(scales, branch)
    rows = starts[:, None, None] + y - first[:, None, None]
    total = table[rows].sum(axis=0)  # (h, w, 16)
    return _round_div(total, CHANNELS).transpose(2, 0, 1)


def _branch(x: np.ndarray, tables: dict, scales: dict, branch: str) -> np.ndarray:
    """One branch on a padded (h+2, w+2) int array of its values -> int64 (16, h, w) output."""
    lo, hi = _BRANCH[branch][0]
    v = 64 if branch == "h" else 4
    h, w = x.shape[0] - 2, x.shape[1] - 2
    idx = x - lo  # 0..v-1
    dw = sum(tables[f"dw_{branch}"][idx[i:i + h, j:j + w] + (3 * i + j) * v] for i in range(3) for j in range(3))
    y = np.clip(_round_div(dw, 9).transpose(2, 0, 1) + x[None, 2:, 2:], lo, hi)
    y = _requant(y, scales[f"h{branch}1"], branch)
    y = np.clip(_segment_sum(tables[f"pw_{branch}"], y, scales[f"h{branch}1"], branch) + y, lo, hi)
    y = _requant(y, scales[f"h{branch}2"], branch)
    return np.clip(_segment_sum(tables[f"up_{branch}"], y, scales[f"h{branch}2"], branch) + y, -128, 127)


def _forward(x: np.ndarray, tables: dict, scales: dict) -> np.ndarray:
    """The network on one padded (h+2, w+2) channel of x = LR - 128 -> int64 (4h, 4w), -128..127."""
    out = np.clip(_branch(x // 4, tables, scales, "h") + _branch(x % 4, tables, scales, "l"), -128, 127)
    _, h, w = out.shape
    return out.reshape(UPSCALE, UPSCALE, h, w).transpose(2, 0, 3, 1).reshape(h * UPSCALE, w * UPSCALE)


def tinylut_upscale(lr: np.ndarray, scales: dict[str, np.ndarray],
                    folder: str | os.PathLike | None = None) -> np.ndarray:
    """Upscale a uint8 image x4 with TinyLUT-S.

    Parameters
    ----------
    lr : np.ndarray, uint8, shape (H, W) or (H, W, C), H, W >= 3
        Low-resolution image, 8-bit code values; channels are independent.
    scales : {"hh1", "hl1", "hh2", "hl2": float32 (16,)}
        The model's clip scales (:func:`load_scales`); checked against the tables' row counts.
    folder : path, optional
        Folder of the 6 tables; default :func:`default_folder`.

    Returns
    -------
    np.ndarray, uint8, shape (4H, 4W) or (4H, 4W, C)
    """
    lr = check_uint8_image(lr, "tinylut_upscale")
    if lr.shape[0] < 3 or lr.shape[1] < 3:
        raise ValueError(f"tinylut_upscale needs at least 3x3 pixels (reflect padding by 2), got {lr.shape}")
    tables = load_tinylut(folder)
    check_scales(tables, scales)
    squeeze = lr.ndim == 2
    img = lr[:, :, None] if squeeze else lr
    out = np.stack([_upscale_channel(img[:, :, c], scales, tables) for c in range(img.shape[2])], axis=-1)
    return np.ascontiguousarray(out[:, :, 0] if squeeze else out)


def _upscale_channel(lr: np.ndarray, scales: dict, tables: dict) -> np.ndarray:
    """One uint8 (H, W) channel -> uint8 (4H, 4W): the rotation ensemble of :func:`_forward`."""
    x = lr.astype(np.int64) - 128
    total = 0
    for rot in range(4):
        r = np.pad(np.rot90(x, rot), ((2, 0), (2, 0)), mode="reflect")
        total = total + np.rot90(_forward(r, tables, scales), (4 - rot) % 4)
    return (np.clip(total, -128, 127) + 128).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Inferring the scales from the tables (when model_TinyLUT.pth is not at hand)
# ---------------------------------------------------------------------------------------------

_S_GRID = np.arange(1, 3200, dtype=np.float32) / np.float32(2000)  # candidate scales 0.0005..1.6


@lru_cache(maxsize=2)
def _scales_by_rows(branch: str) -> dict[int, np.ndarray]:
    """Segment length n -> the candidate scales giving n rows (L: n <= 4, the clamp's range)."""
    n = np.array([(lambda q: q[1] - (q[0] if branch == "h" else 0) + 1)(_quantised_range(s, branch))
                  for s in _S_GRID])
    return {int(k): _S_GRID[n == k] for k in np.unique(n) if branch == "h" or k <= 4}


def _split(table: np.ndarray, branch: str) -> list[int]:
    """16 feasible segment lengths maximising the summed spike ratio at the boundaries: the jump
    between two rows over the larger of its neighbouring jumps (a channel's rows are smooth)."""
    d = np.abs(np.diff(table, axis=0)).sum(1).astype(np.float64)
    ratio = d / np.maximum(np.maximum(np.r_[d[1:], 0], np.r_[0, d[:-1]]), 1)
    rows, feas = table.shape[0], sorted(_scales_by_rows(branch))
    best = np.full((CHANNELS + 1, rows + 1), -np.inf)
    best[0, 0], back = 0.0, {}
    for j in range(1, CHANNELS + 1):
        for end in range(1, rows + 1):
            for n in feas:
                if end - n >= 0 and best[j - 1, end - n] > -np.inf:
                    v = best[j - 1, end - n] + (ratio[end - 1] if end < rows else 0.0)
                    if v > best[j, end]:
                        best[j, end], back[j, end] = v, end - n
    if best[CHANNELS, rows] == -np.inf:
        raise ValueError(f"no split of {rows} rows into {CHANNELS} feasible segments")
    lens, end = [], rows
    for j in range(CHANNELS, 0, -1):
        lens.append(end - back[j, end])
        end = back[j, end]
    return lens[::-1]


def infer_scales(tables: dict[str, np.ndarray], images: list[tuple[np.ndarray, np.ndarray]],
                 log=print) -> dict[str, np.ndarray]:
    """Scales consistent with the tables, for running TinyLUT without ``model_TinyLUT.pth``.

    Segment lengths: :func:`_split` (H tables: their boundaries stand out clearly); then the L
    splits (1-4 rows per channel, ambiguous) by coordinate search, and each scale within the
    interval its length allows (quantiles 0.1..0.9), keeping the choice with the best PSNR on
    ``images`` = [(LR uint8 (h, w), HR uint8 (4h, 4w))] (use training images). Deterministic.
    """
    keys = {"hh1": "pw_h", "hl1": "pw_l", "hh2": "up_h", "hl2": "up_l"}
    lens = {sk: _split(tables[tk], tk[-1]) for sk, tk in keys.items()}

    def mid(sk, n):
        return float(np.median(_scales_by_rows(keys[sk][-1])[n]))

    sc = {sk: np.array([mid(sk, n) for n in v], np.float32) for sk, v in lens.items()}

    def score(trial):
        err = cnt = 0.0
        for lr, hr in images:
            e = (_upscale_channel(lr, trial, tables).astype(np.float64) - hr)[4:-4, 4:-4]
            err, cnt = err + (e ** 2).sum(), cnt + e.size
        return 10 * np.log10(255.0 ** 2 / (err / cnt))

    best = score(sc)
    log(f"start {best:.3f} dB")
    for sweep in range(3):  # L splits
        improved = False
        for sk in ("hl1", "hl2"):
            for i in range(CHANNELS - 1):
                tot = lens[sk][i] + lens[sk][i + 1]
                for a in range(1, tot):
                    if a == lens[sk][i] or a > 4 or tot - a > 4:
                        continue
                    cand = list(lens[sk])
                    cand[i], cand[i + 1] = a, tot - a
                    trial = dict(sc, **{sk: np.array([mid(sk, n) for n in cand], np.float32)})
                    v = score(trial)
                    if v > best + 1e-4:
                        best, sc, lens[sk], improved = v, trial, cand, True
                        log(f"{sk} split {cand}: {best:.3f} dB")
        if not improved:
            break
    for sk in ("hh2", "hh1", "hl2", "hl1"):  # each scale within its interval
        for c in range(CHANNELS):
            for q in (0.1, 0.3, 0.5, 0.7, 0.9):
                trial = {k: v.copy() for k, v in sc.items()}
                trial[sk][c] = np.quantile(_scales_by_rows(keys[sk][-1])[lens[sk][c]], q)
                v = score(trial)
                if v > best + 1e-4:
                    best, sc = v, trial
                    log(f"{sk}[{c}] = {trial[sk][c]:.4f}: {best:.3f} dB")
    check_scales(tables, sc)
    return sc


def _training_images(data: str, count: int = 10) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every 9th T91 image (sorted names), first ``count``: (LR = MATLAB-exact bicubic x1/4 of the
    modcropped HR, HR), green channel."""
    from .bicubic import imresize
    from .imageio import load_image

    folder = os.path.join(data, "T91", "HR")
    out = []
    for name in sorted(os.listdir(folder))[::9][:count]:
        hr = load_image(os.path.join(folder, name))[..., 1]
        hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
        out.append((imresize(hr, 1 / 4, "symmetric"), hr))
    return out


def scales_from_pth(pth: str | os.PathLike) -> dict[str, list[float]]:
    """The 4 x 16 clip scales of the authors' ``model_TinyLUT.pth`` (needs torch)."""
    import torch

    sd = torch.load(os.fspath(pth), map_location="cpu", weights_only=True)
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    return {k: [float(v) for v in sd[f"clip_{k}"].reshape(-1).tolist()] for k in SCALE_KEYS}


def main(argv=None) -> int:
    """``python -m golden.tinylut extract model_TinyLUT.pth OUT.json`` (the authors' scales) or
    ``python -m golden.tinylut infer OUT.json [--data DIR]`` (scales inferred, :func:`infer_scales`)."""
    import argparse
    import sys

    from .fileutil import atomic_open

    p = argparse.ArgumentParser(prog="python -m golden.tinylut",
                                description="Write the 64 TinyLUT clip scales as JSON (then: export TINYLUT_SCALES=OUT.json).")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract", help="from the authors' model_TinyLUT.pth (needs torch)")
    e.add_argument("pth")
    e.add_argument("out")
    i = sub.add_parser("infer", help="from the published tables' structure and T91 training images")
    i.add_argument("out")
    i.add_argument("--data", default=os.path.join(os.path.dirname(ref_luts_dir()), "datasets"),
                   help="dataset root holding T91/HR (default <repo>/../shared/datasets)")
    i.add_argument("--luts", default=None, help="folder of the 6 tables (default: the shared one)")
    a = p.parse_args(argv)
    try:
        if a.cmd == "extract":
            d = scales_from_pth(a.pth)
        else:
            sc = infer_scales(load_tinylut(a.luts), _training_images(a.data),
                              log=lambda m: print(m, file=sys.stderr, flush=True))
            d = {"inferred": "golden.tinylut infer (not the authors' scales)",
                 **{k: [float(v) for v in sc[k]] for k in SCALE_KEYS}}
        with atomic_open(a.out, "w") as fh:
            json.dump(d, fh, indent=1)
            fh.write("\n")
    except (OSError, KeyError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The integer reference model of IQ-LUT (numpy only). It *is* the spec: docs/fixed-point.md.

Block functions carry the names used in ``training/`` and ``hw/``: ``nuqd``, ``dpfi``, ``ec``,
``iq_block``, ``upsampler``, ``bilinear``; ``upscale`` runs the whole network.

Array conventions: activations are int32 arrays (C, H, W) of signed ``act_bits``-bit values; the LR
input is uint8 (H, W) or (H, W, 3) (RGB: each channel independently); the HR output is uint8 of
``scale`` x the size (x2, x3, x4). Every intermediate value is checked against the bounds of ``golden.spec``'s interval
analysis, so an overflow of a hardware register of the derived width is impossible unnoticed.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .imageio import check_lr_array as check_lr
from .modelfile import Model
from .spec import RECIP_SHIFT, bilinear_den, bilinear_phases, round_div, round_shift

class BoundsError(AssertionError):
    """A value left the range that interval analysis derived for it: a bug in the spec or a model
    file that bypassed validation. Raised explicitly (also under ``python -O``)."""


#: Output rows processed at a time by ``ec`` (bounds the memory of the gathered table rows).
STRIP_ROWS = 64


def input_activation(lr: np.ndarray, act_bits: int) -> np.ndarray:
    """uint8 pixels (H, W) -> the first block's input (1, H, W) int32: p * 2^(A-8) - 2^(A-1)."""
    return (lr.astype(np.int32) << (act_bits - 8))[None] - (1 << (act_bits - 1))


def nuqd(x: np.ndarray, grid: np.ndarray, recip: np.ndarray, frac_bits: int):
    """Non-uniform quantization with a comparator bank.

    x: int activations (any shape), grid: g_0..g_{L-1}, recip: R_i (``spec.nuqd_recip``).
    Returns (i, t): index i = #{j >= 1: g_j <= x} in [0, L-1] (index_bits unsigned) and fraction
    t = ((x - g_i) * R_i) >> RECIP_SHIFT in [0, 2^frac_bits - 1] (frac_bits unsigned)."""
    i = np.searchsorted(grid[1:], x, side="right")
    if frac_bits == 0:
        return i, np.zeros_like(i)
    t = ((x - grid[i]) * recip[i]) >> RECIP_SHIFT
    return i, t


def dpfi(lo: np.ndarray, hi: np.ndarray, t: np.ndarray, frac_bits: int) -> np.ndarray:
    """Dual-port fractional interpolation: lo + (((hi - lo) * t + 2^(F-1)) >> F) (lo if F = 0).

    lo = LUT[i], hi = LUT[min(i+1, L-1)] (signed entry_bits); the result lies between lo and hi."""
    if frac_bits == 0:
        return lo
    return lo + round_shift((hi - lo) * t, frac_bits)


def layer_value_table(model: Model, n: int) -> np.ndarray:
    """DPFI output of layer n for every possible input activation value.

    Returns int32 (c_in, 2^A, k, k, c_out), indexed by v = x + 2^(A-1): nuqd then dpfi applied to
    each of the 2^A values. (Every activation is one of these values, so ``ec`` can gather from it.)"""
    cfg, layer, p = model.config, model.config.layers[n], model.layers[n]
    a = cfg.act_bits
    x = np.arange(-(1 << (a - 1)), 1 << (a - 1), dtype=np.int64)
    i, t = nuqd(x, model.grids[n], model.recips[n], layer.frac_bits)
    hi_i = np.minimum(i + 1, layer.levels - 1)
    lo = p.lut[:, i]                                     # (c_in, 2^A, k, k, c_out)
    hi = p.lut[:, hi_i]
    out = dpfi(lo, hi, t[None, :, None, None, None], layer.frac_bits)
    return out.astype(np.int32)


def ec(x: np.ndarray, model: Model, n: int) -> np.ndarray:
    """Expanded convolution of layer n: (c_in, H, W) activations -> (c_out, H, W) int32 accumulator.

    Each input pixel p of channel c makes ONE lookup that returns k x k x c_out values (DPFI of
    LUT[i], LUT[i+1]); value (jy, jx, o) is added to output pixel p + origin + (jy, jx) of channel o
    ("reshape and in-place add"). Equivalently acc[o, q] = sum_{c, j} e[c, q - origin - j, j, o]
    where source coordinates outside the image are clamped to the edge (replicate)."""
    cfg, layer = model.config, model.config.layers[n]
    k, o = layer.kernel, layer.origin
    table = layer_value_table(model, n).reshape(layer.c_in, 1 << cfg.act_bits, k * k * layer.c_out)
    # int16 arithmetic when no partial sum can leave int16 (sum of the largest magnitudes), else int32
    worst = np.abs(table).max(axis=1).reshape(layer.c_in * k * k, layer.c_out).sum(axis=0).max()
    dt = np.int16 if int(worst) < (1 << 15) else np.int32
    table = table.astype(dt)
    c_in, h, w = x.shape
    v = x + (1 << (cfg.act_bits - 1))
    # source padding: output q reads sources q - o - j, j in 0..k-1
    v = np.pad(v, ((0, 0), (k - 1 + o, -o), (k - 1 + o, -o)), mode="edge")
    acc = np.empty((layer.c_out, h, w), dtype=np.int32)
    for r0 in range(0, h, STRIP_ROWS):
        r1 = min(h, r0 + STRIP_ROWS)
        s = np.take(table[0], v[0, r0:r1 + k - 1], axis=0)
        for c in range(1, c_in):
            s += np.take(table[c], v[c, r0:r1 + k - 1], axis=0)
        s = s.reshape(r1 - r0 + k - 1, w + k - 1, k, k, layer.c_out)
        a = np.zeros((r1 - r0, w, layer.c_out), dtype=dt)
        for jy in range(k):
            for jx in range(k):
                a += s[k - 1 - jy:k - 1 - jy + r1 - r0, k - 1 - jx:k - 1 - jx + w, jy, jx]
        acc[:, r0:r1] = a.transpose(2, 0, 1)
    wd = model.widths[n]
    if acc.size:
        mn, mx = acc.min(axis=(1, 2)), acc.max(axis=(1, 2))
        if not (np.all(mn >= wd.acc_lo) and np.all(mx <= wd.acc_hi)):
            raise BoundsError(f"layer {n}: EC accumulator [{mn.min()}, {mx.max()}] outside the derived "
                              f"bounds [{min(wd.acc_lo)}, {max(wd.acc_hi)}]")
    return acc


def iq_block(x: np.ndarray, model: Model, n: int) -> np.ndarray:
    """IQ-Block n: y = clamp(round_shift(ec(x), shift), act range); gated:
    x' = x + ((g * (y - x) + 2^(G-1)) >> G) with x broadcast when c_in == 1. Returns int32
    (c_out, H, W) signed act_bits."""
    cfg, layer, p = model.config, model.config.layers[n], model.layers[n]
    lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
    y = np.clip(round_shift(ec(x, model, n), p.shift), lo, hi)
    if layer.gated:
        y = x + round_shift(p.gate * (y - x), cfg.gate_bits)
    if y.size and (y.min() < lo or y.max() > hi):
        raise BoundsError(f"block {n}: activation [{y.min()}, {y.max()}] outside [{lo}, {hi}]")
    return y.astype(np.int32)


def pixel_shuffle(acc: np.ndarray, scale: int) -> np.ndarray:
    """(scale^2, H, W) -> (scale H, scale W): channel r * scale + c goes to HR (scale y + r, scale x + c)."""
    s2, h, w = acc.shape
    return acc.reshape(scale, scale, h, w).transpose(2, 0, 3, 1).reshape(h * scale, w * scale)


def upsampler(x: np.ndarray, model: Model) -> np.ndarray:
    """Upsampler: the EC of the last layer, pixel-shuffled. Returns int32 (sH, sW), the HR residual
    in units of 2^-shift pixel levels (s = the model's scale)."""
    n = len(model.config.blocks)
    return pixel_shuffle(ec(x, model, n), model.config.scale)


def _bilinear_taps(n: int, scale: int = 4):
    """Per output index Y = scale i + r, Y in 0..scale n - 1: (index0, index1, w0, w1), the two LR
    taps (clamped to 0..n-1: replicate edges) and their weights over ``spec.bilinear_axis_den(scale)``
    (``spec.bilinear_phases``: half-pixel centres, source coordinate (Y + 0.5) / scale - 0.5)."""
    left, w0, w1 = bilinear_phases(scale)
    y = np.arange(n * scale)
    i, r = y // scale, y % scale
    i0 = i + left[r]
    return np.clip(i0, 0, n - 1), np.clip(i0 + 1, 0, n - 1), w0[r], w1[r]


def bilinear(lr: np.ndarray, scale: int = 4) -> np.ndarray:
    """Bilinear x``scale`` of a uint8 (H, W) image, exact in integers: int32 (scale H, scale W) in
    units of 1/D level, D = ``spec.bilinear_den(scale)`` (64 at x4, 16 at x2, 9 at x3).

    Per axis two taps with weights over the axis denominator (x4: (3, 5), (1, 7), (7, 1), (5, 3)
    eighths for HR phase 0..3; x2: (1, 3), (3, 1) quarters; x3: (1, 2), (3, 0), (2, 1) thirds), half-pixel
    centres, replicate edges; the 2-D weight is their product. Equals D x
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` exactly."""
    h, w = lr.shape
    r0, r1, a0, a1 = _bilinear_taps(h, scale)
    c0, c1, b0, b1 = _bilinear_taps(w, scale)
    p = lr.astype(np.int32)
    rows = a0[:, None] * p[r0] + a1[:, None] * p[r1]           # (sH, W), axis denominators
    return (b0 * rows[:, c0] + b1 * rows[:, c1]).astype(np.int32)   # (sH, sW), 1/D


def combine(bil: np.ndarray, up: np.ndarray, shift: int, scale: int = 4) -> np.ndarray:
    """Final HR pixel: clamp(round_div(bil * 2^s + up * D, D * 2^s), 0, 255) as uint8, with bil the
    bilinear skip in 1/D (D = ``spec.bilinear_den(scale)``) and up the upsampler output in 2^-s levels.
    At x4 and x2 (D = 64, 16) the division is the shift (total + 2^(s+log2 D-1)) >> (s + log2 D)."""
    den = bilinear_den(scale)
    total = (bil.astype(np.int64) << shift) + up.astype(np.int64) * den
    return np.clip(round_div(total, den << shift), 0, 255).astype(np.uint8)


def upscale_channel(model: Model, lr: np.ndarray, intermediates: dict | None = None) -> np.ndarray:
    """One uint8 (H, W) channel -> uint8 (sH, sW), s = the model's scale. If ``intermediates`` is a
    dict it receives every block's integer output ('block0'..), 'upsampler' (HR residual),
    'bilinear' (in 1/``spec.bilinear_den``) and 'hr'."""
    x = input_activation(lr, model.config.act_bits)
    for n in range(len(model.config.blocks)):
        x = iq_block(x, model, n)
        if intermediates is not None:
            intermediates[f"block{n}"] = x
    up = upsampler(x, model)
    bil = bilinear(lr, model.config.scale)
    hr = combine(bil, up, model.layers[-1].shift, model.config.scale)
    if intermediates is not None:
        intermediates.update(upsampler=up, bilinear=bil, hr=hr)
    return hr


def upscale(model: Model, lr: np.ndarray, intermediates: dict | None = None) -> np.ndarray:
    """LR uint8 (H, W) or (H, W, 3) -> HR uint8 (sH, sW[, 3]), s = the model's scale; RGB channels
    run independently.

    ``intermediates`` (grayscale only) receives the per-block integer outputs, see upscale_channel."""
    check_lr(lr)
    if lr.ndim == 2:
        return upscale_channel(model, lr, intermediates)
    if intermediates is not None:
        raise ValueError("intermediates are available for single-channel input only")
    # the channels are independent; numpy releases the GIL in take/add, so threads overlap
    with ThreadPoolExecutor(max_workers=min(3, os.cpu_count() or 1)) as ex:
        chans = list(ex.map(lambda c: upscale_channel(model, np.ascontiguousarray(lr[..., c])),
                            range(lr.shape[2])))
    return np.stack(chans, axis=-1)


def received_frame(lr: np.ndarray, short_rows=()) -> np.ndarray:
    """The frame the hardware upscales when the uint8 (H, W) frame ``lr`` is sent with each row in
    ``short_rows`` one pixel short and the next start of frame follows: the pixels as sent, in
    order, re-cut into rows of the configured width W and completed with zeros (the input framing
    counts pixels from W and pads a frame cut short by the next ``tuser``; ``hw.framing``).
    Returns uint8 (H, W)."""
    h, w = lr.shape
    keep = np.ones((h, w), bool)
    keep[list(short_rows), w - 1] = False
    sent = lr[keep]
    return np.concatenate([sent, np.zeros(h * w - sent.size, np.uint8)]).reshape(h, w)

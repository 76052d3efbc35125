"""PSNR and SSIM on the BT.601 luma (Y) channel, the usual SR benchmark protocol.

Conventions (calibrated against the published bicubic / SR-LUT-S x4 figures
on Set5, Set14 and B100, see the eval module):

* ``rgb_to_y``: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 on 8-bit
  code values, returned as float64 **without rounding** (Y in [16, 235]).
  Calibration (bicubic x4): unrounded Y gives Set5 / Set14 / B100 PSNR
  28.429 / 26.088 / 25.961 dB (reference 28.43 / 26.09 / 25.96); rounding Y
  to integers first (SR-LUT's ``_rgb2ycbcr`` on uint8) gives 28.416 / 26.084 /
  25.956 and SSIM ~1e-3 lower, which does not match.
* A 2-D (grayscale, PIL mode L) image is treated as gray -> RGB (R = G = B),
  i.e. Y = 16 + 219/255 * gray, so it is scored on the same luma scale as
  colour images. (Set14 ``bridge`` is the only such test image; using the
  gray values as Y directly gives a Set14 bicubic mean of 25.994 dB instead of
  the reference 26.09.)
* PSNR: ``border`` (default 4 = the scale) pixels are removed on every side
  of Y first.
* SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, 'valid'
  filtering, C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2, mean of the SSIM map.
  **SSIM is computed on the whole Y image by default (border=0)**: the
  reference SSIM figures (bicubic 0.8110 / 0.7055 / 0.6697 on
  Set5 / Set14 / B100) are reproduced to 1e-4 only without a border crop;
  with a 4-px crop they come out 0.8111 / 0.7048 / 0.6681.

All metric inputs are uint8 images of identical shape (H, W) or (H, W, 3).
PSNR is in dB (float, ``inf`` for identical images); SSIM is unitless.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rgb_to_y", "psnr_y", "ssim_y", "psnr", "ssim", "PSNR_BORDER", "SSIM_BORDER"]

#: Border (px per side) removed before PSNR in the benchmark protocol.
PSNR_BORDER = 4
#: Border (px per side) removed before SSIM in the benchmark protocol (whole image).
SSIM_BORDER = 0


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma with offset 16 ("studio swing"), float64, shape (H, W).

    ``img``: uint8 (or any real dtype holding 0..255 code values),
    shape (H, W, 3) RGB or (H, W) grayscale. A grayscale image is treated as
    R = G = B = gray. The result is NOT rounded.
    """
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[2] == 3:
        a = a.astype(np.float64)
        return 16.0 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255.0
    if a.ndim == 2:
        a = a.astype(np.float64)
        return 16.0 + (65.481 + 128.553 + 24.966) * a / 255.0
    raise ValueError(f"expected an HxW or HxWx3 image, got shape {a.shape}")


def _prepare(sr: np.ndarray, hr: np.ndarray, border: int):
    sr = np.asarray(sr)
    hr = np.asarray(hr)
    if sr.shape != hr.shape:
        raise ValueError(f"shape mismatch: sr {sr.shape} vs hr {hr.shape}")
    border = int(border)
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    ys, yh = rgb_to_y(sr), rgb_to_y(hr)
    if border:
        ys = ys[border:-border, border:-border]
        yh = yh[border:-border, border:-border]
    if ys.size == 0:
        raise ValueError(f"image of shape {sr.shape} is empty after removing a {border}-pixel border")
    return ys, yh


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two float arrays of code values (no cropping)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(peak * peak / mse))


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int = PSNR_BORDER) -> float:
    """PSNR (dB, peak 255) on unrounded Y after removing ``border`` px per side."""
    ys, yh = _prepare(sr, hr, border)
    return psnr(ys, yh)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation with the 1-D kernel ``g`` along both axes."""
    n = g.size
    h, w = img.shape
    rows = np.zeros((h - n + 1, w), dtype=np.float64)
    for k in range(n):
        rows += g[k] * img[k : k + h - n + 1]
    out = np.zeros((h - n + 1, w - n + 1), dtype=np.float64)
    for k in range(n):
        out += g[k] * rows[:, k : k + w - n + 1]
    return out


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM (Wang et al.) of two 2-D float arrays, 11x11 Gaussian (sigma 1.5), 'valid'."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"ssim expects two 2-D arrays of one shape, got {a.shape} and {b.shape}")
    if min(a.shape) < 11:
        raise ValueError(f"ssim needs at least 11x11 pixels, got {a.shape}")
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2
    g = _gaussian_window()
    mu1 = _filter_valid(a, g)
    mu2 = _filter_valid(b, g)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1 = _filter_valid(a * a, g) - mu1_sq
    s2 = _filter_valid(b * b, g) - mu2_sq
    s12 = _filter_valid(a * b, g) - mu12
    m = ((2 * mu12 + c1) * (2 * s12 + c2)) / ((mu1_sq + mu2_sq + c1) * (s1 + s2 + c2))
    return float(m.mean())


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int = SSIM_BORDER) -> float:
    """SSIM on unrounded Y after removing ``border`` px per side (unitless, <= 1).

    The default ``border=0`` (whole image) is the calibrated benchmark protocol.
    """
    ys, yh = _prepare(sr, hr, border)
    return ssim(ys, yh)

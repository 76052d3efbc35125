"""Tests of golden.metrics (PSNR / SSIM on Y). Calibration lives in test_eval.py."""

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from golden.metrics import psnr_y, rgb_to_y, ssim, ssim_y  # noqa: E402


def test_rgb_to_y_values():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8)
    y = rgb_to_y(img)
    assert y.dtype == np.float64 and y.shape == (1, 3)
    np.testing.assert_allclose(y[0], [16.0, 235.0, 16 + 65.481], atol=1e-9)


def test_gray_is_gray_to_rgb():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(g), rgb_to_y(np.stack([g] * 3, axis=2)), atol=1e-9)


def test_psnr_known_value_and_border():
    a = np.full((20, 20), 100, np.uint8)
    b = a.copy()
    b[4:-4, 4:-4] += 10  # Y difference 10 * 219 / 255
    expected = 10 * np.log10(255**2 / (10 * 219 / 255) ** 2)
    assert psnr_y(b, a) == pytest.approx(expected, abs=1e-9)
    c = a.copy()
    c[:4] = 0  # only the border differs
    assert psnr_y(c, a) == float("inf")
    assert psnr_y(c, a, border=0) < 30


def test_ssim_identity_symmetry_range():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert ssim_y(a, a) == pytest.approx(1.0, abs=1e-12)
    s = ssim_y(a, b)
    assert 0 < s < 1
    assert s == pytest.approx(ssim_y(b, a), abs=1e-12)
    assert ssim_y(a, b, border=4) != s


def test_ssim_matches_direct_2d_filter():
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 255, (16, 14))
    b = rng.uniform(0, 255, (16, 14))
    x = np.arange(11) - 5.0
    g = np.exp(-x * x / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()

    def filt(img):
        return np.array([[np.sum(w * img[i : i + 11, j : j + 11]) for j in range(img.shape[1] - 10)]
                         for i in range(img.shape[0] - 10)])

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m1, m2 = filt(a), filt(b)
    v1, v2, v12 = filt(a * a) - m1**2, filt(b * b) - m2**2, filt(a * b) - m1 * m2
    ref = (((2 * m1 * m2 + c1) * (2 * v12 + c2)) / ((m1**2 + m2**2 + c1) * (v1 + v2 + c2))).mean()
    assert ssim(a, b) == pytest.approx(ref, abs=1e-12)


def test_errors():
    a = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="shape mismatch"):
        psnr_y(a, a[:, :10])
    with pytest.raises(ValueError):
        rgb_to_y(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="11x11"):
        ssim_y(a[:10, :10], a[:10, :10])

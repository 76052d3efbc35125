"""Tests of golden.bicubic: MATLAB-exact imresize (bicubic)."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from golden.bicubic import contributions, imresize  # noqa: E402

DATA = Path(os.environ.get("IQLUT_DATA") or REPO.parent / "shared" / "datasets")
SETS = ("Set5", "Set14")


def _pairs():
    out = []
    for s in SETS:
        hr_dir = DATA / s / "HR"
        if hr_dir.is_dir():
            out += [(s, p.stem) for p in sorted(hr_dir.glob("*.png"))]
    return out or [("missing", "missing")]


@pytest.mark.parametrize("boundary,lr_dir", [("symmetric", "LR_bicubic_sym"), ("replicate", "LR_bicubic")])
@pytest.mark.parametrize("set_name,name", _pairs())
def test_matches_shipped_lr_bytes(set_name, name, boundary, lr_dir):
    if set_name == "missing":
        pytest.skip(f"datasets not found under {DATA} (set IQLUT_DATA to the shared/datasets folder)")
    from PIL import Image

    hr = np.array(Image.open(DATA / set_name / "HR" / f"{name}.png"))
    ref = np.array(Image.open(DATA / set_name / lr_dir / "X4" / f"{name}x4.png"))
    out = imresize(hr, 1 / 4, boundary)
    assert out.dtype == np.uint8
    assert out.shape == ref.shape
    assert np.array_equal(out, ref), f"{int((out != ref).sum())} pixels differ"


@pytest.mark.parametrize("boundary", ["symmetric", "replicate"])
@pytest.mark.parametrize("scale", [0.25, 4])
@pytest.mark.parametrize("shape", [(9, 7), (9, 7, 3), (1, 1), (1, 5), (2, 2, 3)])
def test_constant_stays_constant(shape, scale, boundary):
    img = np.full(shape, 173, np.uint8)
    out = imresize(img, scale, boundary)
    assert out.dtype == np.uint8
    assert np.all(out == 173)


def test_output_shape_is_ceil():
    img = np.zeros((10, 13, 3), np.uint8)
    assert imresize(img, 0.25).shape == (3, 4, 3)
    assert imresize(img, 4).shape == (40, 52, 3)
    assert imresize(img[:, :, 0], 0.25).shape == (3, 4)
    assert imresize(np.zeros((1, 1), np.uint8), 0.25).shape == (1, 1)
    assert imresize(np.zeros((1, 1), np.uint8), 4).shape == (4, 4)


def test_one_pixel_input():
    img = np.array([[[7, 200, 255]]], np.uint8)
    up = imresize(img, 4)
    assert up.shape == (4, 4, 3)
    assert np.array_equal(up, np.broadcast_to(img, (4, 4, 3)))
    assert np.array_equal(imresize(img, 0.25), img)


def test_hand_checked_upscale_first_row():
    # x4, output row 1: u = 0.625, taps at rows -1, 0, 1, 2 (1-based) with weights
    # k(1.625) = -0.0439453125, k(0.625) = 0.3896484375, k(0.375) = 0.7275390625,
    # k(1.375) = -0.0732421875.
    w = contributions(4, 16, 4.0, "symmetric")[0][0]
    np.testing.assert_allclose(w, [-0.0439453125, 0.3896484375, 0.7275390625, -0.0732421875], atol=1e-15)
    col = np.array([[100], [200], [50], [0]], np.uint8)
    # symmetric: rows -1, 0 -> 2, 1: 1.1171875*100 - 0.1171875*200 = 88.28 -> 88
    assert imresize(col, 4, "symmetric")[0, 0] == 88
    # replicate: rows -1, 0 -> 1: 1.0732421875*100 - 0.0732421875*200 = 92.68 -> 93
    assert imresize(col, 4, "replicate")[0, 0] == 93
    # the single column is replicated across the 4 output columns
    out = imresize(col, 4)
    assert np.all(out == out[:, :1])


def test_weights_sum_to_one_and_indices_in_range():
    for n_in, n_out, s in [(17, 5, 0.25), (3, 1, 0.25), (5, 20, 4.0), (1, 4, 4.0)]:
        for b in ("symmetric", "replicate"):
            w, idx = contributions(n_in, n_out, s, b)
            np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
            assert idx.min() >= 0 and idx.max() < n_in


def test_bad_arguments():
    with pytest.raises(ValueError, match="uint8"):
        imresize(np.zeros((4, 4), np.float32), 4)
    with pytest.raises(ValueError, match="boundary"):
        imresize(np.zeros((4, 4), np.uint8), 4, "reflect")
    with pytest.raises(ValueError, match="scale"):
        imresize(np.zeros((4, 4), np.uint8), 0)
    with pytest.raises(ValueError):
        imresize(np.zeros((0, 4), np.uint8), 4)

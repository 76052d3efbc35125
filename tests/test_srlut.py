"""Tests of golden.srlut (published SR-LUT-S x4 table). PSNR calibration is in test_eval.py."""

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from golden import srlut  # noqa: E402

LUT_PATH = Path(srlut.default_lut_path())
pytestmark = pytest.mark.skipif(not LUT_PATH.is_file(), reason=f"SR-LUT table not found at {LUT_PATH}")


def _reference_interp(lut, img_in):
    """Per-pixel 4-simplex interpolation by solving for barycentric coordinates."""
    q, L = srlut.Q, srlut.L
    c, hp, wp = img_in.shape
    h, w = hp - 1, wp - 1
    out = np.zeros((c, h * 4, w * 4))
    strides = np.array([L**3, L**2, L, 1])
    for ch in range(c):
        for y in range(h):
            for x in range(w):
                v = np.array([img_in[ch, y, x], img_in[ch, y, x + 1], img_in[ch, y + 1, x], img_in[ch, y + 1, x + 1]])
                m, f = v // q, v % q
                order = sorted(range(4), key=lambda i: -f[i])
                verts = [m.copy()]
                for i in order:
                    nxt = verts[-1].copy()
                    nxt[i] += 1
                    verts.append(nxt)
                A = np.vstack([np.array(verts, float).T, np.ones(5)])
                lam = np.linalg.solve(A, np.append(m + f / q, 1.0))
                val = sum(lam[k] * lut[int(verts[k] @ strides)] for k in range(5))
                out[ch, y * 4 : y * 4 + 4, x * 4 : x * 4 + 4] = val.reshape(4, 4)
    return out * q


def test_interpolation_matches_barycentric_reference():
    lut = srlut.load_srlut(LUT_PATH)
    rng = np.random.default_rng(0)
    # random values plus values forcing tied fractions and the 255 edge
    img = rng.integers(0, 256, (2, 6, 7))
    img[1] = rng.choice([0, 15, 16, 31, 37, 53, 240, 255], size=(6, 7))
    got = srlut._four_simplex(lut, img)
    ref = _reference_interp(lut, img)
    assert got.dtype == np.int32
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_lattice_points_return_table_entries():
    lut = srlut.load_srlut(LUT_PATH)
    img = np.array([[[0, 16], [240, 32]]])  # one 2x2 window at vertex (0, 1, 15, 2)
    got = srlut._four_simplex(lut, img)
    idx = 0 * 17**3 + 1 * 17**2 + 15 * 17 + 2
    np.testing.assert_array_equal(got[0], 16 * lut[idx].reshape(4, 4))


def test_shapes_channels_and_dtype():
    rng = np.random.default_rng(1)
    lr = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    out = srlut.srlut_upscale(lr, LUT_PATH)
    assert out.dtype == np.uint8 and out.shape == (36, 44, 3)
    for c in range(3):  # channels are independent
        np.testing.assert_array_equal(out[:, :, c], srlut.srlut_upscale(lr[:, :, c], LUT_PATH))
    assert srlut.srlut_upscale(np.full((1, 1), 9, np.uint8), LUT_PATH).shape == (4, 4)


def test_rotation_bookkeeping():
    # Rotating the input rotates the output, except within 4 HR pixels of the
    # border, where the bottom/right padding side changes with the rotation.
    rng = np.random.default_rng(2)
    lr = rng.integers(0, 256, (10, 13), dtype=np.uint8)
    a = srlut.srlut_upscale(lr, LUT_PATH)
    for k in (1, 2, 3):
        b = srlut.srlut_upscale(np.ascontiguousarray(np.rot90(lr, k)), LUT_PATH)
        np.testing.assert_array_equal(np.rot90(a, k)[4:-4, 4:-4], b[4:-4, 4:-4])


def test_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        srlut.srlut_upscale(np.zeros((4, 4), np.float32), LUT_PATH)
    with pytest.raises(FileNotFoundError):
        srlut.srlut_upscale(np.zeros((4, 4), np.uint8), "/nonexistent/table.npy")

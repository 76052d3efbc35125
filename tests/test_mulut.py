"""Tests of golden.mulut (published MuLUT-SDY-X2 x4 tables): a per-pixel reference formulation on
small images, table loading, channels, and the calibration on Set5 / Set14 / B100."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from golden import mulut  # noqa: E402

LUTS = Path(mulut.ref_luts_dir())
DATA = Path(os.environ.get("IQLUT_DATA") or REPO.parent / "shared" / "datasets")
pytestmark = pytest.mark.skipif(
    not all(Path(p).is_file() for p in mulut.table_paths(LUTS).values()),
    reason=f"MuLUT tables (mulut_sdy_x2_x4_4bit_int8_*.npy) not found in {LUTS}",
)

# Pixel offsets of the 4 table inputs, written out again from the MuLUT paper's figure 3.
OFFSETS = {"s": [(0, 0), (0, 1), (1, 0), (1, 1)], "d": [(0, 0), (0, 2), (2, 0), (2, 2)],
           "y": [(0, 0), (1, 1), (1, 2), (2, 1)]}


def _interp(lut, v):
    """Interpolate at the 4-vector v (0..255) by solving for the barycentric coordinates of the
    simplex holding it; returns 16 x the value (exact integers)."""
    m, f = v // 16, v % 16
    order = sorted(range(4), key=lambda i: -f[i])
    verts = [m.copy()]
    for i in order:
        verts.append(verts[-1].copy())
        verts[-1][i] += 1
    A = np.vstack([np.array(verts, float).T, np.ones(5)])
    lam = np.linalg.solve(A, np.append(m + f / 16, 1.0))
    w = np.rint(lam * 16).astype(np.int64)  # barycentric weights are multiples of 1/16
    assert np.allclose(lam * 16, w)
    return sum(w[k] * lut[int(verts[k] @ [17**3, 17**2, 17, 1])] for k in range(5))


def _reference(lr):
    """MuLUT-SDY-X2 on a 2-D uint8 image, one pixel and one rotation at a time."""
    tables = mulut.load_mulut(LUTS)
    img = lr.astype(np.int64)
    for stage, (up, avg, bias) in ((1, (1, 12, 127)), (2, (4, 3, 0))):
        h, w = img.shape
        total = np.zeros((h * up, w * up), np.int64)
        for mode in "sdy":
            lut = tables[f"s{stage}_{mode}"]
            for rot in range(4):
                r = np.pad(np.rot90(img, rot), ((0, 2), (0, 2)), mode="edge")
                o = np.zeros((r.shape[0] - 2) * up * (r.shape[1] - 2) * up, np.int64).reshape(
                    (r.shape[0] - 2) * up, (r.shape[1] - 2) * up)
                for y in range(r.shape[0] - 2):
                    for x in range(r.shape[1] - 2):
                        v = np.array([r[y + dy, x + dx] for dy, dx in OFFSETS[mode]])
                        o[y * up:(y + 1) * up, x * up:(x + 1) * up] = _interp(lut, v).reshape(up, up)
                total += np.rot90(o, -rot)
        img = np.round(np.clip(total / 16 / avg + bias, 0, 255)).astype(np.int64)
    return img.astype(np.uint8)


def test_matches_per_pixel_reference():
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (6, 7)).astype(np.uint8)
    lr[0, :] = [0, 255, 16, 16, 31, 240, 255]  # lattice points, ties and the 255 edge
    lr[:, -1] = 128
    np.testing.assert_array_equal(mulut.mulut_upscale(lr, LUTS), _reference(lr))


def test_flat_and_lattice_inputs():
    # a flat image at a lattice grey level: every stage reads single table entries
    lr = np.full((5, 4), 64, np.uint8)
    np.testing.assert_array_equal(mulut.mulut_upscale(lr, LUTS), _reference(lr))


def test_channels_are_independent():
    lr = np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    per_channel = np.stack([mulut.mulut_upscale(lr[:, :, c], LUTS) for c in range(3)], axis=-1)
    np.testing.assert_array_equal(mulut.mulut_upscale(lr, LUTS), per_channel)
    assert per_channel.dtype == np.uint8 and per_channel.shape == (36, 44, 3)
    assert mulut.mulut_upscale(np.full((1, 1), 9, np.uint8), LUTS).shape == (4, 4)


def test_table_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="mulut_sdy_x2_x4_4bit_int8_s1_s.npy"):
        mulut.mulut_upscale(np.zeros((4, 4), np.uint8), tmp_path)
    for p in mulut.table_paths(LUTS).values():
        os.symlink(p, tmp_path / Path(p).name)
    bad = tmp_path / Path(mulut.table_paths(LUTS)["s2_d"]).name
    bad.unlink()
    np.save(bad, np.zeros((17**4, 1), np.int8))  # a stage-1 shaped table where stage 2's belongs
    with pytest.raises(ValueError, match="s2_d"):
        mulut.load_mulut(tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        mulut.mulut_upscale(np.zeros((4, 4), np.float32), LUTS)
    assert mulut.lut_bytes(mulut.load_mulut(LUTS)) == 4_259_571


@pytest.mark.skipif(not (DATA / "B100" / "HR").is_dir(), reason=f"datasets not found under {DATA}")
def test_published_figures(tmp_path, capsys):
    """MuLUT's repository: Set5 30.61 / Set14 27.60 / B100 26.86; measured here 30.61 / 27.61 /
    26.86 (SSIM 0.8656 / 0.7544 / 0.7112). About 30 s on one core."""
    from golden import eval as ev

    out = tmp_path / "mulut.json"
    assert ev.main(["--model", "mulut", "--data", str(DATA), "--ref-luts", str(LUTS),
                    "--sets", "Set5", "Set14", "B100", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    for s, psnr, ssim in (("Set5", 30.61, 0.8656), ("Set14", 27.61, 0.7544), ("B100", 26.86, 0.7112)):
        assert res["sets"][s]["psnr_y"] == pytest.approx(psnr, abs=0.01), s
        assert res["sets"][s]["ssim_y"] == pytest.approx(ssim, abs=0.0005), s
    assert res["model_info"]["lut_bytes"] == 4_259_571
    assert not os.path.isabs(res["data"])
    table = capsys.readouterr().out
    assert "30.61" in table and "27.61" in table and "26.86" in table

"""Tests of golden.tinylut (TinyLUT-S runner): the vectorised runner against a per-pixel
formulation of the published test script on synthetic tables and scales, the scale checks, and
the clear refusal when the scales (not in the published tables) are missing."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from golden import tinylut as tl  # noqa: E402

REAL = Path(tl.default_folder())
has_real = pytest.mark.skipif(not (REAL / tl.TABLES["up_h"]).is_file(), reason=f"TinyLUT tables not in {REAL}")


def _synthetic(tmp_path, seed=0):
    """Random int8 tables shaped by random scales, written as the published files are."""
    rng = np.random.default_rng(seed)
    scales = {"hh1": rng.uniform(0.5, 1.3, 16), "hh2": rng.uniform(0.15, 1.2, 16),
              "hl1": rng.uniform(0.0, 1.1, 16), "hl2": rng.uniform(0.0, 1.1, 16)}
    scales = {k: v.astype(np.float32) for k, v in scales.items()}
    scales["hh1"][0] = 1.0  # identity requantisation for one channel
    rows = {"dw_h": 9 * 64, "dw_l": 9 * 4}
    for key, sk in (("pw_h", "hh1"), ("pw_l", "hl1"), ("up_h", "hh2"), ("up_l", "hl2")):
        rows[key] = tl.segment_starts(scales[sk], key[-1])[2]
    for key, n in rows.items():
        np.save(tmp_path / tl.TABLES[key], rng.integers(-128, 128, (n, 16, 1, 1)).astype(np.int8))
    return scales


def _rows_of(scale, branch):
    """Values v of the rows of one channel's segment, as the LUT transfer script builds them."""
    base = np.arange(-32, 32) if branch == "h" else np.arange(0, 4)
    q = np.unique(np.round(base.astype(np.float32) * np.float32(scale)))
    return np.arange(int(q.min()), int(q.max()) + 1)


def _reference(lr, scales, folder):
    """The published test script, one rotation, pixel and channel at a time."""
    t = {k: np.load(Path(folder) / f).reshape(-1, 16).astype(np.int64) for k, f in tl.TABLES.items()}

    def requant(y, s, lo, hi):
        return int(np.clip(np.round(np.float32(y) * np.float32(s)), lo, hi))

    def seg(table, y, scale, branch):  # y: 16 values -> 16 outputs
        total, start = np.zeros(16, np.int64), 0
        for c in range(16):
            vals = _rows_of(scale[c], branch)
            first = vals.min() if branch == "h" else 0
            total += table[start + y[c] - first]
            start += len(vals)
        return np.round(total / 16).astype(np.int64)

    def net(win, branch):  # win: 3x3 window of the branch's values -> 16 outputs
        lo, hi, v = (-32, 31, 64) if branch == "h" else (0, 3, 4)
        dw = sum(t[f"dw_{branch}"][(win[i, j] - lo) + (3 * i + j) * v] for i in range(3) for j in range(3))
        y = np.clip(np.round(dw / 9).astype(np.int64) + win[2, 2], lo, hi)
        s1, s2 = scales[f"h{branch}1"], scales[f"h{branch}2"]
        y = np.array([requant(y[c], s1[c], lo, hi) for c in range(16)])
        y = np.clip(seg(t[f"pw_{branch}"], y, s1, branch) + y, lo, hi)
        y = np.array([requant(y[c], s2[c], lo, hi) for c in range(16)])
        return np.clip(seg(t[f"up_{branch}"], y, s2, branch) + y, -128, 127)

    x = lr.astype(np.int64) - 128
    total = np.zeros((lr.shape[0] * 4, lr.shape[1] * 4), np.int64)
    for rot in range(4):
        r = np.pad(np.rot90(x, rot), ((2, 0), (2, 0)), mode="reflect")
        o = np.zeros(((r.shape[0] - 2) * 4, (r.shape[1] - 2) * 4), np.int64)
        for i in range(r.shape[0] - 2):
            for j in range(r.shape[1] - 2):
                w = r[i:i + 3, j:j + 3]
                v = np.clip(net(w // 4, "h") + net(w % 4, "l"), -128, 127)
                o[4 * i:4 * i + 4, 4 * j:4 * j + 4] = v.reshape(4, 4)  # pixel shuffle: k = 4 dy + dx
        total += np.rot90(o, -rot)
    return (np.clip(total, -128, 127) + 128).astype(np.uint8)


def test_matches_per_pixel_reference(tmp_path):
    scales = _synthetic(tmp_path)
    lr = np.random.default_rng(1).integers(0, 256, (5, 6)).astype(np.uint8)
    lr[0] = [0, 255, 3, 4, 128, 127]  # branch edges: LSB 0/3, MSB -32/31
    np.testing.assert_array_equal(tl.tinylut_upscale(lr, scales, tmp_path), _reference(lr, scales, tmp_path))


def test_channels_and_sizes(tmp_path):
    scales = _synthetic(tmp_path, seed=2)
    lr = np.random.default_rng(3).integers(0, 256, (4, 7, 3)).astype(np.uint8)
    out = tl.tinylut_upscale(lr, scales, tmp_path)
    assert out.dtype == np.uint8 and out.shape == (16, 28, 3)
    np.testing.assert_array_equal(out[:, :, 1], tl.tinylut_upscale(lr[:, :, 1], scales, tmp_path))
    with pytest.raises(ValueError, match="3x3"):
        tl.tinylut_upscale(lr[:2], scales, tmp_path)


def test_scales_checked_against_tables(tmp_path):
    scales = _synthetic(tmp_path, seed=4)
    tables = tl.load_tinylut(tmp_path)
    tl.check_scales(tables, scales)
    bad = dict(scales, hh2=scales["hh2"] * np.float32(1.3))
    with pytest.raises(ValueError, match="hh2 imply"):
        tl.tinylut_upscale(np.zeros((4, 4), np.uint8), bad, tmp_path)
    path = tmp_path / "s.json"
    path.write_text(json.dumps({k: v.tolist() for k, v in scales.items()}))
    loaded = tl.load_scales(path)
    assert all(np.array_equal(loaded[k], scales[k]) for k in tl.SCALE_KEYS)
    path.write_text(json.dumps({"hh1": [1.0] * 16}))
    with pytest.raises(ValueError, match="hl1"):
        tl.load_scales(path)


@has_real
def test_published_tables_and_missing_scales(tmp_path, monkeypatch):
    tables = tl.load_tinylut(REAL)
    assert tl.lut_bytes(tables) == 37_776
    assert {k: t.shape[0] for k, t in tables.items()} == {
        "dw_h": 576, "dw_l": 36, "pw_h": 937, "pw_l": 31, "up_h": 747, "up_l": 34}
    with pytest.raises(ValueError, match="not the tables' model"):  # all-0.8 scales (training init)
        tl.check_scales(tables, {k: np.full(16, 0.8, np.float32) for k in tl.SCALE_KEYS})
    monkeypatch.setenv("TINYLUT_SCALES", str(tmp_path / "none.json"))
    from golden import eval as ev

    with pytest.raises(ev.EvalError, match="model_TinyLUT.pth"):  # golden.eval: one line, exit 2
        ev.make_model("tinylut")


def test_rows_of_candidate_scales():
    for branch in "hl":
        for n, cands in tl._scales_by_rows(branch).items():
            for s in cands[:: max(1, len(cands) // 7)]:
                assert len(_rows_of(s, branch)) == n


@has_real
def test_inferred_split_of_the_h_tables():
    """The H tables' channel boundaries stand out (a jump far above its neighbours)."""
    tables = tl.load_tinylut(REAL)
    assert tl._split(tables["pw_h"], "h") == [56, 60, 61, 52, 54, 54, 50, 58, 56, 62, 60, 80, 56, 62, 56, 60]
    assert tl._split(tables["up_h"], "h") == [46, 52, 56, 58, 40, 36, 47, 37, 48, 39, 58, 44, 59, 33, 54, 40]


@has_real
def test_committed_inferred_scales_fit_the_tables():
    path = REPO / "results" / "tinylut_scales_inferred.json"
    tl.check_scales(tl.load_tinylut(REAL), tl.load_scales(path))
    assert "not the authors'" in json.loads(path.read_text())["inferred"]


@has_real
@pytest.mark.skipif(not (REPO.parent / "shared" / "datasets" / "Set5" / "HR").is_dir(), reason="datasets not found")
def test_set5_with_inferred_scales(tmp_path, monkeypatch):
    """Regression of the measured figure (paper: 30.22; with the inferred scales 30.17)."""
    from golden import eval as ev

    monkeypatch.setenv("TINYLUT_SCALES", str(REPO / "results" / "tinylut_scales_inferred.json"))
    out = tmp_path / "t.json"
    assert ev.main(["--model", "tinylut", "--sets", "Set5", "--json", str(out)]) == 0
    s5 = json.loads(out.read_text())["sets"]["Set5"]
    assert s5["psnr_y"] == pytest.approx(30.17, abs=0.01) and s5["ssim_y"] == pytest.approx(0.8509, abs=0.0005)

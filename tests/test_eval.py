"""Tests of the golden.eval CLI, including the calibration of the benchmark protocol."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from golden import eval as ev  # noqa: E402

DATA = Path(os.environ.get("IQLUT_DATA") or REPO.parent / "shared" / "datasets")
LUTS = REPO.parent / "shared" / "reference_luts"
needs_data = pytest.mark.skipif(
    not (DATA / "Set5" / "HR").is_dir(),
    reason=f"datasets not found under {DATA} (set IQLUT_DATA to the shared/datasets folder)",
)


def _run(tmp_path, *args):
    out = tmp_path / "res.json"
    rc = ev.main([*args, "--data", str(DATA), "--json", str(out)])
    assert rc == 0
    return json.loads(out.read_text())


@needs_data
def test_bicubic_calibration(tmp_path, capsys):
    res = _run(tmp_path, "--model", "bicubic", "--sets", "Set5", "Set14")
    assert res["model"] == "bicubic" and res["date"] and "LR_bicubic_sym" in res["protocol"]
    s5, s14 = res["sets"]["Set5"], res["sets"]["Set14"]
    assert s5["images"] == 5 and s14["images"] == 14
    assert s5["psnr_y"] == pytest.approx(28.43, abs=0.01)
    assert s5["ssim_y"] == pytest.approx(0.8110, abs=0.001)
    assert s14["psnr_y"] == pytest.approx(26.09, abs=0.01)
    assert s14["ssim_y"] == pytest.approx(0.7055, abs=0.001)
    assert len(s5["per_image"]) == 5 and {"name", "psnr_y", "ssim_y"} <= set(s5["per_image"][0])
    table = capsys.readouterr().out
    assert "Set5" in table and "28.43" in table and "0.8110" in table


#: the field's published bicubic PSNR-Y (VDSR/EDSR tables) and ours under this protocol
FIELD_BICUBIC = {2: (33.66, 30.24, 29.56), 3: (30.39, 27.55, 27.21)}
OURS_BICUBIC = {2: (33.67, 30.32, 29.56), 3: (30.40, 27.63, 27.21)}


@needs_data
@pytest.mark.parametrize("scale", [2, 3])
def test_bicubic_calibration_x2_x3(tmp_path, scale):
    """x2/x3: LR made from HR by our MATLAB-exact bicubic, PSNR border = the scale. Set5 and B100
    reproduce the field's figures to 0.05 dB. Set14 comes out 0.08 dB higher: its one grayscale
    image (bridge) is scored here as gray -> RGB (the LUT-SR convention that reproduces SR-LUT/MuLUT
    at x4, where the same effect makes bicubic 26.09 instead of the field's 26.00); scoring that image on
    its raw grey values instead, as the field's tables do, gives their figure to 0.05 dB."""
    from golden import metrics
    from golden.imageio import load_image

    res = _run(tmp_path, "--model", "bicubic", "--scale", str(scale), "--sets", "Set5", "Set14", "B100")
    assert res["scale"] == scale and f"imresize(HR, 1/{scale})" in res["protocol"]
    assert f"a {scale}-px border" in res["protocol"]
    got = [res["sets"][s]["psnr_y"] for s in ("Set5", "Set14", "B100")]
    assert got == pytest.approx(list(OURS_BICUBIC[scale]), abs=0.01)
    assert got[0] == pytest.approx(FIELD_BICUBIC[scale][0], abs=0.05)
    assert got[2] == pytest.approx(FIELD_BICUBIC[scale][2], abs=0.05)
    # Set14 with the grey image scored on its grey values
    per = {r["name"]: r["psnr_y"] for r in res["sets"]["Set14"]["per_image"]}
    hr = ev.modcrop(load_image(DATA / "Set14" / "HR" / "bridge.png"), scale)
    assert hr.ndim == 2
    sr = ev.make_model("bicubic", scale=scale)(ev.make_lr(hr, scale))
    b = scale
    per["bridge"] = metrics.psnr(sr[b:-b, b:-b], hr[b:-b, b:-b])
    assert np.mean(list(per.values())) == pytest.approx(FIELD_BICUBIC[scale][1], abs=0.05)


@needs_data
def test_x4_lr_made_by_bicubic_equals_the_files():
    """The x2/x3 LR recipe (make_lr) is the one behind the shipped x4 files, bit for bit."""
    from golden.imageio import load_image

    for name in ("baby", "bird"):
        hr = ev.modcrop(load_image(DATA / "Set5" / "HR" / f"{name}.png"), 4)
        lr = load_image(DATA / "Set5" / "LR_bicubic_sym" / "X4" / f"{name}x4.png")
        np.testing.assert_array_equal(ev.make_lr(hr, 4), lr)


def test_scale_errors(capsys, tmp_path):
    assert ev.main(["--model", "srlut", "--scale", "2", "--data", str(tmp_path)]) == 2
    assert "x4 table" in capsys.readouterr().err
    assert ev.main(["--model", "iq_l8c8", "--scale", "3", "--data", str(tmp_path)]) == 2
    assert "is x4, not x3" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        ev.main(["--model", "bicubic", "--scale", "5"])
    assert e.value.code == 2


@needs_data
@pytest.mark.skipif(not (LUTS / "srlut_s_x4_4bit_int8.npy").is_file(), reason=f"SR-LUT table not in {LUTS}")
def test_srlut_calibration(tmp_path):
    res = _run(tmp_path, "--model", "srlut", "--sets", "Set5", "--ref-luts", str(LUTS))
    s5 = res["sets"]["Set5"]
    assert s5["psnr_y"] == pytest.approx(29.83, abs=0.01)
    assert s5["ssim_y"] == pytest.approx(0.8484, abs=0.001)


@needs_data
def test_save_and_limit(tmp_path):
    save = tmp_path / "out"
    res = _run(tmp_path, "--model", "bicubic", "--sets", "Set5", "--limit", "2", "--save", str(save))
    names = [r["name"] for r in res["sets"]["Set5"]["per_image"]]
    assert names == ["baby", "bird"]
    assert sorted(os.listdir(save / "Set5")) == ["baby.png", "bird.png"]
    from golden.imageio import load_image
    from golden.bicubic import imresize

    lr = load_image(DATA / "Set5" / "LR_bicubic_sym" / "X4" / "birdx4.png")
    assert np.array_equal(load_image(save / "Set5" / "bird.png"), imresize(lr, 4))


def _fails(capsys, *args):
    rc = ev.main(list(args))
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error:") and "Traceback" not in err
    return err


@needs_data
def test_bad_arguments_exit_2(tmp_path, capsys):
    assert "Nope" in _fails(capsys, "--model", "bicubic", "--data", str(DATA), "--sets", "Nope")
    assert "not found" in _fails(capsys, "--model", "bicubic", "--data", str(tmp_path / "none"))
    assert "model" in _fails(capsys, "--model", "no_such_model_xyz", "--data", str(DATA), "--sets", "Set5")
    assert "--limit" in _fails(capsys, "--model", "bicubic", "--data", str(DATA), "--limit", "0")
    assert "SR-LUT" in _fails(capsys, "--model", "srlut", "--data", str(DATA), "--sets", "Set5",
                              "--ref-luts", str(tmp_path))
    (tmp_path / "Empty" / "HR").mkdir(parents=True)
    assert "missing directory" in _fails(capsys, "--model", "bicubic", "--data", str(tmp_path), "--sets", "Empty")


def test_argparse_errors_exit_2(capsys):
    for argv in ([], ["--model"], ["--model", "bicubic", "--limit", "x"], ["--bogus"]):
        with pytest.raises(SystemExit) as ei:
            ev.main(argv)
        assert ei.value.code == 2
    capsys.readouterr()


def test_modcrop():
    a = np.zeros((10, 13, 3), np.uint8)
    assert ev.modcrop(a).shape == (8, 12, 3)
    assert ev.modcrop(a[:8, :12, 0]).shape == (8, 12)


@needs_data
def test_iqlut_model_path(tmp_path):
    """Any other --model goes through golden.modelfile.load_model + golden.iqlut.upscale."""
    try:
        from golden import spec
        from golden.modelfile import random_model, save_model
        import golden.iqlut  # noqa: F401
    except ImportError as exc:  # written concurrently by another engineer
        pytest.skip(f"IQ-LUT modules not available: {exc}")
    path = tmp_path / "rand.npz"
    save_model(random_model(sorted(spec.CONFIGS)[0], seed=0), path)
    res = _run(tmp_path, "--model", str(path), "--sets", "Set5", "--limit", "1")
    assert res["sets"]["Set5"]["images"] == 1
    assert np.isfinite(res["sets"]["Set5"]["psnr_y"])

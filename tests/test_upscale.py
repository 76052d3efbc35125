"""Tests of the golden.upscale CLI: outputs equal golden.iqlut.upscale, image modes, model choice
by scale, bad inputs (exit 2, one line, nothing written) and atomic writes."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from golden import modelfile  # noqa: E402
from golden import upscale as up  # noqa: E402
from golden.bicubic import imresize  # noqa: E402
from golden.iqlut import upscale  # noqa: E402

pytestmark = pytest.mark.skipif(not (modelfile.MODELS_DIR / "iq_l8c8.npz").is_file(),
                                reason="models/iq_l8c8.npz not shipped")


@pytest.fixture(scope="module")
def model():
    return modelfile.load_model("iq_l8c8")


def _img(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _save(path, arr, mode=None, **kw):
    Image.fromarray(arr, mode).save(path, **kw) if mode else Image.fromarray(arr).save(path, **kw)
    return str(path)


def _read(path):
    with Image.open(path) as im:
        return np.asarray(im).copy()


def _fails(capsys, *argv):
    rc = up.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_outputs_equal_golden_grey_rgb_jpeg_bmp(tmp_path, model, capsys):
    rgb, grey = _img((13, 17, 3)), _img((9, 7), 1)
    ins = [_save(tmp_path / "rgb.png", rgb), _save(tmp_path / "grey.bmp", grey),
           _save(tmp_path / "photo.jpg", _img((10, 12, 3), 2), quality=85)]
    out = tmp_path / "out"
    assert up.main([*ins, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "[1/3]" in err and "[3/3]" in err  # a progress line per file
    assert sorted(os.listdir(out)) == ["grey_x4.png", "photo_x4.png", "rgb_x4.png"]
    np.testing.assert_array_equal(_read(out / "rgb_x4.png"), upscale(model, rgb))
    np.testing.assert_array_equal(_read(out / "grey_x4.png"), upscale(model, grey))
    assert _read(out / "grey_x4.png").shape == (36, 28)  # grey stays grey
    jpeg = _read(tmp_path / "photo.jpg")  # the decoded JPEG is the input
    np.testing.assert_array_equal(_read(out / "photo_x4.png"), upscale(model, jpeg))


def test_real_cli_and_compare(tmp_path, model):
    lr = _img((20, 30, 3), 3)
    src = _save(tmp_path / "pic.png", lr)
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "-m", "golden.upscale", src, "--out", str(out), "--compare", "-q"],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    hr = upscale(model, lr)
    np.testing.assert_array_equal(_read(out / "pic_x4.png"), hr)
    cmp_img = _read(out / "pic_x4_compare.png")
    bic = imresize(lr, 4)
    assert cmp_img.shape == (80, 120 + 4 + 120, 3)  # whole image (< 256 px): bicubic | gap | ours
    np.testing.assert_array_equal(cmp_img[:, :120], bic)
    np.testing.assert_array_equal(cmp_img[:, 124:], hr)
    assert (cmp_img[:, 120:124] == 255).all()


def test_compare_crops_the_centre():
    lr = _img((80, 70), 4)
    hr = imresize(lr, 4)
    c = up.compare_crop(lr, hr, 4, size=100)
    assert c.shape == (100, 204)
    np.testing.assert_array_equal(c[:, 104:], hr[110:210, 90:190])


def test_modes_converted_or_refused(tmp_path, model, capsys):
    rgb = _img((6, 5, 3), 5)
    # palette -> RGB
    pal = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16)
    pal.save(tmp_path / "pal.png")
    assert up.main([str(tmp_path / "pal.png"), "--out", str(tmp_path / "o"), "-q"]) == 0
    np.testing.assert_array_equal(_read(tmp_path / "o" / "pal_x4.png"), upscale(model, np.asarray(pal.convert("RGB"))))
    # 1-bit -> grey 0/255
    Image.fromarray(_img((5, 6), 6) > 127).save(tmp_path / "bw.png")
    assert up.main([str(tmp_path / "bw.png"), "--out", str(tmp_path / "o"), "-q"]) == 0
    bw = (np.asarray(Image.open(tmp_path / "bw.png").convert("L")))
    np.testing.assert_array_equal(_read(tmp_path / "o" / "bw_x4.png"), upscale(model, bw))
    # 16-bit refused
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(tmp_path / "deep.png")
    assert "I;16" in _fails(capsys, tmp_path / "deep.png", "--out", tmp_path / "o")


def test_alpha_refused_unless_dropped(tmp_path, model, capsys):
    rgba = _img((7, 9, 4), 7)
    src = _save(tmp_path / "a.png", rgba)
    out = tmp_path / "o"
    err = _fails(capsys, src, "--out", out)
    assert "alpha" in err and "--drop-alpha" in err
    assert not out.exists()  # nothing written, not even the folder
    assert up.main([src, "--out", str(out), "--drop-alpha"]) == 0
    assert "alpha channel dropped" in capsys.readouterr().err
    np.testing.assert_array_equal(_read(out / "a_x4.png"), upscale(model, rgba[:, :, :3]))
    la = _save(tmp_path / "la.png", _img((5, 5, 2), 8), "LA")
    assert up.main([la, "--out", str(out), "--drop-alpha", "-q"]) == 0
    np.testing.assert_array_equal(_read(out / "la_x4.png"), upscale(model, _img((5, 5, 2), 8)[:, :, 0]))


@pytest.mark.parametrize("case, expect", [
    ("missing", "file not found"),
    ("not_image", "not a recognised image"),
    ("directory", "is a directory"),
    ("out_is_file", "not a directory"),
    ("unknown_model", "unknown model 'nope'"),
    ("bad_scale", "--scale must be one of"),
    ("scale_mismatch", "upscales x4, not x2"),
    ("same_stem", "would both be written"),
])
def test_bad_input_exit_2_nothing_written(tmp_path, capsys, case, expect):
    good = _save(tmp_path / "good.png", _img((4, 4, 3)))
    out = tmp_path / "out"
    args = {
        "missing": [good, tmp_path / "none.png"],
        "not_image": [good, tmp_path / "junk.png"],
        "directory": [good, tmp_path],
        "out_is_file": [good],
        "unknown_model": [good, "--model", "nope"],
        "bad_scale": [good, "--scale", "5"],
        "scale_mismatch": [good, "--model", "iq_l8c8", "--scale", "2"],
        "same_stem": [good, _save(tmp_path / "good.bmp", _img((4, 4, 3)))],
    }[case]
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    if case == "out_is_file":
        out.write_text("x")
    assert expect in _fails(capsys, *args, "--out", out)
    assert out.is_file() if case == "out_is_file" else not out.exists()


def test_bad_flag_exits_2(tmp_path):
    with pytest.raises(SystemExit) as e:
        up.main([str(tmp_path / "x.png"), "--out", str(tmp_path), "--scale", "x"])
    assert e.value.code == 2


def test_model_picked_by_scale(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(modelfile, "MODELS_DIR", tmp_path)
    m4 = modelfile.load_model(REPO / "models" / "iq_l8c8.npz")
    modelfile.save_model(m4, tmp_path / "iq_l8c8.npz")
    modelfile.save_model(modelfile.random_model("iq_l8c8_x2", seed=1), tmp_path / "other_x2.npz")
    assert up.pick_model(None, None).config.name == "iq_l8c8"  # default: x4
    assert up.pick_model(None, 2).config.scale == 2  # the only x2 model
    modelfile.save_model(modelfile.random_model("iq_l8c8_x2", seed=2), tmp_path / "third_x2.npz")
    with pytest.raises(up.UpscaleError, match="several shipped models at x2"):
        up.pick_model(None, 2)
    x2 = modelfile.random_model("iq_l8c8_x2", seed=3)
    modelfile.save_model(x2, tmp_path / "iq_l8c8_x2.npz")
    got = up.pick_model(None, 2)  # the iq_l8c8_x<S> name wins
    assert got.config.scale == 2 and got.layers[0].lut.tolist() == x2.layers[0].lut.tolist()
    with pytest.raises(up.UpscaleError, match="no shipped model at x3"):
        up.pick_model(None, 3)
    src = _save(tmp_path / "p.png", _img((5, 6), 9))
    assert up.main([src, "--scale", "2", "--out", str(tmp_path / "o"), "-q"]) == 0
    np.testing.assert_array_equal(_read(tmp_path / "o" / "p_x2.png"), upscale(x2, _img((5, 6), 9)))


def test_atomic_write_on_failure(tmp_path, monkeypatch, capsys):
    """A failing write leaves neither a partial output nor a temporary file; the earlier outputs
    are complete."""
    ins = [_save(tmp_path / "a.png", _img((4, 5, 3))), _save(tmp_path / "b.png", _img((4, 5, 3), 1))]
    out = tmp_path / "out"
    real_save = Image.Image.save

    def failing_save(self, fp, *a, **kw):
        if self.size[0] == 20 and getattr(failing_save, "calls", 0) == 1:  # the second output
            fp.write(b"\x89PNG partial")
            raise OSError("disk full")
        failing_save.calls = getattr(failing_save, "calls", 0) + 1
        return real_save(self, fp, *a, **kw)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    assert "disk full" in _fails(capsys, *ins, "--out", out, "-q")
    assert sorted(os.listdir(out)) == ["a_x4.png"]
    monkeypatch.undo()
    assert _read(out / "a_x4.png").shape == (16, 20, 3)


def test_truncated_input_after_check(tmp_path, capsys):
    """The header passes the check but the data is cut: exit 2, the output for the earlier file
    is complete, none for the broken one."""
    good = _save(tmp_path / "a.png", _img((8, 8, 3)))
    raw = (tmp_path / "b0.png")
    _save(raw, _img((64, 64, 3), 2))
    (tmp_path / "b.png").write_bytes(raw.read_bytes()[:200])
    out = tmp_path / "out"
    assert "cannot decode" in _fails(capsys, good, tmp_path / "b.png", "--out", out, "-q")
    assert sorted(os.listdir(out)) == ["a_x4.png"]

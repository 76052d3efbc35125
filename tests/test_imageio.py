"""Tests of golden.imageio: strict loading, atomic saving, LR array validation."""

import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

Image = pytest.importorskip("PIL.Image")

from golden.imageio import ImageError, check_lr_array, load_image, save_image  # noqa: E402


def test_load_rgb_and_gray_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (6, 4), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(gray).save(tmp_path / "gray.png")
    a = load_image(tmp_path / "rgb.png")
    b = load_image(str(tmp_path / "gray.png"))
    assert a.dtype == np.uint8 and a.shape == (5, 7, 3) and np.array_equal(a, rgb)
    assert b.dtype == np.uint8 and b.shape == (6, 4) and np.array_equal(b, gray)


@pytest.mark.parametrize(
    "mode,ext,words",
    [
        ("RGBA", "png", "alpha"),
        ("LA", "png", "alpha"),
        ("P", "png", "palette"),
        ("I;16", "png", "16-bit"),
        ("I", "tif", "32-bit"),
        ("F", "tif", "floating"),
        ("1", "png", "1-bit"),
        ("CMYK", "tif", "CMYK"),
    ],
)
def test_unsupported_modes(tmp_path, mode, ext, words):
    path = tmp_path / f"bad.{ext}"
    Image.new(mode, (4, 3)).save(path)
    with pytest.raises(ImageError) as ei:
        load_image(path)
    msg = str(ei.value)
    assert str(path) in msg and repr(mode) in msg and words in msg
    assert "mode L" in msg and "RGB" in msg  # says what is accepted
    assert isinstance(ei.value, ValueError)


def test_not_images(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.png"
    text.write_text("hello, not an image")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 7).save(good)
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(good.read_bytes()[:60])
    cases = {
        empty: "empty",
        text: "not a recognised image",
        trunc: "",
        tmp_path / "missing.png": "not found",
        tmp_path: "directory",
    }
    for path, words in cases.items():
        with pytest.raises(ImageError) as ei:
            load_image(path)
        assert str(path) in str(ei.value) and words in str(ei.value)


def test_zero_size_png(tmp_path):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    path = tmp_path / "zero.png"
    path.write_bytes(png)
    with pytest.raises(ImageError, match="zero size"):
        load_image(path)


def test_save_is_atomic_and_roundtrips(tmp_path):
    arr = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    out = tmp_path / "sr.png"
    save_image(out, arr)
    assert np.array_equal(load_image(out), arr)
    assert sorted(os.listdir(tmp_path)) == ["sr.png"]  # no temp files left
    save_image(out, arr[:, :, 0])  # overwrite
    assert np.array_equal(load_image(out), arr[:, :, 0])


def test_failed_save_leaves_old_file(tmp_path, monkeypatch):
    out = tmp_path / "sr.png"
    old = np.full((3, 3), 9, np.uint8)
    save_image(out, old)

    def boom(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_image(out, np.zeros((3, 3), np.uint8))
    monkeypatch.undo()
    assert np.array_equal(load_image(out), old)
    assert sorted(os.listdir(tmp_path)) == ["sr.png"]
    with pytest.raises(ValueError):
        save_image(tmp_path / "x.png", np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="extension"):
        save_image(tmp_path / "x.notanimage", np.zeros((3, 3), np.uint8))
    assert sorted(os.listdir(tmp_path)) == ["sr.png"]


@pytest.mark.parametrize(
    "arr,words",
    [
        ([[1, 2]], "numpy array"),
        (np.zeros((4, 4), np.float32), "uint8"),
        (np.zeros((4, 4), np.int64), "uint8"),
        (np.zeros(4, np.uint8), "dimensions"),
        (np.zeros((2, 2, 3, 1), np.uint8), "dimensions"),
        (np.zeros((4, 4, 4), np.uint8), "3 channels"),
        (np.zeros((4, 4, 1), np.uint8), "3 channels"),
        (np.zeros((0, 4), np.uint8), "1x1"),
        (np.zeros((4, 0, 3), np.uint8), "1x1"),
    ],
)
def test_check_lr_array_rejects(arr, words):
    with pytest.raises(ValueError, match=words):
        check_lr_array(arr)


def test_check_lr_array_accepts():
    for a in (np.zeros((1, 1), np.uint8), np.zeros((3, 5, 3), np.uint8)):
        assert check_lr_array(a) is a

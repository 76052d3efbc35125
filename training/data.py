"""Training data: HR images -> single channels -> MATLAB-exact bicubic LR (x2/x3/x4), cached; random patches.

Each RGB channel of an HR training image is one grayscale training image: at test time the model
runs on R, G and B independently (the field's colour protocol), so training on the channels matches
what the network sees. LR is made with ``golden.bicubic.imresize(hr, 1/4, "symmetric")`` — the recipe
of the shipped ``LR_bicubic_sym/X4`` files.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from golden.bicubic import imresize
from golden.imageio import load_image

TRAIN_SETS = ("T91", "BSD200")


def default_data_dir() -> Path:
    return Path(os.environ.get("IQLUT_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"))


def modcrop(img: np.ndarray, m: int = 4) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % m, : w - w % m]


def hr_files(data_dir: Path, sets=TRAIN_SETS) -> list[Path]:
    files = []
    for s in sets:
        d = Path(data_dir) / s / "HR"
        if not d.is_dir():
            raise FileNotFoundError(f"training set folder not found: {d}")
        files += sorted(p for p in d.iterdir() if p.suffix.lower() in (".png", ".bmp", ".jpg"))
    if not files:
        raise FileNotFoundError(f"no training images under {data_dir} ({', '.join(sets)})")
    return files


def load_pairs(data_dir: Path, sets=TRAIN_SETS, cache_dir: Path | None = None, limit: int | None = None,
               with_image: bool = False, scale: int = 4):
    """List of (lr uint8 (h, w), hr uint8 (s h, s w)) single-channel pairs at scale s, cached as one
    .npz (HR cropped to a multiple of s, LR = ``imresize(hr, 1/s)``: golden.eval's recipe).

    With ``with_image`` each item is (lr, hr, image): the index of its file in ``hr_files`` (the
    channels of one RGB image share it), to split by whole images."""
    files = hr_files(data_dir, sets)[:limit]
    key = hashlib.sha1("|".join(f"{p.name}:{p.stat().st_size}" for p in files).encode()).hexdigest()[:12]
    x = "" if scale == 4 else f"_x{scale}"               # x4 keeps its older cache name
    cache = Path(cache_dir) / f"pairs_{key}{x}.npz" if cache_dir else None
    pairs, image = None, None
    if cache and cache.exists():
        z = np.load(cache)
        n = len([k for k in z.files if k.startswith("lr")])
        pairs = [(z[f"lr{i}"], z[f"hr{i}"]) for i in range(n)]
        image = z["image"] if "image" in z.files else None
    if pairs is None or image is None:
        if pairs is None:
            pairs = []
            for p in files:
                img = modcrop(load_image(p), scale)
                chans = [img] if img.ndim == 2 else [img[..., c] for c in range(img.shape[2])]
                pairs += [(imresize(np.ascontiguousarray(ch), 1 / scale, "symmetric"), np.ascontiguousarray(ch))
                          for ch in chans]
        # an older cache has no image numbers: count each file's channels
        image = np.repeat(np.arange(len(files)), [1 if load_image(p).ndim == 2 else 3 for p in files])
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, image=image, **{f"lr{i}": lr for i, (lr, _) in enumerate(pairs)},
                     **{f"hr{i}": hr for i, (_, hr) in enumerate(pairs)})
            os.replace(tmp, cache)
    if len(image) != len(pairs):
        raise ValueError(f"cache {cache}: {len(image)} image numbers for {len(pairs)} pairs (delete it)")
    if with_image:
        return [(lr, hr, int(i)) for (lr, hr), i in zip(pairs, image)]
    return pairs


class PatchSampler:
    """Random LR patches (size x size) with their HR (S size)^2, S = the pairs' scale (HR / LR),
    random flips / rot90. Seeded."""

    def __init__(self, pairs, size: int = 48, seed: int = 0):
        self.pairs = [(lr, hr) for lr, hr in pairs if min(lr.shape) >= size]
        if not self.pairs:
            raise ValueError(f"no training image has an LR side >= {size}")
        areas = np.array([lr.size for lr, _ in self.pairs], dtype=np.float64)
        self.prob = areas / areas.sum()
        self.size = size
        self.scale = self.pairs[0][1].shape[0] // self.pairs[0][0].shape[0]
        self.rng = np.random.default_rng(seed)

    def state(self):
        return self.rng.bit_generator.state

    def set_state(self, s):
        self.rng.bit_generator.state = s

    def batch(self, n: int):
        """(lr (n, 1, s, s) float32, hr (n, 1, S s, S s) float32), pixel values 0..255."""
        s, S = self.size, self.scale
        lrs = np.empty((n, 1, s, s), np.float32)
        hrs = np.empty((n, 1, S * s, S * s), np.float32)
        idx = self.rng.choice(len(self.pairs), size=n, p=self.prob)
        for b, i in enumerate(idx):
            lr, hr = self.pairs[i]
            y = int(self.rng.integers(0, lr.shape[0] - s + 1))
            x = int(self.rng.integers(0, lr.shape[1] - s + 1))
            pl = lr[y:y + s, x:x + s]
            ph = hr[S * y:S * y + S * s, S * x:S * x + S * s]
            k = int(self.rng.integers(0, 4))
            pl, ph = np.rot90(pl, k), np.rot90(ph, k)
            if self.rng.integers(0, 2):
                pl, ph = pl[:, ::-1], ph[:, ::-1]
            lrs[b, 0], hrs[b, 0] = pl, ph
        return lrs, hrs

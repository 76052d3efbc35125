"""The IQ-LUT model file: one versioned ``.npz`` per model, its loader/validator and a seeded generator
of random-but-valid models (for tests only, never shipped).

File layout (numpy ``.npz``, no pickles):

=================  ===========================================================================
key                content
=================  ===========================================================================
``format``         the string ``"iqlut-model"``
``version``        int, ``FORMAT_VERSION``
``config``         JSON: ``ModelConfig.to_dict()`` (architecture and number formats)
``params``         JSON: list, one per layer (blocks then upsampler), of
                   ``{"nuqd_a": float, "nuqd_b": float, "grid": [int, ...], "shift": int,
                   "gate": int | null}``; ``grid`` (the NUQD thresholds g_0..g_{L-1}) is the
                   truth the hardware uses; ``nuqd_a``/``nuqd_b`` record the T_{a,b} it came from
``meta``           JSON: free-form provenance (training recipe, iterations, date, metrics)
``lut{n}``         int16 array (c_in, L, k, k, c_out) of layer n, values within ``entry_bits``
=================  ===========================================================================

The NUQD thresholds are stored as integers (``grid``); everything else the hardware needs
(reciprocals, bit-widths, bounds) is derived from the file by ``golden.spec``.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from . import spec
from .fileutil import atomic_open
from .spec import ModelConfig

FORMAT = "iqlut-model"
FORMAT_VERSION = 1
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


class ModelFileError(ValueError):
    """A model file is missing, malformed or inconsistent; the message names the field."""


@dataclass(frozen=True)
class LayerParams:
    """Trained parameters of one layer.

    nuqd_a, nuqd_b : T_{a,b} breakpoints (floats in (0, 1)) the grid was derived from (provenance).
    grid           : int64 (L,) NUQD grid g_0..g_{L-1} (``spec.nuqd_grid(a, b, ...)`` when made;
                     stored as integers so no float arithmetic stands between file and hardware).
    shift          : right shift (with round-half-up) of the EC accumulator, 0..MAX_SHIFT.
    gate           : residual gate g in [0, 2^gate_bits] (None for ungated layers).
    lut            : int64 array (c_in, L, k, k, c_out) of signed entry_bits-bit entries.
    """
    nuqd_a: float
    nuqd_b: float
    grid: np.ndarray = field(repr=False)
    shift: int = 0
    gate: int | None = None
    lut: np.ndarray = field(repr=False, default=None)


@dataclass(frozen=True, eq=False)
class Model:
    """A complete integer model: configuration + per-layer parameters (+ provenance)."""
    config: ModelConfig
    layers: tuple[LayerParams, ...]
    meta: dict = field(default_factory=dict)

    @cached_property
    def grids(self) -> tuple[np.ndarray, ...]:
        """Per layer: NUQD grid g_0..g_{L-1} (int64)."""
        return tuple(np.asarray(p.grid, dtype=np.int64) for p in self.layers)

    @cached_property
    def recips(self) -> tuple[np.ndarray, ...]:
        """Per layer: NUQD reciprocals R_i (int64)."""
        return tuple(spec.nuqd_recip(g, c.frac_bits) for c, g in zip(self.config.layers, self.grids))

    @cached_property
    def widths(self) -> tuple[spec.LayerWidths, ...]:
        """Per layer: bit-widths and bounds from interval analysis of the actual LUTs."""
        n_blocks = len(self.config.blocks)
        return tuple(spec.layer_widths(c, p.lut, r, p.shift, self.config.act_bits, n == n_blocks,
                                       p.gate, self.config.gate_bits, self.config.scale)
                     for n, (c, p, r) in enumerate(zip(self.config.layers, self.layers, self.recips)))

    @property
    def name(self) -> str:
        return self.config.name

    def lut_bytes(self) -> int:
        return self.config.lut_bytes()


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

def validate(model: Model) -> Model:
    """Check every field of a model against the spec; raise ModelFileError naming the field."""
    cfg = model.config
    try:
        spec.validate_config(cfg)
    except ValueError as e:
        raise ModelFileError(str(e)) from None
    if len(model.layers) != len(cfg.layers):
        raise ModelFileError(f"params: {len(model.layers)} layers, config has {len(cfg.layers)}")
    emin, emax = -(1 << (cfg.entry_bits - 1)), (1 << (cfg.entry_bits - 1)) - 1
    for n, (c, p) in enumerate(zip(cfg.layers, model.layers)):
        where = f"layer {n} ({'upsampler' if n == len(cfg.blocks) else f'block {n}'})"
        for k in ("nuqd_a", "nuqd_b"):
            v = getattr(p, k)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v < 1:
                raise ModelFileError(f"params[{n}].{k}: must be a number in (0, 1), got {v!r} ({where})")
        try:
            spec.check_grid(p.grid, c.levels, cfg.act_bits, c.frac_bits)
        except ValueError as e:
            raise ModelFileError(f"params[{n}].grid: {e} ({where})") from None
        if not isinstance(p.shift, int) or isinstance(p.shift, bool) or not 0 <= p.shift <= spec.MAX_SHIFT:
            raise ModelFileError(f"params[{n}].shift: must be an int in 0..{spec.MAX_SHIFT}, got {p.shift!r} ({where})")
        if c.gated:
            if not isinstance(p.gate, int) or isinstance(p.gate, bool) or not 0 <= p.gate <= (1 << cfg.gate_bits):
                raise ModelFileError(f"params[{n}].gate: must be an int in 0..{1 << cfg.gate_bits}, got {p.gate!r} ({where})")
        elif p.gate is not None:
            raise ModelFileError(f"params[{n}].gate: must be null for an ungated layer, got {p.gate!r} ({where})")
        lut = p.lut
        if not isinstance(lut, np.ndarray) or lut.dtype.kind not in "iu":
            raise ModelFileError(f"lut{n}: must be an integer array ({where})")
        if lut.shape != c.lut_shape():
            raise ModelFileError(f"lut{n}: shape {lut.shape}, expected {c.lut_shape()} "
                                 f"(c_in, levels, k, k, c_out) ({where})")
        if lut.size and (lut.min() < emin or lut.max() > emax):
            raise ModelFileError(f"lut{n}: entries in [{lut.min()}, {lut.max()}] exceed the signed "
                                 f"{cfg.entry_bits}-bit range [{emin}, {emax}] ({where})")
    return model


# ---------------------------------------------------------------------------------------------
# Load / save
# ---------------------------------------------------------------------------------------------

def resolve_model_path(name_or_path: str | os.PathLike) -> Path:
    """``NAME`` -> ``models/NAME.npz`` shipped with the package; an existing path is used as is."""
    p = Path(name_or_path)
    if p.suffix == ".npz" or p.exists() or os.sep in str(name_or_path):
        if not p.exists():
            raise ModelFileError(f"model file not found: {p}")
        return p
    cand = MODELS_DIR / f"{name_or_path}.npz"
    if cand.exists():
        return cand
    shipped = sorted(q.stem for q in MODELS_DIR.glob("*.npz"))
    raise ModelFileError(f"unknown model '{name_or_path}': no file {cand}; shipped models: "
                         f"{', '.join(shipped) or '(none)'}; or pass a path to a .npz model file")


def _json_field(z, key):
    if key not in z.files:
        raise ModelFileError(f"{key}: missing")
    try:
        return json.loads(str(z[key][()]))
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{key}: not valid JSON ({e})") from None


def load_model(name_or_path: str | os.PathLike) -> Model:
    """Load and validate a model file (see module docstring); raises ModelFileError naming the field."""
    path = resolve_model_path(name_or_path)
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any decoding failure is a bad file
        raise ModelFileError(f"{path}: not a readable .npz model file ({e})") from None
    with z:
        for key in ("format", "version"):
            if key not in z.files:
                raise ModelFileError(f"{path}: {key}: missing (not an IQ-LUT model file?)")
        if str(z["format"][()]) != FORMAT:
            raise ModelFileError(f"{path}: format: expected '{FORMAT}', got '{z['format'][()]}'")
        try:
            version = int(z["version"][()])
        except (TypeError, ValueError):
            raise ModelFileError(f"{path}: version: not an integer") from None
        if version != FORMAT_VERSION:
            raise ModelFileError(f"{path}: version: {version} is not supported (this tool reads "
                                 f"version {FORMAT_VERSION})")
        try:
            cfg_d = _json_field(z, "config")
            try:
                cfg = ModelConfig.from_dict(cfg_d)
            except (TypeError, KeyError, AttributeError) as e:
                raise ModelFileError(f"config: malformed ({e})") from None
            params = _json_field(z, "params")
            meta = _json_field(z, "meta") if "meta" in z.files else {}
            if not isinstance(params, list) or len(params) != len(cfg.layers):
                raise ModelFileError(f"params: expected a list of {len(cfg.layers)} layers")
            layers = []
            for n, p in enumerate(params):
                if not isinstance(p, dict):
                    raise ModelFileError(f"params[{n}]: expected an object")
                for k in ("nuqd_a", "nuqd_b", "grid", "shift", "gate"):
                    if k not in p:
                        raise ModelFileError(f"params[{n}].{k}: missing")
                key = f"lut{n}"
                if key not in z.files:
                    raise ModelFileError(f"{key}: missing")
                lut = z[key]
                if lut.dtype.kind not in "iu":
                    raise ModelFileError(f"{key}: dtype {lut.dtype} is not an integer type")
                grid = p["grid"]
                if not isinstance(grid, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in grid):
                    raise ModelFileError(f"params[{n}].grid: must be a list of integers")
                layers.append(LayerParams(nuqd_a=p["nuqd_a"], nuqd_b=p["nuqd_b"],
                                          grid=np.array(grid, dtype=np.int64), shift=p["shift"],
                                          gate=p["gate"], lut=lut.astype(np.int64)))
            return validate(Model(config=cfg, layers=tuple(layers), meta=meta))
        except ModelFileError as e:
            raise ModelFileError(f"{path}: {e}") from None


def save_model(model: Model, path: str | os.PathLike) -> Path:
    """Validate and write a model file atomically (temp file + rename: never half-written)."""
    validate(model)
    path = Path(path)
    arrays = {
        "format": np.array(FORMAT), "version": np.array(FORMAT_VERSION),
        "config": np.array(json.dumps(model.config.to_dict(), sort_keys=True)),
        "params": np.array(json.dumps([{"nuqd_a": float(p.nuqd_a), "nuqd_b": float(p.nuqd_b),
                                        "grid": [int(v) for v in p.grid],
                                        "shift": int(p.shift),
                                        "gate": None if p.gate is None else int(p.gate)}
                                       for p in model.layers])),
        "meta": np.array(json.dumps(model.meta, sort_keys=True, default=str)),
    }
    for n, p in enumerate(model.layers):
        arrays[f"lut{n}"] = p.lut.astype(np.int16)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())
    return path


# ---------------------------------------------------------------------------------------------
# Random models (tests only)
# ---------------------------------------------------------------------------------------------

def random_model(config: ModelConfig | str, seed: int = 0, extreme: bool = False) -> Model:
    """A seeded random-but-valid model for tests (never a trained model).

    extreme=True fills the LUTs with the ends of the entry range (checkerboard-like +-max / min
    patterns) and picks the smallest shifts, to stress the interval-analysis bounds."""
    cfg = spec.get_config(config) if isinstance(config, str) else config
    spec.validate_config(cfg)
    rng = np.random.default_rng(seed)
    emin, emax = -(1 << (cfg.entry_bits - 1)), (1 << (cfg.entry_bits - 1)) - 1
    layers = []
    for n, c in enumerate(cfg.layers):
        while True:
            a, b = float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9))
            if c.levels == (1 << cfg.act_bits):
                a = b  # one level per value: T must be the identity
            try:
                grid = spec.check_grid(spec.nuqd_grid(a, b, c.levels, cfg.act_bits), c.levels,
                                       cfg.act_bits, c.frac_bits)
                break
            except ValueError:
                continue
        if extreme:
            lut = rng.choice(np.array([emin, emax]), size=c.lut_shape())
            shift = int(rng.integers(0, 3))
        else:
            scale = rng.uniform(0.2, 1.0)
            lut = np.clip(np.round(rng.normal(0, scale * emax / 2, size=c.lut_shape())), emin, emax)
            shift = int(rng.integers(1, 5))
        gate = int(rng.integers(0, (1 << cfg.gate_bits) + 1)) if c.gated else None
        layers.append(LayerParams(nuqd_a=a, nuqd_b=b, grid=grid, shift=shift, gate=gate,
                                  lut=lut.astype(np.int64)))
    return validate(Model(config=cfg, layers=tuple(layers), meta={"random_seed": seed}))

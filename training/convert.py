"""Model-file conversions for training starts (numpy only, no torch).

``python -m training.convert --to ecnn_l8c8 models/iq_l8c8.npz --out runs/ecnn_init.npz``

``expand_to_ecnn``: an IQ-LUT model (NUQD + DPFI, few levels) -> the ECNN of the same blocks
(``levels`` = 2^A, ``frac_bits`` = 0, identity grid) that computes **exactly the same function**:
every ECNN table row is the IQ layer's DPFI output for that activation value
(``golden.iqlut.layer_value_table``). Shifts and gates are copied. So an ECNN teacher can start at
the student's quality instead of at the bilinear skip: trained from scratch with Adam, the 256-level
tables of ``ecnn_l8c8`` (each entry sees gradient only when its exact activation value occurs) ran
to the rails and stayed at the bilinear level (Set5 27.55 after 4,742 iterations at lr 1e-2).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from golden import spec
from golden.iqlut import layer_value_table
from golden.modelfile import Model, ModelFileError, load_model, save_model, validate


def expand_to_ecnn(model: Model, config: str | spec.ModelConfig = "ecnn_l8c8") -> Model:
    """The ECNN (``config``: 2^A levels, F = 0) with the same function as ``model``. Raises
    ValueError if the two architectures differ in anything but levels and fraction bits."""
    cfg = spec.get_config(config) if isinstance(config, str) else config
    src = model.config
    a = src.act_bits
    same = [dataclasses.replace(layer, levels=1 << a, frac_bits=0) for layer in src.layers]
    if tuple(same) != cfg.layers or (cfg.scale, cfg.act_bits, cfg.entry_bits, cfg.gate_bits) != \
            (src.scale, src.act_bits, src.entry_bits, src.gate_bits):
        raise ValueError(f"model '{src.name}' and config '{cfg.name}' differ in more than NUQD "
                         "levels and fraction bits")
    grid = np.arange(-(1 << (a - 1)), 1 << (a - 1), dtype=np.int64)       # every value a level
    layers = tuple(dataclasses.replace(p, nuqd_a=0.5, nuqd_b=0.5, grid=grid,
                                       lut=layer_value_table(model, n).astype(np.int64))
                   for n, p in enumerate(model.layers))
    meta = dict(model.meta)
    meta["expanded_from"] = {"name": src.name, "trained_iterations": model.meta.get("trained_iterations")}
    return validate(Model(config=cfg, layers=layers, meta=meta))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="model name or .npz path")
    p.add_argument("--to", default="ecnn_l8c8", help="the ECNN config to expand to (default ecnn_l8c8)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    try:
        m = expand_to_ecnn(load_model(a.model), a.to)
    except (ModelFileError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    path = save_model(m, a.out)
    print(f"wrote {path}: {m.config.name}, {m.lut_bytes():,} B, the function of {a.model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

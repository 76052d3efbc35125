"""Greedy search of the NUQD breakpoints (a, b) of T_{a,b}, layer by layer, on held-out patches.

Changing a layer's grid keeps the function it computes as far as possible: its table is resampled
(piecewise-linear DPFI interpolation of the old table at the new grid points), so the search
compares grids, not retrained tables. For each layer in order every candidate (a, b) is tried and the
one with the lowest held-out loss is kept (the current one wins ties).
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

from golden import spec
from training.model import ECLayer, IQLUT

DEFAULT_CANDIDATES = tuple((a, b) for a, b in itertools.product((0.2, 0.35, 0.5, 0.65, 0.8), repeat=2))


@torch.no_grad()
def resample_table(layer: ECLayer, a: float, b: float) -> None:
    """Move ``layer`` to the grid of T_{a,b}, resampling its table (c_in, L, k, k, c_out) so the
    interpolated function is preserved at the new grid points."""
    new = torch.tensor(spec.nuqd_grid(a, b, layer.layer.levels, layer.cfg.act_bits), dtype=torch.float32)
    old = layer.grid
    i = torch.bucketize(new, old[1:], right=True)
    w = torch.cat([old[1:] - old[:-1], torch.ones(1)])
    t = ((new - old[i]) / w[i]).view(1, -1, 1, 1, 1)
    lut = layer.lut.data
    hi = torch.clamp(i + 1, max=layer.layer.levels - 1)
    layer.lut.data = lut[:, i] + (lut[:, hi] - lut[:, i]) * t
    layer.set_nuqd(a, b)


@torch.no_grad()
def heldout_loss(net: IQLUT, lr: torch.Tensor, hr: torch.Tensor) -> float:
    return float(torch.mean((net(lr, "qat") - hr) ** 2))


@torch.no_grad()
def greedy_search(net: IQLUT, lr: torch.Tensor, hr: torch.Tensor, candidates=DEFAULT_CANDIDATES,
                  log=print) -> list[tuple[float, float]]:
    """Choose (a, b) per layer greedily; returns the chosen pairs. Adam state of the tables is
    kept as is (the resampled tables are close to the old ones)."""
    chosen = []
    for n, layer in enumerate(net.layers):
        if layer.table_net is not None:         # an MLP table: resampling entries does not apply
            chosen.append((layer.a, layer.b))
            log(f"nuqd layer {n}: a={layer.a} b={layer.b} kept (MLP-parameterized table)")
            continue
        best = (heldout_loss(net, lr, hr), layer.a, layer.b)
        saved = (layer.lut.data.clone(), layer.a, layer.b)
        for a, b in candidates:
            if (a, b) == (saved[1], saved[2]):
                continue
            try:
                spec.nuqd_grid(a, b, layer.layer.levels, layer.cfg.act_bits)
            except ValueError:
                continue
            layer.lut.data = saved[0].clone()
            layer.set_nuqd(saved[1], saved[2])
            resample_table(layer, a, b)
            loss = heldout_loss(net, lr, hr)
            if loss < best[0]:
                best = (loss, a, b)
        layer.lut.data = saved[0].clone()
        layer.set_nuqd(saved[1], saved[2])
        if (best[1], best[2]) != (saved[1], saved[2]):
            resample_table(layer, best[1], best[2])
        chosen.append((best[1], best[2]))
        log(f"nuqd layer {n}: a={best[1]} b={best[2]} held-out PSNR "
            f"{10 * np.log10(255.0 ** 2 / best[0]):.3f} dB")
    return chosen

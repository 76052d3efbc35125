"""Optimizers for LUT tables.

``LazyAdam``: Adam whose moments and step count advance per **entry**, only at the steps where
that entry has a non-zero gradient (the lazy/sparse Adam of embedding tables). A table entry that
only some activation values reach (the 256-level tables of ``ecnn_l8c8``: an entry learns only when
its exact value occurs) then moves by about ``lr`` per use. Plain Adam decays its moments at every
step instead, so one isolated gradient keeps moving that entry for many steps (m decays 100x
faster than v): about 30 lr in all from a single sample. Where every entry has a gradient at every
step it is Adam exactly (tests/test_optim.py).

Measured (2026-12-03, held-out training images): fine-tuning ``ecnn_l8c8`` from iq_l8c8's exact
function (26.42 dB) at lr 2e-3 lost PSNR with both optimizers: Adam 25.43 at 1,571 iterations,
LazyAdam 25.81 / 25.60 / 25.53 at 500 / 1,000 / 1,500; iq_l8c8 itself at the same lr stays at
26.44. So the per-entry step size is not the cause of the ECNN's degradation (see the README).
"""
from __future__ import annotations

import torch


class LazyAdam(torch.optim.Optimizer):
    """Adam with per-entry step counts and moments updated only where grad != 0."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        if lr < 0 or eps <= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"LazyAdam: bad lr {lr}, betas {betas} or eps {eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                st = self.state[p]
                if not st:
                    st["m"] = torch.zeros_like(p)
                    st["v"] = torch.zeros_like(p)
                    st["n"] = torch.zeros_like(p)        # per-entry step count (float: exact to 2^24)
                live = g != 0
                n = torch.where(live, st["n"] + 1, st["n"])
                m = torch.where(live, b1 * st["m"] + (1 - b1) * g, st["m"])
                v = torch.where(live, b2 * st["v"] + (1 - b2) * g * g, st["v"])
                st["n"], st["m"], st["v"] = n, m, v
                nn = n.clamp(min=1)
                mh = m / (1 - b1 ** nn)
                vh = v / (1 - b2 ** nn)
                p.sub_(torch.where(live, group["lr"] * mh / (vh.sqrt() + group["eps"]), 0.0))
        return loss

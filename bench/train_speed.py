"""Training-step speed of the EC formulations: ``python -m bench.train_speed [--config iq_l8c8]``.

Times one QAT training step (forward + backward + Adam) of the hat-basis convolution and of the
gather + blend formulation (training.model.ECLayer.impl), for the student config and the 256-level
ECNN teacher, at the training batch (32 x 48 x 48 LR patches by default). Prints it/s; the figure
that matters for training is PSNR per CPU-minute, which the run logs (runs/*/log.csv) give.
"""
from __future__ import annotations

import argparse
import time

import torch

from golden import spec
from training.model import IQLUT


def step_time(cfg_name: str, impl: str, batch: int, patch: int, steps: int, threads: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = IQLUT(spec.get_config(cfg_name))
    for layer in net.layers:
        layer.impl = impl
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    lr = torch.randint(0, 256, (batch, 1, patch, patch)).float()
    hr = torch.rand(batch, 1, 4 * patch, 4 * patch) * 255
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        loss = torch.mean((net(lr, "qat") - hr) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return min(times[1:])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.train_speed")
    p.add_argument("--configs", nargs="+", default=["iq_l8c8", "ecnn_l8c8"])
    p.add_argument("--impls", nargs="+", default=["hat", "gather"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    print(f"batch {a.batch} x {a.patch}x{a.patch} LR, {a.threads} threads, best of {a.steps} steps")
    print(f"{'config':<12} {'impl':<8} {'s/step':>8} {'it/s':>7}")
    for cfg in a.configs:
        for impl in a.impls:
            if impl == "hat" and spec.get_config(cfg).blocks[1].levels > 64:
                print(f"{cfg:<12} {impl:<8} {'skipped (hat of 256 levels: ~0.6 GB per layer)':>8}")
                continue
            s = step_time(cfg, impl, a.batch, a.patch, a.steps, a.threads)
            print(f"{cfg:<12} {impl:<8} {s:8.3f} {1 / s:7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

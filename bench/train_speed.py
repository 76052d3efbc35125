"""Training-step speed, old vs new EC, in the real loop: ``python -m bench.train_speed``.

The step is training.train's: real patches from ``training.data.PatchSampler`` on T91 + BSD200
(batch 32 x 48 x 48 LR by default), the real loss (MSE / 255^2), Adam. Each config runs its old EC
implementation (``hat``, the previous default, or ``gather`` for the 256-level ECNN whose hat tensor
does not fit) and the new one (``table``: value table + fused C++ kernel, training/ec_table.py) on the
same batches, steps interleaved (old, new, old, new, ...) so machine noise hits both alike; prints
the median wall and CPU time per step after warm-up and the CPU-time ratio. The old EC runs twice:
with glibc malloc as the old loop had it and with the tuned malloc that training now sets. ``--teacher`` also times the exact
integer-mode forward of an ECNN (the distillation target) both ways. 1 thread by default.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from golden import spec
from golden.modelfile import random_model
from training.data import PatchSampler, default_data_dir, load_pairs
from training.model import IQLUT
from training.train import default_malloc, tune_malloc


def old_impl(cfg_name: str) -> str:
    return "hat" if max(layer.levels for layer in spec.get_config(cfg_name).layers) <= 32 else "gather"


def make_step(cfg_name: str, impl: str):
    torch.manual_seed(0)
    net = IQLUT(spec.get_config(cfg_name))
    with torch.no_grad():
        net.up.lut.normal_(0, 0.05)        # a zero upsampler would zero the gradients of every block
    for layer in net.layers:
        layer.impl = impl
    opt = torch.optim.Adam(net.parameters(), 1e-3)

    def step(lr, hr):
        loss = torch.mean((net(lr, "qat") - hr) ** 2) / 255.0 ** 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return lambda lr, hr: timed(step, lr, hr)


def timed(fn, *args):
    """(wall, CPU) seconds of fn(*args): CPU time of this process is the steadier figure on a shared
    machine (1 thread: CPU time = time on a core)."""
    w, c = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - w, time.process_time() - c


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.train_speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=["iq_l8c8"], help=f"of {', '.join(spec.CONFIGS)}")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--steps", type=int, default=7, help="timed steps per variant (median)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--teacher", action="store_true", help="also time an ECNN integer-mode forward")
    p.add_argument("--data", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    pairs = load_pairs(a.data or default_data_dir(), ("T91", "BSD200"), cache_dir="runs/cache")
    print(f"batch {a.batch} x {a.patch}x{a.patch} LR (T91+BSD200 patches), {a.threads} thread(s), "
          f"median of {a.steps} interleaved steps after {a.warmup} warm-up")
    print(f"{'config':<10} {'EC':<7} {'malloc':<8} {'wall s':>7} {'CPU s':>7} {'CPU speed-up':>13}")
    for cfg in a.configs:
        old = old_impl(cfg)
        # (EC, malloc): the old loop as it ran (glibc's dynamic mmap threshold tops out at 32 MB, so the
        # ~39 MB hat tensors were mmapped and page-faulted every step), old + tuned malloc, the new EC
        variants = [(old, "default"), (old, "tuned"), ("table", "tuned")]
        steps = {v: make_step(cfg, v[0]) for v in variants}
        sampler = PatchSampler(pairs, a.patch, seed=0)
        times = {v: [] for v in variants}
        for n in range(a.warmup + a.steps):
            lr, hr = (torch.from_numpy(x) for x in sampler.batch(a.batch))
            for v in variants:
                tune_malloc() if v[1] == "tuned" else default_malloc()
                dt = steps[v](lr, hr)
                if n >= a.warmup:
                    times[v].append(dt)
        base = statistics.median(c for _, c in times[variants[0]])
        for v in variants:
            wall = statistics.median(w for w, _ in times[v])
            cpu = statistics.median(c for _, c in times[v])
            print(f"{cfg:<10} {v[0]:<7} {v[1]:<8} {wall:7.3f} {cpu:7.3f} {base / cpu:12.1f}x", flush=True)
    tune_malloc()
    if a.teacher:
        net = IQLUT.from_golden(random_model("ecnn_l8c8", 0))
        lr, _ = (torch.from_numpy(v) for v in PatchSampler(pairs, a.patch, seed=1).batch(a.batch))
        res = {}
        for impl in ("gather", "table"):
            for layer in net.layers:
                layer.impl = impl
            with torch.no_grad():
                ts = [timed(net, lr, "int")[1] for _ in range(1 + max(1, a.steps // 2))]
            res[impl] = statistics.median(ts[1:])
        print(f"ECNN teacher int-mode forward (CPU s): exact float64 gather {res['gather']:.3f}, "
              f"table {res['table']:.3f} ({res['gather'] / res['table']:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

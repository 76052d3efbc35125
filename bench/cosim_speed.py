"""Co-simulation speed: LR pixels per second of the cocotb testbench (``sim/``) on the emitted
Verilog of a model, for each simulator.

Usage::

    python -m bench.cosim_speed [--model iq_l8c8] [--sim icarus verilator] [--size verilator=64x64]
                                [--size icarus=8x8] [--max-width 1920]

Streams one synthetic single-channel LR frame (``bench.golden_speed.synthetic_frame``) through
the design at full speed (no ``tvalid`` gaps, no ``tready`` stalls), checks every HR pixel
against golden, and prints per simulator: the one-time costs (Verilog emission, simulator
build; both cached in ``build/sim``, so a second run shows the cached figures), simulated
cycles, cycles per LR pixel, testbench wall time, LR pixels per second and simulated cycles
per second. Frames are small by default because Icarus runs ~10 cycles/s on iq_l8c8.

Exit code 0; 1 if a pixel differs; 2 on bad arguments or a missing simulator.
"""
from __future__ import annotations

import argparse
import platform
import sys

from bench.golden_speed import parse_size, synthetic_frame

DEFAULT_SIZES = {"verilator": (64, 64), "icarus": (8, 8)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cosim_speed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="iq_l8c8")
    ap.add_argument("--sim", nargs="+", default=["verilator", "icarus"], choices=("verilator", "icarus"))
    ap.add_argument("--size", action="append", default=[], metavar="SIM=WxH",
                    help="frame size per simulator (default verilator=64x64, icarus=8x8)")
    ap.add_argument("--max-width", type=int, default=1920)
    args = ap.parse_args(argv)
    sizes = dict(DEFAULT_SIZES)
    for item in args.size:
        sim, _, wh = item.partition("=")
        if sim not in DEFAULT_SIZES or not wh:
            ap.error(f"--size {item!r}: expected SIM=WxH with SIM in {sorted(DEFAULT_SIZES)}")
        try:
            sizes[sim] = parse_size(wh)
        except argparse.ArgumentTypeError as e:
            ap.error(str(e))
    from golden.modelfile import ModelFileError, load_model
    from sim.run import RunError, run_images
    from sim.runner import SimError
    try:
        model = load_model(args.model)
    except (ModelFileError, ValueError, OSError) as e:
        print(f"bench.cosim_speed: cannot load model {args.model!r}: {e}", file=sys.stderr)
        return 2
    print(f"# co-simulation speed, model {model.name}, max width {args.max_width}, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{'simulator':<11}{'frame':>8}{'emit s':>8}{'build s':>9}{'cycles':>9}{'cyc/px':>8}"
          f"{'tb s':>9}{'LR px/s':>10}{'cycles/s':>10}{'mism.':>7}")
    rc = 0
    for sim in args.sim:
        w, h = sizes[sim]
        lr = synthetic_frame(w, h, 1)
        try:
            s = run_images(model, [(f"synthetic{w}x{h}", lr)], sim=sim, max_width=args.max_width,
                           progress=False, log=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
        except (RunError, SimError) as e:
            print(f"bench.cosim_speed: {sim}: {e}", file=sys.stderr)
            rc = 2
            continue
        tb = s["testbench_seconds"]
        print(f"{sim:<11}{f'{w}x{h}':>8}{s['emit_seconds']:>8.1f}{s['build_seconds'] or 0:>9.1f}"
              f"{s['cycles']:>9,}{s['cycles_per_lr_pixel']:>8.3f}{tb:>9.1f}"
              f"{s['lr_pixels'] / tb:>10.1f}{s['cycles'] / tb:>10.1f}{s['mismatches']:>7}", flush=True)
        if not s["ok"]:
            rc = max(rc, 1)
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""``python -m sim.run``: co-simulate the emitted Verilog of a model on real images and compare every
HR pixel with ``golden``.

    python -m sim.run --model iq_l8c8 (--image PATH [PATH ...] | --set Set5) [--sim verilator|icarus]
                      [--crop WxH] [--data DIR] [--max-width 1920] [--output-order block|raster]
                      [--rom-ports dual|banked] [--idle P] [--stall P]
                      [--probes] [--seed N] [--json PATH] [--waves PATH.fst|PATH.vcd]

The Verilog is exactly what ``python -m hw.build --model M --emit verilog`` writes with the same
``--max-width`` (default 1920), ``--output-order`` and ``--rom-ports``, cached in ``build/sim/verilog`` by a key over the
model, the options and the ``hw/`` sources; the simulator build is cached by the Verilog's digest.
Every channel of an image is one frame (RGB images: R, G, B, the field's colour-SR protocol);
the frames of one image are streamed back to back, the images one after another. ``--set`` reads
``DIR/SET/LR_bicubic_sym/X4/*.png`` (``DIR``: ``--data``, ``$IQLUT_DATA`` or
``../shared/datasets``). ``--crop WxH`` takes the centre W x H of every LR image. ``--idle`` /
``--stall``: probability of a ``tvalid`` gap / a ``tready`` stall per cycle (default 0: the
design's full throughput, so cycles per LR pixel is the hardware figure). On a mismatch the first
differing image is run again with every internal stream recorded, to name the first block whose
output differs from golden's (``--probes`` records them in the first run already).

Prints pixels compared, mismatches (with frame, coordinates, expected and got), simulated cycles
per LR pixel and wall time, with a progress bar on a terminal. Exit code 0: every pixel equal;
1: a mismatch, a timeout or an unexpected status; 2: a user error (unknown model or set, bad
image, bad flag, missing simulator).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from hw.build import BuildError, parse_dsp_layers, resolve_dsp_layers
from hw.fold import FOLDS
from hw.top import check_dsp_layers

__all__ = ["main", "run_images"]


#: trace format each simulator writes (``--waves``)
WAVE_SUFFIX = {"icarus": ".fst", "verilator": ".vcd"}


class RunError(Exception):
    """A user error: one line on stderr, exit code 2."""


def _parse_crop(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise RunError(f"--crop {text!r}: expected WxH, e.g. 32x24") from None
    if w < 1 or h < 1:
        raise RunError(f"--crop {text!r}: width and height must be >= 1")
    return w, h


def _centre_crop(img: np.ndarray, crop: tuple[int, int] | None) -> np.ndarray:
    if crop is None:
        return img
    w, h = min(crop[0], img.shape[1]), min(crop[1], img.shape[0])
    y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w])


def load_images(images: list[str] | None, set_name: str | None, data: str | None,
                crop: tuple[int, int] | None, scale: int = 4) -> list[tuple[str, np.ndarray]]:
    """(label, uint8 (H, W) or (H, W, 3) LR image) for ``--image`` paths or a ``--set``; a set's LR
    at x``scale`` as ``golden.eval`` makes it (x4: the LR files; x2/x3: MATLAB-exact bicubic of HR)."""
    from golden.eval import (
        HR_SUBDIR,
        LR_SUBDIR,
        SCALE,
        EvalError,
        default_data_dir,
        list_images,
        make_lr,
        modcrop,
    )
    from golden.imageio import ImageError, load_image
    if set_name is not None:
        data = data or default_data_dir()
        if not os.path.isdir(data):
            raise RunError(f"data directory {data} not found (pass --data DIR or set IQLUT_DATA)")
        try:
            names = list_images(data, set_name, scale)
        except EvalError as e:
            raise RunError(str(e)) from None
        if scale == SCALE:
            paths = [(n, os.path.join(data, set_name, LR_SUBDIR, f"{n}x{SCALE}.png")) for n in names]
        else:
            paths = [(n, os.path.join(data, set_name, HR_SUBDIR, f"{n}.png")) for n in names]
    else:
        paths = [(Path(p).stem, p) for p in images]
    out = []
    for label, path in paths:
        try:
            img = load_image(path)
        except ImageError as e:
            raise RunError(str(e)) from None
        if set_name is not None and scale != SCALE:
            img = make_lr(modcrop(img, scale), scale)
        out.append((label, _centre_crop(img, crop)))
    return out


def _frames_of(label: str, img: np.ndarray):
    from .job import Frame
    if img.ndim == 2:
        return [Frame(img, label)]
    return [Frame(np.ascontiguousarray(img[:, :, c]), f"{label}:{'RGB'[c]}") for c in range(img.shape[2])]


class _Progress:
    """Shows the progress the testbench writes (``done total cycles``) while the simulator runs."""

    def __init__(self, path: Path, total: int, desc: str):
        self.path, self.total, self.desc = path, total, desc
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        """On a terminal one line redrawn in place (``\\r``); otherwise a line per 10 %."""
        tty = sys.stderr.isatty()
        t0, step, drawn = time.monotonic(), 0, False
        while not self.stop.wait(0.5):
            try:
                done = int(self.path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            pct = 100 * done // self.total if self.total else 0
            line = (f"{self.desc}: {done:,}/{self.total:,} HR beats ({pct}%), "
                    f"{time.monotonic() - t0:.0f} s")
            if tty:
                filled = pct * 30 // 100
                print(f"\r{self.desc} [{'#' * filled}{'.' * (30 - filled)}] {line[len(self.desc) + 2:]}",
                      end="", file=sys.stderr, flush=True)
                drawn = True
            elif self.total and done * 10 // self.total > step:
                step = done * 10 // self.total
                print(line, file=sys.stderr, flush=True)
        if drawn:
            print(file=sys.stderr, flush=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def run_images(model, images: list[tuple[str, np.ndarray]], *, sim: str = "verilator",
               max_width: int = 1920, output_order: str = "block", rom_ports: str = "dual",
               fold: int = 1, dsp_layers=(), idle: float = 0.0, stall: float = 0.0, probes: bool = False,
               seed: int = 0, job_dir: Path | None = None, waves: Path | None = None, log=print,
               progress: bool = True) -> dict:
    """Co-simulate ``images`` (label, uint8 LR array) through ``model``'s emitted Verilog. Returns
    a summary dict: per image (size, channels, LR/HR pixels, mismatches, cycles), totals, timing,
    the Verilog's path and sha256, ``report`` (mismatch lines) and ``first_differing_probe``.
    ``waves``: write the trace of every signal there (``.fst`` from Icarus, ``.vcd`` from
    Verilator; a separate, slower build)."""
    from .design import emit_design
    from .job import Segment, first_differing_probe, mismatch_report, write_job
    from .runner import CACHE, build, build_seconds, missing, run_job
    if waves is not None:
        waves = Path(waves)
        want = WAVE_SUFFIX[sim]
        if waves.suffix != want:
            raise RunError(f"--waves {waves}: {sim} writes {want} traces; name the file *{want}")
        if not waves.parent.is_dir():
            raise RunError(f"--waves {waves}: directory {waves.parent} does not exist")
    for label, img in images:
        if img.shape[1] > max_width:
            raise RunError(f"{label} is {img.shape[1]} LR pixels wide, more than the design's max width "
                           f"{max_width}: pass --max-width {img.shape[1]} or --crop")
    why = missing(sim)
    if why:
        raise RunError(why)
    t0 = time.monotonic()
    design = emit_design(model, CACHE / "verilog", max_width=max_width, output_order=output_order,
                         rom_ports=rom_ports, fold=fold, dsp_layers=dsp_layers)
    t_emit = time.monotonic() - t0
    log(f"Verilog: {design.verilog} (sha256 {design.digest[:16]}..., top {design.top}, "
        f"max width {max_width}, {design.output_order} order, {rom_ports} ROM ports, fold {fold}"
        + (f", DPFI in DSPs: layers {', '.join(map(str, design.dsp_layers))}" if design.dsp_layers else "") + ")")
    bdir = build(design, sim, waves=waves is not None, log=log)
    segments = [Segment(label, _frames_of(label, img), idle=idle, stall=stall) for label, img in images]
    tmp = None
    if job_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="iqlut-sim-")
        job_dir = Path(tmp.name)
    try:
        job = write_job(design, segments, job_dir, seed=seed, probes=probes)
        total = job["expected_beats"]
        t1 = time.monotonic()
        ctx = _Progress(Path(job_dir) / "progress", total, f"{sim}") if progress else None
        if ctx:
            with ctx:
                result = run_job(design, sim, job_dir, waves=waves is not None)
        else:
            result = run_job(design, sim, job_dir, waves=waves is not None)
        if waves is not None and result.get("waves"):
            import shutil
            shutil.move(result["waves"], waves)
        t_sim = time.monotonic() - t1
        report = mismatch_report(design, job, result)
        probe = first_differing_probe(design, job_dir, result) if probes else None
    finally:
        if tmp is not None:
            tmp.cleanup()
    rows = []
    for (label, img), seg in zip(images, result["segments"]):
        h, w = img.shape[:2]
        ch = 1 if img.ndim == 2 else img.shape[2]
        rows.append({"image": label, "h": h, "w": w, "channels": ch, "lr_pixels": h * w * ch,
                     "hr_pixels": model.config.scale ** 2 * h * w * ch, "mismatches": seg["mismatches"],
                     "cycles": seg["cycles"], "timeout": seg["timeout"], "status": seg["status"],
                     "status_ok": seg["status_ok"]})
    if not probes and any(r["mismatches"] for r in rows):
        # localise: the first image that differs again, with every internal stream recorded
        label, img = next(im for im, r in zip(images, rows) if r["mismatches"])
        log(f"{label} differs: running it again with probes to find the first differing block")
        again = run_images(model, [(label, img)], sim=sim, max_width=max_width,
                           output_order=output_order, rom_ports=rom_ports, fold=fold,
                           dsp_layers=dsp_layers, idle=idle,
                           stall=stall, probes=True, seed=seed, log=log, progress=progress)
        probe = again["first_differing_probe"]
    lr = sum(r["lr_pixels"] for r in rows)
    cycles = sum(r["cycles"] for r in rows)
    ok = (len(rows) == len(images) and all(r["mismatches"] == 0 and not r["timeout"] and r["status_ok"]
                                           for r in rows))
    return {"model": model.name, "simulator": sim, "simulator_version": result.get("simulator_version"),
            "verilog": design.verilog.name, "verilog_sha256": design.digest, "max_width": max_width, "fold": fold,
            "dsp_layers": list(design.dsp_layers),
            "idle": idle, "stall": stall, "seed": seed, "images": rows, "lr_pixels": lr,
            "hr_pixels": model.config.scale ** 2 * lr, "mismatches": sum(r["mismatches"] for r in rows),
            "cycles": cycles, "cycles_per_lr_pixel": cycles / lr if lr else None,
            "wall_seconds": round(time.monotonic() - t0, 1), "emit_seconds": round(t_emit, 1),
            "build_seconds": build_seconds(bdir), "sim_seconds": round(t_sim, 1),
            "testbench_seconds": round(result["wall_seconds"], 1),
            "lr_pixels_per_second": lr / result["wall_seconds"] if result["wall_seconds"] else None,
            "ok": ok, "report": report, "first_differing_probe": probe,
            "waves": str(waves) if waves is not None and waves.exists() else None}


def format_summary(s: dict) -> str:
    lines = [f"{'image':<14}{'LR size':>10}{'ch':>4}{'LR px':>10}{'HR px':>11}{'mismatch':>10}"
             f"{'cycles':>10}{'cyc/LR px':>11}"]
    for r in s["images"]:
        note = " TIMEOUT" if r["timeout"] else ("" if r["status_ok"] else f" status {r['status']:#06b}")
        lines.append(f"{r['image']:<14}{r['w']:>5}x{r['h']:<4}{r['channels']:>4}{r['lr_pixels']:>10,}"
                     f"{r['hr_pixels']:>11,}{r['mismatches']:>10,}{r['cycles']:>10,}"
                     f"{r['cycles'] / r['lr_pixels']:>11.3f}{note}")
    lines.append(f"{s['model']} on {s['simulator']} {s['simulator_version']}: "
                 f"{s['hr_pixels']:,} HR pixels ({s['lr_pixels']:,} LR pixels) compared with golden, "
                 f"{s['mismatches']:,} mismatches; {s['cycles']:,} cycles = "
                 f"{s['cycles_per_lr_pixel']:.3f} cycles per LR pixel")
    build = f"{s['build_seconds']:.0f} s" if s["build_seconds"] is not None else "?"
    lines.append(f"wall {s['wall_seconds']:.1f} s (simulation {s['sim_seconds']:.1f} s, testbench "
                 f"{s['testbench_seconds']:.1f} s = {s['lr_pixels_per_second']:.0f} LR pixels/s; "
                 f"simulator build {build}, cached after the first run)")
    if s["report"]:
        lines.append("mismatches (first ones):")
        lines += ["  " + line for line in s["report"]]
    if s["first_differing_probe"]:
        p = s["first_differing_probe"]
        lines.append(f"first differing internal stream: {p['probe']} (frame {p['frame']}, LR pixel "
                     f"{p.get('pixel')}, expected {p.get('expected')}, got {p.get('got')})")
    if s.get("waves"):
        lines.append(f"waves: {s['waves']}")
    lines.append("PASS: the Verilog equals golden on every pixel" if s["ok"] else "FAIL")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sim.run", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="iq_l8c8", help="shipped model name or .npz path (default iq_l8c8)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", nargs="+", metavar="PATH", help="LR image file(s), L or RGB PNG")
    src.add_argument("--set", metavar="NAME", help="a test set: Set5, Set14, B100")
    ap.add_argument("--data", metavar="DIR", help="datasets directory (default $IQLUT_DATA or ../shared/datasets)")
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--crop", metavar="WxH", help="centre crop of every LR image")
    ap.add_argument("--max-width", type=int, default=1920, help="the design's max LR width (default 1920)")
    ap.add_argument("--output-order", default="block", choices=("block", "raster"), help="as hw.build")
    ap.add_argument("--rom-ports", default="dual", choices=("dual", "banked"), help="as hw.build")
    ap.add_argument("--fold", type=int, default=1, choices=FOLDS, help="as hw.build (default 1)")
    ap.add_argument("--dsp-layers", type=parse_dsp_layers, default=(), metavar="{none,auto,N[,N...]}",
                    help="as hw.build (default none)")
    ap.add_argument("--idle", type=float, default=0.0, help="tvalid gap probability per cycle")
    ap.add_argument("--stall", type=float, default=0.0, help="tready stall probability per cycle")
    ap.add_argument("--probes", action="store_true", help="record internal streams; name the first differing block")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--waves", metavar="PATH", help="trace every signal into PATH (.fst for icarus, "
                    ".vcd for verilator); large: use --crop")
    ap.add_argument("--json", metavar="PATH", help="also write the summary as JSON")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from golden.modelfile import ModelFileError, load_model
    from .runner import SimError
    try:
        for name in ("idle", "stall"):
            v = getattr(args, name)
            if not 0.0 <= v < 1.0:
                raise RunError(f"--{name} must be in [0, 1), got {v}")
        if args.max_width < 1:
            raise RunError(f"--max-width must be >= 1, got {args.max_width}")
        crop = _parse_crop(args.crop)
        if args.waves and Path(args.waves).suffix != WAVE_SUFFIX[args.sim]:
            want = WAVE_SUFFIX[args.sim]
            raise RunError(f"--waves {args.waves}: {args.sim} writes {want} traces; name the file *{want}")
        try:
            model = load_model(args.model)
        except (ModelFileError, ValueError, OSError) as e:
            raise RunError(f"cannot load model {args.model!r}: {e}") from None
        try:
            dsp_layers = resolve_dsp_layers(args.dsp_layers, model, max_width=args.max_width,
                                            output_order=args.output_order, rom_ports=args.rom_ports,
                                            fold=args.fold)
            check_dsp_layers(model, dsp_layers)
        except (BuildError, ValueError) as e:
            raise RunError(f"--dsp-layers: {e}") from None
        images = load_images(args.image, args.set, args.data, crop, model.config.scale)
        summary = run_images(model, images, sim=args.sim, max_width=args.max_width,
                             output_order=args.output_order, rom_ports=args.rom_ports, fold=args.fold,
                             dsp_layers=dsp_layers,
                             idle=args.idle,
                             stall=args.stall, probes=args.probes, seed=args.seed, waves=args.waves,
                             log=lambda m: print(m, file=sys.stderr, flush=True))
    except RunError as e:
        print(f"sim.run: error: {e}", file=sys.stderr)
        return 2
    except SimError as e:
        print(f"sim.run: {e}", file=sys.stderr)
        return 2 if "not found" in str(e) or "too old" in str(e) else 1
    print(format_summary(summary))
    if args.json:
        from golden.fileutil import atomic_open
        with atomic_open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

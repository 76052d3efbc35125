# amaranth: UnusedElaboratable=no
"""The design under test: a model file emitted to Verilog by ``hw.build`` (the very text a user
gets), plus what the testbench needs to know about it — the top's name, its output order, and
the *probes*: the internal stream between two layers, named after the golden intermediate it
carries, with the bit position of its data field in the payload.

Probes read the *input* ports of the next component (``core.block{n+1}.i__*`` carries block n's
output, ``core.upsampler.i__*`` the last block's, ``core.combine.up__*`` / ``bil__*`` the
upsampler's HR residual and the bilinear 64ths). ``hw.build`` emits plain identifiers
(``hw.ip.plain_names``): instance ``core.block3`` is module ``<top>_core_block3``, its ports
``i__valid``, ``i__ready``, ``i__payload``; reachable through VPI in Icarus and in Verilator
(made public by ``sim.runner``'s ``public.vlt``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from amaranth.lib import data

from golden.modelfile import Model

__all__ = ["Design", "Probe", "emit_design"]


@dataclass(frozen=True)
class Probe:
    """An internal stream. ``path``: instance path below the top (e.g. ``("core", "block3")``);
    ``module``: the Verilog module of that instance; ``prefix``: port name prefix (``i__``,
    ``up__``, ``bil__``); ``golden``: the key of
    ``golden.iqlut.upscale_channel``'s intermediates; the data field occupies payload bits
    [offset, offset + lanes * bits), lane k at offset + k * bits, ``signed`` two's complement."""
    name: str
    path: tuple
    module: str
    prefix: str
    golden: str
    offset: int
    lanes: int
    bits: int
    signed: bool


@dataclass
class Design:
    """An emitted design. ``verilog``: path of the ``.v`` file; ``top``: its module name;
    ``digest``: sha256 of the Verilog text (the build cache key)."""
    model: Model
    verilog: Path
    top: str
    max_width: int
    output_order: str
    rom_ports: str
    lanes: int
    width_bits: int
    latency: Callable[[int], int]     # cycles, first LR pixel in -> first beat out, at width W
    frame_cycles: Callable[[int, int], int]   # cycles of an H x W frame, steady state, no stalls
    digest: str
    probes: list = field(default_factory=list)
    fold: int = 1
    dsp_layers: tuple = ()


def _field(layout: data.StructLayout, name: str):
    f = layout[name]
    shape = f.shape
    if not isinstance(shape, data.ArrayLayout):
        raise TypeError(f"probe field {name!r} is not an array")
    elem = shape.elem_shape
    from amaranth import Shape
    s = Shape.cast(elem)
    return f.offset, shape.length, s.width, s.signed


def _probes(core, top: str) -> list:
    """The probes of an ``hw.top.IQLUT`` emitted as module ``top``: every block's output, the
    upsampler, the bilinear path."""
    from hw.ip import module_name
    probes = []
    n_blocks = len(core.blocks)
    for n, block in enumerate(core.blocks):
        path = ("core", f"block{n + 1}") if n + 1 < n_blocks else ("core", "upsampler")
        off, lanes, bits, sgn = _field(block.o.p.shape(), "data")
        probes.append(Probe(f"block{n}", path, module_name(top, path), "i__", f"block{n}", off, lanes,
                            bits, sgn))
    off, lanes, bits, sgn = _field(core.combine.up.p.shape(), "acc")
    combine = ("core", "combine")
    probes.append(Probe("upsampler", combine, module_name(top, combine), "up__", "upsampler", off, lanes,
                        bits, sgn))
    off, lanes, bits, sgn = _field(core.combine.bil.p.shape(), "bil")
    probes.append(Probe("bilinear", combine, module_name(top, combine), "bil__", "bilinear", off, lanes,
                        bits, sgn))
    return probes


def _key(model: Model, max_width: int, output_order: str, rom_ports: str, fold: int = 1,
         dsp_layers: tuple = ()) -> str:
    """Cache key of an emission: the model data, the build options and the sources of the
    generator (``hw/``) and of the spec it derives every constant from (``golden/``)."""
    from hw.build import _digest
    h = hashlib.sha256(f"{_digest(model)} {max_width} {output_order} {rom_ports} {fold} {list(dsp_layers)}".encode())
    repo = Path(__file__).resolve().parent.parent
    for src in sorted([*(repo / "hw").glob("*.py"), *(repo / "golden").glob("*.py")]):
        h.update(src.read_bytes())      # golden.spec derives the widths the generator uses
    return h.hexdigest()[:20]


def emit_design(model: Model, out_dir: Path, *, max_width: int = 1920,
                output_order: str = "block", rom_ports: str = "dual", fold: int = 1,
                dsp_layers=()) -> Design:
    """Emit ``model`` with ``hw.build.build`` into ``out_dir/<top>-<key>.v`` and describe it. The
    text is cached by a key over the model data, the options and the ``hw/`` + ``golden/``
    sources (the emission takes ~40 s for iq_l8c8), so a rerun reuses it and the simulator
    build cache."""
    from hw.build import build, top_name
    from hw.top import IQLUT
    core = IQLUT(model, max_width=max_width, output_order=output_order, rom_ports=rom_ports, fold=fold,
                 dsp_layers=dsp_layers)
    dsp_layers = core.dsp_layers
    top = top_name(model.name)
    out_dir = Path(out_dir)
    path = out_dir / f"{top}-{_key(model, max_width, output_order, rom_ports, fold, dsp_layers)}.v"
    if not path.exists():
        text, _, top2 = build(model, source="sim", emit="verilog", max_width=max_width,
                              output_order=output_order, rom_ports=rom_ports, fold=fold,
                              dsp_layers=dsp_layers)
        assert top2 == top
        out_dir.mkdir(parents=True, exist_ok=True)
        from golden.fileutil import atomic_open
        with atomic_open(path, "w") as f:
            f.write(text)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Design(model=model, verilog=path, top=top, max_width=max_width,
                  output_order=output_order, rom_ports=rom_ports, lanes=core.lanes, width_bits=core.framing.width_bits,
                  latency=core.latency, frame_cycles=core.frame_cycles, digest=digest,
                  probes=_probes(core, top), fold=fold, dsp_layers=dsp_layers)

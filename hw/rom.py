"""LUT ROM with two reads per cycle (floor and floor + 1 of the NUQD index)."""
from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden import spec

from .nuqd import nuqd_layout
from .streams import Pipe, array_shape, local, with_side

__all__ = ["ROM_PORTS", "LutRom", "rom_layout"]

#: "dual": one memory per table with two read ports (lo at i, hi at min(i+1, L-1));
#: "banked": even and odd entries in two single-port memories, each read once, swapped by i's LSB.
ROM_PORTS = ("dual", "banked")


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
    (section 3). One pipeline stage (synchronous reads)."""

    def __init__(self, lut, storage_bits: int, widths: spec.LayerWidths, ports: str = "dual",
                 side=0):
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
        f = widths.frac_bits
        self.reads = 2 if f else 1
        self.rom_bits = lut.size * storage_bits
        self.latency = 1
        super().__init__({
            "i": In(stream.Signature(nuqd_layout(self.lanes, widths.index_bits, f, side))),
            "o": Out(stream.Signature(rom_layout(self.lanes, self.c_out, widths.entry_bits, f, side))),
        })

    def table(self, lane: int) -> np.ndarray:
        """(L, c_out) table of NUQD lane ``lane``."""
        j, c = divmod(lane, self.c_in)
        jy, jx = divmod(j, self.kernel)
        return self.lut[c, :, jy, jx, :]

    def elaborate(self, platform):
        m = Module()
        w, L, eb = self.widths, self.levels, self.widths.entry_bits
        pipe = Pipe(m, self.o, self.i, name="rom")
        m.d.comb += self.o.valid.eq(pipe.reg(self.i.valid, 1, valid=True))
        pipe.carry(self.i.p, self.o.p, "side", "frac")
        word = array_shape(signed(self.storage_bits), self.c_out)

        def memory(name, rows):
            mem = Memory(shape=word, depth=len(rows), init=[[int(v) for v in r] for r in rows])
            m.submodules[name] = mem
            rp = mem.read_port()
            m.d.comb += rp.en.eq(pipe.en)
            return rp

        def narrow(dst, src):   # storage_bits -> derived entry_bits, per entry (lossless)
            if self.storage_bits == eb:
                m.d.comb += dst.eq(src)
            else:
                m.d.comb += [dst[o].eq(src[o][:eb]) for o in range(self.c_out)]

        index = local(m, self.i.p.index, "index_in")
        lo_out = Signal(self.o.p.lo.shape(), name="lo_out")
        m.d.comb += self.o.p.lo.eq(lo_out)
        if w.frac_bits:
            hi_out = Signal(self.o.p.hi.shape(), name="hi_out")
            m.d.comb += self.o.p.hi.eq(hi_out)
        for n in range(self.lanes):
            tab, i = self.table(n), index[n]
            if not w.frac_bits:
                lo = memory(f"rom{n}", tab)
                m.d.comb += lo.addr.eq(i)
                narrow(lo_out[n], lo.data)
            elif self.ports == "dual":
                mem = Memory(shape=word, depth=L, init=[[int(v) for v in r] for r in tab])
                m.submodules[f"rom{n}"] = mem
                lo, hi = mem.read_port(), mem.read_port()
                m.d.comb += [lo.en.eq(pipe.en), hi.en.eq(pipe.en), lo.addr.eq(i),
                             hi.addr.eq(Mux(i == L - 1, L - 1, i + 1))]
                narrow(lo_out[n], lo.data)
                narrow(hi_out[n], hi.data)
            else:
                even = memory(f"rom{n}_even", tab[0::2])
                odd = memory(f"rom{n}_odd", tab[1::2])
                n_even, n_odd = (L + 1) // 2, L // 2
                a_even, a_odd = (i + 1) >> 1, i >> 1
                m.d.comb += [even.addr.eq(Mux(a_even >= n_even, n_even - 1, a_even)),
                             odd.addr.eq(Mux(a_odd >= n_odd, n_odd - 1, a_odd))]
                parity = pipe.reg(i[0], 1, name=f"parity{n}")
                lo_raw, hi_raw = Signal(word, name=f"lo_raw{n}"), Signal(word, name=f"hi_raw{n}")
                m.d.comb += [lo_raw.eq(Mux(parity, odd.data, even.data)),
                             hi_raw.eq(Mux(parity, even.data, odd.data))]
                narrow(lo_out[n], lo_raw)
                narrow(hi_out[n], hi_raw)
        return m

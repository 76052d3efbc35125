# amaranth: UnusedElaboratable=no
"""IQ-Block (EC + round-shift, clamp, residual gate) and the upsampler (EC with scale^2 outputs)."""
from __future__ import annotations

from amaranth import Cat, Const, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import spec
from golden.modelfile import Model

from .arith import clamp, round_shift
from .ec import EC, acc_layout
from .streams import FLAGS, Pipe, check_positive_int, pixel_layout

__all__ = ["BlockOutput", "IQBlock", "Upsampler", "csd"]


def csd(g: int) -> list[tuple[int, int]]:
    """Canonical signed digits of the constant ``g`` >= 0: [(sign +-1, exponent)] with
    g = sum(sign << exponent), no two adjacent exponents (the fewest nonzero digits: at most
    ceil((bits + 1) / 2))."""
    if g < 0:
        raise ValueError(f"csd needs g >= 0, got {g}")
    out, e = [], 0
    while g:
        if g & 1:
            d = 2 - (g & 3)          # +1 if g = 1 mod 4, -1 if g = 3 mod 4
            out.append((d, e))
            g -= d
        g >>= 1
        e += 1
    return out


def _pair_up(ops: list) -> list:
    """One adder level over signed operands [(sign +-1, value)]: neighbours combined two by two,
    each with one adder or subtractor ((+a) + (-b) = +(a - b), (-a) + (-b) = -(a + b)). The
    level's first result is positive when the first operand is."""
    out = []
    for j in range(0, len(ops), 2):
        (sa, va), rest = ops[j], ops[j + 1:j + 2]
        if not rest:
            out.append((sa, va))
            continue
        sb, vb = rest[0]
        if sa == sb:
            out.append((sa, va + vb))
        else:
            out.append((1, va - vb if sa > 0 else vb - va))
    return out


class BlockOutput(wiring.Component):
    """Block output of ``golden.iqlut.iq_block``: y = clamp(round_shift(acc, shift), act range);
    gated: x' = x + round_shift(g (y - x), G) with the residual x[q] (channel 0 broadcast when
    c_in = 1). y - x is A+1 bits; x' needs no clamp (it lies between x and y), so
    (x << G | 2^(G-1)) + g (y - x) = x' 2^G + r fits A+G bits and is computed modulo 2^(A+G).
    Stages (for >= 150 MHz on ECP5): [round], [clamp], [y - x], [pairs of the terms of that sum,
    g in canonical signed digits], [their sum; x' = its top A bits] (ungated: the first two)."""

    def __init__(self, *, act_bits: int, acc_bits: int, shift: int, c_in: int, c_out: int,
                 gate: int | None, gate_bits: int):
        check_positive_int("c_out", c_out)
        check_positive_int("c_in", c_in)
        if not 0 <= shift <= spec.MAX_SHIFT:
            raise ValueError(f"shift must be in 0..{spec.MAX_SHIFT}, got {shift}")
        if gate is not None:
            if not 0 <= gate <= (1 << gate_bits):
                raise ValueError(f"gate must be in 0..{1 << gate_bits}, got {gate}")
            if c_in not in (1, c_out):
                raise ValueError(f"a gated block needs c_in == c_out or c_in == 1, got {c_in} -> {c_out}")
        self.act_bits, self.acc_bits, self.shift = act_bits, acc_bits, shift
        self.c_in, self.c_out, self.gate, self.gate_bits = c_in, c_out, gate, gate_bits
        self.latency = 5 if gate is not None else 2
        #: constant multipliers of the gate (count, operand widths)
        self.multipliers = (c_out, (act_bits + 1, gate_bits + 1)) if gate is not None else (0, None)
        side = data.StructLayout({**({"residual": data.ArrayLayout(signed(act_bits), c_in)}
                                     if gate is not None else {}), **FLAGS})
        super().__init__({
            "i": In(stream.Signature(acc_layout(c_out, acc_bits, side))),
            "o": Out(stream.Signature(pixel_layout(signed(act_bits), c_out))),
        })

    @classmethod
    def for_layer(cls, model: Model, n: int) -> BlockOutput:
        cfg, layer, p = model.config, model.config.layers[n], model.layers[n]
        return cls(act_bits=cfg.act_bits, acc_bits=model.widths[n].acc_bits, shift=p.shift,
                   c_in=layer.c_in, c_out=layer.c_out, gate=p.gate if layer.gated else None,
                   gate_bits=cfg.gate_bits)

    def elaborate(self, platform):
        m = Module()
        a = self.act_bits
        lo, hi = -(1 << (a - 1)), (1 << (a - 1)) - 1
        pipe = Pipe(m, self.o, self.i, name="out")
        i, o = self.i.p, self.o.p
        m.d.comb += [self.o.valid.eq(pipe.valid_chain(self.i.valid, self.latency)),
                     o.eol.eq(pipe.carry_value(i.side.eol, self.latency, "eol")),
                     o.eof.eq(pipe.carry_value(i.side.eof, self.latency, "eof"))]
        # [round] then [clamp]
        r = [pipe.reg(round_shift(i.acc[c], self.shift), name=f"r{c}") for c in range(self.c_out)]
        y = [pipe.reg(clamp(r[c], lo, hi), signed(a), name=f"y{c}") for c in range(self.c_out)]
        if self.gate is None:
            m.d.comb += [o.data[c].eq(y[c]) for c in range(self.c_out)]
            return m
        res = pipe.carry_value(i.side.residual, 2, "residual")
        G = self.gate_bits
        # x' = x + ((g (y - x) + 2^(G-1)) >> G) = (base + g (y - x)) >> G with base = x << G | 2^(G-1)
        # (x << G has G zero low bits: the rounding addend is a concatenation, no adder).
        # g (y - x) as signed shift terms of g's canonical signed digits (``csd``: at most
        # ceil((G + 2) / 2) terms); [pairs] adds base and the terms two by two (one adder or
        # subtractor each), [sum] adds the pair sums (<= 4 for G <= 12: two adder levels) and
        # shifts. A constant product as one shift-add network in one stage was the whole design's
        # critical path at fold 16 on a1f21a2 (block 5, g_lo (y - x) + 2^(G-1): 3.35 ns logic +
        # 5.58 ns routing, 111.96 MHz); as one network of all of g's bits, IQ-Block 1's (4.5 ns logic).
        digits = csd(self.gate)
        for c in range(self.c_out):     # [y - x], [pairs], [sum and shift]
            x = res[0 if self.c_in == 1 else c]
            delta = Signal(signed(a + 1), name=f"delta{c}")
            m.d.comb += delta.eq(y[c] - x)
            delta3, x3 = pipe.reg(delta, name=f"delta3_{c}"), pipe.reg(x, name=f"res3_{c}")
            base = Cat(Const(1 << (G - 1), G), x3).as_signed()
            ops = [(1, base)] + [(sgn, delta3 << e) for sgn, e in digits]
            # all of it modulo 2^(A+G): the total x' 2^G + r (0 <= r < 2^G) fits A+G bits signed,
            # so the pair sums and the total are A+G bits wide and x' is the total's top A bits
            ops = [(sgn, pipe.reg(v, signed(a + G), name=f"gp{j}_{c}"))
                   for j, (sgn, v) in enumerate(_pair_up(ops))]
            while len(ops) > 1:        # base's side stays positive: so is the total
                ops = _pair_up(ops)
            total = Signal(signed(a + G), name=f"gated{c}")
            m.d.comb += total.eq(ops[0][1])
            m.d.comb += o.data[c].eq(pipe.reg(total[G:], signed(a), name=f"x{c}"))
        return m


class IQBlock(wiring.Component):
    """IQ-Block ``n`` (``golden.iqlut.iq_block``): the EC with ``BlockOutput`` as its ``post``
    stage (inside the EC's credit loop, before its output FIFO). Pixels of c_in x signed A bits
    in, c_out x signed A bits out, raster order with framing bits."""

    def __init__(self, model: Model, n: int, max_width: int, *, rom_ports: str = "dual",
                 fold: int = 1, dsp: bool = False):
        cfg = model.config
        if not isinstance(n, int) or not 0 <= n < len(cfg.blocks):
            raise ValueError(f"block index must be in 0..{len(cfg.blocks) - 1}, got {n!r}")
        layer = cfg.blocks[n]
        self.output = BlockOutput.for_layer(model, n)
        self.ec = EC(model, n, max_width, rom_ports=rom_ports, residual=layer.gated, fold=fold,
                     post=self.output, dsp=dsp)
        self.latency = self.ec.latency
        super().__init__({
            "i": In(stream.Signature(pixel_layout(signed(cfg.act_bits), layer.c_in))),
            "o": Out(stream.Signature(pixel_layout(signed(cfg.act_bits), layer.c_out))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.ec = self.ec
        wiring.connect(m, wiring.flipped(self.i), self.ec.i)
        wiring.connect(m, self.ec.o, wiring.flipped(self.o))
        return m


class Upsampler(wiring.Component):
    """The upsampler (``golden.iqlut.upsampler``): the EC of the last layer, scale^2 = 16 output
    channels, no shift or clamp here (the shift is applied in ``Combine``). Output channel
    r * 4 + c is HR pixel (4y + r, 4x + c) of LR pixel (y, x): the pixel shuffle is this lane
    order, no logic. Ends in the EC's output FIFO."""

    def __init__(self, model: Model, max_width: int, *, rom_ports: str = "dual", fold: int = 1,
                 dsp: bool = False):
        cfg = model.config
        n = len(cfg.blocks)
        self.ec = EC(model, n, max_width, rom_ports=rom_ports, fold=fold, dsp=dsp)
        out = acc_layout(cfg.upsampler.c_out, model.widths[n].acc_bits, data.StructLayout(FLAGS))
        self.latency = self.ec.latency
        super().__init__({
            "i": In(stream.Signature(pixel_layout(signed(cfg.act_bits), cfg.upsampler.c_in))),
            "o": Out(stream.Signature(out)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.ec = self.ec
        wiring.connect(m, wiring.flipped(self.i), self.ec.i)
        wiring.connect(m, self.ec.o, wiring.flipped(self.o))
        return m

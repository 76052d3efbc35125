"""The fixed-point specification of IQ-LUT: configurations, derived constants, interval analysis.

This module is the single home of every constant the integer model uses. ``golden.iqlut`` (the
reference model), ``training`` (quantization-aware training) and ``hw`` (the RTL generator) all take
their bit-widths, NUQD thresholds, reciprocals, shifts and ROM contents from here, never re-typed.
``docs/fixed-point.md`` describes the same rules in prose, block by block.

Numbers, in short (A = ``act_bits``, F = ``frac_bits``, G = ``gate_bits``, E = ``entry_bits``):

* activations between blocks: signed A-bit integers in [-2^(A-1), 2^(A-1)-1]; the LR input pixel
  p (uint8) enters as ``p * 2^(A-8) - 2^(A-1)``.
* NUQD: L levels (grid points) g_0 = -2^(A-1) < g_1 < ... < g_{L-1} = 2^(A-1)-1; index
  i = #{j >= 1 : g_j <= x} (a bank of L-1 comparators), fraction
  t = ((x - g_i) * R_i) >> S with R_i = floor(2^(F+S) / (g_{i+1} - g_i)), S = ``RECIP_SHIFT``; t < 2^F.
* DPFI: e = lo + (((hi - lo) * t + 2^(F-1)) >> F), lo = LUT[i], hi = LUT[min(i+1, L-1)].
* EC: acc[o, q] = sum over c, (jy, jx) of e[c, q - origin - j, jy, jx, o], source indices clamped to
  the image (replicate edges).
* IQ-Block: y = clamp(round_shift(acc, shift), act range); gated: x' = x + ((g (y - x) + 2^(G-1)) >> G).
* Upsampler: the same EC with scale^2 output channels, no clamp; pixel shuffle; added to the bilinear
  skip (integer weights over the common denominator D = ``bilinear_den(scale)``: 64 at x4, 16 at x2,
  9 at x3) at the common scale D * 2^shift, rounded half up (``round_div``), clamped to [0, 255].
* Scales: x2, x3, x4 (``SCALES``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

#: Extra bits of the NUQD per-segment reciprocal: R_i = floor(2^(F + RECIP_SHIFT) / width_i).
RECIP_SHIFT = 10
#: Supported upscaling factors.
SCALES = (2, 3, 4)


def bilinear_axis_den(scale: int) -> int:
    """Per-axis denominator of the exact bilinear weights at ``scale``.

    With half-pixel centres, HR index Y = s*i + r samples LR position i + (2r + 1 - s) / (2s): for an
    even s the offset is an odd multiple of 1/(2s) (denominator 2s: 8 at x4, 4 at x2), for an odd s
    an integer multiple of 1/s (denominator s: 3 at x3)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return 2 * scale if scale % 2 == 0 else scale


def bilinear_den(scale: int) -> int:
    """Common denominator D of the 2-D bilinear weights (a product of two axis weights): 64 at x4,
    16 at x2, 9 at x3. ``golden.iqlut.bilinear`` returns D x the bilinear value, exactly."""
    return bilinear_axis_den(scale) ** 2


def bilinear_phases(scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per HR phase r in 0..scale-1: (left, w0, w1), int64 arrays of length ``scale``.

    HR index Y = scale * i + r takes LR pixels i + left and i + left + 1 (left in {-1, 0}, indices
    clamped to the image: replicate edges) with weights w0 + w1 = ``bilinear_axis_den(scale)``.
    x4: w1 = 5, 7, 1, 3 (eighths); x2: w1 = 3, 1 (quarters); x3: w1 = 2, 0, 1 (thirds)."""
    den = bilinear_axis_den(scale)
    r = np.arange(scale, dtype=np.int64)
    pos = (2 * r + 1 - scale) * den // (2 * scale)        # offset in 1/den LR pixels, exact
    left = pos // den                                      # floor: -1 or 0
    w1 = pos - left * den
    return left, den - w1, w1


#: Upper bound on any right shift stored in a model file.
MAX_SHIFT = 16


def signed_bits(lo: int, hi: int) -> int:
    """Smallest n such that the signed n-bit range [-2^(n-1), 2^(n-1)-1] holds [lo, hi]."""
    lo, hi = int(lo), int(hi)
    n = 1
    while lo < -(1 << (n - 1)) or hi > (1 << (n - 1)) - 1:
        n += 1
    return n


def unsigned_bits(hi: int) -> int:
    """Smallest n >= 1 such that [0, hi] fits in n unsigned bits."""
    return max(1, int(hi).bit_length())


def round_div(v, d: int):
    """v / d rounded half up, for d >= 1: floor((2 v + d) / (2 d)); Python ints or integer numpy
    arrays. Equals ``round_shift(v, log2 d)`` when d is a power of two."""
    d = int(d)
    if d < 1:
        raise ValueError(f"round_div: divisor must be >= 1, got {d}")
    return (2 * v + d) // (2 * d)


def round_shift(v, s: int):
    """Arithmetic right shift by s with round-half-up: (v + 2^(s-1)) >> s; identity for s == 0.

    Works on Python ints and integer numpy arrays (numpy's >> on signed ints floors)."""
    if s == 0:
        return v
    return (v + (1 << (s - 1))) >> s


# ---------------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerConfig:
    """One expanded-convolution layer: an IQ-Block or the upsampler.

    c_in, c_out : channels.
    levels      : NUQD levels L = LUT entries per table (2..256); index bits = ceil(log2 L).
    frac_bits   : DPFI fraction bits F (0 = no interpolation, then every level must be its own
                  activation value, i.e. L = 2^act_bits).
    kernel      : k, the expanded kernel is k x k.
    origin      : offset of the kernel window: a pixel at p adds into p + origin + (jy, jx),
                  jy, jx in 0..k-1. For k = 2 the blocks alternate 0 / -1 so the half-pixel shifts
                  cancel; an odd k uses the centred origin -(k-1)/2.
    gated       : IQ-Block with a residual gate (c_in == c_out, or c_in == 1 broadcast).
    """
    c_in: int
    c_out: int
    levels: int
    frac_bits: int
    kernel: int = 2
    origin: int = 0
    gated: bool = True

    @property
    def index_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.levels)))

    def lut_shape(self) -> tuple[int, ...]:
        """Shape of the integer LUT: (c_in, levels, k, k, c_out)."""
        return (self.c_in, self.levels, self.kernel, self.kernel, self.c_out)

    def rom_bits(self, entry_bits: int) -> int:
        return int(np.prod(self.lut_shape())) * entry_bits


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and number formats of one IQ-LUT (or ECNN) model."""
    name: str
    blocks: tuple[LayerConfig, ...]
    upsampler: LayerConfig
    scale: int = 4
    act_bits: int = 8
    entry_bits: int = 8
    gate_bits: int = 8

    @property
    def layers(self) -> tuple[LayerConfig, ...]:
        return tuple(self.blocks) + (self.upsampler,)

    def lut_bytes(self) -> int:
        """Exact LUT-ROM size in bytes: sum over layers of c_in * L * k^2 * c_out * entry_bits / 8."""
        bits = sum(layer.rom_bits(self.entry_bits) for layer in self.layers)
        return (bits + 7) // 8

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["blocks"] = [dataclasses.asdict(b) for b in self.blocks]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["blocks"] = tuple(LayerConfig(**b) for b in d["blocks"])
        d["upsampler"] = LayerConfig(**d["upsampler"])
        return cls(**d)


def validate_config(cfg: ModelConfig) -> None:
    """Raise ValueError naming the field if the configuration is not supported by the spec."""
    def bad(field, msg):
        raise ValueError(f"config field '{field}': {msg}")
    if cfg.scale not in SCALES:
        bad("scale", f"must be one of {SCALES}, got {cfg.scale}")
    if not 8 <= cfg.act_bits <= 12:
        bad("act_bits", f"must be in 8..12, got {cfg.act_bits}")
    if not 2 <= cfg.entry_bits <= 16:
        bad("entry_bits", f"must be in 2..16, got {cfg.entry_bits}")
    if not 1 <= cfg.gate_bits <= 12:
        bad("gate_bits", f"must be in 1..12, got {cfg.gate_bits}")
    if len(cfg.blocks) < 1:
        bad("blocks", "at least one IQ-Block is needed")
    prev = 1
    for n, layer in enumerate(cfg.layers):
        name = f"blocks[{n}]" if n < len(cfg.blocks) else "upsampler"
        if layer.c_in != prev:
            bad(f"{name}.c_in", f"{layer.c_in} does not match the previous layer's output {prev}")
        if layer.c_out < 1:
            bad(f"{name}.c_out", f"must be >= 1, got {layer.c_out}")
        if not 2 <= layer.levels <= (1 << cfg.act_bits):
            bad(f"{name}.levels", f"must be in 2..{1 << cfg.act_bits}, got {layer.levels}")
        if not 0 <= layer.frac_bits <= 8:
            bad(f"{name}.frac_bits", f"must be in 0..8, got {layer.frac_bits}")
        if layer.frac_bits == 0 and layer.levels != (1 << cfg.act_bits):
            bad(f"{name}.frac_bits", "0 (no interpolation) needs one level per activation value, "
                f"levels = {1 << cfg.act_bits}")
        if not 1 <= layer.kernel <= 5:
            bad(f"{name}.kernel", f"must be in 1..5, got {layer.kernel}")
        if not -(layer.kernel - 1) <= layer.origin <= 0:
            bad(f"{name}.origin", f"must be in {-(layer.kernel - 1)}..0, got {layer.origin}")
        is_up = n == len(cfg.blocks)
        if is_up:
            if layer.c_out != cfg.scale ** 2:
                bad("upsampler.c_out", f"must be scale^2 = {cfg.scale ** 2}, got {layer.c_out}")
            if layer.gated:
                bad("upsampler.gated", "the upsampler has no residual gate")
        elif layer.gated and layer.c_in not in (1, layer.c_out):
            bad(f"{name}.gated", f"a gated block needs c_in == c_out or c_in == 1, got "
                f"{layer.c_in} -> {layer.c_out}")
        prev = layer.c_out


def _iq_config(name, n_blocks, channels, levels_first, levels, levels_up, frac_bits=5,
               kernel=2, scale=4) -> ModelConfig:
    def origin(n):
        # odd k: centred; even k: alternate so consecutive half-pixel shifts cancel
        return -((kernel - 1) // 2) if kernel % 2 else (0 if n % 2 == 0 else -(kernel - 1))
    blocks = []
    for n in range(n_blocks):
        blocks.append(LayerConfig(
            c_in=1 if n == 0 else channels, c_out=channels,
            levels=levels_first if n == 0 else levels, frac_bits=frac_bits, kernel=kernel,
            origin=origin(n), gated=True))
    up = LayerConfig(c_in=channels, c_out=scale * scale, levels=levels_up, frac_bits=frac_bits,
                     kernel=kernel, origin=origin(n_blocks), gated=False)
    return ModelConfig(name=name, blocks=tuple(blocks), upsampler=up, scale=scale)


#: The named architectures. Byte budgets (LUT ROM) from the IQ-LUT paper are in ``BUDGETS``.
CONFIGS: dict[str, ModelConfig] = {
    # 2x2 kernel, anchors alternating per block, 8-bit entries; 16 levels in every block, 10 in the
    # upsampler: 512 + 7 * 4096 + 5120 = 34,304 B.
    "iq_l8c8": _iq_config("iq_l8c8", 8, 8, 16, 16, 10),
    # 512 + 11 * 4096 + 5632 = 51,200 B.
    "iq_l12c8": _iq_config("iq_l12c8", 12, 8, 16, 16, 11),
    # 1024 + 7 * 16384 + 11264 = 126,976 B.
    "iq_l8c16": _iq_config("iq_l8c16", 8, 16, 16, 16, 11),
    # The ECNN baseline: 8-bit index (every activation value its own entry), no interpolation.
    "ecnn_l8c8": _iq_config("ecnn_l8c8", 8, 8, 256, 256, 256, frac_bits=0),
    # iq_l8c8 at x2 and x3: the same blocks, an upsampler of scale^2 outputs.
    # 512 + 7 * 4096 + 1280 = 30,464 B.
    "iq_l8c8_x2": _iq_config("iq_l8c8_x2", 8, 8, 16, 16, 10, scale=2),
    # 512 + 7 * 4096 + 2880 = 32,064 B.
    "iq_l8c8_x3": _iq_config("iq_l8c8_x3", 8, 8, 16, 16, 10, scale=3),
}

#: LUT-ROM byte budgets from the paper (KB x 1024).
BUDGETS: dict[str, int] = {"iq_l8c8": 34_816, "iq_l12c8": 51_200, "iq_l8c16": 126_976}


def get_config(name: str) -> ModelConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown config '{name}'; known: {', '.join(sorted(CONFIGS))}") from None


# ---------------------------------------------------------------------------------------------
# NUQD constants
# ---------------------------------------------------------------------------------------------

def nuqd_t_inverse(v: np.ndarray, a: float, b: float) -> np.ndarray:
    """Inverse of the piecewise-linear T_{a,b} on [-1, 1].

    T_{a,b}(u) = (b/a) u for |u| < a, sign(u) (b + (1-b)/(1-a) (|u| - a)) otherwise; so the
    inverse is (a/b) v for |v| < b, sign(v) (a + (1-a)/(1-b) (|v| - b)) otherwise."""
    v = np.asarray(v, dtype=np.float64)
    av = np.abs(v)
    inner = (a / b) * v
    outer = np.sign(v) * (a + (1 - a) / (1 - b) * (av - b))
    return np.where(av < b, inner, outer)


def nuqd_grid(a: float, b: float, levels: int, act_bits: int) -> np.ndarray:
    """Integer NUQD grid g_0..g_{L-1} (int64) for T_{a,b}: the images under T^-1 of the L uniform
    points of [-1, 1], mapped onto the activation range [-2^(A-1), 2^(A-1)-1] and rounded half up.

    g_0 and g_{L-1} are the ends of the activation range. Raises ValueError if rounding makes the
    grid not strictly increasing (too many levels for too steep a T)."""
    if not (0 < a < 1 and 0 < b < 1):
        raise ValueError(f"NUQD parameters must satisfy 0 < a < 1 and 0 < b < 1, got a={a}, b={b}")
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    v = np.linspace(-1.0, 1.0, levels)
    u = nuqd_t_inverse(v, a, b)
    g = np.floor(lo + (u + 1.0) / 2.0 * (hi - lo) + 0.5).astype(np.int64)
    g[0], g[-1] = lo, hi
    if np.any(np.diff(g) <= 0):
        raise ValueError(f"NUQD grid for a={a}, b={b}, L={levels} is not strictly increasing "
                         f"after rounding to {act_bits}-bit integers")
    return g


def check_grid(grid, levels: int, act_bits: int, frac_bits: int) -> np.ndarray:
    """Validate an integer NUQD grid; returns it as int64. Raises ValueError saying what is wrong."""
    g = np.asarray(grid)
    if g.ndim != 1 or len(g) != levels:
        raise ValueError(f"grid must have {levels} levels, got shape {g.shape}")
    if g.dtype.kind not in "iu" and not (g.dtype.kind == "f" and np.all(g == np.round(g))):
        raise ValueError("grid values must be integers")
    g = g.astype(np.int64)
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    if g[0] != lo or g[-1] != hi:
        raise ValueError(f"grid must start at {lo} and end at {hi}, got {g[0]} .. {g[-1]}")
    if np.any(np.diff(g) <= 0):
        raise ValueError("grid must be strictly increasing")
    if frac_bits and np.any(np.diff(g) > (1 << (frac_bits + RECIP_SHIFT))):
        raise ValueError(f"a grid segment is wider than 2^(frac_bits + {RECIP_SHIFT}): its "
                         "reciprocal would be 0 (no interpolation)")
    return g


def nuqd_recip(grid: np.ndarray, frac_bits: int) -> np.ndarray:
    """Per-segment reciprocal R_i = floor(2^(F+S) / (g_{i+1} - g_i)), S = RECIP_SHIFT; R_{L-1} = 0.

    With it t = ((x - g_i) * R_i) >> S is in [0, 2^F - 1] for every x in segment i."""
    widths = np.diff(grid)
    r = np.zeros(len(grid), dtype=np.int64)
    if frac_bits:
        r[:-1] = (1 << (frac_bits + RECIP_SHIFT)) // widths
    return r


# ---------------------------------------------------------------------------------------------
# Interval analysis: every bit-width of the datapath, from the actual LUT contents
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerWidths:
    """Bit-widths and value ranges of one layer, all derived from the model file.

    act_in_bits   : signed input activation bits (the NUQD comparator width).
    index_bits    : NUQD index bits; frac_bits: DPFI fraction bits.
    recip_bits    : unsigned bits of the NUQD reciprocal constants.
    entry_bits    : signed bits that hold every LUT entry of this layer (<= the model's entry_bits).
    diff_bits     : signed bits of hi - lo in DPFI (multiplier operand); product_bits: of both
                    (hi-lo)*t and (hi-lo)*t + 2^(F-1), the DPFI rounding sum.
    acc_lo/acc_hi : exact bounds of the EC accumulator per output channel (lists), acc_bits: signed
                    bits of the accumulator for all channels; acc_round_bits: of the accumulator and of
                    the accumulator plus the rounding constant 2^(shift-1) of the output shift.
    gate_bits     : signed bits of g * (y - x) and g * (y - x) + 2^(G-1) (gated blocks; 0 if not).
    out_bits      : signed bits of the layer output (blocks: act_bits; upsampler: the final sum
                    bilinear64 * 2^shift + acc * 64 before the rounding shift).
    """
    act_in_bits: int
    index_bits: int
    frac_bits: int
    recip_bits: int
    entry_bits: int
    entry_min: int
    entry_max: int
    diff_bits: int
    product_bits: int
    acc_lo: tuple[int, ...]
    acc_hi: tuple[int, ...]
    acc_bits: int
    acc_round_bits: int
    gate_bits: int
    out_bits: int
    shift: int


def layer_widths(layer: LayerConfig, lut: np.ndarray, recip: np.ndarray, shift: int,
                 act_bits: int, is_upsampler: bool, gate: int | None = None,
                 gate_bits: int = 8, scale: int = 4) -> LayerWidths:
    """Interval analysis of one layer from its integer LUT (c_in, L, k, k, c_out).

    DPFI output lies between its two entries (see docs/fixed-point.md), so per output channel the
    accumulator is bounded by the sums, over inputs and kernel taps, of each table's min and max."""
    lut = np.asarray(lut, dtype=np.int64)
    emin, emax = int(lut.min()), int(lut.max())
    # hi - lo over neighbouring entries (the last entry pairs with itself: difference 0)
    d = np.diff(lut, axis=1)
    dmin, dmax = (int(d.min()), int(d.max())) if d.size else (0, 0)
    tmax = (1 << layer.frac_bits) - 1
    half = (1 << (layer.frac_bits - 1)) if layer.frac_bits else 0
    # the product and the product + rounding addend must both fit (the rounding sum is formed
    # in the same register)
    pmin, pmax = min(0, dmin * tmax), max(0, dmax * tmax) + half
    acc_lo = lut.min(axis=1).sum(axis=(0, 1, 2))
    acc_hi = lut.max(axis=1).sum(axis=(0, 1, 2))
    acc_bits = signed_bits(min(0, int(acc_lo.min())), max(0, int(acc_hi.max())))
    rnd = (1 << (shift - 1)) if shift else 0
    acc_round_bits = signed_bits(min(0, int(acc_lo.min())), max(0, int(acc_hi.max())) + rnd)
    if layer.gated and gate is not None:
        span = (1 << act_bits) - 1          # |y - x| <= 2^A - 1
        g_half = 1 << (gate_bits - 1)
        gbits = signed_bits(-gate * span, gate * span + g_half)
    else:
        gbits = 0
    if is_upsampler:
        # the final sum bil_D * 2^shift + acc * D (D = bilinear_den), and it plus the rounding
        # addend ceil(D 2^shift / 2) of round_div
        den = bilinear_den(scale)
        bil_max = 255 * den
        lo = int(acc_lo.min()) * den
        hi = (bil_max << shift) + int(acc_hi.max()) * den + -(-(den << shift) // 2)
        out_bits = signed_bits(min(0, lo), hi)
    else:
        out_bits = act_bits
    return LayerWidths(
        act_in_bits=act_bits, index_bits=layer.index_bits, frac_bits=layer.frac_bits,
        recip_bits=unsigned_bits(int(recip.max())), entry_bits=signed_bits(emin, emax),
        entry_min=emin, entry_max=emax, diff_bits=signed_bits(dmin, dmax),
        product_bits=signed_bits(pmin, pmax),
        acc_lo=tuple(int(v) for v in acc_lo), acc_hi=tuple(int(v) for v in acc_hi),
        acc_bits=acc_bits, acc_round_bits=acc_round_bits, gate_bits=gbits, out_bits=out_bits,
        shift=shift)

"""Arithmetic helpers shared by the datapath components (exact integer semantics of golden)."""
from __future__ import annotations

from amaranth import Mux, Value

__all__ = ["clamp", "round_shift"]


def round_shift(value, s: int):
    """``golden.spec.round_shift``: (v + 2^(s-1)) >> s, round half up; identity for s = 0.

    Computed as ((v >> (s-1)) + 1) >> 1, the same value without the wider rounding addend
    (docs/fixed-point.md section 15)."""
    if s == 0:
        return value
    return ((value >> (s - 1)) + 1) >> 1


def clamp(value, lo: int, hi: int):
    """min(max(value, lo), hi) for constant bounds. The two power-of-two ranges (signed
    [-2^(b-1), 2^(b-1) - 1] of a signed value, [0, 2^b - 1]) test the bits above b instead of
    comparing (no carry chain: one LUT tree and a multiplexer; the clamp of an IQ-Block output
    was a comparator carry chain + multiplexer, 3.5 ns of logic on ECP5)."""
    v = Value.cast(value)
    shape, w = v.shape(), v.shape().width
    b = (hi - lo + 1).bit_length() - 1
    if hi - lo + 1 == 1 << b and b >= 1:
        if shape.signed and lo == -(1 << (b - 1)) and b < w:
            top = v[b - 1:]                       # in range <=> these bits are all equal
            fits = (top == 0) | (top == (1 << (w - b + 1)) - 1)
            return Mux(fits, v[:b].as_signed(), Mux(v[w - 1], lo, hi))
        if lo == 0 and (b <= w - 1 if shape.signed else b < w):
            over = (v[b:w - 1].any() if b < w - 1 else 0) if shape.signed else v[b:].any()
            under = v[w - 1] if shape.signed else 0
            return Mux(under, 0, Mux(over, hi, v[:b]))
    return Mux(value < lo, lo, Mux(value > hi, hi, value))

"""Arithmetic helpers shared by the datapath components (exact integer semantics of golden)."""
from __future__ import annotations

from amaranth import Mux

__all__ = ["clamp", "round_shift"]


def round_shift(value, s: int):
    """``golden.spec.round_shift``: (v + 2^(s-1)) >> s, round half up; identity for s = 0.

    Computed as ((v >> (s-1)) + 1) >> 1, the same value without the wider rounding addend
    (docs/fixed-point.md section 15)."""
    if s == 0:
        return value
    return ((value >> (s - 1)) + 1) >> 1


def clamp(value, lo: int, hi: int):
    """min(max(value, lo), hi) for constant bounds."""
    return Mux(value < lo, lo, Mux(value > hi, hi, value))

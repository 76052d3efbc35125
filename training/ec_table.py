"""The value-table EC used for training (``ECLayer.impl = "table"``), with a fused C++ kernel.

QAT activations are integers in [-2^(A-1), 2^(A-1)), so a layer's ``nuqd`` + ``dpfi`` is a table over
every activation value: ``V[c, v] = sum_l M[v, l] E[c, l]`` with M the 2^A x L interpolation matrix
(rows ``1 - t`` at ``i`` and ``t`` at ``min(i + 1, L - 1)``, from golden.iqlut.nuqd of each value) and E
the LUT entries. ``ec`` is then one gather per input pixel and channel and k^2 shifted adds:

    acc[n, o, y, x] = sum_{c, jy, jx} V[c, v[n, c, y - jy - origin, x - jx - origin], jy, jx, o]

(the same sum as golden.iqlut.ec, source coordinates clamped to the image). V = M E is a tiny matmul that autograd differentiates, so the
kernel only scatters the output gradient into dV; the input gradient uses the slope table
S = D E (``(E[i+1] - E[i]) / width_i``, the straight-through gradient of the NUQD fraction).

The kernel (training/ec_table.cpp) is compiled on first use with ``torch.utils.cpp_extension`` into
``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/iqlut/ext`` (needs g++ and ninja). Without a compiler, or with
``IQLUT_NO_EXT=1``, the same function runs as torch gathers (``index_add_``), with a one-line message.
"""
from __future__ import annotations

import hashlib
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from golden import iqlut as giq

_SRC = Path(__file__).with_name("ec_table.cpp")
_ext = None
_tried = False


def build_dir() -> Path:
    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "iqlut" / "ext")


def cpu_tag() -> str:
    """Short hash of the CPU's model and flags: the kernel is built with -march=native, so a cache
    shared between machines keeps one build per CPU kind."""
    try:
        info = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith(("model name", "flags"))][:2]
    except OSError:
        info = [platform.machine(), platform.processor()]
    return hashlib.sha1("|".join(info).encode()).hexdigest()[:8]


def extension():
    """The compiled kernel module, or None (torch fallback; the reason is printed once)."""
    global _ext, _tried
    if _tried:
        return _ext
    _tried = True
    if os.environ.get("IQLUT_NO_EXT"):
        print("training: IQLUT_NO_EXT is set: value-table EC runs on the torch path (slower)", file=sys.stderr)
        return None
    try:
        from torch.utils.cpp_extension import load
        d = build_dir()
        (d / cpu_tag()).mkdir(parents=True, exist_ok=True)
        _ext = load(f"iqlut_ec_table_{cpu_tag()}", [str(_SRC)], extra_cflags=["-O3", "-march=native"],
                    build_directory=str(d / cpu_tag()), verbose=False)
    except Exception as e:  # noqa: BLE001 - no compiler / ninja / headers: any failure means fallback
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        print(f"training: C++ EC kernel unavailable ({reason}); using the torch path (slower)", file=sys.stderr)
        _ext = None
    return _ext


def interpolation_matrices(grid: np.ndarray, recip: np.ndarray, frac_bits: int, act_bits: int):
    """(M, D), float32 (2^A, L) each, for the activation values -2^(A-1) .. 2^(A-1)-1 (row v is
    value v - 2^(A-1)): V = M E is the DPFI blend without per-entry rounding (t quantized to F bits,
    golden.iqlut.nuqd), S = D E the slope (E[i+1] - E[i]) / width_i in entry units per activation unit."""
    L = len(grid)
    x = np.arange(-(1 << (act_bits - 1)), 1 << (act_bits - 1), dtype=np.int64)
    i, t = giq.nuqd(x, np.asarray(grid, np.int64), np.asarray(recip, np.int64), frac_bits)
    t = t / float(1 << frac_bits)
    hi = np.minimum(i + 1, L - 1)
    width = np.append(np.diff(grid), 1).astype(np.float64)[i]
    rows = np.arange(len(x))
    M = np.zeros((len(x), L))
    D = np.zeros((len(x), L))
    np.add.at(M, (rows, i), 1 - t)
    np.add.at(M, (rows, hi), t)
    np.add.at(D, (rows, i), -1 / width)
    np.add.at(D, (rows, hi), 1 / width)
    return torch.tensor(M, dtype=torch.float32), torch.tensor(D, dtype=torch.float32)


def int_value_table(lut: np.ndarray, grid: np.ndarray, recip: np.ndarray, frac_bits: int,
                    act_bits: int) -> np.ndarray:
    """Golden's exact value table (golden.iqlut.nuqd then dpfi with per-entry rounding) of the integer
    LUT (c_in, L, k, k, c_out): int64 (c_in, 2^A, k, k, c_out), as golden.iqlut.layer_value_table."""
    x = np.arange(-(1 << (act_bits - 1)), 1 << (act_bits - 1), dtype=np.int64)
    i, t = giq.nuqd(x, grid, recip, frac_bits)
    hi = np.minimum(i + 1, lut.shape[1] - 1)
    return giq.dpfi(lut[:, i], lut[:, hi], t[None, :, None, None, None], frac_bits)


# -- the torch fallback (same arithmetic as the kernel) ---------------------------------------------

def _pad_rows(n: int, k: int, origin: int) -> torch.Tensor:
    """Source row of each edge-padded row: clamp(p - (k - 1 + origin), 0, n - 1), p < n + k - 1."""
    return torch.clamp(torch.arange(n + k - 1) - (k - 1 + origin), 0, n - 1)


def _forward_torch(idx: torch.Tensor, V: torch.Tensor, k: int, origin: int) -> torch.Tensor:
    n, c, h, w = idx.shape
    idx = idx[:, :, _pad_rows(h, k, origin)][:, :, :, _pad_rows(w, k, origin)].long()
    hp, wp = h + k - 1, w + k - 1
    co = V.shape[-1]
    tab = V.reshape(c, V.shape[1], k * k * co)
    s = tab[0][idx[:, 0]]
    for ci in range(1, c):
        s = s + tab[ci][idx[:, ci]]
    s = s.reshape(n, hp, wp, k, k, co)
    acc = 0
    for jy in range(k):
        for jx in range(k):
            acc = acc + s[:, k - 1 - jy:k - 1 - jy + h, k - 1 - jx:k - 1 - jx + w, jy, jx]
    return acc.permute(0, 3, 1, 2).contiguous()


def _backward_torch(idx: torch.Tensor, S: torch.Tensor, G: torch.Tensor, k: int, origin: int):
    """G channel-last (N, H, W, CO) -> (grad V like S, grad input (N, C, H, W))."""
    n, c, h, w = idx.shape
    rows, cols = _pad_rows(h, k, origin), _pad_rows(w, k, origin)
    idx = idx[:, :, rows][:, :, :, cols].long()
    hp, wp, co = h + k - 1, w + k - 1, G.shape[3]
    gs = G.new_zeros(n, hp, wp, k, k, co)
    for jy in range(k):
        for jx in range(k):
            gs[:, k - 1 - jy:k - 1 - jy + h, k - 1 - jx:k - 1 - jx + w, jy, jx] = G
    gs = gs.reshape(n, hp, wp, k * k * co)
    gV = torch.zeros_like(S).reshape(c, S.shape[1], k * k * co)
    stab = S.reshape(c, S.shape[1], k * k * co)
    gxp = G.new_empty(n, c, hp, wp)
    for ci in range(c):
        v = idx[:, ci]
        gV[ci].index_add_(0, v.reshape(-1), gs.reshape(-1, k * k * co))
        gxp[:, ci] = (stab[ci][v] * gs).sum(-1)
    gx = G.new_zeros(n, c, h, wp).index_add_(2, rows, gxp)
    gx = G.new_zeros(n, c, h, w).index_add_(3, cols, gx)
    return gV.reshape(S.shape), gx


def ec_forward(idx: torch.Tensor, V: torch.Tensor, k: int, origin: int) -> torch.Tensor:
    """idx int32 (N, C, H, W) value indices, V float32 (C, NV, k, k, CO) -> (N, CO, H, W): the EC
    with origin ``origin`` and edges replicated (golden.iqlut.ec)."""
    ext = extension()
    V = V.contiguous()
    return ext.ec_forward(idx, V, k, origin) if ext is not None else _forward_torch(idx, V, k, origin)


def ec_backward(idx: torch.Tensor, S: torch.Tensor, G: torch.Tensor, k: int, origin: int):
    ext = extension()
    if ext is not None:
        return tuple(ext.ec_backward(idx, S, G, k, origin))
    return _backward_torch(idx, S, G, k, origin)


class TableEC(torch.autograd.Function):
    """acc = EC(x) through the value table V (gradient to V and to x; S is the slope table)."""

    @staticmethod
    def forward(ctx, x, V, S, idx, k, origin):
        ctx.save_for_backward(idx, S)
        ctx.k, ctx.origin = k, origin
        return ec_forward(idx, V, k, origin)

    @staticmethod
    def backward(ctx, g):
        idx, S = ctx.saved_tensors
        gV, gx = ec_backward(idx, S.contiguous(), g.permute(0, 2, 3, 1).contiguous().float(), ctx.k, ctx.origin)
        return gx, gV, None, None, None, None


def value_index(xp: torch.Tensor, act_bits: int) -> torch.Tensor:
    """Integer activations (float tensor) -> int32 row index v = x + 2^(A-1) of the value table."""
    half = 1 << (act_bits - 1)
    return (torch.round(xp.detach()) + half).clamp_(0, 2 * half - 1).to(torch.int32).contiguous()

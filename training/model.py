"""IQ-LUT in PyTorch: the golden blocks (``nuqd``, ``dpfi``, ``ec``, ``iq_block``, ``upsampler``,
``bilinear``) as differentiable modules, with the tables themselves as the trainable parameters.

Units: activations are float tensors holding values in the signed act_bits integer range
([-128, 127] for 8 bits) — the same numbers golden uses, not normalised. A LUT parameter ``p`` is the
entry divided by 2^(entry_bits-1), so the integer entry is round(p * 2^(E-1)).

Modes (``IQLUT.forward(lr, mode)``):

* ``"float"``: no rounding anywhere (continuous t, float entries, float gate) — the pure model.
* ``"qat"``: every rounding of docs/fixed-point.md applied in the forward pass with straight-through
  gradients (entries, NUQD fraction t, block output shift, gate, final pixel), except that the DPFI
  blend is linear in the entries, i.e. without DPFI's per-entry rounding (<= 1/2 entry LSB per
  entry). Used for training.
* ``"int"``: bit-exact golden arithmetic (per-entry DPFI rounding), no gradients needed; equals
  ``golden.iqlut.upscale`` pixel for pixel (tests/test_training.py).

EC implementations (``ECLayer.impl``), all computing the same function:

* ``"table"`` (what ``"auto"``, the default, uses for "qat" and "int"): the value table over all 2^A
  activation values and a fused C++ gather-add kernel (training/ec_table.py); needs integer
  activations, which "qat" and "int" have.
* ``"hat"``: a convolution over the hat-basis expansion (c_in * L channels); ``"gather"``: two table
  gathers + blend per pixel. "auto" uses them for "float" (hat up to 32 levels); with "hat" or
  "gather", "int" runs the float64 gather of golden's arithmetic.

Table parameterization (``ECLayer.table_param``, ``--table-param``): "entries" — every table entry is
a parameter; "mlp" — each layer's table is a small per-input-channel MLP of the activation value
(``TableMLP``) evaluated at the grid points, then rounded like any table. The 256-level ECNN teacher
trains only this way: with independent entries (each one sees gradient only when its exact
activation value occurs) it stayed at the bilinear level (held-out 24.70 dB after 5,000
iterations); with MLP tables it reached 25.94 dB after 250 and 26.16 after 500 (2026-12-03).

All constants (NUQD grid, reciprocals, shifts, gate bits, bilinear taps) come from ``golden.spec`` /
``golden.iqlut``; nothing is re-typed here.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from golden import iqlut as giq
from golden import spec
from training import ec_table
from golden.modelfile import LayerParams, Model, validate
from golden.spec import RECIP_SHIFT, LayerConfig, ModelConfig


def ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Forward q, backward identity to x (straight-through)."""
    return x + (q - x).detach()


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x + 0.5)


class _RoundSTE(torch.autograd.Function):
    """floor(x + 0.5) forward, identity backward: ste(x, round_half_up(x)) in two in-place passes
    (the activation-sized roundings of every step)."""

    @staticmethod
    def forward(ctx, x):
        return torch.add(x, 0.5).floor_()

    @staticmethod
    def backward(ctx, g):
        return g


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half up with a straight-through gradient."""
    return _RoundSTE.apply(x)


class _ClampInward(torch.autograd.Function):
    """clamp(x, lo, hi) forward; backward: the gradient where x is inside [lo, hi], and where x is
    outside only if a descent step moves it back towards the range (x > hi and grad > 0, or x < lo
    and grad < 0). A plain straight-through clamp lets saturated values drift ever further out
    (an MLP table reached 2e6 entry units, 99.8 % of a layer on the rails); a true clamp would
    freeze them there for good."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return torch.clamp(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        out = ((x > ctx.hi) & (g < 0)) | ((x < ctx.lo) & (g > 0))
        return torch.where(out, torch.zeros_like(g), g), None, None


def clamp_inward(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """``torch.clamp`` whose gradient never pushes a value further outside [lo, hi]."""
    return _ClampInward.apply(x, lo, hi)


#: How a layer's table is parameterized (``ECLayer.table_param``).
TABLE_PARAMS = ("entries", "mlp")


class TableMLP(nn.Module):
    """A table as a smooth function of the activation value: per input channel, an MLP
    1 -> H -> H -> out (ReLU), evaluated at the L grid points (activation / 2^(A-1), in [-1, 1)).
    Output in parameter units (entry / 2^(E-1)), shape (c_in, L, out).

    For tables of many levels (the 256-level ``ecnn_l8c8``), where each entry alone sees gradient
    only when its exact activation value occurs: all entries share the MLP's parameters, the way
    SR-LUT / MuLUT train a network and then cache it as a LUT."""

    def __init__(self, c_in: int, out: int, hidden: int = 64, init_std: float = 0.05):
        super().__init__()
        if c_in < 1 or out < 1 or hidden < 1:
            raise ValueError(f"TableMLP: c_in {c_in}, out {out}, hidden {hidden} must be >= 1")
        def lin(i, o, std):
            return nn.Parameter(torch.randn(c_in, i, o) * std), nn.Parameter(torch.zeros(c_in, 1, o))
        self.w1, self.b1 = lin(1, hidden, 1.0)
        self.w2, self.b2 = lin(hidden, hidden, (2.0 / hidden) ** 0.5)
        self.w3, self.b3 = lin(hidden, out, init_std * (1.0 / hidden) ** 0.5)
        with torch.no_grad():
            self.b1.uniform_(-1, 1)             # ReLU kinks spread over the input range

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        x = v.reshape(1, -1, 1).expand(self.w1.shape[0], -1, 1)
        h = torch.relu(torch.baddbmm(self.b1, x, self.w1))
        h = torch.relu(torch.baddbmm(self.b2, h, self.w2))
        return torch.baddbmm(self.b3, h, self.w3)


class ECLayer(nn.Module):
    """One expanded-convolution layer (``nuqd`` -> ``dpfi`` -> ``ec``), IQ-Block or upsampler."""

    def __init__(self, layer: LayerConfig, cfg: ModelConfig, shift: int, a: float = 0.5,
                 b: float = 0.5, init_std: float = 0.05, is_upsampler: bool = False,
                 table_param: str = "entries"):
        if table_param not in TABLE_PARAMS:
            raise ValueError(f"table_param must be one of {', '.join(TABLE_PARAMS)}; got '{table_param}'")
        super().__init__()
        self.layer, self.cfg, self.is_upsampler = layer, cfg, is_upsampler
        self.shift = shift
        #: EC implementation: "auto", "table", "hat" or "gather" (module docstring).
        self.impl = "auto"
        #: "entries": the table entries are the parameters (``lut``); "mlp": the table is
        #: ``TableMLP`` evaluated at the grid points (``table_net``), so entries share parameters.
        self.table_param = table_param
        if table_param == "entries":
            self.lut = nn.Parameter(torch.randn(layer.lut_shape()) * init_std)
            self.table_net = None
        else:
            self.lut = None
            self.table_net = TableMLP(layer.c_in, layer.kernel ** 2 * layer.c_out, init_std=init_std)
        self.alpha = nn.Parameter(torch.zeros(())) if layer.gated else None
        self.set_nuqd(a, b)

    # -- NUQD parameters (not trained by gradient: chosen by search, see training.train) ----------
    def set_nuqd(self, a: float, b: float, grid=None) -> None:
        """Use T_{a,b}'s grid (``spec.nuqd_grid``), or the given integer grid (from a model file)."""
        self.a, self.b = float(a), float(b)
        if grid is None:
            grid = spec.nuqd_grid(self.a, self.b, self.layer.levels, self.cfg.act_bits)
        grid = spec.check_grid(grid, self.layer.levels, self.cfg.act_bits, self.layer.frac_bits)
        recip = spec.nuqd_recip(grid, self.layer.frac_bits)
        width = np.append(np.diff(grid), 1)
        dev = next(self.parameters()).device
        self._grid_np, self._recip_np = np.asarray(grid, np.int64), np.asarray(recip, np.int64)
        m, d = ec_table.interpolation_matrices(grid, recip, self.layer.frac_bits, self.cfg.act_bits)
        self.register_buffer("interp", m.to(dev), persistent=False)
        self.register_buffer("slope", d.to(dev), persistent=False)
        self.register_buffer("grid", torch.tensor(grid, dtype=torch.float32, device=dev), persistent=False)
        self.register_buffer("recip", torch.tensor(recip, dtype=torch.float32, device=dev), persistent=False)
        self.register_buffer("width", torch.tensor(width, dtype=torch.float32, device=dev), persistent=False)

    @property
    def entry_scale(self) -> float:
        return float(1 << (self.cfg.entry_bits - 1))

    def table(self) -> torch.Tensor:
        """The table in parameter units (entry / 2^(E-1)), shape (c_in, L, k, k, c_out)."""
        if self.table_net is None:
            return self.lut
        return self.table_net(self.grid / (1 << (self.cfg.act_bits - 1))).reshape(self.layer.lut_shape())

    def set_table(self, target: torch.Tensor, steps: int = 2000, log=None) -> float:
        """Make ``table()`` equal ``target`` (parameter units, lut shape): copied for "entries", fitted
        by Adam on the squared error for "mlp". Returns the largest remaining error in entry units."""
        target = torch.as_tensor(target, dtype=torch.float32).reshape(self.layer.lut_shape())
        if self.table_net is None:
            with torch.no_grad():
                self.lut.copy_(target)
            return 0.0
        with torch.enable_grad():
            opt = torch.optim.Adam(self.table_net.parameters(), lr=1e-2)
            for n in range(steps):
                lr = 1e-2 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * n / steps)))
                for g in opt.param_groups:
                    g["lr"] = lr
                loss = torch.mean((self.table() - target) ** 2)
                opt.zero_grad()
                loss.backward()
                opt.step()
        err = float((self.table().detach() - target).abs().max()) * self.entry_scale
        if log:
            log(f"fitted the table MLP: max error {err:.2f} entries, rms "
                f"{float(loss.detach().sqrt()) * self.entry_scale:.3f}")
        return err

    def entries(self, quantize: bool) -> torch.Tensor:
        """LUT in entry units (c_in, L, k, k, c_out); if quantize: rounded (straight-through) and
        clamped to the E-bit range, the clamp passing gradient only back towards the range
        (``clamp_inward``)."""
        e = self.table() * self.entry_scale
        if not quantize:
            return e
        lo, hi = -self.entry_scale, self.entry_scale - 1
        c = clamp_inward(e, lo, hi)
        return ste(c, torch.round(c))

    def gate(self, quantize: bool) -> torch.Tensor:
        g = torch.sigmoid(self.alpha)
        if not quantize:
            return g
        s = float(1 << self.cfg.gate_bits)
        return ste(g, torch.round(g * s) / s)

    def int_gate(self) -> int:
        return int(torch.round(torch.sigmoid(self.alpha) * (1 << self.cfg.gate_bits)).item())

    # -- blocks -------------------------------------------------------------------------------
    def nuqd(self, x: torch.Tensor, quantize: bool):
        """x (activation units) -> (i long, t float in [0, 1)); t quantized to F bits (STE) if asked."""
        i = torch.bucketize(x.detach().contiguous(), self.grid[1:], right=True)
        d = x - self.grid[i]
        t = d / self.width[i]
        if self.layer.frac_bits == 0:
            # no interpolation: t is 0, but its gradient (the slope between neighbouring entries)
            # still reaches x, so earlier layers train (straight-through)
            t = ste(t, torch.zeros_like(t))
        elif quantize:
            tq = torch.floor(d.detach() * self.recip[i] / (1 << RECIP_SHIFT)) / (1 << self.layer.frac_bits)
            t = ste(t, tq)
        return i, t

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        k, o = self.layer.kernel, self.layer.origin
        lo, hi = k - 1 + o, -o
        if lo == 0 and hi == 0:
            return x
        return F.pad(x, (lo, hi, lo, hi), mode="replicate")

    def ec(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        """(N, c_in, H, W) -> accumulator (N, c_out, H, W) in entry units."""
        if self.impl not in ("auto", "table", "hat", "gather"):
            raise ValueError(f"unknown EC implementation '{self.impl}'")
        table = self.impl == "table" or (self.impl == "auto" and mode != "float")
        if mode == "int":
            return self._ec_table_int(x) if table else self._ec_exact(x)
        quantize = mode == "qat"
        if table:
            if not quantize:
                raise ValueError("the value-table EC needs integer activations: modes 'qat' and 'int' only")
            return self._ec_table(x)
        if self.impl == "gather" or (self.impl == "auto" and self.layer.levels > 32):
            return self._ec_gather(x, quantize)
        layer = self.layer
        L, k = layer.levels, layer.kernel
        xp = self._pad(x)
        i, t = self.nuqd(xp, quantize)
        n, c, h, w = xp.shape
        hat = torch.zeros(n, c, L, h, w, dtype=x.dtype, device=x.device)
        hat.scatter_add_(2, i.unsqueeze(2), (1 - t).unsqueeze(2))
        hat.scatter_add_(2, torch.clamp(i + 1, max=L - 1).unsqueeze(2), t.unsqueeze(2))
        hat = hat.reshape(n, c * L, h, w)
        wgt = self.entries(quantize).flip(2, 3).permute(4, 0, 1, 2, 3).reshape(layer.c_out, c * L, k, k)
        return F.conv2d(hat, wgt)

    def _ec_gather(self, x: torch.Tensor, quantize: bool) -> torch.Tensor:
        """The same as the hat convolution, as two table gathers + blend + shifted adds
        (cheaper for many levels, e.g. the 256-level ECNN teacher)."""
        layer = self.layer
        k, L = layer.kernel, layer.levels
        xp = self._pad(x)
        i, t = self.nuqd(xp, quantize)
        ent = self.entries(quantize)
        n, c, hp, wp = xp.shape
        h, w = hp - (k - 1), wp - (k - 1)
        s = 0
        for ci in range(c):
            tab = ent[ci].reshape(L, -1)
            lo = tab[i[:, ci]]
            hi = tab[torch.clamp(i[:, ci] + 1, max=L - 1)]
            s = s + lo + (hi - lo) * t[:, ci, ..., None]
        s = s.reshape(n, hp, wp, k, k, layer.c_out)
        acc = 0
        for jy in range(k):
            for jx in range(k):
                acc = acc + s[:, k - 1 - jy:k - 1 - jy + h, k - 1 - jx:k - 1 - jx + w, jy, jx]
        return acc.permute(0, 3, 1, 2)

    def _ec_table(self, x: torch.Tensor) -> torch.Tensor:
        """QAT EC through the value table V = M E (training.ec_table); gradients to the entries
        (through the matmul) and to x (slope table)."""
        layer = self.layer
        k, c, co = layer.kernel, layer.c_in, layer.c_out
        e = self.entries(True).reshape(c, layer.levels, k * k * co)
        nv = self.interp.shape[0]
        v = torch.matmul(self.interp, e).reshape(c, nv, k, k, co)
        s = torch.matmul(self.slope, e.detach()).reshape(c, nv, k, k, co)
        return ec_table.TableEC.apply(x, v, s, ec_table.value_index(x, self.cfg.act_bits), k, layer.origin)

    @torch.no_grad()
    def _ec_table_int(self, x: torch.Tensor) -> torch.Tensor:
        """Golden's exact EC through golden's value table (per-entry DPFI rounding); float64 result."""
        layer = self.layer
        lut = self.entries(True).detach().cpu().numpy().astype(np.int64)
        tab = ec_table.int_value_table(lut, self._grid_np, self._recip_np, layer.frac_bits, self.cfg.act_bits)
        if np.abs(tab).max(axis=1).reshape(-1, layer.c_out).sum(axis=0).max() >= 1 << 24:    # a float32 sum could round: exact float64 path
            return self._ec_exact(x)
        acc = ec_table.ec_forward(ec_table.value_index(x.float(), self.cfg.act_bits),
                                  torch.tensor(tab, dtype=torch.float32, device=x.device), layer.kernel,
                                  layer.origin)
        return acc.double()

    @torch.no_grad()
    def _ec_exact(self, x: torch.Tensor) -> torch.Tensor:
        """Golden arithmetic: per-entry DPFI rounding, gather + shifted adds (float64, exact)."""
        layer = self.layer
        k, F_ = layer.kernel, layer.frac_bits
        xp = self._pad(x.double())
        i = torch.bucketize(xp, self.grid.double()[1:], right=True)
        if F_:
            t = torch.floor((xp - self.grid.double()[i]) * self.recip.double()[i] / (1 << RECIP_SHIFT))
        else:
            t = torch.zeros_like(xp)
        ent = self.entries(True).double()                      # (c_in, L, k, k, c_out)
        n, c, hp, wp = xp.shape
        h, w = hp - (k - 1), wp - (k - 1)
        acc = torch.zeros(n, layer.c_out, h, w, dtype=torch.float64, device=x.device)
        for ci in range(c):
            tab = ent[ci].reshape(layer.levels, -1)           # (L, k*k*c_out)
            lo = tab[i[:, ci]]                                # (n, hp, wp, k*k*c_out)
            hi = tab[torch.clamp(i[:, ci] + 1, max=layer.levels - 1)]
            e = lo if F_ == 0 else lo + torch.floor(((hi - lo) * t[:, ci, ..., None] + (1 << (F_ - 1))) / (1 << F_))
            e = e.reshape(n, hp, wp, k, k, layer.c_out)
            for jy in range(k):
                for jx in range(k):
                    acc += e[:, k - 1 - jy:k - 1 - jy + h, k - 1 - jx:k - 1 - jx + w, jy, jx].permute(0, 3, 1, 2)
        return acc

    def iq_block(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        acc = self.ec(x, mode)
        amax = float(1 << (self.cfg.act_bits - 1))
        y = acc / (1 << self.shift)
        if mode != "float":
            y = round_ste(y)
        y = torch.clamp(y, -amax, amax - 1)
        if self.layer.gated:
            if mode == "int":
                g = self.int_gate()
                G = self.cfg.gate_bits
                return x + torch.floor((g * (y - x) + (1 << (G - 1))) / (1 << G))
            d = self.gate(mode == "qat") * (y - x)
            return x + (round_ste(d) if mode == "qat" else d)
        return y


def block_shifts(cfg: ModelConfig, block_shift, up_shift: int) -> list[int]:
    """The per-block accumulator shifts from one int or one per block (ValueError if the count
    or a value, 0..``spec.MAX_SHIFT``, is wrong; ``up_shift`` is checked too)."""
    n = len(cfg.blocks)
    shifts = [block_shift] * n if isinstance(block_shift, int) else list(block_shift)
    if len(shifts) != n:
        raise ValueError(f"block_shift: one shift or {n} (one per block of {cfg.name}), got {len(shifts)}")
    for s in shifts + [up_shift]:
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= spec.MAX_SHIFT:
            raise ValueError(f"shifts must be ints in 0..{spec.MAX_SHIFT}, got {s!r}")
    return shifts


class IQLUT(nn.Module):
    """The whole network: IQ-Blocks, upsampler + pixel shuffle, bilinear skip."""

    def __init__(self, cfg: ModelConfig, block_shift=3, up_shift: int = 3, init_std: float = 0.05,
                 table_param: str = "entries"):
        """``block_shift``: the IQ-Blocks' accumulator right shift (bits), one int for all or one per
        block; ``up_shift``: the upsampler's. Each in 0..``spec.MAX_SHIFT``: with 8-bit entries one
        window tap moves a block output by at most 128 / 2^shift activation units."""
        shifts = block_shifts(cfg, block_shift, up_shift)
        super().__init__()
        spec.validate_config(cfg)
        self.cfg = cfg
        self.blocks = nn.ModuleList(ECLayer(layer, cfg, s, init_std=init_std, table_param=table_param)
                                    for layer, s in zip(cfg.blocks, shifts))
        self.up = ECLayer(cfg.upsampler, cfg, up_shift, init_std=0.0, is_upsampler=True, table_param=table_param)

    @property
    def layers(self):
        return list(self.blocks) + [self.up]

    def bilinear(self, lr: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) pixel values -> (N, 1, sH, sW) in 1/D units (D = spec.bilinear_den(s), s the
        scale), taps from golden.iqlut."""
        h, w = lr.shape[-2:]
        s = self.cfg.scale
        r0, r1, a0, a1 = (torch.as_tensor(v, device=lr.device) for v in giq._bilinear_taps(h, s))
        c0, c1, b0, b1 = (torch.as_tensor(v, device=lr.device) for v in giq._bilinear_taps(w, s))
        rows = a0[:, None] * lr[..., r0, :] + a1[:, None] * lr[..., r1, :]
        return b0 * rows[..., c0] + b1 * rows[..., c1]

    def forward(self, lr: torch.Tensor, mode: str = "qat", return_blocks: bool = False):
        """lr: (N, 1, H, W) float pixel values 0..255 -> HR (N, 1, sH, sW) pixel values, s the scale
        (float; rounded and clamped to 0..255 in "qat"/"int" modes; "int": golden's combine,
        round_div of the exact integer total)."""
        a = self.cfg.act_bits
        x = lr * (1 << (a - 8)) - (1 << (a - 1))
        outs = []
        for blk in self.blocks:
            x = blk.iq_block(x, mode)
            outs.append(x)
        acc = self.up.ec(x, mode)
        up = F.pixel_shuffle(acc, self.cfg.scale)
        bil = self.bilinear(lr)
        s, den = self.up.shift, spec.bilinear_den(self.cfg.scale)
        total = bil * (1 << s) + up * den          # integers in "int" mode (exact in float32)
        d = den << s
        if mode == "int":
            # golden.spec.round_div: floor((2 total + d) / 2d); the quotient is never within float
            # rounding of an integer unless it is one (it is a multiple of 1/2d)
            hr = torch.clamp(torch.floor((2 * total + d) / (2 * d)), 0, 255)
        else:
            hr = total / d
        if mode == "qat":
            hr = torch.clamp(round_ste(hr), 0, 255)
        return (hr, outs) if return_blocks else hr

    # -- export --------------------------------------------------------------------------------
    def to_golden(self, meta: dict | None = None) -> Model:
        """The integer model file contents (validated)."""
        params = []
        for layer in self.layers:
            lut = layer.entries(True).detach().cpu().numpy().astype(np.int64)
            params.append(LayerParams(nuqd_a=layer.a, nuqd_b=layer.b,
                                      grid=layer.grid.cpu().numpy().astype(np.int64), shift=layer.shift,
                                      gate=layer.int_gate() if layer.layer.gated else None, lut=lut))
        return validate(Model(config=self.cfg, layers=tuple(params), meta=dict(meta or {})))

    @classmethod
    def from_golden(cls, model: Model) -> "IQLUT":
        """A torch model holding exactly the integer model's tables (for fine-tuning / checks)."""
        net = cls(model.config)
        with torch.no_grad():
            for layer, p in zip(net.layers, model.layers):
                layer.shift = p.shift
                layer.set_nuqd(p.nuqd_a, p.nuqd_b, p.grid)
                layer.lut.copy_(torch.as_tensor(p.lut, dtype=torch.float32) / layer.entry_scale)
                if layer.layer.gated:
                    g = min(max(p.gate, 0), 1 << model.config.gate_bits) / (1 << model.config.gate_bits)
                    g = min(max(g, 1e-6), 1 - 1e-6)
                    # a logit whose rounded sigmoid gives back exactly p.gate
                    layer.alpha.copy_(torch.tensor(math.log(g / (1 - g))))
        return net

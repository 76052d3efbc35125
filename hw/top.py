# amaranth: UnusedElaboratable=no
"""The whole upscaler (x2, x3, x4): AXI4-Stream video in, HR pixels out, one LR pixel (scale^2 HR
pixels) per clock
within a row."""
from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.modelfile import Model, ModelFileError, validate

from .bilinear import Bilinear
from .fold import check_fold
from .framing import HEIGHT_BITS, INPUT_STATUS, InputFraming, video_layout
from .iq_block import IQBlock, Upsampler
from .output import Combine, RasterOrder
from .rom import ROM_PORTS
from .streams import Fork, SkidBuffer, StreamFIFO, check_positive_int, pixel_layout, stream_map

__all__ = ["IQLUT", "MAX_WIDTH_LIMIT", "OUTPUT_ORDERS", "AxiTop", "auto_dsp_layers", "check_dsp_layers",
           "dsp_multipliers"]

OUTPUT_ORDERS = ("block", "raster")
#: largest supported --max-width (line buffers are max_width words deep)
MAX_WIDTH_LIMIT = 1 << 15
#: slack added to the FIFO that aligns the two paths
FIFO_SLACK = 16


def check_dsp_layers(model: Model, layers) -> tuple:
    """``layers`` (layer indices whose DPFI products become DSP multipliers, ``hw.dpfi.DPFI``
    ``dsp``; the upsampler is layer ``len(blocks)``) as a sorted tuple; ValueError for an index
    out of range or a layer without DPFI products (no fraction bits)."""
    n = len(model.config.layers)
    try:
        out = tuple(sorted(set(layers)))
    except TypeError:
        raise ValueError(f"dsp_layers must be a collection of layer indices, got {layers!r}") from None
    for k in out:
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < n:
            raise ValueError(f"dsp_layers: layer indices are 0..{n - 1}, got {k!r}")
        if not model.widths[k].frac_bits:
            raise ValueError(f"dsp_layers: layer {k} has no DPFI products (no fraction bits)")
    return out


def dsp_multipliers(core: "IQLUT") -> int:
    """The multipliers of ``core`` that synthesis puts into DSP blocks: the NUQD products (both
    operands >= ``hw.synth.DSP_MIN_WIDTH`` bits) and the DPFI products of its ``dsp_layers``."""
    from .synth import DSP_MIN_WIDTH
    total = 0
    for ec in (b.ec for b in [*core.blocks, core.upsampler]):
        count, widths = ec.nuqd.multipliers
        if count and min(widths) >= DSP_MIN_WIDTH:
            total += count
        if ec.dpfi.dsp:
            total += ec.dpfi.multipliers[0]
    return total


def auto_dsp_layers(model: Model, budget: int, **options) -> tuple:
    """The layers whose DPFI products fill at most ``budget`` DSP blocks together with the
    design's other DSP multipliers (``dsp_multipliers``): taken from the upsampler (the most
    products) down to block 0, each layer that still fits. ``options``: ``IQLUT``'s other
    parameters (the fold sets the products per layer)."""
    check_positive_int("budget", budget)
    core = IQLUT(model, **options)
    used, chosen = dsp_multipliers(core), []
    for n, ec in reversed(list(enumerate(b.ec for b in [*core.blocks, core.upsampler]))):
        products = ec.dpfi.multipliers[0]
        if products and used + products <= budget:
            used += products
            chosen.append(n)
    return tuple(sorted(chosen))


class IQLUT(wiring.Component):
    """IQ-LUT super-resolution of ``model`` (x``S``, S = its scale: 2, 3 or 4), bit-exact to
    ``golden.iqlut.upscale``.

    Ports
    -----
    i : stream of LR pixels, payload {data: 8, last, user} (AXI4-Stream video: ``last`` = end of
        line, ``user`` = start of frame).
    width, height : frame size, sampled at each start of frame (1 <= width <= max_width,
        height >= 1); the framing is counted from them (``last`` is only checked).
    o : HR pixels, payload {data, last, user}. ``output_order="block"``: one beat per LR pixel
        (raster order) carrying its S x S HR block, ``data[r * S + c]`` = HR pixel
        (S y + r, S x + c), lane 0 in the low byte; ``last`` on the last block of each LR row,
        ``user`` on the first block of a frame. ``"raster"``: HR raster order, S pixels per beat
        (``data[c]`` = HR pixel (Y, S x + c)), ``last`` at the end of each HR row.
    status : sticky flags (``INPUT_STATUS`` + ``misaligned``).

    Parameters: ``max_width`` (LR pixels), ``output_order``, ``rom_ports``, ``fold`` (``hw.fold``),
    ``dsp_layers`` (layer indices whose DPFI products are DSP multipliers, ``check_dsp_layers``;
    ``auto_dsp_layers`` picks them for a DSP budget). None of them changes a result bit.

    Structure: framing -> skid -> fork: network (IQ-Blocks 0..N-1, upsampler) and bilinear; the
    bilinear path (and, when the network needs less look-ahead, the network too) gets a FIFO of
    LR pixels so neither path stalls the other (``bil_fifo``, ``net_fifo``); both meet in
    ``Combine``; raster mode adds ``RasterOrder``.
    """

    def __init__(self, model: Model, *, max_width: int = 1920, output_order: str = "block",
                 rom_ports: str = "dual", fold: int = 1, dsp_layers=()):
        if not isinstance(model, Model):
            raise TypeError(f"model must be a golden.modelfile.Model, got {type(model).__name__}")
        try:
            validate(model)
        except ModelFileError as e:
            raise ValueError(f"invalid model: {e}") from None
        if not isinstance(max_width, int) or isinstance(max_width, bool) or \
                not 1 <= max_width <= MAX_WIDTH_LIMIT:
            raise ValueError(f"max_width must be an integer in 1..{MAX_WIDTH_LIMIT}, got {max_width!r}")
        if output_order not in OUTPUT_ORDERS:
            raise ValueError(f"output_order must be one of {OUTPUT_ORDERS}, got {output_order!r}")
        if rom_ports not in ROM_PORTS:
            raise ValueError(f"rom_ports must be one of {ROM_PORTS}, got {rom_ports!r}")
        check_fold(fold)
        cfg = model.config
        dsp_layers = check_dsp_layers(model, dsp_layers)
        self.fold, self.dsp_layers = fold, dsp_layers
        self.model, self.max_width, self.output_order, self.rom_ports = model, max_width, output_order, rom_ports
        self.framing = InputFraming(max_width)
        lr = pixel_layout(unsigned(8), 1)
        self.in_skid = SkidBuffer(lr)
        self.fork = Fork(lr, 2)
        self.blocks = [IQBlock(model, n, max_width, rom_ports=rom_ports, fold=fold, dsp=n in dsp_layers)
                       for n in range(len(cfg.blocks))]
        self.upsampler = Upsampler(model, max_width, rom_ports=rom_ports, fold=fold,
                                   dsp=len(cfg.blocks) in dsp_layers)
        #: cycles per LR pixel in steady state: the slowest layer's sub-beats (= fold for the
        #: named configurations; 1 unfolded)
        self.cycles_per_pixel = max(b.ec.sub_beats for b in [*self.blocks, self.upsampler])
        self.scale = cfg.scale
        self.bilinear = Bilinear(max_width, cfg.scale)
        self.combine = Combine(model)
        self.raster = RasterOrder(max_width, cfg.scale) if output_order == "raster" else None

        # Path alignment. Output q needs LR input up to q + (D, D) on the network (D = sum of the
        # layers' lags) and up to q + (1, 1) on the bilinear path, and each path has its pipeline
        # latency. The bilinear path gets a FIFO of LR pixels for max(0, D - 1) rows of
        # max_width + 1 plus the network's latency; if D = 0 the network gets one for the row the
        # bilinear path is ahead. So neither path ever waits for the other (no deadlock, full rate).
        self.net_lag = sum(-layer.origin for layer in cfg.layers)
        self.bil_lag = self.bilinear.window.lag
        self.net_latency = sum(b.latency for b in self.blocks) + self.upsampler.latency
        delta = self.net_lag - self.bil_lag
        self.bil_fifo = StreamFIFO(lr, max(0, delta) * (max_width + 1) + self.net_latency + FIFO_SLACK)
        self.net_fifo = StreamFIFO(lr, -delta * (max_width + 1) + self.bilinear.latency + FIFO_SLACK) \
            if delta < 0 else None
        #: HR pixels per output beat: scale^2 (a block) or scale (raster order)
        self.lanes = cfg.scale if self.raster else cfg.scale ** 2
        super().__init__({
            "i": In(stream.Signature(video_layout(1))),
            "width": In(self.framing.width_bits),
            "height": In(HEIGHT_BITS),
            "o": Out(stream.Signature(video_layout(self.lanes))),
            "status": Out(data.StructLayout({**INPUT_STATUS, "misaligned": 1})),
        })

    def latency(self, width: int) -> int:
        """Cycles from the first LR pixel of a frame (accepted at the input) to its first output
        beat, without stalls, for frame width ``width``: the slower of the two paths. A window
        generator of lag d emits pixel 0 after d (W + d) + d positions; every stage between adds
        its pipeline latency; input skid + combine add 2 (raster mode: + 1). Exact unfolded;
        folded (``fold`` > 1) an upper bound: a layer whose column takes S cycles needs S cycles
        per position, and its accumulator S per pixel."""
        cfg = self.model.config
        layers = [*self.blocks, self.upsampler]
        net = self.net_latency
        for layer, b in zip(cfg.layers, layers):
            d, s = -layer.origin, b.ec.sub_beats
            net += s * d * (width + d + 1) + 2 * (s - 1)
        if self.net_fifo is not None:
            net += StreamFIFO.latency
        d = self.bil_lag
        bil = d * (width + d + 1) + self.bilinear.latency + StreamFIFO.latency
        extra = self.in_skid.latency + self.combine.latency + (self.raster.latency if self.raster else 0)
        return max(net, bil) + extra

    @property
    def max_lag(self) -> int:
        """The largest window lag d of the design (1 for the named configurations)."""
        return max([self.bil_lag] + [-layer.origin for layer in self.model.config.layers])

    def frame_cycles(self, height: int, width: int) -> int:
        """Cycles per frame in steady state without stalls: S (H + d)(W + d), d = ``max_lag`` (the
        ghost columns / rows of ``ColumnGen``), S = ``cycles_per_pixel`` (1 unfolded; exact when
        every folded layer's column and window take the same S cycles, as in every named
        configuration at every fold, else an upper bound). In raster mode the output port needs
        scale H W cycles per frame instead (scale HR pixels per beat)."""
        d = self.max_lag
        cycles = self.cycles_per_pixel * (height + d) * (width + d)
        return max(cycles, self.scale * height * width) if self.raster else cycles

    @property
    def line_buffer_bits(self) -> int:
        return sum(b.ec.line_buffer_bits for b in self.blocks) + \
            self.upsampler.ec.line_buffer_bits + self.bilinear.line_buffer_bits

    @property
    def rom_bits(self) -> int:
        return sum(b.ec.rom_bits for b in self.blocks) + self.upsampler.ec.rom_bits

    def elaborate(self, platform):
        m = Module()
        cfg = self.model.config
        a = cfg.act_bits
        m.submodules.framing, m.submodules.in_skid, m.submodules.fork = \
            self.framing, self.in_skid, self.fork
        for n, b in enumerate(self.blocks):
            m.submodules[f"block{n}"] = b
        m.submodules.upsampler, m.submodules.bilinear, m.submodules.combine = \
            self.upsampler, self.bilinear, self.combine
        m.submodules.bil_fifo = self.bil_fifo
        if self.net_fifo is not None:
            m.submodules.net_fifo = self.net_fifo

        wiring.connect(m, wiring.flipped(self.i), self.framing.i)
        m.d.comb += [self.framing.width.eq(self.width), self.framing.height.eq(self.height)]
        wiring.connect(m, self.framing.o, self.in_skid.i)
        wiring.connect(m, self.in_skid.o, self.fork.i)

        # network path: uint8 -> activation p * 2^(A-8) - 2^(A-1) (golden.iqlut.input_activation)
        net_src = self.fork.o[0]
        if self.net_fifo is not None:
            wiring.connect(m, net_src, self.net_fifo.i)
            net_src = self.net_fifo.o
        first = self.blocks[0].i
        stream_map(m, net_src, first,
                   first.p.data[0].eq((net_src.p.data[0] << (a - 8)) - (1 << (a - 1))),
                   first.p.eol.eq(net_src.p.eol), first.p.eof.eq(net_src.p.eof))
        for prev, nxt in zip(self.blocks, self.blocks[1:]):
            wiring.connect(m, prev.o, nxt.i)
        wiring.connect(m, self.blocks[-1].o, self.upsampler.i)
        wiring.connect(m, self.upsampler.o, self.combine.up)

        # bilinear path
        wiring.connect(m, self.fork.o[1], self.bil_fifo.i)
        wiring.connect(m, self.bil_fifo.o, self.bilinear.i)
        wiring.connect(m, self.bilinear.o, self.combine.bil)

        # output: blocks, or HR raster order; framing bits -> last / user
        out = self.combine.o
        if self.raster is not None:
            m.submodules.raster = self.raster
            wiring.connect(m, out, self.raster.i)
            out = self.raster.o
        sof = Signal(init=1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += sof.eq(out.p.eof)
        stream_map(m, out, self.o, self.o.p.data.eq(out.p.data),
                   self.o.p.last.eq(out.p.eol), self.o.p.user.eq(sof))
        m.d.comb += [self.status.bad_size.eq(self.framing.status.bad_size),
                     self.status.bad_last.eq(self.framing.status.bad_last),
                     self.status.bad_user.eq(self.framing.status.bad_user),
                     self.status.misaligned.eq(self.combine.misaligned)]
        return m


class AxiTop(wiring.Component):
    """``IQLUT`` with flat AXI4-Stream port names for the emitted Verilog: ``s_axis_t*`` (LR in,
    8-bit ``tdata``), ``m_axis_t*`` (HR out, 8 scale^2 bits of ``tdata`` = scale^2 lanes in block
    order (x4: 128 bits), 8 scale bits = scale pixels in raster order, lane 0 in the low byte),
    ``width``, ``height``, ``status``
    (bit 0 bad_size, 1 bad_last, 2 bad_user, 3 misaligned) and the ``clk``/``rst`` of the sync
    domain (synchronous, active-high reset)."""

    def __init__(self, core: IQLUT):
        self.core = core
        lanes = core.lanes
        super().__init__({
            "s_axis_tdata": In(8), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1), "s_axis_tuser": In(1),
            "m_axis_tdata": Out(8 * lanes), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1), "m_axis_tuser": Out(1),
            "width": In(core.framing.width_bits), "height": In(HEIGHT_BITS),
            "status": Out(4),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = c = self.core
        m.d.comb += [
            c.i.p.data.eq(self.s_axis_tdata), c.i.p.last.eq(self.s_axis_tlast),
            c.i.p.user.eq(self.s_axis_tuser), c.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(c.i.ready),
            self.m_axis_tdata.eq(c.o.p.data), self.m_axis_tlast.eq(c.o.p.last),
            self.m_axis_tuser.eq(c.o.p.user), self.m_axis_tvalid.eq(c.o.valid),
            c.o.ready.eq(self.m_axis_tready),
            c.width.eq(self.width), c.height.eq(self.height), self.status.eq(c.status),
        ]
        return m

"""Jobs for the cocotb testbench (:mod:`sim.tb_iqlut`): segments of LR frames with the expected
HR beats computed by ``golden``, written as ``job.json`` + ``arrays.npz``; and the reading of
``result.json`` into mismatch reports with frame, coordinates, expected and got pixels.

A *segment* is a run of frames streamed back to back with the given ``tvalid`` idle and ``tready``
stall probabilities, then optionally a reset. Frame options: ``short_row`` (that row is sent one
pixel short, with ``tlast`` on its new last pixel; the expectation is golden on
``golden.iqlut.received_frame``, which holds when a next start of frame follows) and ``beats`` (only the
first N beats are sent: a reset in the middle of the frame follows). Unchecked segments (``check=False``) still count
beats and read ``status``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.iqlut import received_frame, upscale_channel

from .design import Design

__all__ = ["Frame", "Segment", "expected_beats", "mismatch_report", "write_job"]

#: status bits of the top (hw.framing.INPUT_STATUS + misaligned)
STATUS_BITS = {"bad_size": 1, "bad_last": 2, "bad_user": 4, "misaligned": 8}


@dataclass
class Frame:
    """One uint8 (H, W) LR frame (one channel) and how it is sent."""
    lr: np.ndarray
    label: str = ""
    short_row: int | None = None
    beats: int | None = None

    def __post_init__(self):
        self.lr = np.asarray(self.lr)
        if self.lr.dtype != np.uint8 or self.lr.ndim != 2 or self.lr.size == 0:
            raise ValueError(f"a frame is a non-empty uint8 (H, W) array, got {self.lr.dtype} {self.lr.shape}")


@dataclass
class Segment:
    name: str
    frames: list
    idle: float = 0.0
    stall: float = 0.0
    check: bool = True
    wait_cycles: int | None = None      # None: until every expected beat arrived
    reset_after: int = 0
    status_mask: int = 0xF
    status_value: int = 0
    budget: int | None = None           # cycles; None: from the latency and the frame sizes
    meta: dict = field(default_factory=dict)


def expected_beats(design: Design, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (SH, SW) HR frame (S = the model's scale) -> (beats, lanes) uint8 lane data and
    (beats, 2) [last, user] flags in the design's output order (block: lane r*S+c = HR (Sy+r, Sx+c);
    raster: S pixels of a row)."""
    S = design.model.config.scale
    HS, WS = hr.shape
    h, w = HS // S, WS // S
    if design.output_order == "block":
        lanes = _blocks(hr, S)
        x = np.tile(np.arange(w), h)
    else:
        lanes = hr.reshape(HS * w, S)
        x = np.tile(np.arange(w), HS)
    flags = np.zeros((len(lanes), 2), np.uint8)
    flags[:, 0] = x == w - 1
    flags[0, 1] = 1
    return np.ascontiguousarray(lanes, dtype=np.uint8), flags


def _budget(design: Design, seg: Segment) -> int:
    """Cycle budget of a segment: 4x the stall-free cycles it needs, scaled by the stall
    probabilities, plus the latency: enough for any correct design, and a hang ends in it."""
    slow = 1.0 / ((1.0 - seg.idle) * (1.0 - seg.stall))
    need = sum(design.frame_cycles(*f.lr.shape) for f in seg.frames)
    lat = max((design.latency(f.lr.shape[1]) for f in seg.frames), default=0)
    extra = seg.wait_cycles or 0
    return int(math.ceil(4 * need * slow + 2 * lat * slow + extra + 1000))


def write_job(design: Design, segments: list, job_dir: Path, *, seed: int = 0,
              probes: bool = False, golden_model=None) -> dict:
    """Compute the golden HR of every frame and write the job. Returns the job dict, with the
    per-frame metadata (shapes, labels) the report needs. ``golden_model``: the model the
    expectation comes from (default: the design's own; the mutation test passes the unmutated
    model); ``probes``: also record every internal stream for ``first_differing_probe``."""
    gmodel = design.model if golden_model is None else golden_model
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    arrays, segs, frames_meta = {}, [], []
    for seg in segments:
        fr_specs = []
        for fr in seg.frames:
            k = len(frames_meta)
            h, w = fr.lr.shape
            if w > design.max_width:
                raise ValueError(f"frame {fr.label or k} is {w} pixels wide; the design's max width is "
                                 f"{design.max_width}")
            arrays[f"lr{k}"] = fr.lr
            if seg.check:
                inter = {} if probes else None
                lr = fr.lr if fr.short_row is None else received_frame(fr.lr, [fr.short_row])
                hr = upscale_channel(gmodel, lr, inter)
                arrays[f"exp{k}"], arrays[f"flags{k}"] = expected_beats(design, hr)
                if probes:
                    for p in design.probes:
                        arrays[f"golden{k}_{p.name}"] = _golden_lanes(inter[p.golden], h, w)
            fr_specs.append({"id": k, "short_row": fr.short_row, "beats": fr.beats})
            frames_meta.append({"id": k, "label": fr.label, "h": h, "w": w, "segment": seg.name})
        segs.append({"name": seg.name, "frames": fr_specs, "idle": seg.idle, "stall": seg.stall,
                     "check": seg.check, "wait": "outputs" if seg.wait_cycles is None else "cycles",
                     "wait_cycles": seg.wait_cycles or 0, "reset_after": seg.reset_after,
                     "status_mask": seg.status_mask, "status_value": seg.status_value,
                     "budget": seg.budget or _budget(design, seg)})
    total = sum(len(arrays[f"exp{m['id']}"]) for m in frames_meta if f"exp{m['id']}" in arrays)
    job = {"top": design.top, "expected_beats": total, "lanes": design.lanes,
           "order": design.output_order, "seed": seed,
           "segments": segs, "frames": frames_meta,
           "probes": [{"name": p.name, "path": list(p.path), "prefix": p.prefix} for p in design.probes]
           if probes else []}
    np.savez(job_dir / "arrays.npz", **arrays)
    (job_dir / "job.json").write_text(json.dumps(job))
    for stale in ("result.json", "progress"):
        (job_dir / stale).unlink(missing_ok=True)
    return job


def _blocks(hr: np.ndarray, scale: int) -> np.ndarray:
    """(S H, S W) HR-sized map -> (H W, S^2): LR raster order, lane r*S+c = (S y + r, S x + c)."""
    h, w = hr.shape[0] // scale, hr.shape[1] // scale
    return hr.reshape(h, scale, w, scale).transpose(0, 2, 1, 3).reshape(h * w, scale * scale)


def _golden_lanes(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """A golden intermediate -> (beats, lanes) int64 in LR raster order: (C, H, W) activations give
    C lanes; an HR-sized (S H, S W) map gives S^2 lanes r*S+c."""
    if x.ndim == 3:
        return x.reshape(x.shape[0], h * w).T.astype(np.int64)
    return _blocks(x, x.shape[0] // h).astype(np.int64)


def _lanes(raw: int, offset: int, lanes: int, bits: int, signed: bool) -> list:
    v = raw >> offset
    mask = (1 << bits) - 1
    out = []
    for _ in range(lanes):
        e = v & mask
        if signed and e >> (bits - 1):
            e -= 1 << bits
        out.append(e)
        v >>= bits
    return out


def first_differing_probe(design: Design, job_dir: Path, result: dict) -> dict | None:
    """From a run with probes: the first stream, in dataflow order, whose beats differ from
    golden's intermediates, with the first differing frame/pixel; None if all agree."""
    arrays = np.load(Path(job_dir) / "arrays.npz")
    job = json.loads((Path(job_dir) / "job.json").read_text())
    for p in design.probes:
        for seg, res in zip(job["segments"], result["segments"]):
            if not seg["check"] or "probes" not in res:
                continue
            beats = res["probes"][p.name]
            pos = 0
            for fr in seg["frames"]:
                gold = arrays[f"golden{fr['id']}_{p.name}"]
                meta = job["frames"][fr["id"]]
                got = beats[pos:pos + len(gold)]
                pos += len(gold)
                for n, g in enumerate(gold):
                    if n >= len(got):
                        return {"probe": p.name, "frame": meta["label"] or fr["id"], "pixel": None,
                                "message": f"{p.name}: only {len(got)} of {len(gold)} beats"}
                    lanes = _lanes(got[n], p.offset, p.lanes, p.bits, p.signed)
                    if lanes != g.tolist():
                        y, x = divmod(n, meta["w"])
                        return {"probe": p.name, "frame": meta["label"] or fr["id"], "pixel": [y, x],
                                "expected": g.tolist(), "got": lanes}
    return None


def mismatch_report(design: Design, job: dict, result: dict, limit: int = 10) -> list[str]:
    """Human-readable lines: for each reported mismatching beat its frame, LR pixel (y, x), the HR
    pixels that differ (Y, X): expected vs got, and framing-bit differences."""
    lines = []
    frames = job["frames"]
    for seg, res in zip(job["segments"], result["segments"]):
        if res["timeout"]:
            lines.append(f"segment {seg['name']}: TIMEOUT after {res['cycles']} cycles (budget "
                         f"{seg['budget']}): {res['beats_in']}/{res['inputs']} beats in, "
                         f"{res['beats_out']}/{res['expected']} out")
        if res.get("protocol_errors"):
            lines.append(f"segment {seg['name']}: {res['protocol_errors']} AXI4-Stream rule violations on "
                         "m_axis (a stalled beat changed or was withdrawn)")
        if not res["status_ok"]:
            lines.append(f"segment {seg['name']}: status {res['status']:#06b}, expected "
                         f"{seg['status_value']:#06b} under mask {seg['status_mask']:#06b}")
        if not seg["check"]:
            continue
        sizes = [frames[f["id"]] for f in seg["frames"]]
        S = design.model.config.scale
        per = [m["h"] * m["w"] if design.output_order == "block" else S * m["h"] * m["w"] for m in sizes]
        starts = np.cumsum([0] + per)
        for bad in res["first_mismatches"][:limit]:
            n = bad["beat"]
            k = int(np.searchsorted(starts, n, side="right") - 1)
            if k >= len(sizes):
                lines.append(f"segment {seg['name']}: extra output beat {n}: got {bad['got']}")
                continue
            meta, local = sizes[k], n - starts[k]
            label = meta["label"] or f"#{meta['id']}"
            (ed, el, eu), (gd, gl, gu) = bad["expected"], bad["got"]
            lanes = design.lanes
            ex = [(ed >> (8 * j)) & 255 for j in range(lanes)]
            gx = [(gd >> (8 * j)) & 255 for j in range(lanes)]
            if design.output_order == "block":
                y, x = divmod(int(local), meta["w"])
                where = f"LR pixel (y={y}, x={x})"
                coords = [(S * y + j // S, S * x + j % S) for j in range(S * S)]
            else:
                Y, xb = divmod(int(local), meta["w"])
                where = f"HR row {Y}, pixels x={S * xb}..{S * xb + S - 1}"
                coords = [(Y, S * xb + j) for j in range(S)]
            diffs = [f"HR({c[0]},{c[1]}) exp {e} got {g}" for c, e, g in zip(coords, ex, gx) if e != g]
            flags = []
            if el != gl:
                flags.append(f"tlast exp {el} got {gl}")
            if eu != gu:
                flags.append(f"tuser exp {eu} got {gu}")
            lines.append(f"frame {label} ({meta['h']}x{meta['w']}), {where}: "
                         + "; ".join(diffs[:6] + flags) + (" ..." if len(diffs) > 6 else ""))
    return lines

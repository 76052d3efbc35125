"""cocotb 2.1 testbench of the emitted IQ-LUT top (``AxiTop``): runs inside the simulator.

It reads a *job* (``IQLUT_SIM_JOB`` = a directory with ``job.json`` and ``arrays.npz``, written by
:mod:`sim.job`), drives the segments of the job into ``s_axis`` with random ``tvalid`` gaps,
takes ``m_axis`` with random ``tready`` stalls, compares every output beat (data, ``tlast``,
``tuser``) with the expected beats and writes ``result.json`` into the same directory. One
coroutine per clock cycle does everything: after the rising edge it drives the inputs for the
cycle, in the ``ReadOnly`` phase it samples the handshakes (what the flip-flops see at the next
edge) and the outputs. It also checks the AXI4-Stream rules on ``m_axis``: a beat offered while
``tready`` is low must stay offered, unchanged, until it is taken (``protocol_errors``).

A segment ends when all its expected beats arrived (``wait = "outputs"``) or after a fixed number
of cycles past its last input beat (``wait = "cycles"``), or when its cycle budget runs out (a
timeout, reported, never a hang); then the reset can be pulsed (``reset_after`` cycles).
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

MAX_REPORTED = 20
PROGRESS_EVERY = 2048     # cycles between two writes of the progress file


def _reader(handle):
    """A fast ``handle -> int`` for one signal (Logic or LogicArray values)."""
    v = handle.value
    if hasattr(v, "to_unsigned"):
        return lambda: handle.value.to_unsigned()
    return lambda: int(handle.value)


def _lookup(dut, path):
    h = dut
    for name in path:
        h = getattr(h, name)
    return h


class Probe:
    """Monitor of one internal stream (valid & ready -> payload)."""

    def __init__(self, dut, spec):
        mod = _lookup(dut, spec["path"])
        p = spec["prefix"]
        self.name = spec["name"]
        self.valid = _reader(getattr(mod, p + "valid"))
        self.ready = _reader(getattr(mod, p + "ready"))
        self.payload = _reader(getattr(mod, p + "payload"))
        self.beats = []

    def sample(self):
        if self.valid() and self.ready():
            self.beats.append(self.payload())


def _segment_inputs(seg, arrays):
    """Input beats of a segment: lists of (data, last, user, width, height)."""
    beats = []
    for fr in seg["frames"]:
        lr = arrays[f"lr{fr['id']}"]
        h, w = lr.shape
        rows = []
        for y in range(h):
            row = lr[y].tolist()
            if fr.get("short_row") == y:
                row = row[:-1]          # a line shorter than the configured width
            rows.append(row)
        first = True
        for y, row in enumerate(rows):
            for x, v in enumerate(row):
                beats.append((v, int(x == len(row) - 1), int(first), w, h))
                first = False
        if fr.get("beats") is not None:     # a partial frame (reset in the middle)
            del beats[len(beats) - sum(len(r) for r in rows) + fr["beats"]:]
    return beats


def _segment_expected(seg, arrays):
    """Expected output beats of a segment: (data int, last, user) per beat."""
    out = []
    for fr in seg["frames"]:
        exp = arrays[f"exp{fr['id']}"]              # (beats, lanes) uint8
        flags = arrays[f"flags{fr['id']}"]          # (beats, 2): last, user
        data = [int.from_bytes(row.tobytes(), "little") for row in exp]
        out.extend(zip(data, flags[:, 0].tolist(), flags[:, 1].tolist()))
    return out


@cocotb.test()
async def stream_job(dut):
    """Run the job in ``IQLUT_SIM_JOB``; the verdict is in ``result.json`` (and this test fails on
    any mismatch, timeout or unexpected status)."""
    job_dir = Path(os.environ["IQLUT_SIM_JOB"])
    job = json.loads((job_dir / "job.json").read_text())
    arrays = dict(np.load(job_dir / "arrays.npz"))
    rng = random.Random(job["seed"])

    s_tdata, s_tvalid, s_tlast, s_tuser = dut.s_axis_tdata, dut.s_axis_tvalid, dut.s_axis_tlast, dut.s_axis_tuser
    width, height, m_tready, rst = dut.width, dut.height, dut.m_axis_tready, dut.rst
    s_tready = _reader(dut.s_axis_tready)
    m_tvalid = _reader(dut.m_axis_tvalid)
    m_tdata = _reader(dut.m_axis_tdata)
    m_tlast = _reader(dut.m_axis_tlast)
    m_tuser = _reader(dut.m_axis_tuser)
    status = _reader(dut.status)
    probes = [Probe(dut, p) for p in job.get("probes", [])]

    Clock(dut.clk, 10, unit="ns").start()
    edge, settle = RisingEdge(dut.clk), ReadOnly()
    for h in (s_tvalid, s_tdata, s_tlast, s_tuser):
        h.value = 0
    width.value, height.value, m_tready.value = 1, 1, 1

    async def reset(cycles):
        rst.value = 1
        s_tvalid.value = 0
        for _ in range(cycles):
            await edge
        rst.value = 0

    await reset(job.get("reset_cycles", 2))
    t0 = time.monotonic()
    total_cycles = 0
    beats_done = 0
    progress_file = job_dir / "progress"

    def progress(out_now):
        tmp = job_dir / "progress.tmp"
        tmp.write_text(f"{beats_done + out_now} {job.get('expected_beats', 0)} {total_cycles + cycles}\n")
        tmp.replace(progress_file)

    results = []
    failed = False
    for seg in job["segments"]:
        inputs = _segment_inputs(seg, arrays)
        expected = _segment_expected(seg, arrays) if seg["check"] else None
        idle, stall = seg["idle"], seg["stall"]
        budget, wait_cycles = seg["budget"], seg.get("wait_cycles", 0)
        n_in = len(inputs)
        n_exp = len(expected) if expected is not None else None
        i = cycles = n_out = mismatches = 0
        presenting = valid_driven = False
        first_bad, last_in_cycle = [], None
        held, protocol = None, 0    # m_axis beat offered but stalled; AXI-Stream rule violations
        for p in probes:
            p.beats = []
        while True:
            # ---- drive this cycle (just after the rising edge)
            if not presenting and i < n_in and not (idle and rng.random() < idle):
                d, last, user, w, h = inputs[i]
                s_tdata.value, s_tlast.value, s_tuser.value = d, last, user
                width.value, height.value = w, h
                presenting = True
            if presenting != valid_driven:
                s_tvalid.value = int(presenting)
                valid_driven = presenting
            ready = 0 if (stall and rng.random() < stall) else 1
            m_tready.value = ready
            # ---- sample the handshakes the next edge will see
            await settle
            took = presenting and s_tready()
            beat = None
            if m_tvalid():
                shown = (m_tdata(), m_tlast(), m_tuser())
                if held is not None and shown != held:
                    protocol += 1           # payload changed while stalled
                if ready:
                    beat, held = shown, None
                else:
                    held = shown
            elif held is not None:
                protocol += 1               # valid withdrawn before the transfer
                held = None
            for p in probes:
                p.sample()
            await edge
            cycles += 1
            if took:
                i += 1
                presenting = False
                if i == n_in:
                    last_in_cycle = cycles
            if cycles % PROGRESS_EVERY == 0:
                progress(n_out)
            if beat is not None:
                if expected is not None:
                    if n_out < n_exp:
                        if beat != expected[n_out]:
                            mismatches += 1
                            if len(first_bad) < MAX_REPORTED:
                                first_bad.append({"beat": n_out, "expected": list(expected[n_out]),
                                                  "got": list(beat)})
                    else:
                        mismatches += 1         # an extra beat
                        if len(first_bad) < MAX_REPORTED:
                            first_bad.append({"beat": n_out, "expected": None, "got": list(beat)})
                n_out += 1
            if seg["wait"] == "outputs":
                if n_out >= n_exp and i == n_in:
                    break
            elif last_in_cycle is not None and cycles - last_in_cycle >= wait_cycles:
                break
            if cycles >= budget:
                break
        timeout = cycles >= budget and not (seg["wait"] == "outputs" and n_out >= n_exp and i == n_in)
        await settle
        st = status()
        await edge
        cycles += 1
        total_cycles += cycles
        beats_done += n_out if seg["check"] else 0
        res = {"name": seg["name"], "cycles": cycles, "beats_in": i, "inputs": n_in, "beats_out": n_out,
               "expected": n_exp, "mismatches": mismatches, "first_mismatches": first_bad,
               "timeout": timeout, "status": st, "protocol_errors": protocol, "last_input_cycle": last_in_cycle}
        if probes:
            res["probes"] = {p.name: p.beats for p in probes}
        mask, value = seg.get("status_mask", 0xF), seg.get("status_value", 0)
        res["status_ok"] = (st & mask) == value
        if seg["check"] and n_out < n_exp:
            res["mismatches"] = mismatches + (n_exp - n_out)   # missing beats count as mismatches
        failed |= res["mismatches"] > 0 or timeout or not res["status_ok"] or protocol > 0
        results.append(res)
        if seg.get("reset_after"):
            await reset(seg["reset_after"])
            total_cycles += seg["reset_after"]
        if timeout and not seg.get("reset_after"):
            break                               # the design's state is unknown: stop here
    wall = time.monotonic() - t0
    out = {"segments": results, "cycles": total_cycles, "wall_seconds": wall,
           "simulator": cocotb.SIM_NAME, "simulator_version": cocotb.SIM_VERSION}
    tmp = job_dir / "result.json.tmp"
    tmp.write_text(json.dumps(out))
    tmp.replace(job_dir / "result.json")
    assert not failed, "co-simulation differs from the expectation; see result.json"

"""The model file: round trip, name resolution, and a clear error naming the field for every malformation."""
import json

import numpy as np
import pytest

from golden import iqlut, spec
from golden.modelfile import (FORMAT_VERSION, ModelFileError, load_model, random_model,
                              resolve_model_path, save_model)


@pytest.fixture
def saved(tmp_path):
    m = random_model("iq_l8c8", 3)
    return m, save_model(m, tmp_path / "m.npz")


def rewrite(path, **changes):
    """Copy of the npz at path with some keys replaced (None = removed)."""
    z = dict(np.load(path, allow_pickle=False))
    for k, v in changes.items():
        if v is None:
            z.pop(k)
        else:
            z[k] = v
    out = path.with_name("bad.npz")
    np.savez(out, **z)
    return out


def params_of(path):
    return json.loads(str(np.load(path)["params"][()]))


def test_round_trip(saved):
    m, p = saved
    m2 = load_model(p)
    assert m2.config == m.config and m2.lut_bytes() == 34_304
    for a, b in zip(m.layers, m2.layers):
        assert np.array_equal(a.lut, b.lut) and np.array_equal(a.grid, b.grid)
        assert (a.shift, a.gate, a.nuqd_a, a.nuqd_b) == (b.shift, b.gate, b.nuqd_a, b.nuqd_b)
    lr = np.random.default_rng(0).integers(0, 256, (7, 9), dtype=np.uint8)
    np.testing.assert_array_equal(iqlut.upscale(m, lr), iqlut.upscale(m2, lr))


def test_save_is_deterministic(tmp_path):
    m = random_model("iq_l8c8", 1)
    a = save_model(m, tmp_path / "a.npz").read_bytes()
    b = save_model(m, tmp_path / "b.npz").read_bytes()
    assert len(a) == len(b)


def test_unknown_name_and_missing_path(tmp_path):
    with pytest.raises(ModelFileError, match="unknown model 'no_such_model'.*shipped models"):
        resolve_model_path("no_such_model")
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "missing.npz")


def test_not_an_npz(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"this is not a zip file")
    with pytest.raises(ModelFileError, match="not a readable .npz"):
        load_model(p)
    e = tmp_path / "empty.npz"
    e.write_bytes(b"")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_model(e)


@pytest.mark.parametrize("change,field", [
    ({"format": None}, "format: missing"),
    ({"format": np.array("something-else")}, "format: expected"),
    ({"version": np.array(FORMAT_VERSION + 1)}, "version: .* not supported"),
    ({"version": np.array("x")}, "version: not an integer"),
    ({"config": None}, "config: missing"),
    ({"config": np.array("{not json")}, "config: not valid JSON"),
    ({"params": None}, "params: missing"),
    ({"params": np.array("[]")}, "params: expected a list of 9"),
    ({"lut4": None}, "lut4: missing"),
    ({"lut0": np.zeros((1, 16, 2, 2, 7), np.int16)}, r"lut0: shape \(1, 16, 2, 2, 7\), expected \(1, 16, 2, 2, 8\)"),
    ({"lut2": np.full((8, 16, 2, 2, 8), 300, np.int16)}, r"lut2: entries in \[300, 300\] exceed the signed 8-bit"),
    ({"lut1": np.zeros((8, 16, 2, 2, 8), np.float32)}, "lut1: dtype float32 is not an integer"),
])
def test_malformed_fields(saved, change, field):
    _, p = saved
    with pytest.raises(ModelFileError, match=field):
        load_model(rewrite(p, **change))


@pytest.mark.parametrize("layer,key,value,field", [
    (0, "shift", -1, r"params\[0\].shift: must be an int"),
    (0, "shift", 1.5, r"params\[0\].shift"),
    (3, "gate", 257, r"params\[3\].gate: must be an int in 0..256"),
    (3, "gate", None, r"params\[3\].gate"),
    (8, "gate", 5, r"params\[8\].gate: must be null for an ungated layer"),
    (2, "nuqd_a", 1.5, r"params\[2\].nuqd_a: must be a number in \(0, 1\)"),
    (2, "nuqd_b", "x", r"params\[2\].nuqd_b"),
    (1, "grid", [0] * 16, r"params\[1\].grid: grid must start at -128"),
    (1, "grid", list(range(-128, -112)), r"params\[1\].grid: grid must start at -128 and end at 127"),
    (1, "grid", [-128] + [0] * 14 + [127], r"params\[1\].grid: grid must be strictly increasing"),
    (1, "grid", [-128, 127], r"params\[1\].grid: grid must have 16 levels"),
    (1, "grid", "abc", r"params\[1\].grid: must be a list of integers"),
    (5, "shift", None, r"params\[5\].shift"),
])
def test_malformed_params(saved, layer, key, value, field):
    _, p = saved
    params = params_of(p)
    params[layer][key] = value
    with pytest.raises(ModelFileError, match=field):
        load_model(rewrite(p, params=np.array(json.dumps(params))))


def test_missing_param_key(saved):
    _, p = saved
    params = params_of(p)
    del params[4]["grid"]
    with pytest.raises(ModelFileError, match=r"params\[4\].grid: missing"):
        load_model(rewrite(p, params=np.array(json.dumps(params))))


@pytest.mark.parametrize("mutate,field", [
    (lambda c: c.update(scale=5), "config field 'scale'"),
    (lambda c: c.update(scale=2), r"config field 'upsampler.c_out'"),   # x2 needs 4 outputs
    (lambda c: c.update(act_bits=6), "config field 'act_bits'"),
    (lambda c: c["blocks"][1].update(c_in=3), r"config field 'blocks\[1\].c_in'"),
    (lambda c: c["blocks"][0].update(levels=1), r"config field 'blocks\[0\].levels'"),
    (lambda c: c["blocks"][0].update(frac_bits=0), r"config field 'blocks\[0\].frac_bits'"),
    (lambda c: c["blocks"][2].update(origin=1), r"config field 'blocks\[2\].origin'"),
    (lambda c: c["upsampler"].update(c_out=9), r"config field 'upsampler.c_out'"),
    (lambda c: c["upsampler"].update(gated=True), r"config field 'upsampler.gated'"),
    (lambda c: c.update(colour=True), "config: malformed"),
    (lambda c: c.pop("blocks"), "config: malformed"),
])
def test_malformed_config(saved, mutate, field):
    _, p = saved
    cfg = json.loads(str(np.load(p)["config"][()]))
    mutate(cfg)
    with pytest.raises(ModelFileError, match=field):
        load_model(rewrite(p, config=np.array(json.dumps(cfg))))


def test_save_refuses_invalid_model_and_leaves_no_file(tmp_path):
    import dataclasses
    m = random_model("iq_l8c8", 0)
    bad = dataclasses.replace(m, layers=(dataclasses.replace(m.layers[0], shift=99),) + m.layers[1:])
    with pytest.raises(ModelFileError, match="shift"):
        save_model(bad, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_grid_segment_too_wide_for_reciprocal():
    with pytest.raises(ValueError, match="reciprocal would be 0"):
        spec.check_grid([-2048, 1, 2047], 3, 12, 1)


def test_widths_include_rounding_constants():
    """DPFI rounding sum, block-output rounding and gate product are covered by the derived widths."""
    cfg = spec.get_config("iq_l8c8")
    m = random_model(cfg, 0)
    lut = np.zeros(cfg.blocks[1].lut_shape(), np.int64)
    lut[:, 1::2] = 1                                  # neighbours differ by 1: (hi-lo)*t <= 31
    layer = cfg.blocks[1]
    w = spec.layer_widths(layer, lut, m.recips[1], 3, 8, False, 256, 8)
    assert w.product_bits == spec.signed_bits(-31, 31 + 16) == 7
    assert w.acc_round_bits == spec.signed_bits(0, 32 + 4)
    assert w.gate_bits == spec.signed_bits(-256 * 255, 256 * 255 + 128) == 17

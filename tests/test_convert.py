"""training.convert: an IQ-LUT model expanded to the ECNN of the same blocks computes exactly the
same function (the ECNN teacher's starting point)."""
import dataclasses

import numpy as np
import pytest

from golden import iqlut, spec
from golden.modelfile import random_model
from tests.test_golden import small_config
from training.convert import expand_to_ecnn, main


def ecnn_of(cfg):
    a = cfg.act_bits
    return dataclasses.replace(
        cfg, name=cfg.name + "_ecnn",
        blocks=tuple(dataclasses.replace(b, levels=1 << a, frac_bits=0) for b in cfg.blocks),
        upsampler=dataclasses.replace(cfg.upsampler, levels=1 << a, frac_bits=0))


@pytest.mark.parametrize("cfg", [small_config(), small_config(kernel=3, channels=2, blocks=2),
                                 small_config(scale=3), small_config(act_bits=9, frac_bits=6, gate_bits=5)])
def test_expanded_ecnn_computes_the_same_function(cfg):
    rng = np.random.default_rng(0)
    for extreme in (False, True):
        m = random_model(cfg, seed=4, extreme=extreme)
        e = expand_to_ecnn(m, ecnn_of(cfg))
        assert e.config.layers[1].levels == 1 << cfg.act_bits and e.config.layers[1].frac_bits == 0
        for shape in [(9, 11), (1, 1), (3, 2)]:
            lr = rng.integers(0, 256, shape, dtype=np.uint8)
            np.testing.assert_array_equal(iqlut.upscale(e, lr), iqlut.upscale(m, lr))
        assert [p.gate for p in e.layers] == [p.gate for p in m.layers]


def test_the_named_configs_pair_up():
    e = expand_to_ecnn(random_model("iq_l8c8", seed=1), "ecnn_l8c8")
    assert e.config == spec.get_config("ecnn_l8c8") and e.lut_bytes() == 598_016


def test_other_architectures_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="differ"):
        expand_to_ecnn(random_model("iq_l12c8", seed=1), "ecnn_l8c8")
    assert main(["iq_l8c8_does_not_exist", "--out", str(tmp_path / "x.npz")]) == 2
    assert "error:" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()

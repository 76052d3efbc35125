"""The value-table EC (training/ec_table.py) against the hat-basis convolution it replaces: same
forward values, same gradients (tables, gates, input); the C++ kernel and the torch fallback; and the
integer mode against golden."""
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e '.[train]')")

from golden import iqlut  # noqa: E402
from golden.modelfile import random_model  # noqa: E402
from training import ec_table  # noqa: E402
from training.model import IQLUT  # noqa: E402
from tests.test_golden import small_config  # noqa: E402

CONFIGS = {"iq_l8c8": "iq_l8c8", "ecnn_l8c8": "ecnn_l8c8",
           "k3": small_config("k3", kernel=3, levels=(7, 9), levels_up=5)}


@pytest.fixture
def torch_fallback(monkeypatch):
    """Run ec_table without the compiled kernel (as on a machine without a compiler)."""
    monkeypatch.setattr(ec_table, "_ext", None)
    monkeypatch.setattr(ec_table, "_tried", True)


def step(net, lr, impl):
    """Forward + backward of a loss that weights every output pixel differently."""
    for layer in net.layers:
        layer.impl = impl
    net.zero_grad()
    x = lr.clone().requires_grad_(True)
    y = net(x, "qat")
    w = torch.linspace(-1, 1, y.numel()).reshape(y.shape)
    (y * w).sum().backward()
    grads = [layer.lut.grad.clone() for layer in net.layers]
    grads += [layer.alpha.grad.reshape(1).clone() for layer in net.blocks if layer.alpha is not None]
    return y.detach(), grads, x.grad.clone()


def assert_close_rel(a, b, rel=1e-5):
    err = ((a - b).norm() / b.norm().clamp_min(1e-12)).item()
    assert err <= rel, f"relative L2 error {err:.3g} > {rel}"


def compare_with_hat(name, seed=3):
    m = random_model(CONFIGS[name], seed)
    net = IQLUT.from_golden(m)
    lr = torch.tensor(np.random.default_rng(seed).integers(0, 256, (2, 1, 9, 11)), dtype=torch.float32)
    y0, g0, x0 = step(net, lr, "hat")
    y1, g1, x1 = step(net, lr, "table")
    torch.testing.assert_close(y1, y0, rtol=0, atol=0)
    assert all(g.abs().sum() > 0 for g in g0)        # every gradient is exercised
    for a, b in zip(g1, g0):
        assert_close_rel(a, b)
    assert_close_rel(x1, x0)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_table_step_equals_hat_step(name):
    """The new default EC gives the old step's forward exactly and its gradients (LUTs, gates, input)."""
    if shutil.which("g++") and Path(sysconfig.get_paths()["include"], "Python.h").exists():
        assert ec_table.extension() is not None, "g++ is installed but the C++ kernel did not build"
    compare_with_hat(name)


@pytest.mark.parametrize("name", ["iq_l8c8", "k3"])
def test_torch_fallback_equals_hat_step(name, torch_fallback):
    compare_with_hat(name, seed=4)


def test_no_compiler_falls_back_with_a_message(monkeypatch, capsys):
    import torch.utils.cpp_extension as cx

    def no_compiler(*a, **k):
        raise RuntimeError("Error building extension: g++: command not found\nmore detail")
    monkeypatch.setattr(cx, "load", no_compiler)
    monkeypatch.setattr(ec_table, "_ext", None)
    monkeypatch.setattr(ec_table, "_tried", False)
    assert ec_table.extension() is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "g++: command not found" in err and "torch path" in err
    net = IQLUT.from_golden(random_model("iq_l8c8", 1))
    lr = torch.tensor(np.random.default_rng(1).integers(0, 256, (1, 1, 6, 7)), dtype=torch.float32)
    assert torch.isfinite(net(lr, "qat")).all()        # training still runs


def test_int_mode_equals_golden_k3_and_fallback(monkeypatch):
    """Integer mode through the value table (kernel, then torch fallback) and through the old float64
    gather: all equal golden.iqlut.upscale pixel for pixel."""
    for name, seed in (("k3", 0), ("iq_l8c8", 1), ("ecnn_l8c8", 2)):
        m = random_model(CONFIGS[name], seed, extreme=seed == 1)
        lr = np.random.default_rng(seed).integers(0, 256, (10, 13), dtype=np.uint8)
        want = iqlut.upscale(m, lr)
        net = IQLUT.from_golden(m)
        for impl, ext in (("auto", ec_table.extension()), ("auto", None), ("gather", None)):
            monkeypatch.setattr(ec_table, "_ext", ext)
            monkeypatch.setattr(ec_table, "_tried", True)
            for layer in net.layers:
                layer.impl = impl
            got = net(torch.tensor(lr, dtype=torch.float32)[None, None], "int")[0, 0].numpy()
            np.testing.assert_array_equal(got.astype(np.uint8), want, err_msg=f"{name} {impl} ext={ext}")


def test_interpolation_matrix_is_golden_dpfi_without_rounding():
    """V = M E equals golden's dpfi value table up to its per-entry rounding (<= 1/2 entry LSB), and
    exactly so for the values on the grid."""
    m = random_model("iq_l8c8", 5)
    net = IQLUT.from_golden(m)
    for n, layer in enumerate(net.layers):
        e = torch.tensor(m.layers[n].lut, dtype=torch.float32).reshape(layer.layer.c_in, layer.layer.levels, -1)
        v = torch.matmul(layer.interp, e).numpy()
        ref = iqlut.layer_value_table(m, n).reshape(v.shape)
        assert np.abs(v - ref).max() <= 0.5
        on_grid = m.grids[n] + 128
        np.testing.assert_array_equal(v[:, on_grid], ref[:, on_grid])


def test_table_needs_integer_modes():
    net = IQLUT.from_golden(random_model("iq_l8c8", 0))
    for layer in net.layers:
        layer.impl = "table"
    with pytest.raises(ValueError, match="integer activations"):
        net(torch.zeros(1, 1, 4, 4), "float")

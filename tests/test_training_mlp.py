"""MLP-parameterized tables (``--table-param mlp``, training.model.TableMLP): the export is still the
integer model golden runs, gradients reach every MLP parameter, the choice survives resume/export,
and fitting a table (``--init`` of an MLP run) gets close to it."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e '.[train]')")

from golden import iqlut, spec  # noqa: E402
from golden.modelfile import load_model, random_model, save_model  # noqa: E402
from training.convert import expand_to_ecnn  # noqa: E402
from training.model import IQLUT, TableMLP  # noqa: E402
from tests.test_training import DATA, need_data  # noqa: E402


def _perturbed(name: str, seed: int) -> IQLUT:
    torch.manual_seed(seed)
    net = IQLUT(spec.get_config(name), table_param="mlp")
    with torch.no_grad():
        for layer in net.layers:
            for p in layer.table_net.parameters():
                p.add_(torch.randn_like(p) * 0.3)
            if layer.alpha is not None:
                layer.alpha.fill_(0.7)
    return net


@pytest.mark.parametrize("name", ["ecnn_l8c8", "iq_l8c8"])
def test_mlp_net_exports_the_model_its_int_mode_computes(name):
    net = _perturbed(name, 1)
    m = net.to_golden()
    assert m.lut_bytes() == spec.get_config(name).lut_bytes()
    assert any(np.abs(p.lut).max() > 20 for p in m.layers)     # not a trivial all-zero table
    lr = np.random.default_rng(2).integers(0, 256, (9, 13), dtype=np.uint8)
    got = net(torch.tensor(lr, dtype=torch.float32)[None, None], "int")[0, 0].numpy()
    np.testing.assert_array_equal(got.astype(np.uint8), iqlut.upscale(m, lr))


def test_mlp_gradients_reach_every_parameter():
    net = _perturbed("ecnn_l8c8", 3)
    lr = torch.randint(0, 256, (2, 1, 12, 12)).float()
    hr = torch.randint(0, 256, (2, 1, 48, 48)).float()
    torch.mean((net(lr, "qat") - hr) ** 2).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert not any(n.endswith(".lut") for n, _ in net.named_parameters())


def test_table_mlp_rejects_bad_sizes_and_ec_layer_bad_param():
    with pytest.raises(ValueError):
        TableMLP(0, 8)
    with pytest.raises(ValueError, match="table_param"):
        IQLUT(spec.get_config("iq_l8c8"), table_param="spline")


def test_set_table_fits_a_smooth_table_and_copies_entries():
    """An ECNN layer fitted to iq_l8c8's block-0 value table (piecewise linear over 16 levels)."""
    e = expand_to_ecnn(load_model("iq_l8c8"))
    ref = IQLUT.from_golden(e)
    net = IQLUT(e.config, table_param="mlp")
    layer, target = net.layers[0], ref.layers[0].table().detach()
    before = float((layer.table().detach() - target).abs().mean()) * layer.entry_scale
    err = layer.set_table(target, steps=1500)
    after = float((layer.table().detach() - target).abs().mean()) * layer.entry_scale
    assert after < 1.0 < before and err < 12, (before, after, err)
    plain = IQLUT(e.config)
    assert plain.layers[0].set_table(target) == 0.0
    assert torch.equal(plain.layers[0].table(), target)


def test_train_mlp_resume_keeps_the_choice_and_equals_a_straight_run(tmp_path):
    need_data()
    from training import export, train
    common = ["--config", "ecnn_l8c8", "--data", str(DATA), "--batch", "2", "--patch", "12",
              "--val-every", "1000", "--no-progress", "--threads", "1", "--warmup", "2",
              "--train-sets", "T91", "--nuqd-search-at", "2"]
    assert train.main(common + ["--iters", "4", "--out", str(tmp_path / "a"), "--table-param", "mlp"]) == 0
    assert train.main(common + ["--iters", "2", "--out", str(tmp_path / "b"), "--table-param", "mlp"]) == 0
    st = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)
    st["args"]["iters"] = 4
    torch.save(st, tmp_path / "b" / "ckpt.pt")
    # a different parameterization than the checkpoint's is refused
    assert train.main(common + ["--iters", "4", "--out", str(tmp_path / "b"), "--resume",
                                "--table-param", "entries"]) == 2
    assert train.main(common + ["--iters", "4", "--out", str(tmp_path / "b"), "--resume"]) == 0
    a = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)
    assert a["args"]["table_param"] == b["args"]["table_param"] == "mlp"
    assert any("table_net" in k for k in a["net"])
    for k in a["net"]:
        assert torch.equal(a["net"][k], b["net"][k]), k
    out = tmp_path / "m.npz"
    assert export.main([str(tmp_path / "a" / "ckpt.pt"), "--out", str(out), "--check", "1",
                        "--data", str(DATA)]) == 0
    assert load_model(out).config.name == "ecnn_l8c8"


def test_init_an_mlp_run_from_a_model_file(tmp_path):
    """--init models/NAME.npz into an MLP run fits each table: at lr 0 the exported tables are
    close to the file's (mean error under 1 entry), gates and shifts exact."""
    need_data()
    from training import export, train
    src = random_model("iq_l8c8", 5)
    path = save_model(src, tmp_path / "src.npz")
    common = ["--data", str(DATA), "--batch", "2", "--patch", "12", "--iters", "1", "--lr", "0",
              "--no-progress", "--threads", "1", "--train-sets", "T91", "--nuqd-search-at", "0"]
    assert train.main(common + ["--config", "iq_l8c8", "--table-param", "mlp", "--init", str(path),
                                "--out", str(tmp_path / "r")]) == 0
    assert export.main([str(tmp_path / "r" / "ckpt.pt"), "--out", str(tmp_path / "back.npz")]) == 0
    back = load_model(tmp_path / "back.npz")
    for n, (p, q) in enumerate(zip(src.layers, back.layers)):
        assert (q.shift, q.gate) == (p.shift, p.gate), n
        np.testing.assert_array_equal(q.grid, p.grid)
        assert np.abs(q.lut - p.lut).mean() < 8, n        # random tables: hard to fit, but close


def test_entry_clamp_passes_gradient_only_back_towards_the_range():
    """entries(quantize=True): values beyond the E-bit rails are clamped; their gradient is kept
    only when a descent step brings them back (a plain straight-through clamp let an MLP table run
    to 2e6 entry units)."""
    from training.model import clamp_inward
    x = torch.tensor([-300.0, -5.0, 0.0, 200.0], requires_grad=True)
    y = clamp_inward(x, -128, 127)
    assert y.tolist() == [-128.0, -5.0, 0.0, 127.0]
    y.sum().backward()                      # descent lowers every value: only 200 comes back
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0]
    x.grad = None
    (-clamp_inward(x, -128, 127)).sum().backward()       # descent raises: only -300 comes back
    assert x.grad.tolist() == [-1.0, -1.0, -1.0, 0.0]
    net = IQLUT(spec.get_config("iq_l8c8"))
    layer = net.layers[1]
    with torch.no_grad():
        layer.lut.fill_(3.0)                # 384 entry units: every entry above the rail
    e = layer.entries(True)
    assert float(e.detach().max()) == 127.0
    (-e.sum()).backward()                   # descent would push them further up: no gradient
    assert float(layer.lut.grad.abs().sum()) == 0.0
    layer.lut.grad = None
    layer.entries(True).sum().backward()    # descent brings them down: gradient
    assert bool((layer.lut.grad != 0).all())


def test_a_net_only_checkpoint_starts_with_init_not_resume(tmp_path):
    """The committed ECNN checkpoint keeps the MLP weights but not Adam's state (size): --init from
    it continues the same function; --resume from it is refused with a message."""
    need_data()
    from training import train
    common = ["--config", "ecnn_l8c8", "--data", str(DATA), "--batch", "2", "--patch", "12",
              "--val-every", "1000", "--no-progress", "--threads", "1", "--warmup", "1",
              "--train-sets", "T91", "--nuqd-search-at", "0"]
    assert train.main(common + ["--iters", "2", "--out", str(tmp_path / "a"), "--table-param", "mlp"]) == 0
    st = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)
    st.pop("opt")
    torch.save(st, tmp_path / "net_only.pt")
    assert train.main(common + ["--iters", "3", "--out", str(tmp_path / "b"), "--resume",
                                str(tmp_path / "net_only.pt")]) == 2
    assert train.main(common + ["--iters", "1", "--lr", "0", "--out", str(tmp_path / "c"), "--init",
                                str(tmp_path / "net_only.pt")]) == 0
    assert train.main(common + ["--iters", "1", "--out", str(tmp_path / "d"), "--init",
                                str(tmp_path / "nope.pt")]) == 2
    c = torch.load(tmp_path / "c" / "ckpt.pt", weights_only=False)
    assert c["args"]["table_param"] == "mlp" and c["prior"]["iter"] == 2
    for k in st["net"]:
        assert torch.equal(st["net"][k], c["net"][k]), k

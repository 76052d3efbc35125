"""Training pipeline: QAT/integer mode equals golden bit for bit, export/load round trip, resume, LR data."""
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e '.[train]')")

from golden import iqlut, spec  # noqa: E402
from golden.imageio import load_image  # noqa: E402
from golden.modelfile import load_model, random_model  # noqa: E402
from training.model import IQLUT  # noqa: E402
from tests.test_golden import small_config  # noqa: E402

DATA = Path(os.environ.get("IQLUT_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def need_data():
    if not (DATA / "Set5").is_dir():
        pytest.skip(f"datasets not found at {DATA} (set IQLUT_DATA)")


@pytest.mark.parametrize("name,seed", [("iq_l8c8", 0), ("ecnn_l8c8", 1), ("iq_l8c16", 2), ("iq_l8c8_x2", 3),
                                       ("iq_l8c8_x3", 4)])
def test_int_mode_equals_golden_on_random_models(name, seed):
    for extreme in (False, True):
        m = random_model(name, seed, extreme=extreme)
        net = IQLUT.from_golden(m)
        lr = np.random.default_rng(seed).integers(0, 256, (11, 14), dtype=np.uint8)
        got = net(torch.tensor(lr, dtype=torch.float32)[None, None], "int")[0, 0].numpy()
        np.testing.assert_array_equal(got.astype(np.uint8), iqlut.upscale(m, lr))


def test_int_mode_equals_golden_per_block():
    m = random_model(small_config(kernel=3), 5)
    net = IQLUT.from_golden(m)
    lr = np.random.default_rng(5).integers(0, 256, (6, 9), dtype=np.uint8)
    inter = {}
    iqlut.upscale(m, lr, inter)
    _, blocks = net(torch.tensor(lr, dtype=torch.float32)[None, None], "int", return_blocks=True)
    for n, b in enumerate(blocks):
        np.testing.assert_array_equal(b[0].numpy(), inter[f"block{n}"])


def test_qat_accumulator_is_within_dpfi_rounding_of_exact():
    """QAT differs from the exact arithmetic only by DPFI's per-entry rounding: per layer the
    accumulators differ by at most c_in * k^2 / 2 entry units (0.5 per entry)."""
    m = random_model("iq_l8c8", 3)
    net = IQLUT.from_golden(m)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for layer in net.layers:
            x = torch.tensor(rng.integers(-128, 128, (2, layer.layer.c_in, 12, 13)), dtype=torch.float32)
            d = (layer.ec(x, "qat") - layer.ec(x, "int").float()).abs().max().item()
            bound = layer.layer.c_in * layer.layer.kernel ** 2 / 2
            assert 0 < d <= bound + 1e-3


def test_hat_and_gather_implementations_agree():
    m = random_model(small_config(levels=(7, 9), levels_up=5), 4)
    net = IQLUT.from_golden(m)
    lr = torch.tensor(np.random.default_rng(1).integers(0, 256, (2, 1, 7, 8)), dtype=torch.float32)
    outs = []
    for impl in ("hat", "gather"):
        for layer in net.layers:
            layer.impl = impl
        net.zero_grad()
        y = net(lr, "qat")
        y.square().mean().backward()
        outs.append((y.detach(), [layer.lut.grad.clone() for layer in net.layers]))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=0, atol=1e-3)
    # float32 gradients summed in different orders (and over a machine-dependent number of
    # threads): a clean-clone CI saw 1.26e-5 on an entry of 0.011; a wrong gather is off by O(grad)
    for g0, g1 in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(g0, g1, rtol=1e-4, atol=1e-4 * max(1.0, g0.abs().max().item()))


def test_gradients_reach_every_layer_without_interpolation():
    """ECNN (no DPFI): the straight-through slope still trains the first block."""
    net = IQLUT(spec.get_config("ecnn_l8c8"))
    lr = torch.tensor(np.random.default_rng(0).integers(0, 256, (1, 1, 8, 8)), dtype=torch.float32)
    net(lr, "qat").mean().backward()
    net.up.lut.data.normal_(0, 0.05)
    net.zero_grad()
    net(lr, "qat").mean().backward()
    assert all(layer.lut.grad.abs().sum() > 0 for layer in net.layers)


def test_export_round_trip(tmp_path):
    from golden.modelfile import save_model
    net = IQLUT(spec.get_config("iq_l8c8"))
    with torch.no_grad():
        for layer in net.layers:
            layer.lut.normal_(0, 0.3)
    net.blocks[2].set_nuqd(0.3, 0.55)
    m = net.to_golden({"note": "test"})
    p = save_model(m, tmp_path / "m.npz")
    m2 = load_model(p)
    assert m2.meta == {"note": "test"} and m2.lut_bytes() == 34_304
    for a, b in zip(m.layers, m2.layers):
        assert np.array_equal(a.lut, b.lut) and a.gate == b.gate and a.shift == b.shift
        assert (a.nuqd_a, a.nuqd_b) == (b.nuqd_a, b.nuqd_b)
    net2 = IQLUT.from_golden(m2)
    lr = np.random.default_rng(0).integers(0, 256, (9, 10), dtype=np.uint8)
    got = net2(torch.tensor(lr, dtype=torch.float32)[None, None], "int")[0, 0].numpy()
    np.testing.assert_array_equal(got, iqlut.upscale(m2, lr))
    assert np.array_equal(got, net(torch.tensor(lr, dtype=torch.float32)[None, None], "int")[0, 0].numpy())


def test_train_smoke_and_resume_gives_same_state(tmp_path):
    """Training 6 iterations straight equals 3 + resume + 3: same tables, same optimizer state; also
    when resuming from the small --save-to copy into a new run directory."""
    need_data()
    from training import train
    common = ["--config", "iq_l8c8", "--data", str(DATA), "--batch", "2", "--patch", "16",
              "--val-every", "1000", "--no-progress", "--threads", "1", "--warmup", "2",
              "--train-sets", "T91"]
    assert train.main(common + ["--iters", "6", "--out", str(tmp_path / "a")]) == 0
    saved = tmp_path / "checkpoints" / "b.pt"
    assert train.main(common + ["--iters", "3", "--out", str(tmp_path / "b"), "--save-to", str(saved)]) == 0
    assert saved.stat().st_size < 500_000            # tables + Adam state of 34 KB of LUT
    # the schedule depends on --iters: resume the 3-iteration run under the 6-iteration schedule
    for path in (tmp_path / "b" / "ckpt.pt", saved):
        st = torch.load(path, weights_only=False)
        st["args"]["iters"] = 6
        torch.save(st, path)
    assert train.main(common + ["--iters", "6", "--out", str(tmp_path / "b"), "--resume"]) == 0
    assert train.main(common + ["--iters", "6", "--out", str(tmp_path / "c"), "--resume", str(saved)]) == 0
    a = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)
    for run in ("b", "c"):
        b = torch.load(tmp_path / run / "ckpt.pt", weights_only=False)
        assert a["iter"] == b["iter"] == 6
        for k in a["net"]:
            assert torch.equal(a["net"][k], b["net"][k]), (run, k)
        assert a["sampler"] == b["sampler"]
    assert train.main(common + ["--iters", "6", "--out", str(tmp_path / "d"),
                                "--resume", str(tmp_path / "nope.pt")]) == 2


def test_validation_is_a_held_out_split_of_whole_training_images(tmp_path):
    """No channel of a held-out image reaches the patch sampler; log.csv has the validation PSNR
    (and no test-set column unless --test-set)."""
    need_data()
    import csv
    from training import train
    from training.data import load_pairs
    pairs = load_pairs(DATA, ("T91", "BSD200"), cache_dir=tmp_path / "cache", limit=62, with_image=True)
    tr, held = train.split_holdout(pairs)
    held_images = {img for _, _, img in pairs if img % train.HOLDOUT_EVERY == 0}
    assert len(held_images) == 3 and len(held) == sum(1 for p in pairs if p[2] in held_images)
    train_ids = {id(lr) for lr, _ in tr}
    assert not any(id(lr) in train_ids for lr, _, img in pairs if img in held_images)
    assert len(tr) + len(held) == len(pairs)
    assert train.main(["--config", "iq_l8c8", "--data", str(DATA), "--batch", "2", "--patch", "12",
                       "--iters", "2", "--val-every", "1", "--no-progress", "--threads", "1",
                       "--train-sets", "T91", "--nuqd-search-at", "0", "--out", str(tmp_path / "r")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "r" / "log.csv")))
    assert len(rows) == 2 and all(15 < float(r["val_psnr"]) < 60 and r["test_psnr_y"] == "" for r in rows)


def test_export_cli(tmp_path):
    need_data()
    from training import export, train
    assert train.main(["--config", "iq_l8c8", "--data", str(DATA), "--batch", "2", "--patch", "16",
                       "--iters", "2", "--no-progress", "--threads", "1", "--train-sets", "T91",
                       "--out", str(tmp_path / "r")]) == 0
    out = tmp_path / "m.npz"
    assert export.main([str(tmp_path / "r" / "ckpt.pt"), "--out", str(out), "--check", "1",
                        "--data", str(DATA)]) == 0
    # the same through train --export (resume of the finished run: nothing left to train)
    assert train.main(["--config", "iq_l8c8", "--data", str(DATA), "--batch", "2", "--patch", "16",
                       "--iters", "2", "--no-progress", "--threads", "1", "--train-sets", "T91",
                       "--out", str(tmp_path / "r"), "--resume", "--export", str(tmp_path / "m2.npz")]) == 0
    assert np.array_equal(load_model(tmp_path / "m2.npz").layers[0].lut, load_model(out).layers[0].lut)
    m = load_model(out)
    assert m.meta["trained_iterations"] == 2
    assert export.main([str(tmp_path / "nope.pt"), "--out", str(tmp_path / "x.npz")]) == 2
    assert not (tmp_path / "x.npz").exists()


def test_lr_generator_equals_matlab_files():
    """training.data makes LR with the recipe of the shipped LR_bicubic_sym/X4 files (all of Set5)."""
    need_data()
    from training.data import load_pairs
    pairs = load_pairs(DATA, sets=("Set5",))
    names = sorted(p.stem for p in (DATA / "Set5" / "HR").glob("*.png"))
    assert len(pairs) == 3 * len(names)
    for n, name in enumerate(names):
        ref = load_image(DATA / "Set5" / "LR_bicubic_sym" / "X4" / f"{name}x4.png")
        for c in range(3):
            np.testing.assert_array_equal(pairs[3 * n + c][0], ref[..., c])


def test_nuqd_resample_preserves_function_and_search_never_hurts():
    from training.nuqd_search import greedy_search, heldout_loss, resample_table
    m = random_model(small_config(levels=(12, 12), levels_up=10), 6)
    net = IQLUT.from_golden(m)
    layer = net.blocks[1]
    with torch.no_grad():
        before_grid = layer.grid.clone()
        saved = (layer.lut.data.clone(), layer.a, layer.b)
        resample_table(layer, 0.3, 0.6)
        new_grid = layer.grid.clone()
        # flat 1x1 images at each new grid point: every tap reads that value
        x = new_grid.view(-1, 1, 1, 1).repeat(1, layer.layer.c_in, 1, 1)
        new_out = layer.ec(x, "float")
        layer.lut.data = saved[0]
        layer.set_nuqd(saved[1], saved[2])
        old_out = layer.ec(x, "float")
        resample_table(layer, 0.3, 0.6)
    assert not torch.equal(before_grid, new_grid)
    # at the new grid points the function is unchanged (between them it is re-linearised)
    torch.testing.assert_close(new_out, old_out, atol=1e-4, rtol=0)
    rng = np.random.default_rng(0)
    lr = torch.tensor(rng.integers(0, 256, (4, 1, 12, 12)), dtype=torch.float32)
    hr = torch.nn.functional.interpolate(lr, scale_factor=4, mode="bicubic").clamp(0, 255)
    start = heldout_loss(net, lr, hr)
    chosen = greedy_search(net, lr, hr, candidates=((0.3, 0.6), (0.5, 0.5), (0.6, 0.3)), log=lambda s: None)
    assert len(chosen) == len(net.layers)
    assert heldout_loss(net, lr, hr) <= start


def test_distillation_from_a_golden_teacher(tmp_path):
    """--teacher runs any golden model file in exact integer mode as the distillation target: the
    distillation term changes the trained tables, and --kd 0 equals training without a teacher."""
    need_data()
    from golden.modelfile import save_model
    from training import train
    teacher = save_model(random_model("ecnn_l8c8", 0), tmp_path / "teacher.npz")
    common = ["--config", "iq_l8c8", "--data", str(DATA), "--batch", "2", "--patch", "12", "--iters", "2",
              "--no-progress", "--threads", "1", "--train-sets", "T91", "--nuqd-search-at", "0"]
    assert train.main(common + ["--teacher", str(teacher), "--kd", "3.0", "--out", str(tmp_path / "kd")]) == 0
    assert train.main(common + ["--teacher", str(teacher), "--kd", "0", "--out", str(tmp_path / "kd0")]) == 0
    assert train.main(common + ["--out", str(tmp_path / "plain")]) == 0
    kd, kd0, plain = (torch.load(tmp_path / r / "ckpt.pt", weights_only=False)["net"] for r in ("kd", "kd0", "plain"))
    assert all(torch.equal(kd0[k], plain[k]) for k in plain)
    assert not all(torch.equal(kd[k], plain[k]) for k in plain)


def test_init_from_checkpoint_counts_prior_iterations(tmp_path):
    """--init CKPT starts from that checkpoint's tables (checked with a zero learning rate) and
    counts its iterations."""
    need_data()
    from training import export, train
    common = ["--config", "iq_l8c8", "--data", str(DATA), "--batch", "2", "--patch", "12",
              "--no-progress", "--threads", "1", "--train-sets", "T91", "--nuqd-search-at", "0"]
    assert train.main(common + ["--iters", "2", "--out", str(tmp_path / "a")]) == 0
    assert train.main(common + ["--iters", "3", "--lr", "0", "--out", str(tmp_path / "b"),
                                "--init", str(tmp_path / "a" / "ckpt.pt")]) == 0
    a, b = (torch.load(tmp_path / r / "ckpt.pt", weights_only=False) for r in ("a", "b"))
    for k in a["net"]:
        assert torch.equal(a["net"][k], b["net"][k]), k
    assert export.main([str(tmp_path / "b" / "ckpt.pt"), "--out", str(tmp_path / "m.npz")]) == 0
    meta = load_model(tmp_path / "m.npz").meta
    assert meta["trained_iterations"] == 5 and len(meta["earlier_stages"]) == 1


def test_init_from_a_model_file_restores_tables_grids_shifts_gates(tmp_path):
    """--init models/NAME.npz: after training at a zero learning rate the exported file has exactly
    the original file's tables, NUQD grids and (a, b), shifts and gates."""
    need_data()
    from golden.modelfile import save_model
    from training import export, train
    import dataclasses
    src = random_model("iq_l8c8", 7)
    # a hand-moved grid point: the grid is not the one (a, b) would give
    layers = list(src.layers)
    g = layers[1].grid.copy()
    j = next(i for i in range(1, len(g) - 1) if g[i] - g[i - 1] >= 3 and g[i + 1] - g[i] >= 3)
    g[j] += 1
    layers[1] = dataclasses.replace(layers[1], grid=g)
    src = dataclasses.replace(src, layers=tuple(layers))
    assert not np.array_equal(g, spec.nuqd_grid(layers[1].nuqd_a, layers[1].nuqd_b, len(g), 8))
    src_path = save_model(src, tmp_path / "src.npz")
    common = ["--data", str(DATA), "--batch", "2", "--patch", "12", "--iters", "1", "--lr", "0",
              "--no-progress", "--threads", "1", "--train-sets", "T91", "--nuqd-search-at", "0"]
    assert train.main(common + ["--config", "iq_l8c8", "--init", str(src_path), "--out", str(tmp_path / "r")]) == 0
    assert export.main([str(tmp_path / "r" / "ckpt.pt"), "--out", str(tmp_path / "back.npz")]) == 0
    back = load_model(tmp_path / "back.npz")
    for n, (p, q) in enumerate(zip(src.layers, back.layers)):
        np.testing.assert_array_equal(q.lut, p.lut, err_msg=f"layer {n}")
        np.testing.assert_array_equal(q.grid, p.grid, err_msg=f"layer {n}")
        assert (q.nuqd_a, q.nuqd_b, q.shift, q.gate) == (p.nuqd_a, p.nuqd_b, p.shift, p.gate), n
    # the wrong architecture is a user error
    assert train.main(common + ["--config", "iq_l12c8", "--init", str(src_path), "--out", str(tmp_path / "x")]) == 2


def test_resumed_log_drops_rows_after_the_checkpoint_and_takes_the_new_columns(tmp_path):
    """A resume at iteration 3 of a log written by an interrupted older run (Set5 in 'val_psnr_y',
    rows up to 5): rows 4-5 go, the Set5 figures move to 'test_psnr_y'."""
    import csv
    from training import train
    log = tmp_path / "log.csv"
    log.write_text("iter,minutes,loss,lr,val_psnr_y\n1,0.1,0.5,0.001,\n2,0.2,0.4,0.001,28.5\n"
                   "3,0.3,0.3,0.001,\n4,0.4,0.2,0.001,\n5,0.5,0.1,0.001,\n")
    f, w = train.open_log(log, append=True, upto=3)
    w.writerow([4, "0.6", "0.1", "0.001", "30.1", ""])
    f.close()
    rows = list(csv.DictReader(open(log)))
    assert list(rows[0]) == train.LOG_HEADER
    assert [r["iter"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[1]["test_psnr_y"] == "28.5" and rows[1]["val_psnr"] == "" and rows[3]["val_psnr"] == "30.1"


@pytest.mark.parametrize("scale", [2, 3])
def test_train_at_x2_x3_and_export_equals_golden(tmp_path, scale):
    """The x2/x3 configs train (LR made at that scale, HR patches scale x the LR patch) and export a
    file whose golden output equals the torch integer mode on Set5 (export --check)."""
    need_data()
    from training import train
    out = tmp_path / "run"
    rc = train.main(["--config", f"iq_l8c8_x{scale}", "--iters", "3", "--batch", "2", "--patch", "16",
                     "--val-every", "3", "--nuqd-search-at", "0", "--threads", "1", "--no-progress",
                     "--train-sets", "T91", "--out", str(out), "--data", str(DATA),
                     "--export", str(tmp_path / "m.npz")])
    assert rc == 0
    from golden.modelfile import load_model
    m = load_model(tmp_path / "m.npz")
    assert m.config.scale == scale and m.config.upsampler.c_out == scale * scale
    from training.data import PatchSampler
    lr = np.zeros((20, 20), np.uint8)
    hr = np.zeros((20 * scale, 20 * scale), np.uint8)
    l, h = PatchSampler([(lr, hr)], 8, seed=0).batch(2)
    assert l.shape == (2, 1, 8, 8) and h.shape == (2, 1, 8 * scale, 8 * scale)


@pytest.mark.parametrize("name", sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "models").glob("*.npz")))
def test_int_mode_equals_golden_on_every_shipped_model(name):
    m = load_model(name)
    net = IQLUT.from_golden(m)
    lr = np.random.default_rng(7).integers(0, 256, (13, 10), dtype=np.uint8)
    lr[0] = 0
    lr[-1] = 255
    got = net(torch.tensor(lr, dtype=torch.float32)[None, None], "int")[0, 0].numpy()
    np.testing.assert_array_equal(got.astype(np.uint8), iqlut.upscale(m, lr))


def test_per_block_shifts_and_their_errors():
    """--block-shift takes one shift or one per block; a wrong count or range is a usage error
    (exit 2), and IQLUT rejects them with ValueError."""
    from golden import spec
    from training.model import IQLUT
    from training.train import parse_args
    cfg = spec.get_config("iq_l8c8")
    net = IQLUT(cfg, block_shift=(1, 2, 3, 3, 3, 3, 3, 2), up_shift=1)
    assert [layer.shift for layer in net.layers] == [1, 2, 3, 3, 3, 3, 3, 2, 1]
    assert [layer.shift for layer in IQLUT(cfg, block_shift=2).layers] == [2] * 8 + [3]
    for bad in ((3, 3), 99, (3,) * 7 + (-1,)):
        with pytest.raises(ValueError):
            IQLUT(cfg, block_shift=bad)
    assert parse_args(["--config", "iq_l8c8", "--block-shift", "1,2,3,3,3,3,3,2"]).block_shift == \
        (1, 2, 3, 3, 3, 3, 3, 2)
    for bad in (["--block-shift", "2,3"], ["--block-shift", "x"], ["--up-shift", "99"]):
        with pytest.raises(SystemExit) as e:
            parse_args(["--config", "iq_l8c8", *bad])
        assert e.value.code == 2

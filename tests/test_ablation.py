"""training.ablation: each variant trains with exactly its levers, is exported with a golden check,
evaluated, and merged into one JSON; a finished variant is not re-trained."""
import json

import pytest

pytest.importorskip("torch", reason="torch not installed (pip install -e '.[train]')")

from golden.modelfile import random_model, save_model  # noqa: E402
from tests.test_training import DATA, need_data  # noqa: E402


def test_ablation_variants_and_table(tmp_path, capsys):
    need_data()
    import torch
    from training import ablation
    teacher = save_model(random_model("iq_l8c8", 3), tmp_path / "teacher.npz")
    out, js = tmp_path / "runs", tmp_path / "abl.json"
    common = ["--iters", "2", "--warmup", "1", "--batch", "2", "--patch", "12", "--train-sets", "T91",
              "--sets", "Set5", "--data", str(DATA), "--out", str(out), "--json", str(js),
              "--teacher", str(teacher), "--search-at", "1"]
    assert ablation.main(common + ["--variants", "mse", "kd+search"]) == 0
    data = json.loads(js.read_text())
    assert set(data["variants"]) == {"mse", "kd+search"}
    for v in ("mse", "kd+search"):
        args = torch.load(out / v / "ckpt.pt", weights_only=False)["args"]
        assert (args["teacher"] is not None) == ("kd" in v)
        assert int(args["nuqd_search_at"]) == (1 if "search" in v else 0)
        assert 10 < data["variants"][v]["sets"]["Set5"]["psnr_y"] < 40
        assert 10 < data["variants"][v]["held_out_psnr"] < 40      # the last validation row of log.csv
    mtime = (out / "mse" / "ckpt.pt").stat().st_mtime
    assert ablation.main(common + ["--variants", "mse"]) == 0           # finished: not re-trained
    assert (out / "mse" / "ckpt.pt").stat().st_mtime == mtime
    capsys.readouterr()
    assert ablation.main(["--table", "--json", str(js)]) == 0
    text = capsys.readouterr().out
    assert "| mse | 2 |" in text and "| kd+search | 2 |" in text
    assert ablation.main(["--table", "--json", str(tmp_path / "none.json")]) == 2


def test_ablation_shifts_variant_trains_and_exports_those_shifts(tmp_path):
    """The shifts variant passes its per-block and upsampler shifts to training: the exported file
    carries exactly them, and the JSON row is keyed by them."""
    need_data()
    from golden.modelfile import load_model
    from training import ablation
    out, js = tmp_path / "runs", tmp_path / "abl.json"
    assert ablation.main(["--iters", "2", "--warmup", "1", "--batch", "2", "--patch", "12",
                          "--train-sets", "T91", "--sets", "Set5", "--data", str(DATA), "--out", str(out),
                          "--json", str(js), "--variants", "shifts", "--block-shift", "1,2,2,2,2,2,2,3",
                          "--up-shift", "2"]) == 0
    row = json.loads(js.read_text())["variants"]["shifts 1,2,2,2,2,2,2,3/2"]
    assert (row["block_shift"], row["up_shift"]) == ("1,2,2,2,2,2,2,3", 2)
    model = load_model(out / "shifts_1-2-2-2-2-2-2-3_2" / "model.npz")
    assert [p.shift for p in model.layers] == [1, 2, 2, 2, 2, 2, 2, 3, 2]

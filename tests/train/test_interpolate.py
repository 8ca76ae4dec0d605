"""dstl/train/interpolate.py: weights between two runs of one model, thresholds re-tuned, Hub layout."""

import json

import pytest
import torch
from safetensors.torch import load_file

from dstl.models import load_model
from dstl.train.interpolate import choose, cli, interpolate_state, main
from dstl.train.train import main as train_main
from tests.train.test_train import LABELLED, SIZES, TINY


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny run A and a run B that continues it (init_weights = A), as fine-tuning does, on two
    data folders with a validation image in each."""
    from tests.conftest import write_dstl_folder

    root = tmp_path_factory.mktemp("interp")
    data = write_dstl_folder(root / "data", sizes=SIZES, labelled=LABELLED)
    data2 = write_dstl_folder(root / "data2", sizes={"9500_0_0": (96, 96), "9500_0_1": (80, 80)},
                              labelled=["9500_0_0", "9500_0_1"], seed=3)
    a, b = root / "a", root / "b"
    common = ["--data", str(data), str(data2), *TINY, "--set", 'val_ids=["9001_1_2", "9500_0_0"]']
    train_main(["--out", str(a), "--checkpoint", str(root / "a.pt"), *common])
    train_main(["--out", str(b), "--checkpoint", str(root / "b.pt"), *common, "--set", f"init_weights={a}",
                "--lr", "0.05", "--epochs", "2"])
    holdout = write_dstl_folder(root / "holdout", sizes={"9100_0_0": (96, 96)}, labelled=["9100_0_0"], seed=7)
    return [str(data), str(data2)], a, b, holdout


def test_interpolate_state_is_the_straight_line_and_keeps_integer_buffers():
    a = {"w": torch.zeros(3), "n": torch.tensor(5)}
    b = {"w": torch.tensor([2.0, 4.0, -2.0]), "n": torch.tensor(9)}
    assert torch.equal(interpolate_state(a, b, 0.0)["w"], a["w"])
    assert torch.equal(interpolate_state(a, b, 1.0)["w"], b["w"])
    mid = interpolate_state(a, b, 0.25)
    assert torch.allclose(mid["w"], torch.tensor([0.5, 1.0, -0.5]))
    assert mid["n"].item() == 9 and mid["n"].dtype == torch.int64


def test_choose_takes_the_best_validation_iou_and_the_smaller_alpha_on_a_tie():
    assert choose({0.0: 0.30, 0.5: 0.41, 1.0: 0.40}) == 0.5
    assert choose({0.25: 0.4, 0.75: 0.4}) == 0.25


def test_writes_the_chosen_point_with_retuned_thresholds_and_a_record(runs, tmp_path):
    data, a, b, holdout = runs
    out = tmp_path / "mix"
    res = main([str(a), str(b), "--alpha", "0", "0.5", "1", "--data", *data, "--out", str(out),
                "--holdout", str(holdout)])
    alpha = res["alpha"]
    assert set(res["scores"]) == {0.0, 0.5, 1.0}
    assert res["criterion"] == res["scores"]  # pooled, the default
    assert res["scores"][alpha] == max(res["scores"].values())
    assert all(set(d) == set(data) for d in res["by_folder"].values())
    wa, wb, wm = (load_file(p / "model.safetensors") for p in (a, b, out))
    for k in wm:
        if wm[k].is_floating_point():
            assert torch.allclose(wm[k], torch.lerp(wa[k], wb[k], alpha), atol=1e-6), k
    loaded = load_model(out)  # strict loader: a complete Hub-layout folder
    rec = loaded.config.training
    cb = load_model(b).config
    assert rec["interpolation"]["alpha"] == alpha
    assert rec["interpolation"]["a"]["source"] == str(a) and rec["interpolation"]["b"]["source"] == str(b)
    assert rec["interpolation"]["b"]["command"] == cb.training["command"]
    assert set(rec["interpolation"]["validation_iou_by_alpha"]) == {"0", "0.5", "1"}
    assert rec["interpolation"]["select_by"] == "pooled"
    assert set(rec["interpolation"]["validation_iou_by_alpha_and_folder"]["0.5"]) == {"data", "data2"}
    assert rec["command"].startswith("python -m dstl.train.interpolate ")
    assert rec["val_ids"] == cb.training["val_ids"] and rec["train_ids"] == cb.training["train_ids"]
    assert rec["metrics"]["validation"]["iou_mean"] == pytest.approx(res["scores"][alpha])
    assert rec["metrics"]["holdout"] == json.loads(json.dumps(res["holdout"]["scores"]))  # JSON keys
    assert loaded.config.normalization == cb.normalization
    card = (out / "README.md").read_text()
    assert "## Interpolated weights" in card and f"**{alpha:g}** (chosen)" in card
    assert card.index("## Interpolated weights") < card.index("## Data split and recipe")
    assert (out / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    json.loads((out / "config.json").read_text())


def test_folder_mean_weighs_each_data_folder_the_same(runs, tmp_path):
    data, a, b, _ = runs
    res = main([str(a), str(b), "--alpha", "0.25", "0.75", "--select-by", "folder-mean", "--data", *data,
                "--out", str(tmp_path / "fm")])
    for alpha, folders in res["by_folder"].items():
        assert res["criterion"][alpha] == pytest.approx(sum(folders.values()) / 2)
    assert res["criterion"][res["alpha"]] == max(res["criterion"].values())
    assert load_model(tmp_path / "fm").config.training["interpolation"]["select_by"] == "folder-mean"


def test_alpha_zero_gives_the_first_weights(runs, tmp_path):
    data, a, b, _ = runs
    out = tmp_path / "zero"
    main([str(a), str(b), "--alpha", "0", "--data", *data, "--out", str(out)])
    wa, wz = load_file(a / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(torch.equal(wa[k], wz[k]) for k in wa if wa[k].is_floating_point())


def _wider(folder):
    """A 20-band UNet of base width 8 (the runs are 4 wide)."""
    from dstl.bands import ALL_BANDS
    from dstl.classes import NUM_CLASSES
    from dstl.models import UNet, config_for, save_pretrained

    m = UNet(len(ALL_BANDS), NUM_CLASSES, base_width=8)
    return save_pretrained(m, config_for(m, ALL_BANDS, tile_size=64, training={"data": "test"}), folder)


def _without_train_config(src, folder):
    """A copy of the weights folder `src` whose config.json lost extra.train_config."""
    import shutil

    shutil.copytree(src, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.pop("extra", None)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize("case, message", [
    ("alpha", "--alpha 1.5 is outside [0, 1]"),
    ("width", "differ in model_args"),
    ("untrained", "carry no training configuration"),
    ("data", "are not labelled images of"),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys, make_dstl_folder, case, message):
    data, a, b, _ = runs
    if case == "alpha":
        args = [str(a), str(b), "--alpha", "1.5", "--data", *data]
    elif case == "width":
        args = [str(_wider(tmp_path / "w8")), str(b), "--alpha", "0.5", "--data", *data]
    elif case == "untrained":
        bare = _without_train_config(b, tmp_path / "bare")
        args = [str(a), str(bare), "--alpha", "0.5", "--data", *data]
    else:
        other = make_dstl_folder(tmp_path / "other", sizes={"9200_0_0": (64, 64)}, labelled=["9200_0_0"])
        args = [str(a), str(b), "--alpha", "0.5", "--data", str(other)]
    out = tmp_path / "never"
    assert cli([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1], err
    assert not out.exists()

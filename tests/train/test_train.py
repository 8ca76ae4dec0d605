"""dstl/train/train.py end to end on tiny DSTL-layout folders: loss, weights, resume, errors, push refusal."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dstl.bands import ALL_BANDS
from dstl.dataset import DstlDataset
from dstl.engine import predict_scene
from dstl.models import load_model
from dstl.train.checkpoint import load_checkpoint
from dstl.train.train import cli, main
from tests.cli_runner import assert_error_on_its_own_line, python_env

REPO = Path(__file__).resolve().parents[2]
SIZES = {"9001_0_0": (96, 100), "9001_1_2": (97, 90), "9002_3_4": (100, 96), "9003_0_1": (64, 64)}
LABELLED = ["9001_0_0", "9001_1_2", "9002_3_4"]
TINY = ["--model", "unet", "--set", "model_args.base_width=4", "--crop-size", "64", "--set", "tile_size=64",
        "--batch-size", "4", "--steps-per-epoch", "4", "--epochs", "3", "--lr", "0.01", "--seed", "0",
        "--set", "threshold_grid=[0.2,0.4,0.5,0.6]"]
TIMING = {"patches_per_s", "train_s", "val_s"}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP's spinning makes
    2 threads ~10x slower than 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def data(make_dstl_folder, tmp_path):
    return make_dstl_folder(tmp_path / "data", sizes=SIZES, labelled=LABELLED)


def _args(data, out, ckpt, *extra):
    return ["--data", str(data), "--out", str(out), "--checkpoint", str(ckpt), *TINY, *extra]


def _metrics(folder):
    with open(folder / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def test_tiny_run_lowers_the_loss_and_writes_loadable_weights(data, make_dstl_folder, tmp_path):
    holdout = make_dstl_folder(tmp_path / "holdout", sizes={"9100_0_0": (96, 96), "9100_0_1": (64, 64)},
                               labelled=["9100_0_0"], seed=7)
    out = tmp_path / "weights" / "tiny"
    res = main(_args(data, out, tmp_path / "ck.pt", "--holdout", str(holdout), "--set", "polygon_every=2"))
    losses = [row["train_loss"] for row in res["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0]

    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "curves.png", "metrics.csv",
                                                      "model.safetensors"]
    loaded = load_model(str(out))
    assert loaded.is_trained
    cfg = loaded.config
    assert cfg.architecture == "unet" and cfg.model_args["base_width"] == 4 and cfg.bands == ALL_BANDS
    assert cfg.tile_size == 64
    assert list(cfg.thresholds) == res["thresholds"] and set(cfg.thresholds) <= {0.2, 0.4, 0.5, 0.6}
    train = cfg.training
    assert train["train_ids"] + train["val_ids"] and sorted(train["train_ids"] + train["val_ids"]) == LABELLED
    assert train["command"].startswith("python train/train.py --data ")
    assert train["seed"] == 0 and train["epochs"] == 3 and train["synthetic"] is False
    validation = train["metrics"]["validation"]
    assert validation["iou_mean"] is not None
    assert validation["jaccard_mean"] is not None  # scored on polygons even if the kept epoch skipped them
    assert train["metrics"]["holdout"] is not None
    assert cfg.extra["train_config"]["steps_per_epoch"] == 4
    card = (out / "README.md").read_text()
    assert train["command"] in card and "Limitations" in card and "Held-out images" in card

    # The saved weights are the kept epoch's and run through the engine like any weights.
    kept = load_checkpoint(tmp_path / "ck.pt")["best"]
    assert kept["epoch"] == res["kept_epoch"]
    saved = load_file(out / "model.safetensors")
    assert all(torch.equal(saved[k], kept["state"][k].float()) for k in saved)
    ds = DstlDataset(data)
    probs = predict_scene(ds.read_scene("9003_0_1"), loaded)
    assert probs.shape == (10, 64, 64) and 0 <= probs.min() and probs.max() <= 1

    rows = _metrics(out)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert [r["val_jaccard_mean"] != "" for r in rows] == [False, True, True]  # polygon_every=2, and the last
    assert all(r["val_iou_mean"] != "" for r in rows)


def test_stop_and_resume_gives_the_same_result_as_an_uninterrupted_run(data, tmp_path):
    full = main(_args(data, tmp_path / "full", tmp_path / "full.pt"))
    part = main(_args(data, tmp_path / "resumed", tmp_path / "resumed.pt", "--stop-after-epoch", "1"))
    assert part["completed_epochs"] == 1 and not part["finished"]
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    assert load_checkpoint(tmp_path / "resumed.pt")["epoch"] == 1
    resumed = main(_args(data, tmp_path / "resumed", tmp_path / "resumed.pt", "--resume"))
    assert resumed["finished"]
    assert resumed["fingerprint"] == full["fingerprint"]  # every parameter and buffer, bit for bit
    assert _metrics(tmp_path / "resumed") == _metrics(tmp_path / "full")
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["thresholds"] == full["thresholds"]


def test_init_weights_starts_from_trained_weights_and_keeps_their_normalisation(data, tmp_path, capsys):
    first = tmp_path / "first"
    main(_args(data, first, tmp_path / "first.pt"))
    # A near-zero learning rate: the second run's weights are the first run's (BatchNorm's running
    # statistics aside), so its first epoch already has the first run's final training loss.
    second = tmp_path / "second"
    main(_args(data, second, tmp_path / "second.pt", "--set", f"init_weights={first}", "--lr", "1e-12",
               "--epochs", "1", "--set", "keep=last"))
    a = load_file(first / "model.safetensors")
    b = load_file(second / "model.safetensors")
    convs = [k for k in a if k.endswith(".weight") and a[k].ndim == 4]
    assert convs and all(torch.allclose(a[k], b[k], atol=1e-6) for k in convs)
    loss_first_run = [float(r["train_loss"]) for r in _metrics(first)]
    assert float(_metrics(second)[0]["train_loss"]) < loss_first_run[0]
    c1, c2 = load_model(first).config, load_model(second).config
    assert c2.normalization == c1.normalization  # kept, not re-estimated
    assert c2.training["init_weights"]["source"] == str(first)
    assert c2.training["init_weights"]["command"] == c1.training["command"]
    assert f"Initialised from the weights `{first}`" in (second / "README.md").read_text()
    # Weights of another architecture size or band set are refused before any training.
    mismatches = ((["--set", "model_args.base_width=8"], "model_args"), (["--bands", "rgb"], "bands"))
    for extra, message in mismatches:
        rc = cli(_args(data, tmp_path / "bad", tmp_path / "bad.pt", "--set", f"init_weights={first}", *extra))
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and err[-1].startswith("error: config: init_weights") and message in err[-1], err
        assert not (tmp_path / "bad" / "model.safetensors").exists()


def test_resume_refuses_a_checkpoint_made_with_other_settings(data, tmp_path, capsys):
    main(_args(data, tmp_path / "w", tmp_path / "c.pt", "--stop-after-epoch", "1"))
    rc = cli(_args(data, tmp_path / "w", tmp_path / "c.pt", "--resume", "--set", "rare_prob=0.9"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: checkpoint") and "rare_prob" in err[-1]


def test_push_to_hub_refuses_without_a_token_before_training(data, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    out = tmp_path / "w"
    rc = cli(_args(data, out, tmp_path / "c.pt", "--push-to-hub", "someone/dstl-unet"))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "HF_TOKEN" in err
    assert not out.exists() and not (tmp_path / "c.pt").exists()
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    assert cli(_args(data, out, tmp_path / "c.pt", "--push-to-hub", "not a repo")) == 2
    assert "owner/name" in capsys.readouterr().err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli(_args(data, out, tmp_path / "c.pt", "--push-to-hub", "someone/dstl-unet")) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("extra, message", [
    (["--set", "nonsense=1"], "unknown key 'nonsense'"),
    (["--recipe", "nope"], "unknown recipe 'nope'"),
    (["--crop-size", "128"], "(and 1 more) is 97 x 90 px, smaller than crop_size 128; use --crop-size 64 "
                             "(the largest UNet crop the smallest training image allows)"),
])
def test_bad_input_is_one_line_and_exit_2(data, tmp_path, capsys, extra, message):
    rc = cli(_args(data, tmp_path / "w", tmp_path / "c.pt") + extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: ") and message in err[-1]
    assert not (tmp_path / "w" / "model.safetensors").exists()


def test_an_image_below_the_smallest_crop_is_refused_with_a_hint_that_works(make_dstl_folder, tmp_path,
                                                                             capsys):
    """Lowering crop_size cannot help a 50 x 45 px image (UNet trains on 64 px or more): the message says
    what can, and following it trains."""
    data = make_dstl_folder(tmp_path / "data", sizes={"9001_0_0": (96, 100), "9001_1_2": (97, 90),
                                                      "9002_3_4": (50, 45)},
                            labelled=["9001_0_0", "9001_1_2", "9002_3_4"])
    args = _args(data, tmp_path / "w", tmp_path / "c.pt", "--epochs", "1", "--steps-per-epoch", "1")
    assert cli([*args, "--set", 'val_ids=["9001_1_2"]']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("error: training image 9002_3_4 is 50 x 45 px, smaller than crop_size 64 and than the "
                       "smallest crop UNet trains on (64 px); validate on it instead "
                       "(--set 'val_ids=[\"9002_3_4\"]'; validation takes whole images of any size), "
                       "or train on larger images")
    res = main([*args, "--set", 'val_ids=["9002_3_4"]'])
    assert res["finished"] and (tmp_path / "w" / "model.safetensors").is_file()


def test_missing_data_folder_is_a_clear_error(tmp_path, capsys):
    assert cli(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "w"), "--model", "unet"]) == 2
    assert "dataset folder not found" in capsys.readouterr().err


def _script(*args, **kw):
    env = python_env(OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(REPO / "train" / "train.py"), *args], capture_output=True,
                          text=True, cwd=kw.get("cwd", REPO), env=env, timeout=kw.get("timeout", 300))


def test_the_script_runs_as_documented(tmp_path):
    r = _script("--help")
    assert r.returncode == 0 and "--push-to-hub" in r.stdout and "--recipe" in r.stdout
    r = _script("--data", "x", "--out", "y", "--model", "unet", "--set", "epochs=zero")
    assert r.returncode == 2 and r.stderr.strip() == "error: --set: epochs expects int, got 'zero'"
    r = _script("--data", "x", "--out", "y", "--recipe", "unet_synth_quick", "--print-config")
    assert r.returncode == 0 and json.loads(r.stdout)["model_args"]["base_width"] == 16


@pytest.mark.slow
def test_killing_the_process_and_resuming_matches_the_uninterrupted_run(data, tmp_path):
    args = _args(data, tmp_path / "killed", tmp_path / "killed.pt")
    args[args.index("--epochs") + 1] = "4"
    env = python_env(OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(REPO / "train" / "train.py"), *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not (tmp_path / "killed.pt").exists():  # wait for the first epoch's checkpoint
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # somewhere in epoch 2 (or writing its checkpoint)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    epoch_at_kill = load_checkpoint(tmp_path / "killed.pt")["epoch"]  # never a corrupt file
    assert 1 <= epoch_at_kill < 4
    r = _script(*args, "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    full_args = _args(data, tmp_path / "full", tmp_path / "full.pt")
    full_args[full_args.index("--epochs") + 1] = "4"
    r = _script(*full_args)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _metrics(tmp_path / "killed") == _metrics(tmp_path / "full")
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_res50unet_with_a_local_pretrained_backbone_and_staged_unfreezing(data, tmp_path):
    from safetensors.torch import save_file

    from dstl.models import ResNet50

    torch.manual_seed(0)
    backbone = tmp_path / "s2_resnet50.safetensors"  # a 13-band (Sentinel-2 layout) ResNet50 state dict
    save_file({k: v.contiguous() for k, v in ResNet50(in_channels=13).state_dict().items()}, backbone)
    out = tmp_path / "r50"
    res = main(["--data", str(data), "--out", str(out), "--checkpoint", str(tmp_path / "c.pt"),
                "--model", "res50unet", "--crop-size", "64", "--set", "tile_size=64", "--batch-size", "2",
                "--steps-per-epoch", "2", "--epochs", "2", "--set", f"pretrained_backbone={backbone}",
                "--set", 'unfreeze_schedule={"0": 0, "1": 4}', "--set", "threshold_grid=[0.5]"])
    assert res["finished"]
    start = ResNet50(in_channels=13)  # same seed as above: the weights that were loaded
    loaded = load_model(str(out))
    assert loaded.config.architecture == "res50unet"
    # layer4 was frozen in epoch 1 and trained in epoch 2: it moved, but started from the file.
    trained = loaded.module.layer4[0].conv1.weight
    assert not torch.equal(trained, start.layer4[0].conv1.weight)


def test_head_bias_starts_at_the_class_prior():
    import numpy as np

    from dstl.models import UNet
    from dstl.train.config import ConfigError
    from dstl.train.train import init_head_bias

    model = UNet(in_channels=3, base_width=4)
    freq = np.array([0.5, 0.1, 0.0, 1.0, 0.01, 0.2, 0.3, 0.02, 0.001, 0.05])
    init_head_bias(model, freq)
    p = torch.sigmoid(model.head.bias.double())
    assert torch.allclose(p, torch.tensor(freq).clamp(1e-4, 1 - 1e-4), rtol=1e-5)
    with pytest.raises(ConfigError, match="head_bias_prior"):
        init_head_bias(torch.nn.Conv2d(3, 10, 3), freq)


@pytest.mark.parametrize("damage", ["truncated pixel data", "M product of 8 x 1 x 1"])
def test_an_error_while_loading_images_starts_its_own_line(data, tmp_path, forge_tiff_header, damage):
    """The real script, failing while the 'loading training images' bar is drawn: the error must start
    at column 0 (not after the bar's text) and no bar may be drawn after it."""
    for image_id in LABELLED:
        if damage == "truncated pixel data":
            path = data / "sixteen_band" / f"{image_id}_A.tif"
            path.write_bytes(path.read_bytes()[:-40])  # header intact: found when the pixels are read
        else:
            forge_tiff_header(data / "sixteen_band" / f"{image_id}_M.tif", (8, 1, 1))
    env = python_env(OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, str(REPO / "train" / "train.py"),
                          *_args(data, tmp_path / "w", tmp_path / "c.pt")],
                         capture_output=True, cwd=REPO, env=env, timeout=300)
    stderr = res.stderr.decode()
    assert res.returncode == 2 and "loading training images" in stderr, stderr
    line = assert_error_on_its_own_line(stderr)
    expected = "truncated TIFF" if damage == "truncated pixel data" else "M product of 1 x 1 px does not fit"
    assert expected in line
    assert not (tmp_path / "w").exists()


def test_two_data_folders_sharing_an_image_id_are_refused(data, make_dstl_folder, tmp_path, capsys):
    other = make_dstl_folder(tmp_path / "other", sizes=SIZES, labelled=LABELLED, seed=3)
    args = _args(data, tmp_path / "w", tmp_path / "c.pt")
    args[args.index(str(data)) + 1:args.index(str(data)) + 1] = [str(other)]
    assert cli(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is in both" in err[0] and "must not share ids" in err[0]
    assert not (tmp_path / "w").exists()

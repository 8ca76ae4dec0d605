"""Weights in Hub layout: save/load round trips, strict-load failures, bundled defaults, the resolver
through huggingface_hub's real download/cache code (offline, on a cache laid out as the Hub lays it
out), and push_to_hub's refusals. Nothing here touches the network: the Hub fixture also makes every
socket connection fail and asserts that none was attempted.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch

from dstl.bands import RGB_BANDS
from dstl.errors import WeightsError
from dstl.models import (
    ModelConfig,
    Res50UNet,
    ResNet50,
    UNet,
    config_for,
    hub,
    list_bundled,
    load_model,
    load_pretrained_backbone,
    push_to_hub,
    resolve_source,
    save_pretrained,
)
from dstl.normalization import BandStats
from tests.cli_runner import PACKAGE_ROOT
from tests.hub_cache import COMMIT_A, COMMIT_B, HubCache, folder_files


def tiny_unet(seed: int, in_channels: int = 20) -> UNet:
    torch.manual_seed(seed)
    m = UNet(in_channels=in_channels, base_width=4)
    torch.nn.init.normal_(m.head.weight, std=0.5)  # visible differences between seeds
    return m.eval()


def save_tiny(folder: Path, seed: int = 0, in_channels: int = 20, **config_fields) -> UNet:
    m = tiny_unet(seed, in_channels)
    save_pretrained(m, config_for(m, **config_fields), folder)
    return m


def outputs(module, in_channels=20, seed=123):
    x = torch.randn(2, in_channels, 64, 32, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return module(x)


# ----------------------------------------------------------------------------------------------
# Round trips


def test_unet_round_trip_gives_identical_outputs(tmp_path):
    stats = BandStats.from_arrays(tuple(f"b{i}" for i in range(20)), [torch.rand(20, 8, 8).numpy()])
    stats = BandStats(config_for(tiny_unet(0)).bands, stats.mean, stats.std)
    m = tiny_unet(0)
    cfg = config_for(m, normalization=stats, thresholds=[0.1 * i for i in range(10)], tile_size=256)
    folder = save_pretrained(m, cfg, tmp_path / "w")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = load_model(folder)
    assert not loaded.module.training
    assert torch.equal(outputs(loaded.module), outputs(m))
    assert loaded.config.to_dict() == cfg.to_dict()
    assert json.loads((folder / "config.json").read_text()) == cfg.to_dict()
    assert loaded.module.model_args == m.model_args
    assert loaded.source == f"folder {folder}"
    assert not loaded.is_trained and "UNTRAINED" in loaded.describe()
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "untrained" in card and "These weights are untrained" in card
    with open(folder / "model.safetensors", "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    meta = header["__metadata__"]
    assert meta["format"] == "pt" and len(meta["dstl_tensor_sha256"]) == 64


def test_res50unet_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    m = Res50UNet(in_channels=3, decoder_widths=[8, 8, 8, 8]).eval()
    torch.nn.init.normal_(m.head.weight, std=0.5)
    save_pretrained(m, config_for(m), tmp_path / "r")
    loaded = load_model(tmp_path / "r")
    assert isinstance(loaded.module, Res50UNet) and loaded.config.bands == RGB_BANDS
    assert torch.equal(outputs(loaded.module, 3), outputs(m, 3))


def test_channels_last_and_compiled_style_wrappers_save_plainly(tmp_path):
    m = tiny_unet(1).to(memory_format=torch.channels_last)
    wrapper = torch.nn.Module()
    wrapper.module = m  # what DistributedDataParallel looks like
    save_pretrained(wrapper, config_for(m), tmp_path / "w")
    loaded = load_model(tmp_path / "w").module
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), m.state_dict().values(),
                                                 strict=True))
    # channels_last picks other conv kernels, so compare like with like.
    assert torch.equal(outputs(loaded.to(memory_format=torch.channels_last)), outputs(m))


def test_trained_config_gives_an_honest_model_card(tmp_path):
    training = {"data": "synthetic DSTL scenes (seeds 0-9)", "epochs": 3,
                "command": "python train/train.py --data synth --model unet --out weights/x",
                "metrics": {"mean_jaccard": 0.41}, "limitations": ["synthetic data only"]}
    save_tiny(tmp_path / "w", training=training)
    loaded = load_model(tmp_path / "w")
    assert loaded.is_trained and loaded.config.training == training
    card = (tmp_path / "w" / "README.md").read_text()
    assert "Trained on: synthetic DSTL scenes (seeds 0-9)." in card
    assert "untrained" not in card.lower()
    assert training["command"] in card and '"mean_jaccard": 0.41' in card and "- synthetic data only" in card
    assert "| 0 | 1 | Buildings | #e6194b | 0.500 |" in card
    assert "| 13 | A2 | short-wave infrared 2 | 1570.0 | 0 | 1 |" in card


def test_save_refuses_a_config_that_does_not_describe_the_module(tmp_path):
    m = tiny_unet(0)
    other = UNet(base_width=8)
    with pytest.raises(WeightsError, match="model_args"):
        save_pretrained(m, config_for(other), tmp_path / "a")
    with pytest.raises(WeightsError, match="architecture"):
        save_pretrained(m, ModelConfig("res50unet", dict(m.model_args), config_for(m).bands,
                                       config_for(m).normalization), tmp_path / "b")
    with pytest.raises(WeightsError, match="not JSON-serialisable"):
        save_pretrained(m, config_for(m, training={"when": object()}), tmp_path / "c")
    assert not (tmp_path / "c").exists() and not (tmp_path / "a").exists()


# ----------------------------------------------------------------------------------------------
# Strict loading


@pytest.fixture
def saved(tmp_path):
    folder = tmp_path / "weights"
    save_tiny(folder)
    return folder


def rewrite_weights(folder: Path, edit) -> None:
    state = safetensors.torch.load_file(str(folder / "model.safetensors"))
    edit(state)
    safetensors.torch.save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


def edit_config(folder: Path, edit) -> None:
    d = json.loads((folder / "config.json").read_text())
    edit(d)
    (folder / "config.json").write_text(json.dumps(d))


def truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def flip_last_byte(folder: Path) -> None:
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF  # inside the last tensor's data; the header still parses
    (folder / "model.safetensors").write_bytes(bytes(data))


def set_nan(folder: Path) -> None:
    m = tiny_unet(0)
    with torch.no_grad():
        m.head.weight[0, 0, 0, 0] = float("nan")
    hub.save_weights(m, folder / "model.safetensors")  # a valid file with a valid checksum, but NaN


DAMAGE = {
    "wrong shapes": (lambda f: edit_config(f, lambda d: d["model_args"].update(base_width=8)),
                     r"model.safetensors: does not match UNet.*shape/dtype mismatches "
                     r"\([\w.]+ file \("),
    "missing keys": (lambda f: rewrite_weights(f, lambda s: s.pop("head.bias")),
                     r"model.safetensors: does not match .*1 missing keys \(head.bias\)"),
    "unexpected keys": (lambda f: rewrite_weights(f, lambda s: s.update({"extra.weight": torch.zeros(2)})),
                        r"1 unexpected keys \(extra.weight\)"),
    "truncated": (lambda f: truncate(f / "model.safetensors", 5000),
                  r"model.safetensors: unreadable safetensors file .*truncated or corrupted"),
    "corrupted header": (lambda f: (f / "model.safetensors").write_bytes(
        b"\x20\x00\x00\x00\x00\x00\x00\x00{not json at all}" + (f / "model.safetensors").read_bytes()[41:]),
        r"model.safetensors: unreadable safetensors file"),
    "empty file": (lambda f: (f / "model.safetensors").write_bytes(b""), r"unreadable safetensors file"),
    "corrupted data": (flip_last_byte,
                       r"model.safetensors: tensor data does not match its recorded checksum"),
    "nan": (set_nan, r"1 tensors contain NaN or inf \(head.weight\)"),
    "no weights file": (lambda f: (f / "model.safetensors").unlink(), r"weights: no model.safetensors"),
    "no config": (lambda f: (f / "config.json").unlink(), r"weights: no config.json -- not a dstl weights"),
    "config not json": (lambda f: (f / "config.json").write_text('{"architecture": "unet",'),
                        r"config.json: not valid JSON \(line 1, column 25"),
    "config not an object": (lambda f: (f / "config.json").write_text("[1, 2]"),
                             r"config.json: expected a JSON object, got list"),
    "config missing field": (lambda f: edit_config(f, lambda d: d.pop("architecture")),
                             r"config.json: malformed config.json \(KeyError"),
    "unknown architecture": (lambda f: edit_config(f, lambda d: d.update(architecture="segformer")),
                             r"config.json: unknown architecture 'segformer' \(known: res50unet, unet\)"),
    "bad model_args": (lambda f: edit_config(f, lambda d: d["model_args"].update(depth=7)),
                       r"config.json: model_args not accepted by UNet: .*depth"),
    "bad model_args value": (lambda f: edit_config(f, lambda d: d["model_args"].update(dropout=3)),
                             r"model_args not accepted by UNet: dropout must be"),
    "bands vs channels": (lambda f: edit_config(f, lambda d: d.update(
        bands=list(RGB_BANDS), normalization=BandStats.identity(RGB_BANDS).to_dict())),
        r"config.json: the model takes 20 input channels but the config lists 3 bands"),
    "bad normalization": (lambda f: edit_config(f, lambda d: d["normalization"].update(std=[0.0] * 20)),
                          r"config.json: every normalization std must be positive"),
    "too few thresholds": (lambda f: edit_config(f, lambda d: d.update(thresholds=[0.5])),
                           r"config.json: 1 thresholds for 10 classes"),
    # config.json is validated at load (issue 14): what inference relies on, each naming the file.
    "unknown band": (lambda f: edit_config(f, lambda d: (d["bands"].__setitem__(19, "X9"),
                                                         d["normalization"]["bands"].__setitem__(19, "X9"))),
                     r"config.json: unknown band 'X9' in bands \(DSTL products have R, G, B, P, M1, .*A8\)"),
    "band twice": (lambda f: edit_config(f, lambda d: (d["bands"].__setitem__(19, "R"),
                                                       d["normalization"]["bands"].__setitem__(19, "R"))),
                   r"config.json: band 'R' is listed twice in bands"),
    "normalization bands differ": (lambda f: edit_config(f, lambda d: d["normalization"]["bands"].reverse()),
                                   r"config.json: normalization bands \['A8', .*differ from the model's "
                                   r"bands"),
    "normalization mean too short": (lambda f: edit_config(f, lambda d: d["normalization"]["mean"].pop()),
                                     r"config.json: normalization has 19 mean values for 20 bands"),
    "normalization std too long": (lambda f: edit_config(f, lambda d: d["normalization"]["std"].append(1.0)),
                                   r"config.json: normalization has 21 std values for 20 bands"),
    "normalization not numbers": (lambda f: edit_config(f, lambda d: d["normalization"].update(
        mean=["0"] * 20)), r"config.json: normalization mean must be a list of finite numbers"),
    "threshold above 1": (lambda f: edit_config(f, lambda d: d["thresholds"].__setitem__(2, 1.5)),
                          r"config.json: threshold of class 3 must be a probability in \[0, 1\], got 1.5"),
    "threshold negative": (lambda f: edit_config(f, lambda d: d["thresholds"].__setitem__(0, -0.1)),
                           r"config.json: threshold of class 1 must be a probability"),
    "threshold not a number": (lambda f: edit_config(f, lambda d: d["thresholds"].__setitem__(9, "high")),
                               r"config.json: threshold of class 10 must be a probability .*got 'high'"),
    "thresholds not a list": (lambda f: edit_config(f, lambda d: d.update(thresholds=0.5)),
                              r"config.json: thresholds must be a list of 10 numbers"),
    "classes reordered": (lambda f: edit_config(f, lambda d: d["classes"].reverse()),
                          r"config.json: classes must be the 10 DSTL classes in id order 1..10 .*got ids "
                          r"\[10, 9,"),
    "class colour": (lambda f: edit_config(f, lambda d: d["classes"][4].update(colour=[0, 300, 0])),
                     r"config.json: class 5 colour must be 3 integers 0..255"),
    "tile size": (lambda f: edit_config(f, lambda d: d.update(tile_size=100)),
                  r"config.json: tile_size must be a positive multiple of 32, got 100"),
    "unknown model arg": (lambda f: edit_config(f, lambda d: d["model_args"].update(widths=[1, 2])),
                          r"config.json: model_args not accepted by UNet: .*unexpected keyword argument "
                          r"'widths'"),
    "model_args not an object": (lambda f: edit_config(f, lambda d: d.update(model_args=[20, 10])),
                                 r"config.json: model_args must be an object of constructor arguments"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_strict_load_failures_are_one_line_errors_naming_the_file(saved, case):
    damage, pattern = DAMAGE[case]
    damage(saved)
    with pytest.raises(WeightsError, match=pattern) as err:
        load_model(saved)
    msg = str(err.value)
    assert "\n" not in msg and str(saved) in msg


# ----------------------------------------------------------------------------------------------
# Bundled weights and local sources


def test_bundled_default_missing_says_so_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "BUNDLED_DIR", tmp_path / "weights")
    assert list_bundled() == []
    with pytest.raises(WeightsError, match=r"no trained bundled weights exist yet \(weights/unet-20band is "
                                           r"missing\); train them with `python train/train.py"):
        load_model(None)
    with pytest.raises(WeightsError, match=r"no bundled weights named 'unet-rgb' .*bundled: none yet"):
        load_model("unet-rgb")


def test_bundled_default_and_bare_names(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "BUNDLED_DIR", tmp_path / "weights")
    m20 = save_tiny(tmp_path / "weights" / "unet-20band", seed=3)
    m3 = save_tiny(tmp_path / "weights" / "unet-rgb", seed=4, in_channels=3)
    assert list_bundled() == ["unet-20band", "unet-rgb"]
    default = load_model()
    assert default.source == "bundled weights/unet-20band"
    assert torch.equal(outputs(default.module), outputs(m20))
    rgb = load_model("unet-rgb")
    assert rgb.config.bands == RGB_BANDS and torch.equal(outputs(rgb.module, 3), outputs(m3, 3))
    with pytest.raises(WeightsError, match=r"no bundled weights named 'unet-x' .*bundled: unet-20band, "
                                           r"unet-rgb"):
        load_model("unet-x")


def test_local_source_errors(tmp_path, saved):
    with pytest.raises(WeightsError, match="is a file; pass the folder"):
        resolve_source(saved / "config.json")
    with pytest.raises(WeightsError, match="no such folder, and not a Hub repo id"):
        resolve_source("./does/not/exist")
    with pytest.raises(WeightsError, match="no such folder, and not a Hub repo id"):
        resolve_source("a/b/c")
    with pytest.raises(WeightsError, match="empty weights source"):
        resolve_source("  ")
    with pytest.raises(WeightsError, match="not a folder, bundled name or Hub repo id"):
        resolve_source("bad name!")
    assert resolve_source(saved).kind == "local"


# ----------------------------------------------------------------------------------------------
# The Hub resolver, through huggingface_hub's real snapshot_download / hf_hub_download, offline


@pytest.fixture
def two_commits(hub_offline, tmp_path):
    """owner/seg: commit A (tag v1.0) and commit B (main), different weights."""
    a = save_tiny(tmp_path / "A", seed=10)
    b = save_tiny(tmp_path / "B", seed=11)
    hub_offline.add("owner/seg", COMMIT_A, folder_files(tmp_path / "A"), refs=["v1.0"])
    hub_offline.add("owner/seg", COMMIT_B, folder_files(tmp_path / "B"), refs=["main"])
    return hub_offline, a, b


def test_hub_main_tag_and_commit(two_commits):
    _, a, b = two_commits
    main = load_model("owner/seg")
    assert main.source == f"Hub owner/seg@main (commit {COMMIT_B[:12]})"
    assert torch.equal(outputs(main.module), outputs(b))
    tag = load_model("owner/seg@v1.0")
    assert tag.source == f"Hub owner/seg@v1.0 (commit {COMMIT_A[:12]})"
    assert torch.equal(outputs(tag.module), outputs(a))
    pinned = load_model(f"owner/seg@{COMMIT_A}")
    assert torch.equal(outputs(pinned.module), outputs(a))
    resolved = resolve_source("owner/seg@v1.0")
    assert (resolved.kind, resolved.repo_id, resolved.revision, resolved.commit) == \
        ("hub", "owner/seg", "v1.0", COMMIT_A)
    assert (resolved.folder / "config.json").is_symlink()  # served from the cache, not copied


def test_hub_missing_repo_offline(hub_offline):
    with pytest.raises(WeightsError, match=r"Hub repo owner/absent is not in the Hugging Face cache "
                                           r"\(.*hf-cache\) and HF_HUB_OFFLINE=1 forbids downloading .*"
                                           r"run once online"):
        load_model("owner/absent")


def test_hub_missing_revision_offline(two_commits):
    with pytest.raises(WeightsError, match=r"revision 'v9' of Hub repo owner/seg is not in the Hugging Face "
                                           r"cache .*cached refs: main, v1.0; cached commits: aaaaaaaa.*, "
                                           r"bbbbbbbb.*HF_HUB_OFFLINE=1"):
        load_model("owner/seg@v9")
    with pytest.raises(WeightsError, match=r"revision 'c{40}' of Hub repo owner/seg is not in the"):
        load_model("owner/seg@" + "c" * 40)


def test_hub_incomplete_snapshot_and_non_dstl_repo(hub_offline, tmp_path):
    save_tiny(tmp_path / "w", seed=0)
    files = folder_files(tmp_path / "w")
    hub_offline.add("owner/partial", COMMIT_A, files, refs=["main"], listed_only=["model.safetensors"])
    with pytest.raises(WeightsError, match=r"cached copy of Hub repo owner/partial is incomplete"):
        load_model("owner/partial")
    hub_offline.add("owner/nomodel", COMMIT_B, {"README.md": b"# hello\n"}, refs=["main"], tree=False)
    with pytest.raises(WeightsError, match=r"Hub owner/nomodel@main \(commit bbbbbbbb.*\) has no "
                                           r"config.json"):
        load_model("owner/nomodel")


def test_hub_corrupted_blob_is_refused(hub_offline, tmp_path):
    save_tiny(tmp_path / "w", seed=0)
    storage = hub_offline.add("owner/bad", COMMIT_A, folder_files(tmp_path / "w"), refs=["main"])
    blob = (storage / "snapshots" / COMMIT_A / "model.safetensors").resolve()
    blob.write_bytes(blob.read_bytes()[:-100])
    with pytest.raises(WeightsError, match=r"hf-cache/models--owner--bad/snapshots/a+.*/model.safetensors: "
                                           r"unreadable safetensors file"):
        load_model("owner/bad")


def test_backbone_from_a_hub_repo(hub_offline, tmp_path):
    # A 13-band ResNet50 in torchvision layout (the layout itself is checked in test_backbone.py).
    torch.manual_seed(5)
    sd = ResNet50(in_channels=13, num_classes=19).state_dict()
    path = tmp_path / "resnet50_s2.safetensors"
    safetensors.torch.save_file(sd, str(path))
    hub_offline.add("geo/resnet50-s2", COMMIT_A, {"resnet50_s2.safetensors": path.read_bytes()}, refs=["v1"])
    model = Res50UNet(in_channels=20, decoder_widths=[8, 8, 8, 8])
    report = load_pretrained_backbone(model, "geo/resnet50-s2@v1", filename="resnet50_s2.safetensors")
    assert report.source == "Hub geo/resnet50-s2@v1/resnet50_s2.safetensors"
    assert report.preset == "sentinel2-13" and len(report.used) == 312
    assert torch.equal(model.layer2[0].downsample[0].weight, sd["layer2.0.downsample.0.weight"])
    with pytest.raises(WeightsError, match=r"model.safetensors is not in the cached snapshot of Hub repo "
                                           r"geo/resnet50-s2@v1"):
        load_pretrained_backbone(model, "geo/resnet50-s2@v1")
    with pytest.raises(WeightsError, match=r"Hub repo geo/other is not in the Hugging Face cache"):
        load_pretrained_backbone(model, "geo/other", filename="x.pth")


def test_real_environment_variables_in_a_fresh_process(tmp_path):
    """A user's view: HF_HUB_OFFLINE / HF_HUB_CACHE set before Python starts, no patching at all."""
    cache = HubCache(tmp_path / "cache")
    m = save_tiny(tmp_path / "w", seed=7)
    cache.add("owner/env", COMMIT_A, folder_files(tmp_path / "w"), refs=["stable"])
    expected = outputs(m)
    torch.save(expected, tmp_path / "expected.pt")
    code = (
        "import torch, huggingface_hub.constants as c\n"
        "from dstl.models import load_model\n"
        "assert c.HF_HUB_OFFLINE\n"
        "m = load_model('owner/env@stable')\n"
        "x = torch.randn(2, 20, 64, 32, generator=torch.Generator().manual_seed(123))\n"
        "with torch.no_grad():\n"
        f"    assert torch.equal(m.module(x), torch.load({str(tmp_path / 'expected.pt')!r}))\n"
        "print(m.source)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache"),
           "HF_ENDPOINT": "http://127.0.0.1:9", "PYTHONPATH": str(PACKAGE_ROOT)}
    env.pop("HF_HOME", None)
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"Hub owner/env@stable (commit {COMMIT_A[:12]})"


# ----------------------------------------------------------------------------------------------
# push_to_hub refuses before any network call


def test_push_without_token_refuses_before_network(hub_offline, saved, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(WeightsError, match="pushing to the Hub needs a token: pass token= or set HF_TOKEN"):
        push_to_hub(saved, "owner/new")


def test_push_refusals_with_a_token(hub_offline, saved, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    with pytest.raises(WeightsError, match="invalid Hub repo id"):
        push_to_hub(saved, "not a repo")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="no config.json"):
        push_to_hub(tmp_path / "empty", "owner/new")
    with pytest.raises(WeightsError, match="cannot push to the Hub while HF_HUB_OFFLINE=1"):
        push_to_hub(saved, "owner/new", token="hf_other")

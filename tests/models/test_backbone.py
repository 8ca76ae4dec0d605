"""ResNet50 backbone: torchvision key layout, loading pretrained state dicts with a report, band adaptation,
freezing and staged unfreezing.

The pretrained checkpoints here are written by the tests with random values in torchvision's key
layout (spelled out below from torchvision's architecture, not from dstl's code), as ``.pth`` (what
torchvision and torchgeo distribute) and ``.safetensors``.
"""

import json

import pytest
import safetensors.torch
import torch
import torch.nn.functional as F

from dstl.bands import ALL_BANDS, RGB_BANDS
from dstl.errors import WeightsError
from dstl.models.backbone import (
    BACKBONE_STAGES,
    ResNet50,
    apply_unfreeze_schedule,
    freeze_backbone,
    trainable_stages,
    unfreeze_backbone,
)
from dstl.models.pretrained import PRETRAINED_WAVELENGTHS, load_pretrained_backbone
from dstl.models.res50unet import Res50UNet

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

# Expected band -> ImageNet channel (R=0 660 nm, G=1 545 nm, B=2 480 nm) by nearest centre wavelength,
# worked out by hand from dstl.bands: P 625 -> R (35 vs 80), M1 425 -> B, M4 605 -> R (55 vs 60),
# red edge, NIR and all SWIR -> R.
IMAGENET_MAP = {"R": 0, "G": 1, "B": 2, "P": 0, "M1": 2, "M2": 2, "M3": 1, "M4": 0, "M5": 0, "M6": 0,
                "M7": 0, "M8": 0, **{f"A{i}": 0 for i in range(1, 9)}}
# Sentinel-2 B01..B12 (indices 0..12, B8A = 8): M4 605 -> B03 560 (45 vs 60), M6 725 -> B06 740.5,
# M7 832 -> B08, M8 950 -> B09 945, A1 1210 -> B10 1373.5 (163 vs 265), A2-A4 -> B11, A5-A8 -> B12.
SENTINEL2_MAP = {"R": 3, "G": 2, "B": 1, "P": 3, "M1": 0, "M2": 1, "M3": 2, "M4": 2, "M5": 3, "M6": 5,
                 "M7": 7, "M8": 9, "A1": 10, "A2": 11, "A3": 11, "A4": 11, "A5": 12, "A6": 12, "A7": 12,
                 "A8": 12}


def torchvision_resnet50_layout(in_channels: int = 3, num_classes: int = 1000) -> dict[str, tuple]:
    """Key -> shape of ``torchvision.models.resnet50().state_dict()`` (v1.5 bottlenecks, 3-4-6-3 blocks)."""
    shapes: dict[str, tuple] = {"conv1.weight": (64, in_channels, 7, 7)}

    def bn(prefix, c):
        shapes.update({f"{prefix}.{k}": (() if k == "num_batches_tracked" else (c,)) for k in BN_KEYS})

    bn("bn1", 64)
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True), start=1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            shapes[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            bn(f"{p}.bn1", planes)
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{p}.bn2", planes)
            shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            bn(f"{p}.bn3", planes * 4)
            if b == 0:
                shapes[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    shapes["fc.weight"] = (num_classes, 2048)
    shapes["fc.bias"] = (num_classes,)
    return shapes


def random_state_dict(layout: dict[str, tuple], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in layout.items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(1000 + seed, dtype=torch.long)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * 0.05
    return sd


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    """(state dict, path) of a random ImageNet-layout ResNet50 saved with torch.save as .pth."""
    sd = random_state_dict(torchvision_resnet50_layout(3, 1000), seed=1)
    path = tmp_path_factory.mktemp("ckpt") / "resnet50-imagenet.pth"
    torch.save(sd, path)
    return sd, path


@pytest.fixture(scope="module")
def sentinel2(tmp_path_factory):
    """(state dict, path) of a random 13-band ResNet50, keys wrapped in "model.", saved as safetensors."""
    sd = random_state_dict(torchvision_resnet50_layout(13, 19), seed=2)
    path = tmp_path_factory.mktemp("ckpt") / "resnet50-s2.safetensors"
    safetensors.torch.save_file({f"model.{k}": v for k, v in sd.items()}, str(path))
    return sd, path


@pytest.fixture(scope="module")
def model20():
    return Res50UNet(in_channels=20, decoder_widths=[8, 8, 8, 8])


@pytest.fixture(scope="module")
def model3():
    return Res50UNet(in_channels=3, decoder_widths=[8, 8, 8, 8])


LAYER_KEYS = [k for k in torchvision_resnet50_layout() if k.startswith("layer")]


def test_reference_resnet50_has_torchvision_key_layout():
    layout = torchvision_resnet50_layout(3, 1000)
    ours = ResNet50(in_channels=3, num_classes=1000).state_dict()
    assert list(ours) == list(layout)  # same names in the same order
    assert {k: tuple(v.shape) for k, v in ours.items()} == layout
    ResNet50(3, 1000).load_state_dict(random_state_dict(layout, seed=0), strict=True)


def test_imagenet_pth_loads_with_report_of_used_keys(model20, imagenet):
    sd, path = imagenet
    report = load_pretrained_backbone(model20, path)
    assert report.source == str(path) and report.preset == "imagenet-rgb"
    assert sorted(report.used) == sorted(LAYER_KEYS) and len(report.used) == 312
    assert set(report.adapted) == {"conv1.weight"} | {f"bn1.{k}" for k in BN_KEYS}
    assert report.unexpected == ["fc.bias", "fc.weight"]
    assert report.missing == []
    assert report.unused_source_channels == []
    assert {b: j for b, (j, _) in report.channel_map.items()} == IMAGENET_MAP
    state = model20.state_dict()
    for k in LAYER_KEYS:
        assert torch.equal(state[k], sd[k]), k
    for k in BN_KEYS:
        assert torch.equal(state[f"stem.shortcut.1.{k}"], sd[f"bn1.{k}"]), k
    assert torch.count_nonzero(model20.stem.bn2.weight) == 0
    text = report.summary()
    assert "fc.weight" in text and "stem.shortcut.0.weight" in text
    json.dumps(report.to_dict())


def test_stem_initialisation_is_the_wavelength_adapted_7x7(model20, imagenet):
    sd, path = imagenet
    load_pretrained_backbone(model20, path)
    w7 = sd["conv1.weight"]
    counts = {j: sum(1 for v in IMAGENET_MAP.values() if v == j) for j in range(3)}
    assert counts == {0: 15, 1: 2, 2: 3}
    expected = torch.stack([w7[:, IMAGENET_MAP[b]] / counts[IMAGENET_MAP[b]] for b in ALL_BANDS], dim=1)
    shortcut = model20.stem.shortcut[0].weight
    torch.testing.assert_close(shortcut, expected.sum(dim=(2, 3), keepdim=True))
    # A spectrally flat, spatially constant input keeps the pretrained conv's response magnitude.
    v = 0.7
    original = F.conv2d(torch.full((1, 3, 7, 7), v), w7)[0, :, 0, 0]
    ours = F.conv2d(torch.full((1, 20, 1, 1), v), shortcut)[0, :, 0, 0]
    torch.testing.assert_close(ours, original, rtol=1e-4, atol=1e-5)
    # The first 3x3 conv is the centre of each adapted filter, rescaled to the 7x7 filter's norm.
    conv3 = model20.stem.conv1.weight
    centre = expected[:, :, 2:5, 2:5]
    torch.testing.assert_close(conv3.flatten(1).norm(dim=1), expected.flatten(1).norm(dim=1))
    cos = F.cosine_similarity(conv3.flatten(1), centre.flatten(1), dim=1)
    torch.testing.assert_close(cos, torch.ones(64))


def test_sentinel2_safetensors_with_prefixed_keys(model20, model3, sentinel2):
    sd, path = sentinel2
    report = load_pretrained_backbone(model20, path)
    assert report.preset == "sentinel2-13"
    assert {b: j for b, (j, _) in report.channel_map.items()} == SENTINEL2_MAP
    assert report.unused_source_channels == [4, 6, 8]  # B05, B07, B8A
    assert len(report.used) == 312 and report.unexpected == ["fc.bias", "fc.weight"]
    assert torch.equal(model20.layer3[5].conv2.weight, sd["layer3.5.conv2.weight"])
    rgb = load_pretrained_backbone(model3, path)
    assert {b: j for b, (j, _) in rgb.channel_map.items()} == {"R": 3, "G": 2, "B": 1}
    expected = sd["conv1.weight"][:, [3, 2, 1]].sum((2, 3))
    torch.testing.assert_close(model3.stem.shortcut[0].weight[:, :, 0, 0], expected)
    with torch.no_grad():
        y = model3.eval()(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 10, 32, 32) and torch.isfinite(y).all()


def test_nested_checkpoint_and_missing_batch_counters(model3, tmp_path):
    sd = random_state_dict(torchvision_resnet50_layout(3, 1000), seed=3)
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}  # some checkpoints drop them
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 90, "state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    report = load_pretrained_backbone(model3, path)
    assert len(report.used) == 312 - 52  # 52 BatchNorms in layer1..4 without their counter
    assert all(k.endswith("num_batches_tracked") for k in report.missing) and len(report.missing) == 52
    assert torch.equal(model3.layer1[0].conv1.weight, sd["layer1.0.conv1.weight"])


def test_in_memory_state_dict_and_custom_wavelengths(model3):
    sd = random_state_dict(torchvision_resnet50_layout(4, 10), seed=4)
    with pytest.raises(WeightsError, match="source_wavelengths"):
        load_pretrained_backbone(model3, sd)
    report = load_pretrained_backbone(model3, sd, source_wavelengths=[480, 545, 660, 832])
    assert report.preset is None
    assert {b: j for b, (j, _) in report.channel_map.items()} == {"R": 2, "G": 1, "B": 0}
    assert report.unused_source_channels == [3]


class _FakeStemModel(torch.nn.Module):
    """Only what the band checks look at (they run before any tensor is touched)."""

    def __init__(self, cin):
        super().__init__()
        self.stem = torch.nn.Module()
        self.stem.conv1 = torch.nn.Conv2d(cin, 1, 1)


def test_explicit_preset_and_bands(model3, imagenet):
    _, path = imagenet
    with pytest.raises(WeightsError, match="preset"):
        load_pretrained_backbone(model3, path, source_wavelengths="landsat")
    with pytest.raises(WeightsError, match="3 band names for a 20-channel"):
        load_pretrained_backbone(_FakeStemModel(20), path, bands=RGB_BANDS)
    with pytest.raises(WeightsError, match="wavelength"):
        load_pretrained_backbone(model3, path, bands=("R", "G", "X9"))


@pytest.mark.parametrize("damage,match", [
    (lambda sd: sd.pop("layer2.1.conv2.weight"), "missing keys.*layer2.1.conv2.weight"),
    (lambda sd: sd.__setitem__("layer4.0.conv3.weight", torch.zeros(1024, 512, 1, 1)),
     "shape mismatches.*layer4.0.conv3.weight"),
    (lambda sd: sd.pop("conv1.weight"), "no conv1.weight"),
    (lambda sd: sd.__setitem__("conv1.weight", torch.zeros(32, 3, 7, 7)), r"expected \(64, C, k, k\)"),
])
def test_not_a_resnet50_is_refused_before_touching_the_model(model3, imagenet, damage, match):
    sd = dict(imagenet[0])
    damage(sd)
    before = model3.layer1[0].conv1.weight.clone()
    with pytest.raises(WeightsError, match=match):
        load_pretrained_backbone(model3, sd)
    assert torch.equal(model3.layer1[0].conv1.weight, before)


def test_unreadable_or_missing_files(model3, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="bad.pth: unreadable"):
        load_pretrained_backbone(model3, bad)
    trunc = tmp_path / "trunc.safetensors"
    safetensors.torch.save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, str(trunc))
    trunc.write_bytes(trunc.read_bytes()[:100])
    with pytest.raises(WeightsError, match="trunc.safetensors: unreadable"):
        load_pretrained_backbone(model3, trunc)
    with pytest.raises(WeightsError, match="no such file"):
        load_pretrained_backbone(model3, tmp_path / "nope.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(WeightsError, match="unreadable"):
        load_pretrained_backbone(model3, tmp_path / "empty.pth")
    torch.save({"epoch": 3}, tmp_path / "no_tensors.pth")
    with pytest.raises(WeightsError, match="no tensors"):
        load_pretrained_backbone(model3, tmp_path / "no_tensors.pth")


def test_wavelength_presets_are_ordered_like_the_checkpoints():
    assert PRETRAINED_WAVELENGTHS["imagenet-rgb"] == (660.0, 545.0, 480.0)  # torchvision order R, G, B
    s2 = PRETRAINED_WAVELENGTHS["sentinel2-13"]
    assert len(s2) == 13 and s2[8] == 864.7 and s2[-1] == 2202.4  # B8A between B08 and B09; B12 last


def test_freeze_keeps_frozen_batchnorm_in_eval_and_blocks_gradients():
    m = ResNet50(in_channels=3)
    n = freeze_backbone(m, ("layer1", "layer2"))
    assert n == sum(p.numel() for s in ("layer1", "layer2") for p in getattr(m, s).parameters())
    m.train()
    assert not m.layer1[0].bn1.training and not m.layer2[3].bn3.training
    assert m.layer3[0].bn1.training and m.bn1.training
    running = m.layer1[0].bn1.running_mean.clone()
    m(torch.randn(2, 3, 32, 32)).sum().backward()
    assert m.layer1[0].conv1.weight.grad is None and m.layer2[0].conv2.weight.grad is None
    assert m.layer3[0].conv1.weight.grad is not None and m.conv1.weight.grad is not None
    assert torch.equal(m.layer1[0].bn1.running_mean, running)  # frozen statistics
    unfreeze_backbone(m)
    assert all(p.requires_grad for p in m.parameters())
    assert m.layer1[0].bn1.training


def test_freeze_res50unet_backbone_only(model3):
    n = freeze_backbone(model3)
    assert n == 23_498_496  # ResNet50's stages; the stem and decoder stay trainable
    assert all(p.requires_grad for p in model3.stem.parameters())
    assert all(p.requires_grad for p in model3.dec.parameters())
    model3.train()
    assert not model3.layer4[2].bn3.training and model3.stem.bn1.training
    unfreeze_backbone(model3)
    assert all(p.requires_grad for p in model3.parameters())


def test_staged_unfreezing_schedule(model3):
    schedule = {0: 0, 2: 1, 4: 2, 6: 4}
    seen = [trainable_stages(e, schedule) for e in range(8)]
    assert seen == [(), (), ("layer4",), ("layer4",), ("layer3", "layer4"), ("layer3", "layer4"),
                    BACKBONE_STAGES, BACKBONE_STAGES]
    assert trainable_stages(0, {"3": 0}) == BACKBONE_STAGES  # before the first key everything trains
    assert trainable_stages(5, {"3": 0}) == ()  # JSON string keys work
    assert apply_unfreeze_schedule(model3, 2, schedule) == ("layer4",)
    assert all(p.requires_grad for p in model3.layer4.parameters())
    assert not any(p.requires_grad for p in model3.layer3.parameters())
    assert model3.frozen_stages == {"layer1", "layer2", "layer3"}
    apply_unfreeze_schedule(model3, 6, schedule)
    assert all(p.requires_grad for p in model3.parameters()) and model3.frozen_stages == set()
    with pytest.raises(ValueError):
        trainable_stages(0, {0: 5})
    with pytest.raises(ValueError):
        freeze_backbone(model3, ["layer5"])

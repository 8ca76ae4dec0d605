"""Res50UNet: ResNet50 encoder (keys and parameters of its stages), stem, skips, shapes, the original's
decoder widths and parameter count, DropBlock and dropout placement."""

import json

import pytest
import torch

from dstl.errors import BandMismatchError, DstlError
from dstl.models.backbone import BACKBONE_STAGES, Bottleneck, ResNet50
from dstl.models.dropblock import DropBlock2d
from dstl.models.res50unet import Res50UNet

# torchvision's published figures for resnet50: 25,557,032 parameters with the 1000-class fc;
# without fc (2048 * 1000 + 1000) the backbone has 23,508,032, of which conv1 (64*3*7*7) and bn1 (128)
# form the 7x7 stem that Res50UNet replaces.
RESNET50_PARAMS = 25_557_032
RESNET50_BACKBONE_PARAMS = 23_508_032
RESNET50_STEM_PARAMS = 64 * 3 * 7 * 7 + 2 * 64

SMALL_DECODER = [16, 16, 8, 8]


def shapes(m: torch.nn.Module) -> dict:
    return {k: v.shape for k, v in m.state_dict().items()}


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def default_model():
    return Res50UNet()


# Building a Res50UNet costs ~1-2 s (the ResNet50 stages are fixed-size), so tests share two small ones.
@pytest.fixture(scope="module")
def m20():
    return Res50UNet(in_channels=20, decoder_widths=SMALL_DECODER)


@pytest.fixture(scope="module")
def m3():
    return Res50UNet(in_channels=3, decoder_widths=SMALL_DECODER)


def test_reference_resnet50_matches_torchvision_counts():
    r = ResNet50(in_channels=3, num_classes=1000)
    assert n_params(r) == RESNET50_PARAMS
    assert len(r.state_dict()) == 320  # torchvision resnet50().state_dict() has 320 entries
    assert n_params(ResNet50(in_channels=3)) == RESNET50_BACKBONE_PARAMS


def test_encoder_stages_are_resnet50_stages(default_model):
    m = default_model
    stages = sum(n_params(getattr(m, s)) for s in BACKBONE_STAGES)
    assert stages == RESNET50_BACKBONE_PARAMS - RESNET50_STEM_PARAMS  # 23,498,496
    ref = ResNet50()
    ours = {k: v.shape for k, v in m.state_dict().items() if k.startswith("layer")}
    theirs = {k: v.shape for k, v in ref.state_dict().items() if k.startswith("layer")}
    assert ours == theirs
    # The stem: 3x3 20->64, 3x3 64->64, 1x1 20->64 shortcut, each followed by BatchNorm.
    stem = 9 * 20 * 64 + 9 * 64 * 64 + 20 * 64 + 3 * 2 * 64
    assert n_params(m.stem) == stem
    encoder = n_params(torch.nn.ModuleList([m.stem] + [getattr(m, s) for s in BACKBONE_STAGES]))
    assert encoder == sum(p.numel() for p in m.encoder_parameters())
    print(f"Res50UNet(20 -> 10): {n_params(m):,} parameters; encoder {encoder:,} "
          f"(ResNet50 stages {stages:,} + residual stem {stem:,}); decoder+head {n_params(m) - encoder:,}")


def test_default_is_the_originals_decoder_and_parameter_count(default_model):
    """DESIGN.md section 3: decoder 2048->1024 (block 2048->1024), ->512 (1024->512), ->256 (512->256),
    ->64 (128->64); 71,903,562 parameters for 20 -> 10 (the number README and the docstring quote)."""
    m = default_model
    steps = [(2048, 1024), (1024, 512), (512, 256), (256, 64)]
    assert [(u.in_channels, u.out_channels) for u in m.up] == steps
    assert [(d[0].in_channels, d[0].out_channels) for d in m.dec] == [(2048, 1024), (1024, 512), (512, 256),
                                                                    (128, 64)]
    assert m.head.in_channels == 64
    assert n_params(m) == 71_903_562
    # Counted from the description: ResNet50 stages + residual stem + decoder steps + head.
    def block(a, b):
        return 9 * a * b + 9 * b * b + 4 * b
    stem = 9 * 20 * 64 + 9 * 64 * 64 + 20 * 64 + 3 * 2 * 64
    decoder = sum(4 * cin * cout + cout + block(cout + skip, cout)
                  for (cin, cout), skip in zip(steps, (1024, 512, 256, 64), strict=True))
    assert n_params(m) == RESNET50_BACKBONE_PARAMS - RESNET50_STEM_PARAMS + stem + decoder + 64 * 10 + 10
    assert m.model_args == {"in_channels": 20, "num_classes": 10, "dropout": 0.2, "drop_block": 0.2,
                            "drop_block_size": 7, "decoder_widths": [1024, 512, 256, 64]}


def test_dropblock_inside_every_layer3_and_layer4_bottleneck_and_dropout2d_after_the_decoder(default_model):
    m = default_model
    drops = {name: mod for name, mod in m.named_modules()
             if isinstance(mod, DropBlock2d | torch.nn.Dropout | torch.nn.Dropout2d)}
    blocks = [f"layer3.{i}" for i in range(6)] + [f"layer4.{i}" for i in range(3)]
    assert set(drops) == {f"{b}.drop_block" for b in blocks} | {"dec.3.6"}
    assert all(isinstance(drops[f"{b}.drop_block"], DropBlock2d) and drops[f"{b}.drop_block"].p == 0.2
               and drops[f"{b}.drop_block"].block_size == 7 for b in blocks)
    assert type(drops["dec.3.6"]) is torch.nn.Dropout2d and drops["dec.3.6"].p == 0.2
    assert m.dec[-1][-1] is drops["dec.3.6"]  # the last layer of the last decoder block
    for stage in BACKBONE_STAGES:
        for block in getattr(m, stage):
            assert isinstance(block, Bottleneck)
            assert isinstance(block.drop_block, DropBlock2d) == (stage in ("layer3", "layer4")), stage
    none = Res50UNet(dropout=0.0, drop_block=0.0, decoder_widths=SMALL_DECODER)
    assert not any(isinstance(mod, DropBlock2d | torch.nn.Dropout2d) for mod in none.modules())
    assert Res50UNet(drop_block_size=5, decoder_widths=SMALL_DECODER).layer4[0].drop_block.block_size == 5


def test_dropout_only_in_training(m20):
    m = m20.train()
    x = torch.randn(1, 20, 64, 64)
    torch.manual_seed(0)
    a = m(x)
    torch.manual_seed(1)
    assert not torch.equal(a, m(x))
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), m(x))


def test_skips_and_resolutions(m20):
    m = m20.eval()
    shapes = {}
    hooks = [getattr(m, name).register_forward_hook(
        lambda mod, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
        for name in ("stem", "maxpool", "layer1", "layer2", "layer3", "layer4")]
    with torch.no_grad():
        y = m(torch.randn(1, 20, 64, 96))
    for h in hooks:
        h.remove()
    assert shapes == {"stem": (64, 64, 96), "maxpool": (64, 32, 48), "layer1": (256, 32, 48),
                      "layer2": (512, 16, 24), "layer3": (1024, 8, 12), "layer4": (2048, 4, 6)}
    assert y.shape == (1, 10, 64, 96)
    assert len(m.up) == 4  # a 4-step decoder back to full resolution


@pytest.mark.parametrize("cin,h,w", [(20, 32, 32), (3, 32, 64)])
def test_output_shape_for_sizes_and_band_counts(cin, h, w, m20, m3):
    m = (m20 if cin == 20 else m3).eval()
    with torch.no_grad():
        y = m(torch.randn(1, cin, h, w))
    assert y.shape == (1, 10, h, w) and torch.isfinite(y).all()


def test_input_checks(m20):
    m = m20
    with pytest.raises(BandMismatchError):
        m(torch.randn(1, 3, 32, 32))
    with pytest.raises(DstlError, match="multiples of 32"):
        m(torch.randn(1, 20, 48, 32))


def test_forward_backward(m3):
    torch.manual_seed(0)
    m = m3.train()
    x = torch.randn(1, 3, 32, 32)
    y = m(x)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(y, torch.zeros_like(y))
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    assert float(m.stem.conv1.weight.grad.abs().sum()) > 0
    assert float(m.layer4[2].conv3.weight.grad.abs().sum()) > 0
    m.zero_grad(set_to_none=True)


def test_bf16_autocast_and_channels_last(m20):
    torch.manual_seed(0)
    m = m20.eval()
    torch.nn.init.normal_(m.head.weight, std=0.1)
    x = torch.randn(1, 20, 32, 32)
    with torch.no_grad():
        ref = m(x)
        m = m.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = m(x.to(memory_format=torch.channels_last))
    assert y.dtype == torch.bfloat16 and y.shape == ref.shape
    assert (y.float() - ref).abs().max() / ref.abs().max() < 0.1


def test_model_args_json_round_trip():
    m = Res50UNet(in_channels=3, num_classes=5, dropout=0.3, drop_block=0.1, drop_block_size=3,
                  decoder_widths=(32, 16, 16, 8))
    args = json.loads(json.dumps(m.model_args))
    assert args == {"in_channels": 3, "num_classes": 5, "dropout": 0.3, "drop_block": 0.1,
                    "drop_block_size": 3, "decoder_widths": [32, 16, 16, 8]}
    rebuilt = Res50UNet(**args)
    assert shapes(rebuilt) == shapes(m)


@pytest.mark.parametrize("kwargs", [{"decoder_widths": [8, 8]}, {"decoder_widths": [8, 8, 8, 0]},
                                    {"in_channels": -1}, {"dropout": 2}, {"drop_block": 1.0},
                                    {"drop_block_size": 0}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        Res50UNet(**kwargs)

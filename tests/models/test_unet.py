"""UNet: shapes, parameter count against the spec, gradients, dropout placement (original and deep),
bf16 + channels_last."""

import json

import pytest
import torch

from dstl.errors import BandMismatchError, DstlError
from dstl.models.unet import UNet

# "~31 M parameters" (DESIGN.md section 3): the default 20 -> 10 UNet must be within 3 % of 31.0 M.
SPEC_PARAMS = 31.0e6
SPEC_TOLERANCE = 0.03


def shapes(m: torch.nn.Module) -> dict:
    return {k: v.shape for k, v in m.state_dict().items()}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def spec_param_count(cin: int, ncls: int, base: int) -> int:
    """Parameters of the spec'd UNet, counted from the architecture description, not from the code.

    Block(a, b) = 3x3 conv a->b and b->b without bias (BatchNorm follows) + 2 BN (gamma, beta);
    up(a, b) = 2x2 transposed conv with bias; head = 1x1 conv with bias.
    """
    def block(a, b):
        return 9 * a * b + 9 * b * b + 4 * b

    w = [base * 2 ** k for k in range(6)]
    total = block(cin, w[0]) + sum(block(w[k - 1], w[k]) for k in range(1, 6))  # encoder + bottleneck
    for k in range(5, 0, -1):
        total += 4 * w[k] * w[k - 1] + w[k - 1]  # transposed conv w[k] -> w[k-1]
        total += block(2 * w[k - 1], w[k - 1])   # after concatenating the skip
    return total + w[0] * ncls + ncls


@pytest.mark.parametrize("cin", [20, 3])
def test_default_parameter_count_matches_spec(cin):
    m = UNet(in_channels=cin)
    count = n_params(m)
    print(f"UNet({cin} -> 10, widths 32..512 + 1024): {count:,} parameters")
    assert count == spec_param_count(cin, 10, 32)
    assert abs(count - SPEC_PARAMS) / SPEC_PARAMS < SPEC_TOLERANCE
    assert count == (31_105_706 if cin == 20 else 31_100_810)  # DESIGN.md section 3
    assert m.model_args == {"in_channels": cin, "num_classes": 10, "base_width": 32, "dropout": 0.2,
                            "dropout_placement": "original"}
    assert n_params(UNet(in_channels=cin, dropout_placement="deep")) == count  # dropout has no parameters


def test_default_widths_and_bottleneck_at_7x7_for_224():
    m = UNet(base_width=4).eval()
    assert [b[0].out_channels for b in m.down] == [4, 8, 16, 32, 64]
    assert m.bottleneck[0].out_channels == 128
    seen = {}

    def record(module, inputs, output):
        seen["shape"] = tuple(output.shape)

    m.bottleneck.register_forward_hook(record)
    with torch.no_grad():
        y = m(torch.randn(1, 20, 224, 224))
    assert seen["shape"] == (1, 128, 7, 7)
    assert y.shape == (1, 10, 224, 224)


@pytest.mark.parametrize("cin,ncls,h,w",
                         [(20, 10, 32, 32), (3, 10, 64, 96), (20, 1, 96, 32), (3, 4, 160, 64)])
def test_output_shape_for_several_sizes_and_band_counts(cin, ncls, h, w):
    m = UNet(in_channels=cin, num_classes=ncls, base_width=4).eval()
    with torch.no_grad():
        y = m(torch.randn(2, cin, h, w))
    assert y.shape == (2, ncls, h, w)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()


def test_outputs_are_logits_not_probabilities():
    m = UNet(in_channels=3, base_width=4).eval()
    torch.nn.init.normal_(m.head.weight, std=1.0)
    with torch.no_grad():
        y = m(torch.randn(1, 3, 64, 64) * 3)
    assert y.min() < 0 or y.max() > 1  # a sigmoid output would lie in (0, 1)


@pytest.mark.parametrize("shape", [(1, 20, 48, 64), (1, 20, 64, 40), (1, 20, 16, 16)])
def test_sides_not_multiple_of_32_is_a_clear_error(shape):
    m = UNet(base_width=4)
    with pytest.raises(DstlError, match="multiples of 32"):
        m(torch.randn(shape))


def test_wrong_band_count_is_a_band_mismatch():
    m = UNet(in_channels=20, base_width=4)
    with pytest.raises(BandMismatchError, match="20"):
        m(torch.randn(1, 3, 32, 32))


def test_forward_backward_reaches_every_parameter():
    torch.manual_seed(0)
    m = UNet(in_channels=20, base_width=4).train()
    x = torch.randn(2, 20, 32, 32)
    target = (torch.rand(2, 10, 32, 32) > 0.5).float()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(m(x), target)
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert sum(float(p.grad.abs().sum()) > 0 for p in m.parameters()) == len(list(m.parameters()))


def dropout_modules(m: torch.nn.Module) -> dict[str, tuple[type, float]]:
    return {name: (type(mod), mod.p) for name, mod in m.named_modules()
            if isinstance(mod, torch.nn.Dropout | torch.nn.Dropout2d)}


def test_original_dropout_placement_is_the_originals():
    """DESIGN.md section 3: Dropout2d(0.2) last in each of the five encoder blocks (so the skips carry
    it), none in the bottleneck nor decoder blocks 5..2, one last in the full-resolution decoder block."""
    m = UNet(base_width=4)
    assert dropout_modules(m) == {**{f"down.{k}.6": (torch.nn.Dropout2d, 0.2) for k in range(5)},
                                  "dec.4.6": (torch.nn.Dropout2d, 0.2)}
    assert all(isinstance(block[-1], torch.nn.Dropout2d) for block in m.down)  # last layer of the block
    assert isinstance(m.dec[-1][-1], torch.nn.Dropout2d)
    seen = {}
    m.down[2].register_forward_hook(lambda mod, i, o: seen.__setitem__("skip", o))
    m.train()
    torch.manual_seed(0)
    m(torch.randn(2, 20, 64, 64))
    skip = seen["skip"]  # (2, 16, 16, 16): whole feature maps are zero in the skip itself
    zero_maps = (skip.flatten(2).abs().amax(dim=2) == 0).float().mean()
    assert 0.05 < zero_maps < 0.5


def test_deep_dropout_placement_is_kept_as_an_option():
    """The placement the bundled weights were trained with: element-wise Dropout on the pooled inputs of
    levels 3-5 and of the bottleneck, after the bottleneck and after the deepest decoder block."""
    m = UNet(base_width=4, dropout=0.1, dropout_placement="deep")
    assert dropout_modules(m) == {**{f"down_dropout.{k}": (torch.nn.Dropout, 0.1) for k in range(1, 5)},
                                  "bottleneck.6": (torch.nn.Dropout, 0.1), "dec.0.6": (torch.nn.Dropout, 0.1)}
    assert m.model_args["dropout_placement"] == "deep"
    assert list(m.state_dict()) == list(UNet(base_width=4).state_dict())  # same keys: weights interchange


@pytest.mark.parametrize("placement", ["original", "deep"])
def test_dropout_is_active_in_training_only(placement):
    m = UNet(base_width=4, dropout=0.2, dropout_placement=placement)
    x = torch.randn(1, 20, 64, 64)
    m.train()
    torch.manual_seed(1)
    a = m(x)
    torch.manual_seed(2)
    b = m(x)
    assert not torch.equal(a, b)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), m(x))
    no_drop = UNet(base_width=4, dropout=0.0, dropout_placement=placement)
    assert dropout_modules(no_drop) == {}


def test_encoder_features_and_decoder_shapes():
    m = UNet(in_channels=3, num_classes=4, base_width=4).eval()
    with torch.no_grad():
        features = m.encode(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in features] == [(4, 64, 96), (8, 32, 48), (16, 16, 24), (32, 8, 12),
                                                      (64, 4, 6), (128, 2, 3)]
    assert [u.out_channels for u in m.up] == [64, 32, 16, 8, 4]


def test_bf16_autocast_and_channels_last_on_cpu_match_fp32():
    torch.manual_seed(0)
    m = UNet(in_channels=20, base_width=8).eval()
    torch.nn.init.normal_(m.head.weight, std=0.1)
    x = torch.randn(1, 20, 64, 64)
    with torch.no_grad():
        ref = m(x)
        m_cl = m.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = m_cl(x.to(memory_format=torch.channels_last))
    assert y.dtype == torch.bfloat16 and y.shape == ref.shape
    err = (y.float() - ref).abs().max() / ref.abs().max()
    assert err < 0.05, err


def test_model_args_are_json_and_rebuild_the_same_architecture():
    m = UNet(in_channels=3, num_classes=7, base_width=6, dropout=0.1)
    args = json.loads(json.dumps(m.model_args))
    rebuilt = UNet(**args)
    assert shapes(rebuilt) == shapes(m)


@pytest.mark.parametrize("kwargs", [{"in_channels": 0}, {"num_classes": 2.5}, {"base_width": True},
                                    {"dropout": 1.0}, {"dropout": -0.1}, {"dropout": "0.2"},
                                    {"dropout_placement": "shallow"}])
def test_bad_constructor_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        UNet(**kwargs)

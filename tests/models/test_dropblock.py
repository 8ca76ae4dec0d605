"""DropBlock2d: identity in eval, contiguous square blocks dropped in training at about the rate p."""

import pytest
import torch
import torch.nn.functional as F

from dstl.models.dropblock import DropBlock2d


def test_identity_in_eval_and_at_p_zero():
    x = torch.randn(2, 3, 32, 32)
    assert DropBlock2d(0.2).eval()(x) is x
    assert DropBlock2d(0.0).train()(x) is x


def test_drops_about_p_of_each_map_and_keeps_the_expected_sum():
    torch.manual_seed(0)
    x = torch.ones(16, 32, 64, 64)
    y = DropBlock2d(0.2, 7).train()(x)
    dropped = float((y == 0).float().mean())
    assert 0.15 < dropped < 0.25, dropped  # the paper's gamma: a little under p where blocks overlap
    kept = y[y != 0]
    assert torch.allclose(kept, kept[0].expand_as(kept)) and abs(float(y.mean()) - 1.0) < 1e-4


def test_dropped_pixels_form_whole_blocks():
    """Every dropped pixel lies in a fully dropped 7 x 7 square: the mask is its own morphological opening."""
    torch.manual_seed(1)
    b = 7
    y = DropBlock2d(0.1, b).train()(torch.ones(4, 8, 48, 48))
    dropped = (y == 0).float()
    assert dropped.sum() > 0
    # erosion: 1 where the b x b window starting there is all dropped; dilation back over the window.
    eroded = -F.max_pool2d(-dropped, b, stride=1)
    opened = F.max_pool2d(F.pad(eroded, (b - 1, b - 1, b - 1, b - 1)), b, stride=1)
    assert torch.equal(opened, dropped)
    # masks differ between channels and samples (timm's per-channel masks, not one per batch)
    assert not torch.equal(dropped[0, 0], dropped[0, 1]) and not torch.equal(dropped[0, 0], dropped[1, 0])


def test_maps_smaller_than_the_block_shrink_it():
    torch.manual_seed(2)
    y = DropBlock2d(0.2, 7).train()(torch.ones(64, 16, 4, 4))  # layer4 of a 64 px crop
    dropped = (y == 0).float().mean(dim=(2, 3))
    assert set(torch.unique(dropped).tolist()) <= {0.0, 1.0}  # a 4 x 4 map is one block
    assert 0.1 < float(dropped.mean()) < 0.3


def test_gradients_flow_and_bf16_keeps_its_dtype():
    x = torch.randn(2, 4, 16, 16, requires_grad=True)
    DropBlock2d(0.3, 3).train()(x).sum().backward()
    assert x.grad is not None and (x.grad == 0).any() and (x.grad != 0).any()
    assert DropBlock2d(0.3, 3).train()(x.detach().bfloat16()).dtype == torch.bfloat16


@pytest.mark.parametrize("kwargs", [{"p": 1.0}, {"p": -0.1}, {"p": "0.2"}, {"block_size": 0},
                                    {"block_size": 2.5}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        DropBlock2d(**kwargs)

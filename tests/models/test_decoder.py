"""The shared UNet decoder: step layout, skip order, dropout as a block's last layer, and that a new
architecture is an encoder plus a few lines."""

import pytest
import torch
from torch import nn

from dstl.models.decoder import ConvBlock, build_decoder, decode
from dstl.models.res50unet import Res50UNet
from dstl.models.unet import UNet


class TinyNet(nn.Module):
    """A third architecture: a two-level strided-conv encoder, the shared decoder and a 1x1 head."""

    def __init__(self):
        super().__init__()
        self.enc = nn.ModuleList([ConvBlock(3, 4), nn.Conv2d(4, 8, 3, stride=2, padding=1),
                                  nn.Conv2d(8, 16, 3, stride=2, padding=1)])
        self.up, self.dec = build_decoder((4, 8, 16), (8, 4), [None, nn.Dropout2d(0.5)])
        self.head = nn.Conv2d(4, 2, 1)

    def encode(self, x):
        f0 = self.enc[0](x)
        f1 = self.enc[1](f0)
        return [f0, f1, self.enc[2](f1)]

    def forward(self, x):
        return self.head(decode(self.encode(x), self.up, self.dec))


def test_a_third_architecture_is_an_encoder_and_the_shared_decoder():
    m = TinyNet().eval()
    assert m(torch.randn(2, 3, 16, 24)).shape == (2, 2, 16, 24)
    assert [(u.in_channels, u.out_channels) for u in m.up] == [(16, 8), (8, 4)]
    assert [(d[0].in_channels, d[0].out_channels) for d in m.dec] == [(16, 8), (8, 4)]  # skip + up -> out
    assert isinstance(m.dec[1][-1], nn.Dropout2d) and len(m.dec[0]) == 6


def test_the_skip_comes_before_the_upsampled_map():
    up, dec = build_decoder((2, 4), (3,))
    seen = {}
    dec[0].register_forward_pre_hook(lambda mod, args: seen.__setitem__("x", args[0]))
    skip, deep = torch.randn(1, 2, 8, 8), torch.randn(1, 4, 4, 4)
    decode([skip, deep], up, dec)
    assert torch.equal(seen["x"][:, :2], skip)
    assert torch.allclose(seen["x"][:, 2:], up[0](deep))


def test_both_models_run_on_it():
    for m in (UNet(base_width=4), Res50UNet(in_channels=3, decoder_widths=[8, 8, 8, 8])):
        assert all(isinstance(d, ConvBlock) for d in m.dec)
        assert all(isinstance(u, nn.ConvTranspose2d) for u in m.up)


def test_a_trailing_dropout_adds_no_state_dict_keys():
    assert list(ConvBlock(3, 4, nn.Dropout2d(0.2)).state_dict()) == list(ConvBlock(3, 4).state_dict())


@pytest.mark.parametrize("widths,dropout", [((8,), None), ((8, 4), [None])])
def test_mismatched_lengths_are_refused(widths, dropout):
    with pytest.raises(ValueError):
        build_decoder((4, 8, 16), widths, dropout)

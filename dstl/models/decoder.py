"""The UNet decoder shared by `UNet` and `Res50UNet`, and the conv block both are built from.

Every model here has the shape encoder -> decoder -> head (as in ``segmentation_models_pytorch``):

- the encoder returns its features shallow to deep, ``[f_0, ..., f_n]``; f_0 .. f_{n-1} are the skips
  and f_n (the deepest, the bottleneck's output) starts the decoder. Each f_k has half the height and
  width of f_{k-1};
- the decoder (`build_decoder`, run by `decode`) has n steps, deepest first. Step i upsamples by a
  2x2 stride-2 transposed conv to ``decoder_channels[i]`` channels, concatenates the skip of the same
  resolution *before* the upsampled map (``cat([skip, up])``) and applies a `ConvBlock` (skip + out
  -> out channels), optionally followed by a dropout layer;
- the head is a 1x1 conv from the last decoder width to one logit map per class.

A new architecture is therefore an ``encode`` method returning the feature list, its channel counts
and three lines: ``self.up, self.dec = build_decoder(...)``, ``self.head = nn.Conv2d(...)`` and
``forward = head(decode(encode(x), up, dec))``. The decoder's layers are the models' own ``up.<i>``
(transposed convs) and ``dec.<i>`` (conv blocks; a trailing dropout inside a block adds no keys), the
state-dict keys the bundled weights were saved with -- which is why they are not wrapped in a
``decoder`` submodule.
"""

from collections.abc import Sequence

import torch
from torch import nn


class ConvBlock(nn.Sequential):
    """(3x3 conv, BatchNorm, ReLU) x2, padded so H x W is kept; conv biases are off (BN has them).

    `dropout`, when given, is appended as the block's last layer (index 6); it has no parameters, so
    the state-dict keys (``0``, ``1``, ``3``, ``4``) are the same with or without it.
    """

    def __init__(self, cin: int, cout: int, dropout: nn.Module | None = None):
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                  nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                  nn.ReLU(inplace=True)]
        super().__init__(*layers, *([dropout] if dropout is not None else []))


def build_decoder(encoder_channels: Sequence[int], decoder_channels: Sequence[int],
                  dropout: Sequence[nn.Module | None] | None = None) -> tuple[nn.ModuleList, nn.ModuleList]:
    """The decoder's layers: ``(up, dec)``, one transposed conv and one `ConvBlock` per step.

    Args:
        encoder_channels: channels of the encoder features, shallow to deep (the last one is the
            bottleneck's output, the others are the skips).
        decoder_channels: output channels of each step, deepest first; one per skip.
        dropout: per step (deepest first), a module appended to that step's block, or None.

    Step i: ``up[i]`` is ConvTranspose2d(in -> decoder_channels[i], 2x2, stride 2) and ``dec[i]`` is
    ConvBlock(skip + decoder_channels[i] -> decoder_channels[i]). Run them with `decode`.
    """
    skips = list(encoder_channels[-2::-1])
    if len(decoder_channels) != len(skips):
        raise ValueError(f"{len(skips)} skips need {len(skips)} decoder widths, got {list(decoder_channels)}")
    dropout = list(dropout) if dropout is not None else [None] * len(skips)
    if len(dropout) != len(skips):
        raise ValueError(f"{len(skips)} decoder steps need {len(skips)} dropout entries, got {len(dropout)}")
    up, dec = nn.ModuleList(), nn.ModuleList()
    cin = encoder_channels[-1]
    for cout, skip, drop in zip(decoder_channels, skips, dropout, strict=True):
        up.append(nn.ConvTranspose2d(cin, cout, 2, stride=2))
        dec.append(ConvBlock(skip + cout, cout, drop))
        cin = cout
    return up, dec


def decode(features: Sequence[torch.Tensor], up: nn.ModuleList, dec: nn.ModuleList) -> torch.Tensor:
    """Run the decoder over the encoder `features` (shallow to deep): (N, C_0, H_0, W_0) out, where C_0
    is the last decoder width and H_0 x W_0 the resolution of the shallowest feature."""
    h = features[-1]
    for step_up, step_dec, skip in zip(up, dec, reversed(features[:-1]), strict=True):
        h = step_dec(torch.cat([skip, step_up(h)], dim=1))
    return h

"""Res50UNet: a 4-step UNet whose encoder and bottleneck are a ResNet50 (DESIGN.md section 3).

Layout for an (N, C, H, W) input (H, W multiples of 32, the project's tile contract; 16 would do):

    stem    ResidualStem: 3x3 conv-BN-ReLU, 3x3 conv-BN, + 1x1 conv-BN shortcut, ReLU  -> 64 x H      (skip)
    maxpool 3x3 stride 2 (kept from ResNet)                                           -> 64 x H/2
    layer1  3 bottlenecks                                                             -> 256 x H/2   (skip)
    layer2  4 bottlenecks, stride 2                                                   -> 512 x H/4   (skip)
    layer3  6 bottlenecks, stride 2, DropBlock inside each block                      -> 1024 x H/8  (skip)
    layer4  3 bottlenecks, stride 2, DropBlock inside each (the UNet bottleneck)      -> 2048 x H/16
    decoder 4 x (2x2 transposed conv up, concat skip, (3x3 conv-BN-ReLU) x2), `dstl.models.decoder`:
            2048 -> 1024 (block 2048 -> 1024), -> 512 (1024 -> 512), -> 256 (512 -> 256),
            -> 64 (128 -> 64) + Dropout2d                                             -> 64 x H
    head    1x1 conv -> num_classes logits at H x W

The defaults are the original's: decoder widths 1024 / 512 / 256 / 64, channel dropout
(`nn.Dropout2d`, p = 0.2) as the last layer of the last decoder block, and DropBlock (p = 0.2, 7 x 7
blocks -- timm's default block size; `dstl.models.dropblock.DropBlock2d`) inside every bottleneck
block of layer3 and layer4. 71,903,562 parameters for 20 bands -> 10 classes (71,892,682 for RGB):
23,498,496 in the ResNet50 stages, 50,048 in the stem, 48,355,018 in the decoder and head. Dropout
and DropBlock have no parameters and are inactive in eval mode.

The stem replaces ResNet's 7x7 stride-2 conv and runs at full resolution, so the four decoder steps
end at the input resolution with a full-resolution skip. ``stem``, ``layer1``..``layer4`` use
torchvision key names; `dstl.models.pretrained.load_pretrained_backbone` fills them from a standard
ResNet50 checkpoint and `freeze_backbone` / `apply_unfreeze_schedule` control which stages train.
"""

import torch
from torch import nn

from dstl.models.backbone import ResidualStem, StageFreezing, _init_weights, make_resnet50_stages
from dstl.models.decoder import build_decoder, decode
from dstl.models.mixin import HubMixin
from dstl.models.unet import _check_dropout, _check_int, check_input

#: Width of the stem (fixed: ResNet50's layer1 takes 64 channels).
STEM_WIDTH = 64
#: Output channels of stem, layer1, layer2, layer3, layer4.
ENCODER_CHANNELS: tuple[int, ...] = (STEM_WIDTH, 256, 512, 1024, 2048)


class Res50UNet(StageFreezing, HubMixin, nn.Module, architecture="res50unet"):
    """ResNet50-encoder UNet (see the module docstring for the exact layout).

    Args (JSON-serialisable; saved as ``model_args`` in config.json):
        in_channels: input bands (20 or 3).
        num_classes: output logit maps (10).
        dropout: channel-dropout (`nn.Dropout2d`) probability after the last decoder block (0: none).
        drop_block: DropBlock probability inside every bottleneck block of layer3 and layer4 (0: none).
        drop_block_size: side of DropBlock's squares in pixels (on maps smaller than that, the map's).
        decoder_widths: output channels of the four decoder steps, deepest first.
    """

    size_multiple = 32

    def __init__(self, in_channels: int = 20, num_classes: int = 10, dropout: float = 0.2,
                 drop_block: float = 0.2, drop_block_size: int = 7,
                 decoder_widths: list[int] | tuple[int, ...] = (1024, 512, 256, 64)):
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels)
        self.num_classes = _check_int("num_classes", num_classes)
        dropout = _check_dropout(dropout)
        drop_block = _check_dropout(drop_block, "drop_block")
        _check_int("drop_block_size", drop_block_size)
        if not isinstance(decoder_widths, list | tuple) or len(decoder_widths) != 4:
            raise ValueError(f"decoder_widths must be 4 integers, got {decoder_widths!r}")
        decoder_widths = [_check_int("decoder_widths[i]", w) for w in decoder_widths]
        self.model_args = {"in_channels": in_channels, "num_classes": num_classes, "dropout": dropout,
                           "drop_block": drop_block, "drop_block_size": drop_block_size,
                           "decoder_widths": list(decoder_widths)}

        self.stem = ResidualStem(in_channels, STEM_WIDTH)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        for name, stage in make_resnet50_stages((0.0, 0.0, drop_block, drop_block), drop_block_size).items():
            self.add_module(name, stage)
        last_dropout = nn.Dropout2d(dropout) if dropout > 0 else None
        self.up, self.dec = build_decoder(ENCODER_CHANNELS, decoder_widths, [None, None, None, last_dropout])
        self.head = nn.Conv2d(decoder_widths[-1], num_classes, 1)
        _init_weights(self)
        if self.head.weight.is_meta:
            return
        for m in self.up:
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)

    def encoder_parameters(self):
        """Parameters of the stem and layer1..layer4 (the ResNet50 part)."""
        for module in (self.stem, self.layer1, self.layer2, self.layer3, self.layer4):
            yield from module.parameters()

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder features, shallow to deep: stem (64 x H), layer1 (256 x H/2), layer2 (512 x H/4),
        layer3 (1024 x H/8) -- the skips -- and layer4 (2048 x H/16), the bottleneck."""
        s0 = self.stem(x)
        s1 = self.layer1(self.maxpool(s0))
        s2 = self.layer2(s1)
        s3 = self.layer3(s2)
        return [s0, s1, s2, s3, self.layer4(s3)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, num_classes, H, W) logits; H, W multiples of 32."""
        check_input(x, self.in_channels, self.size_multiple, "Res50UNet")
        return self.head(decode(self.encode(x), self.up, self.dec))

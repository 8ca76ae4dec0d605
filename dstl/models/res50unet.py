"""Res50UNet: a 4-step UNet whose encoder and bottleneck are a ResNet50.

Layout for an (N, C, H, W) input (H, W multiples of 32, the project's tile contract; 16 would do):

    stem    ResidualStem: 3x3 conv-BN-ReLU, 3x3 conv-BN, + 1x1 conv-BN shortcut, ReLU  -> 64 x H      (skip)
    maxpool 3x3 stride 2 (kept from ResNet)                                           -> 64 x H/2
    layer1  3 bottlenecks                                                             -> 256 x H/2   (skip)
    layer2  4 bottlenecks, stride 2                                                   -> 512 x H/4   (skip)
    layer3  6 bottlenecks, stride 2, dropout inside each block                        -> 1024 x H/8  (skip)
    layer4  3 bottlenecks, stride 2, dropout inside each block (the UNet bottleneck)  -> 2048 x H/16
    decoder 4 x (2x2 transposed conv up, concat skip, (3x3 conv-BN-ReLU) x2): H/16 -> H/8 -> H/4 -> H/2 -> H
    head    1x1 conv -> num_classes logits at H x W

The stem replaces ResNet's 7x7 stride-2 conv and runs at full resolution, so the four decoder steps
end at the input resolution with a full-resolution skip. ``stem``, ``layer1``..``layer4`` use
torchvision key names; `dstl.models.backbone.load_pretrained_backbone` fills them from a standard
ResNet50 checkpoint and `freeze_backbone` / `apply_unfreeze_schedule` control which stages train.
"""

import torch
from torch import nn

from dstl.models.backbone import ResidualStem, StageFreezing, _init_weights, make_resnet50_stages
from dstl.models.mixin import HubMixin
from dstl.models.unet import ConvBlock, _check_dropout, _check_int, check_input

#: Width of the stem (fixed: ResNet50's layer1 takes 64 channels).
STEM_WIDTH = 64
#: Output channels of stem, layer1, layer2, layer3, layer4.
ENCODER_CHANNELS: tuple[int, ...] = (STEM_WIDTH, 256, 512, 1024, 2048)


class Res50UNet(StageFreezing, HubMixin, nn.Module, architecture="res50unet"):
    """ResNet50-encoder UNet (see the module docstring for the exact layout).

    Args (JSON-serialisable; saved as ``model_args`` in config.json):
        in_channels: input bands (20 or 3).
        num_classes: output logit maps (10).
        dropout: dropout probability inside the bottleneck blocks of layer3 and layer4 (0 disables).
        decoder_widths: output channels of the four decoder steps, deepest first.
    """

    size_multiple = 32

    def __init__(self, in_channels: int = 20, num_classes: int = 10, dropout: float = 0.2,
                 decoder_widths: list[int] | tuple[int, ...] = (512, 256, 128, 64)):
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels)
        self.num_classes = _check_int("num_classes", num_classes)
        dropout = _check_dropout(dropout)
        if not isinstance(decoder_widths, list | tuple) or len(decoder_widths) != 4:
            raise ValueError(f"decoder_widths must be 4 integers, got {decoder_widths!r}")
        decoder_widths = [_check_int("decoder_widths[i]", w) for w in decoder_widths]
        self.model_args = {"in_channels": in_channels, "num_classes": num_classes, "dropout": dropout,
                           "decoder_widths": list(decoder_widths)}

        self.stem = ResidualStem(in_channels, STEM_WIDTH)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        for name, stage in make_resnet50_stages((0.0, 0.0, dropout, dropout)).items():
            self.add_module(name, stage)

        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        cin = ENCODER_CHANNELS[-1]
        for w, skip in zip(decoder_widths, ENCODER_CHANNELS[-2::-1], strict=True):
            self.up.append(nn.ConvTranspose2d(cin, w, 2, stride=2))
            self.dec.append(ConvBlock(w + skip, w))
            cin = w
        self.head = nn.Conv2d(cin, num_classes, 1)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, num_classes, H, W) logits; H, W multiples of 32."""
        check_input(x, self.in_channels, self.size_multiple, "Res50UNet")
        s0 = self.stem(x)
        s1 = self.layer1(self.maxpool(s0))
        s2 = self.layer2(s1)
        s3 = self.layer3(s2)
        h = self.layer4(s3)
        for up, dec, skip in zip(self.up, self.dec, (s3, s2, s1, s0), strict=True):
            h = dec(torch.cat([skip, up(h)], dim=1))
        return self.head(h)

"""The ResNet50 backbone of Res50UNet, in pure PyTorch: stages, stem, freezing.

Key layout. Modules are named exactly as in torchvision's and timm's ResNet50 (``conv1``, ``bn1``,
``layer1`` .. ``layer4``, each a sequence of `Bottleneck` blocks with ``conv1 bn1 conv2 bn2 conv3 bn3``
and ``downsample.0`` / ``downsample.1`` on the first block of a stage), so a standard ResNet50 state
dict -- ImageNet (torchvision/timm) or the Sentinel-2 ResNet50 weights that torchgeo publishes (13
bands) -- maps onto our stages key for key. The stride of a stage sits on the 3x3 conv of its first
block ("ResNet v1.5", as in torchvision and timm). Loading such a state dict, with the first
convolution adapted to our bands, is `dstl.models.pretrained.load_pretrained_backbone`.

Freezing. `freeze_backbone` / `unfreeze_backbone` switch ``requires_grad`` of whole stages and keep the
BatchNorm layers of frozen stages in eval mode (their statistics frozen too, also across
``model.train()``); `apply_unfreeze_schedule` implements staged unfreezing (deepest stages first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn

from dstl.bands import ALL_BANDS, RGB_BANDS
from dstl.errors import WeightsError
from dstl.models.dropblock import DropBlock2d

#: Blocks per stage of ResNet50 and the stage widths (the bottleneck's inner width; outputs are 4x).
RESNET50_BLOCKS: tuple[int, ...] = (3, 4, 6, 3)
RESNET50_PLANES: tuple[int, ...] = (64, 128, 256, 512)
#: The pretrained stages, shallow to deep.
BACKBONE_STAGES: tuple[str, ...] = ("layer1", "layer2", "layer3", "layer4")


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class Bottleneck(nn.Module):
    """ResNet bottleneck block (1x1 reduce, 3x3 with the stride, 1x1 expand x4), torchvision names.

    ``drop_block`` > 0 adds a `DropBlock2d` (p = drop_block, squares of ``drop_block_size``) on the 3x3
    conv's output, inside the block before the expanding 1x1 -- where timm's ResNet puts its
    ``drop_block`` (timm applies it before the ReLU, we after; zeroing and a positive rescale commute
    with ReLU, so the output is the same). It has no parameters: state-dict keys are unchanged.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 drop_block: float = 0.0, drop_block_size: int = 7):
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.drop_block = DropBlock2d(drop_block, drop_block_size) if drop_block > 0 else nn.Identity()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.drop_block(self.relu(self.bn2(self.conv2(out))))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def make_stage(inplanes: int, planes: int, blocks: int, stride: int, drop_block: float = 0.0,
               drop_block_size: int = 7) -> nn.Sequential:
    """One ResNet stage: `blocks` bottlenecks, the first with the stride and a 1x1 projection shortcut;
    every block with DropBlock(drop_block, drop_block_size) when drop_block > 0."""
    downsample = None
    if stride != 1 or inplanes != planes * Bottleneck.expansion:
        downsample = nn.Sequential(_conv1x1(inplanes, planes * Bottleneck.expansion, stride),
                                   nn.BatchNorm2d(planes * Bottleneck.expansion))
    layers = [Bottleneck(inplanes, planes, stride, downsample, drop_block, drop_block_size)]
    layers += [Bottleneck(planes * Bottleneck.expansion, planes, drop_block=drop_block,
                          drop_block_size=drop_block_size) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def make_resnet50_stages(stage_drop_block: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
                         drop_block_size: int = 7) -> dict[str, nn.Sequential]:
    """The four ResNet50 stages (``layer1``..``layer4``, 64 -> 256 -> 512 -> 1024 -> 2048 channels), with
    DropBlock of probability ``stage_drop_block[i]`` in every bottleneck of stage i (0: none)."""
    stages, inplanes = {}, 64
    for i, (planes, blocks) in enumerate(zip(RESNET50_PLANES, RESNET50_BLOCKS, strict=True)):
        stride = 1 if i == 0 else 2
        stages[f"layer{i + 1}"] = make_stage(inplanes, planes, blocks, stride, stage_drop_block[i],
                                             drop_block_size)
        inplanes = planes * Bottleneck.expansion
    return stages


def _init_weights(module: nn.Module) -> None:
    """Kaiming-normal convs, unit BatchNorm; skipped on the meta device (shapes only, for loading)."""
    if next(module.parameters()).is_meta:
        return
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class StageFreezing:
    """Mixin for modules with ``layer1``..``layer4``: frozen stages keep their BatchNorm in eval mode."""

    frozen_stages: frozenset[str] = frozenset()

    def train(self, mode: bool = True):
        super().train(mode)  # type: ignore[misc]
        for name in self.frozen_stages:
            getattr(self, name).eval()
        return self


class ResNet50(StageFreezing, nn.Module):
    """The standard ResNet50 (torchvision layout: conv1 7x7/2, bn1, max-pool, layer1..4, optional fc).

    Used as the reference for key layout and parameter count (23,508,032 without ``fc`` for 3 input
    channels; 25,557,032 with the 1000-class ``fc``) and to read or write torchvision-layout
    checkpoints. `forward` returns the ``layer4`` features (N, 2048, H/32, W/32), or logits with ``fc``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        for name, stage in make_resnet50_stages().items():
            self.add_module(name, stage)
        self.fc = nn.Linear(2048, num_classes) if num_classes else None
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.fc is None:
            return x
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class ResidualStem(nn.Module):
    """Full-resolution replacement of ResNet's 7x7 stem: (3x3 conv, BN, ReLU, 3x3 conv, BN) + shortcut.

    The shortcut is a 1x1 conv + BN projecting the input bands to `width` channels (as in the ResNet
    paper's projection shortcuts); output = ReLU(residual + shortcut), shape (N, width, H, W).
    """

    def __init__(self, in_channels: int, width: int = 64):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.shortcut = nn.Sequential(_conv1x1(in_channels, width), nn.BatchNorm2d(width))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


# ----------------------------------------------------------------------------------------------
# Messages (used by dstl.models.pretrained)




# ----------------------------------------------------------------------------------------------
# Band names


def default_bands(in_channels: int) -> tuple[str, ...]:
    """The band list a model with `in_channels` inputs is assumed to take: 20 -> ALL_BANDS, 3 -> RGB."""
    if in_channels == len(ALL_BANDS):
        return ALL_BANDS
    if in_channels == len(RGB_BANDS):
        return RGB_BANDS
    raise WeightsError(f"cannot guess the band names of a {in_channels}-channel model; pass bands=")


# ----------------------------------------------------------------------------------------------
# Freezing and staged unfreezing


def _check_stages(stages: Iterable[str]) -> tuple[str, ...]:
    stages = tuple(stages)
    bad = [s for s in stages if s not in BACKBONE_STAGES]
    if bad:
        raise ValueError(f"unknown backbone stages {bad}; known: {BACKBONE_STAGES}")
    return stages


def freeze_backbone(model: nn.Module, stages: Iterable[str] = BACKBONE_STAGES) -> int:
    """Stop training `stages` (parameters get ``requires_grad=False``; their BatchNorm stays in eval mode).

    Returns the number of parameters frozen. The stem and decoder are never frozen: the stem is only
    partly pretrained. Optimisers may keep frozen parameters; they simply receive no gradient.
    """
    stages = _check_stages(stages)
    n = 0
    for s in stages:
        for p in getattr(model, s).parameters():
            p.requires_grad_(False)
            n += p.numel()
    model.frozen_stages = frozenset(model.frozen_stages) | set(stages)
    model.train(model.training)  # re-apply BN modes
    return n


def unfreeze_backbone(model: nn.Module, stages: Iterable[str] = BACKBONE_STAGES) -> int:
    """Train `stages` again; returns the number of parameters unfrozen."""
    stages = _check_stages(stages)
    n = 0
    for s in stages:
        for p in getattr(model, s).parameters():
            p.requires_grad_(True)
            n += p.numel()
    model.frozen_stages = frozenset(model.frozen_stages) - set(stages)
    model.train(model.training)
    return n


def trainable_stages(epoch: int, schedule: Mapping[int | str, int]) -> tuple[str, ...]:
    """The backbone stages trainable at `epoch` under a staged-unfreezing `schedule`.

    `schedule` maps a start epoch (int, or its string form as JSON keys are) to the number of deepest
    stages trainable from then on, e.g. ``{0: 0, 2: 1, 4: 2, 6: 4}``: epochs 0-1 backbone frozen,
    2-3 ``layer4`` trainable, 4-5 ``layer3`` too, from 6 everything. Before the first key: all trainable.
    """
    entries = sorted((int(k), int(v)) for k, v in schedule.items())
    n = len(BACKBONE_STAGES)
    for start, count in entries:
        if epoch >= start:
            n = count
    if not 0 <= n <= len(BACKBONE_STAGES):
        raise ValueError(f"unfreeze schedule: stage count must be 0..{len(BACKBONE_STAGES)}, got {n}")
    return BACKBONE_STAGES[len(BACKBONE_STAGES) - n:]


def apply_unfreeze_schedule(model: nn.Module, epoch: int,
                            schedule: Mapping[int | str, int]) -> tuple[str, ...]:
    """Freeze/unfreeze `model`'s stages for `epoch` (see `trainable_stages`); returns the trainable ones."""
    train = trainable_stages(epoch, schedule)
    frozen = [s for s in BACKBONE_STAGES if s not in train]
    if frozen:
        freeze_backbone(model, frozen)
    if train:
        unfreeze_backbone(model, train)
    return train


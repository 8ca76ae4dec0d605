"""Training options checked against the model before any work (data loading, weights, processes).

The rules come from the model itself, not from a table: the configured architecture is built
without initialisation (on the meta device, then given zeroed CPU memory) and run in eval mode on
one crop of each candidate size, smallest first, while hooks on its BatchNorm layers record the
smallest feature map they see. The smallest crop that works is the model's minimum; feature maps
only grow with the crop, so every larger multiple works too.

- `crop_size` must be a multiple of the model's `size_multiple` (32 for UNet and Res50UNet).
- Every BatchNorm layer must see maps larger than 1 x 1 px: UNet halves a crop five times, so a
  32 px crop reaches its bottleneck as 1 x 1, where BatchNorm normalises over only `batch` values
  per channel (a single one at batch 1, which PyTorch refuses: "Expected more than 1 value per
  channel when training"). UNet therefore trains on crops of 64 px or more; Res50UNet's deepest
  stage is at 1/16, so 32 px already gives it 2 x 2 maps.
- `batch_size` (global) must split evenly over the torchrun processes, at least one crop each.

The probe runs real CPU kernels on tiny inputs (32 and 64 px) rather than meta tensors: PyTorch's
meta kernels take seconds to warm up on their first use, the tiny forward passes a fraction of
that (bench/bench_train_checks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from dstl.train.config import ConfigError, TrainConfig

#: Largest crop probed when looking for the smallest one the model trains on, in multiples.
_MAX_PROBED_MULTIPLES = 8


@dataclass(frozen=True)
class CropRule:
    """What crop sizes the model trains on: multiples of `multiple`, from `minimum` px up."""

    model: str  # class name, for messages
    multiple: int
    minimum: int | None  # None: no probed size works (a model that shrinks maps away entirely)
    #: crop -> smallest BatchNorm map side (None: refused by the architecture) for the crops probed.
    sides: dict[int, int | None] = field(default_factory=dict, compare=False)

    def allows(self, crop: int) -> bool:
        return crop % self.multiple == 0 and self.minimum is not None and crop >= self.minimum

    def largest_fitting(self, side: int) -> int | None:
        """The largest crop this rule allows within `side` px, or None if none fits."""
        best = side // self.multiple * self.multiple
        return best if self.allows(best) else None


def _shape_model(cfg: TrainConfig, in_channels: int) -> nn.Module:
    """`cfg`'s architecture without initialisation: zeroed weights on the CPU, eval mode."""
    from dstl.classes import NUM_CLASSES
    from dstl.models import build_model

    model = build_model(cfg.model, {**cfg.model_args, "in_channels": in_channels, "num_classes": NUM_CLASSES},
                        where="config model_args", device="meta").to_empty(device="cpu")
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            t.zero_()
    return model.eval()


def _smallest_batchnorm_side(model: nn.Module, in_channels: int, crop: int) -> int | None:
    """The smallest height or width any BatchNorm layer of `model` sees for one crop x crop input
    (None: the model has no BatchNorm). Raises ValueError/RuntimeError if the size is refused."""
    sides: list[int] = []

    def record(module, args):
        sides.append(min(args[0].shape[2:], default=1))

    hooks = [m.register_forward_pre_hook(record) for m in model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    try:
        with torch.no_grad():  # eval mode: BatchNorm's own check does not stop the probe
            model(torch.zeros(1, in_channels, crop, crop))
    finally:
        for h in hooks:
            h.remove()
    return min(sides) if sides else None


def crop_rule(cfg: TrainConfig, in_channels: int) -> CropRule:
    """The crop sizes `cfg`'s model trains on (see the module docstring)."""
    model = _shape_model(cfg, in_channels)
    multiple = int(getattr(model, "size_multiple", 1))
    sides: dict[int, int | None] = {}
    minimum = None
    for crop in range(multiple, (_MAX_PROBED_MULTIPLES + 1) * multiple, multiple):
        try:
            side = sides[crop] = _smallest_batchnorm_side(model, in_channels, crop)
        except (ValueError, RuntimeError):  # shapes that do not fit the architecture (e.g. skip concat)
            sides[crop] = None
            continue
        if side is None or side > 1:
            minimum = crop
            break
    return CropRule(type(model).__name__, multiple, minimum, sides)


def check_options(cfg: TrainConfig, in_channels: int, world_size: int = 1) -> CropRule:
    """Raise a one-line `ConfigError` if `cfg` cannot train its model with `world_size` processes:
    a batch that does not split over the processes, or a crop size the model cannot train on.
    Returns the model's `CropRule`."""
    if cfg.batch_size % world_size:
        raise ConfigError(f"config: batch_size {cfg.batch_size} does not split over the {world_size} "
                          f"processes; use a multiple of {world_size} (--batch-size)")
    per_process = cfg.batch_size // world_size
    rule = crop_rule(cfg, in_channels)
    if rule.allows(cfg.crop_size):
        return rule
    name, multiple = rule.model, rule.multiple
    if cfg.crop_size % multiple:
        lower = max(multiple, cfg.crop_size // multiple * multiple)
        raise ConfigError(f"config: crop_size {cfg.crop_size} does not suit {name}, which needs multiples "
                          f"of {multiple}; use --crop-size {lower}")
    fix = (f"use --crop-size {rule.minimum} or larger (a multiple of {multiple})" if rule.minimum else
           f"no crop up to {_MAX_PROBED_MULTIPLES * multiple} px works; check model_args")
    if rule.sides.get(cfg.crop_size) == 1:
        effect = "training fails" if per_process < 2 else "too few for meaningful statistics"
        raise ConfigError(f"config: crop_size {cfg.crop_size} leaves {name} 1 x 1 px feature maps, where "
                          f"BatchNorm normalises batch {per_process} x 1 x 1 = {per_process} value"
                          f"{'s' if per_process > 1 else ''} per channel ({effect}); {fix}")
    raise ConfigError(f"config: {name} cannot take {cfg.crop_size} px crops; {fix}")

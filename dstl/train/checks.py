"""Training options checked against the model before any work (data loading, weights, processes).

The rules come from the model itself, not from a table: the configured architecture is built on
the meta device (shapes only: no memory, no initialisation) and run once on a training batch of
this process's size, while hooks on its BatchNorm layers record the smallest feature map they see.

- `crop_size` must be a multiple of the model's `size_multiple` (32 for UNet and Res50UNet).
- Every BatchNorm layer must see maps larger than 1 x 1 px: UNet halves a crop five times, so a
  32 px crop reaches its bottleneck as 1 x 1, where BatchNorm normalises over only `batch` values
  per channel (a single one at batch 1, which PyTorch refuses: "Expected more than 1 value per
  channel when training"). UNet therefore trains on crops of 64 px or more; Res50UNet's deepest
  stage is at 1/16, so 32 px already gives it 2 x 2 maps.
- `batch_size` (global) must split evenly over the torchrun processes, at least one crop each.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dstl.train.config import ConfigError, TrainConfig

#: Crops probed when looking for the smallest one the model trains on (multiples of size_multiple).
_MAX_PROBED_MULTIPLES = 16


@dataclass(frozen=True)
class CropRule:
    """What crop sizes the model trains on: multiples of `multiple`, from `minimum` px up."""

    model: str  # class name, for messages
    multiple: int
    minimum: int | None  # None: no probed size works (a model that shrinks maps away entirely)

    def largest_fitting(self, side: int) -> int | None:
        """The largest crop this rule allows within `side` px, or None if none fits."""
        best = side // self.multiple * self.multiple
        return best if self.minimum is not None and best >= self.minimum else None


def _smallest_batchnorm_side(model: nn.Module, in_channels: int, crop: int, batch: int) -> int | None:
    """The smallest height or width any BatchNorm layer of `model` sees for a (batch, C, crop, crop)
    input (None: the model has no BatchNorm). Raises ValueError/RuntimeError if the size is refused."""
    sides: list[int] = []

    def record(module, args):
        sides.append(min(args[0].shape[2:], default=1))

    hooks = [m.register_forward_pre_hook(record) for m in model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    try:
        # Eval mode: BatchNorm's own check would stop the probe at the first 1 x 1 map; the hooks
        # above see every layer's input either way.
        model.eval()
        with torch.no_grad():
            model(torch.empty(batch, in_channels, crop, crop, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return min(sides) if sides else None


def _meta_model(cfg: TrainConfig, in_channels: int) -> nn.Module:
    from dstl.classes import NUM_CLASSES
    from dstl.models import build_model

    return build_model(cfg.model, {**cfg.model_args, "in_channels": in_channels, "num_classes": NUM_CLASSES},
                       where="config model_args", device="meta")


def _trains_on(model: nn.Module, in_channels: int, crop: int, batch: int) -> tuple[bool, int | None]:
    """(whether `crop` works, the smallest BatchNorm map side) for a per-process `batch`."""
    try:
        side = _smallest_batchnorm_side(model, in_channels, crop, batch)
    except (ValueError, RuntimeError):  # shapes that do not fit the architecture (e.g. skip concat)
        return False, None
    return side is None or side > 1, side


def _rule(model: nn.Module, in_channels: int) -> CropRule:
    multiple = int(getattr(model, "size_multiple", 1))
    minimum = next((k * multiple for k in range(1, _MAX_PROBED_MULTIPLES + 1)
                    if _trains_on(model, in_channels, k * multiple, 1)[0]), None)
    return CropRule(type(model).__name__, multiple, minimum)


def crop_rule(cfg: TrainConfig, in_channels: int) -> CropRule:
    """The crop sizes `cfg`'s model trains on (see the module docstring)."""
    return _rule(_meta_model(cfg, in_channels), in_channels)


def check_options(cfg: TrainConfig, in_channels: int, world_size: int = 1) -> None:
    """Raise a one-line `ConfigError` if `cfg` cannot train its model with `world_size` processes:
    a batch that does not split over the processes, or a crop size the model cannot train on."""
    if cfg.batch_size % world_size:
        raise ConfigError(f"config: batch_size {cfg.batch_size} does not split over the {world_size} "
                          f"processes; use a multiple of {world_size} (--batch-size)")
    per_process = cfg.batch_size // world_size
    model = _meta_model(cfg, in_channels)
    name, multiple = type(model).__name__, int(getattr(model, "size_multiple", 1))
    if cfg.crop_size % multiple:
        lower = max(multiple, cfg.crop_size // multiple * multiple)
        raise ConfigError(f"config: crop_size {cfg.crop_size} does not suit {name}, which needs multiples "
                          f"of {multiple}; use --crop-size {lower}")
    ok, side = _trains_on(model, in_channels, cfg.crop_size, per_process)
    if ok:
        return
    rule = _rule(model, in_channels)
    fix = (f"use --crop-size {rule.minimum} or larger (a multiple of {multiple})" if rule.minimum else
           f"no crop up to {_MAX_PROBED_MULTIPLES * multiple} px works; check model_args")
    if side == 1:
        effect = "training fails" if per_process < 2 else "too few for meaningful statistics"
        raise ConfigError(f"config: crop_size {cfg.crop_size} leaves {name} 1 x 1 px feature maps, where "
                          f"BatchNorm normalises batch {per_process} x 1 x 1 = {per_process} value"
                          f"{'s' if per_process > 1 else ''} per channel ({effect}); {fix}")
    raise ConfigError(f"config: {name} cannot take {cfg.crop_size} px crops; {fix}")

"""Training configuration: every default in one place, recipe files, command-line overrides.

A run is described by one `TrainConfig`. Its defaults below are the real-data UNet recipe for a
single CUDA GPU; a recipe file (dstl/train/recipes/<name>.toml, or any path) changes some of them, and
`--set key=value` (or an explicit flag such as `--epochs`) changes them again. Unknown keys and
values of the wrong type are rejected with a one-line `ConfigError`, so a typo never silently
trains with a default.

Recipe files are TOML with the same flat keys as `TrainConfig`, plus a `[model_args]` table with
the model constructor's keyword arguments (e.g. `base_width = 16`).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from dstl.errors import DstlError
from dstl.resources import package_path

#: The bundled recipes (package data).
RECIPE_DIR = package_path("train", "recipes")

ARCHITECTURES = ("unet", "res50unet")
BAND_SETS = ("all", "rgb")
LOSSES = ("bce", "bce_dice", "bce_jaccard")
SCHEDULES = ("cosine", "onecycle")
AMP_MODES = ("auto", "bf16", "fp32")
KEEP_MODES = ("best", "last")
DEVICES = ("auto", "cpu", "cuda")
STORE_DTYPES = ("int16", "float32")
SAMPLE_BY = ("area", "image")


class ConfigError(DstlError):
    """A recipe or override names an unknown key or gives a value of the wrong type or range."""


@dataclass
class TrainConfig:
    """Everything that decides what a training run does (besides the data folder and output)."""

    # --- model -----------------------------------------------------------------------------
    # Which network (DESIGN §3). "unet" trains well from scratch; "res50unet" wants a
    # pretrained backbone (pretrained_backbone below).
    model: str = "unet"
    # Keyword arguments for the model's constructor, on top of in_channels/num_classes (which
    # come from `bands`). Empty = the original project's sizes (UNet base width 32, ~31 M params).
    model_args: dict = field(default_factory=dict)
    # Input bands: "all" = the 20 aligned bands (R,G,B,P,M1..M8,A1..A8), "rgb" = R,G,B only
    # (a model for plain images; it cannot use the spectra that separate water and vegetation).
    bands: str = "all"
    # Res50UNet only: a standard ResNet50 state dict loaded into the encoder - a local file
    # (.safetensors/.pth) or a Hub repo id "owner/name[@revision]" with `backbone_file` in it.
    # Its first conv is adapted to our bands by wavelength (dstl.models.backbone). Training
    # Res50UNet from scratch on ~20 images overfits badly.
    pretrained_backbone: str | None = None
    backbone_file: str | None = None
    # Res50UNet only: staged unfreezing, {start epoch: number of deepest ResNet stages trainable},
    # e.g. {"0": 0, "3": 2, "6": 4}: the randomly initialised decoder first learns on frozen
    # pretrained features instead of wrecking them with its large early gradients.
    unfreeze_schedule: dict = field(default_factory=dict)
    # Start from these weights instead of a random initialisation (a weights folder, a bundled
    # name or a Hub id "owner/name[@revision]", loaded strictly): fine-tuning, or continuing a
    # finished run with a fresh schedule. Their architecture, constructor arguments and bands
    # must be this run's; their normalisation statistics are kept (the weights were learned on
    # inputs scaled that way) and head_bias_prior is skipped (the head is already trained).
    init_weights: str | None = None

    # --- data ------------------------------------------------------------------------------
    # Side of the square training crops (pixels, multiple of 32). 224 is the original
    # project's patch; larger crops give more context for roads and waterways.
    crop_size: int = 224
    # Fraction of the labelled images held out for validation (at least one image). The split
    # is by image, never by patch: neighbouring patches of one scene are nearly duplicates.
    val_fraction: float = 0.2
    # Explicit validation ids (overrides val_fraction); empty = chosen by the balanced split.
    val_ids: list = field(default_factory=list)
    # Seed of the split search; separate from `seed` so the split stays put while the training
    # seed varies.
    split_seed: int = 0
    # Classes whose pixels are used as crop centres with probability rare_prob: structures,
    # waterway, standing water and vehicles cover well under 1% of the area, so uniform crops
    # almost never show them.
    rare_classes: list = field(default_factory=lambda: [2, 7, 8, 9, 10])
    rare_prob: float = 0.5
    # How crops choose their image: "area" (in proportion to its pixels; a rare-class crop to its
    # pixels of the class) or "image" (every training image equally often; a rare-class crop
    # every image that holds the class equally often). With several --data folders of very different scene
    # sizes, "area" gives the big scenes nearly all crops (20 full-size real-layout scenes next to
    # 24 rule-based 1024 px ones: ~90 %); "image" keeps the small scenes' world in training.
    sample_by: str = "area"
    # How the in-memory training set is stored: int16 (value * 32767, lossless for the 11- and
    # 14-bit products, half the memory of float32, normalised on the fly) or float32.
    store_dtype: str = "int16"

    # --- optimisation ------------------------------------------------------------------------
    # Optimiser steps per epoch and the GLOBAL batch (split across torchrun processes, so the
    # recipe means the same thing on 1 or 8 GPUs).
    epochs: int = 60
    steps_per_epoch: int = 250
    batch_size: int = 16
    # AdamW: peak learning rate, decoupled weight decay (not applied to norms and biases).
    lr: float = 1e-3
    weight_decay: float = 1e-4
    # "cosine": linear warm-up then cosine decay to lr * min_lr_ratio; "onecycle": PyTorch's
    # OneCycleLR with the same warm-up fraction.
    schedule: str = "cosine"
    warmup_frac: float = 0.05
    min_lr_ratio: float = 0.01
    # Gradient-norm clipping; protects the first steps of a freshly initialised decoder.
    grad_clip: float = 1.0
    # "bce", "bce_dice" or "bce_jaccard" (BCE + weight * (1 - soft Jaccard)); the Jaccard term
    # optimises the competition metric directly and helps the small classes.
    loss: str = "bce_jaccard"
    loss_weight: float = 1.0
    # Per-class loss weights (class k at index k-1); empty = all 1.
    class_weights: list = field(default_factory=list)
    # Start each class's output bias at the logit of its pixel frequency in the training images
    # (RetinaNet's "prior" initialisation): the net starts from each class's base rate instead
    # of p = 0.5 everywhere, which AdamW takes hundreds of steps to unlearn (measured: without
    # it, a short CPU run still predicted p < 0.5 for every pixel after 400 steps).
    head_bias_prior: bool = True

    # --- validation and output ---------------------------------------------------------------
    # Validate every `val_every` epochs (and always after the last one) with the engine's tiled
    # inference on whole validation images.
    val_every: int = 1
    # Also compute the Kaggle polygon Jaccard every `polygon_every` validations (pixel IoU is
    # computed at every one, and the kept weights are always scored on polygons at the end):
    # polygonising the noisy masks of an early model takes minutes per image on a CPU.
    polygon_every: int = 1
    # Inference tile side saved into the weights' config (multiple of 32).
    tile_size: int = 256
    # Candidate per-class thresholds searched on validation probabilities.
    threshold_grid: list = field(default_factory=lambda: [round(0.05 * i, 2) for i in range(1, 20)])
    # Which epoch's weights are written: "best" mean validation pixel IoU (at the tuned
    # thresholds; available at every validation), or "last".
    keep: str = "best"

    # --- hardware and reproducibility ---------------------------------------------------------
    seed: int = 42
    device: str = "auto"
    # bf16 autocast: "auto" = on for CUDA GPUs with bf16 and for CPUs with native bf16 (AVX-512
    # BF16 / AMX). Off on other CPUs: oneDNN then emulates bf16 and a training step is several
    # times slower than fp32 (measured by bench/bench_train.py).
    amp: str = "auto"
    # channels_last memory format: faster convolutions with bf16 on both CUDA and oneDNN CPUs.
    channels_last: bool = True
    # torch.compile the model (CUDA: worth it for long runs; CPU: compile time rarely pays).
    compile: bool = False
    # Bit-for-bit reproducible CUDA kernels (torch.use_deterministic_algorithms); slower. CPU
    # training is deterministic without it.
    deterministic: bool = False
    # Keep the training tensors on the GPU when training on CUDA (no host-device copies).
    data_on_device: bool = True

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError naming the first key whose value is out of range."""
        def choice(key, options):
            if getattr(self, key) not in options:
                raise ConfigError(f"config: {key} must be one of {', '.join(options)}, "
                                  f"got {getattr(self, key)!r}")

        choice("model", ARCHITECTURES)
        choice("bands", BAND_SETS)
        choice("loss", LOSSES)
        choice("schedule", SCHEDULES)
        choice("amp", AMP_MODES)
        choice("keep", KEEP_MODES)
        choice("device", DEVICES)
        choice("store_dtype", STORE_DTYPES)
        choice("sample_by", SAMPLE_BY)
        for key in ("crop_size", "tile_size"):
            v = getattr(self, key)
            if v < 32 or v % 32:
                raise ConfigError(f"config: {key} must be a positive multiple of 32, got {v}")
        for key in ("epochs", "steps_per_epoch", "batch_size", "val_every", "polygon_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"config: {key} must be >= 1, got {getattr(self, key)}")
        for key in ("val_fraction", "rare_prob", "warmup_frac", "min_lr_ratio"):
            v = getattr(self, key)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"config: {key} must be in [0, 1], got {v}")
        if not 0.0 < self.val_fraction < 1.0 and not self.val_ids:
            raise ConfigError(f"config: val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_clip < 0 or self.loss_weight < 0:
            raise ConfigError("config: lr must be > 0; weight_decay, grad_clip, loss_weight >= 0")
        try:
            bad_sched = any(int(k) < 0 or not 0 <= int(v) <= 4 for k, v in self.unfreeze_schedule.items())
        except (TypeError, ValueError, AttributeError):
            bad_sched = True
        if bad_sched:
            raise ConfigError("config: unfreeze_schedule maps start epochs >= 0 to stage counts 0..4")
        if self.class_weights and (len(self.class_weights) != 10 or min(self.class_weights) < 0):
            raise ConfigError("config: class_weights must be 10 non-negative numbers (or empty)")
        bad = [c for c in self.rare_classes if not isinstance(c, int) or not 1 <= c <= 10]
        if bad:
            raise ConfigError(f"config: rare_classes must be class ids 1..10, got {bad}")
        if not self.threshold_grid or not all(0.0 < t < 1.0 for t in self.threshold_grid):
            raise ConfigError("config: threshold_grid must be a non-empty list of values in (0, 1)")
        if self.model != "res50unet" and (self.pretrained_backbone or self.unfreeze_schedule):
            raise ConfigError("config: pretrained_backbone / unfreeze_schedule apply to res50unet only")
        if not isinstance(self.model_args, dict):
            raise ConfigError("config: model_args must be a table of constructor arguments")
        reserved = {"in_channels", "num_classes"} & set(self.model_args)
        if reserved:
            raise ConfigError(f"config: model_args may not set {sorted(reserved)}; they follow from bands")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> TrainConfig:
        """Build from a dict (a recipe or a checkpoint's copy), checking keys and types."""
        return apply_overrides(cls(), d, source)


# ----------------------------------------------------------------------------------------------
def _field_types() -> dict[str, Any]:
    return get_type_hints(TrainConfig)


def _coerce(key: str, value: Any, typ: Any, source: str) -> Any:
    """Check/convert `value` to the annotated type of `key`; ConfigError if impossible."""
    origin = get_origin(typ)
    options = get_args(typ) if origin is not None and type(None) in get_args(typ) else None
    if options:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        typ = next(t for t in options if t is not type(None))
    if isinstance(value, str) and typ is not str:
        try:
            value = json.loads(value) if typ in (list, dict) else value
        except json.JSONDecodeError:
            raise ConfigError(f"{source}: {key} expects a JSON {typ.__name__}, got {value!r}") from None
    try:
        if typ is bool:
            if isinstance(value, str):
                low = value.lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if not isinstance(value, bool):
                raise ValueError
            return value
        if typ is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if typ is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if typ in (list, dict):
            if isinstance(value, tuple):
                value = list(value)
            if not isinstance(value, typ):
                raise ValueError
            return value
    except (TypeError, ValueError):
        pass
    name = getattr(typ, "__name__", str(typ))
    raise ConfigError(f"{source}: {key} expects {name}, got {value!r}")


def apply_overrides(cfg: TrainConfig, values: dict, source: str) -> TrainConfig:
    """Return a copy of `cfg` with `values` applied (dotted keys `model_args.x` allowed).

    Raises ConfigError naming an unknown key (with the list of valid ones) or a bad value.
    """
    return apply_layers(cfg, [(values, source)])


def apply_layers(cfg: TrainConfig, layers: list[tuple[dict, str]]) -> TrainConfig:
    """Apply several override layers in order (later ones win), checking each key's type against
    its layer (errors name the layer, e.g. "--set"), then validate the result once: a layer may
    set keys that only make sense together with a later one (e.g. a res50unet backbone and --model)."""
    types = _field_types()
    d = cfg.to_dict()
    for values, source in layers:
        for key, value in values.items():
            if key.startswith("model_args."):
                sub = key.split(".", 1)[1]
                if not sub:
                    raise ConfigError(f"{source}: empty model_args key")
                if isinstance(value, str):
                    try:
                        value = json.loads(value)
                    except json.JSONDecodeError:
                        pass  # a plain string argument
                d["model_args"] = {**d["model_args"], sub: value}
                continue
            if key not in types:
                raise ConfigError(f"{source}: unknown key {key!r} (valid keys: {', '.join(sorted(types))})")
            d[key] = _coerce(key, value, types[key], source)
    try:
        return TrainConfig(**d)
    except ConfigError as e:
        if len(layers) == 1:
            raise ConfigError(f"{layers[0][1]}: {str(e).removeprefix('config: ')}") from None
        raise


def parse_set_args(items: list[str]) -> dict[str, str]:
    """Parse `--set key=value` items into a dict of raw strings."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.toml"))


def resolve_recipe(name_or_path: str) -> Path:
    """A recipe name (dstl/train/recipes/<name>.toml) or a path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"recipe file {path} not found")
        return path
    candidate = RECIPE_DIR / f"{name_or_path}.toml"
    if not candidate.is_file():
        raise ConfigError(f"unknown recipe {name_or_path!r} (available: {', '.join(list_recipes())}; "
                          "or give a path to a .toml file)")
    return candidate


def load_recipe(name_or_path: str) -> TrainConfig:
    """Read a recipe file onto the defaults; ConfigError for unknown keys or bad values."""
    path = resolve_recipe(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"recipe {path}: cannot read ({e})") from None
    data.pop("description", None)  # free text for people; not a setting
    return apply_overrides(TrainConfig(), data, f"recipe {path.name}")


def recipe_description(name_or_path: str) -> str:
    """The recipe's `description` string ('' if none)."""
    path = resolve_recipe(name_or_path)
    return str(tomllib.loads(path.read_text(encoding="utf-8")).get("description", ""))

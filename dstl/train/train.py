"""Train UNet or Res50UNet on a DSTL-layout folder (real Kaggle download or synthetic scenes).

    python train/train.py --data DATA --recipe unet_synth_quick --out weights/NAME
    python train/train.py --data DATA --model unet --out weights/NAME --set epochs=10 --bands rgb
    torchrun --nproc_per_node=8 train/train.py --data DATA --recipe unet_real --out weights/NAME
    python train/train.py ... --resume                 # continue from the run's checkpoint
    python train/train.py ... --push-to-hub owner/name # publish the weights folder (HF_TOKEN)

`python train/train.py` is a shim that calls `cli` here; once the package is installed the same
command is `dstl-train ...`.

What happens, top to bottom:
0. Checks: the options are checked against the model before any work (dstl/train/checks.py).
1. Configuration: defaults (dstl/train/config.py) <- recipe file <- --set key=value <- explicit flags.
2. Data: labelled images split by image (class-balanced, reproducible); the training images go
   into memory (GPU memory when training on CUDA) with normalisation statistics computed from
   them; crops are drawn with rare-class oversampling and the 8 dihedral transforms (dstl/train/data.py).
3. Model (dstl.models), AdamW + warm-up/cosine (or one-cycle), bf16 autocast and channels_last
   where they pay, optional torch.compile, gradient clipping, DDP under torchrun.
4. Every epoch: validation on whole images through dstl.engine, per-class thresholds tuned,
   metrics.csv + curves.png beside the weights, an atomic checkpoint (dstl/train/checkpoint.py).
   The run's state between epochs is one `Run` (config, data, model, optimiser, progress).
5. At the end: the kept weights in Hub layout (config.json with bands, normalisation, thresholds
   and training metadata; model.safetensors; README.md model card), optionally pushed to the Hub.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import os
import platform
import random
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dstl.bands import ALL_BANDS, RGB_BANDS
from dstl.classes import NUM_CLASSES
from dstl.engine import cpu_has_native_bf16
from dstl.errors import DataError, DstlError
from dstl.models.config import ModelConfig
from dstl.models.hub import unwrap_module
from dstl.parallel import env_ranks
from dstl.progress import print_error
from dstl.train import checkpoint as ckpt
from dstl.train import distributed as ddp
from dstl.train import report
from dstl.train.checks import check_options, crop_rule
from dstl.train.config import (
    ARCHITECTURES,
    ConfigError,
    TrainConfig,
    apply_layers,
    load_recipe,
    parse_set_args,
)
from dstl.train.data import STORE_SCALE, TrainSet, class_fractions, split_ids
from dstl.train.losses import SegmentationLoss
from dstl.train.validate import ValImage, ValResult, validate

#: Explicit flags that override config keys (flag dest -> config key).
FLAG_KEYS = {"model": "model", "bands": "bands", "epochs": "epochs", "steps_per_epoch": "steps_per_epoch",
             "batch_size": "batch_size", "lr": "lr", "crop_size": "crop_size", "seed": "seed",
             "device": "device", "amp": "amp", "loss": "loss", "compile": "compile"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python train/train.py",
        description="Train a dstl segmentation model (UNet or Res50UNet) on a DSTL-layout folder and "
                    "write the weights in Hugging Face Hub layout (also installed as `dstl-train`). "
                    "Settings: defaults in dstl/train/config.py, a recipe (dstl/train/recipes/*.toml), "
                    "then --set key=value, then the explicit flags below. "
                    "Example: python train/train.py --data data/synth --recipe unet_synth_quick "
                    "--out weights/unet_synth_20band")
    p.add_argument("--data", required=True, nargs="+", metavar="DATA",
                   help="DSTL-layout dataset folder (three_band/, sixteen_band/, grid_sizes.csv, "
                   "train_wkt_v4.csv), real or from `python -m dstl synth`; several folders are trained on "
                   "together (image ids must differ), e.g. real-layout and rule-based scenes")
    p.add_argument("--out", required=True,
                   help="output weights folder (Hub layout), e.g. weights/unet_20band")
    p.add_argument("--recipe", help="recipe name in dstl/train/recipes (unet_real, res50unet_real, "
                   "unet_synth_quick, unet_rgb_synth_quick) or a path to a .toml file")
    p.add_argument("--model", choices=ARCHITECTURES, help="architecture (required without --recipe)")
    p.add_argument("--bands", choices=("all", "rgb"), help="input bands: all 20, or R,G,B only")
    p.add_argument("--epochs", type=int, help="number of epochs")
    p.add_argument("--steps-per-epoch", type=int, help="optimiser steps per epoch")
    p.add_argument("--batch-size", type=int, help="global batch size (split over torchrun processes)")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--crop-size", type=int, help="training crop side in pixels (multiple of 32)")
    p.add_argument("--seed", type=int, help="random seed of the training run")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="device (auto: CUDA if available)")
    p.add_argument("--amp", choices=("auto", "bf16", "fp32"), help="bf16 autocast or full fp32")
    p.add_argument("--loss", choices=("bce", "bce_dice", "bce_jaccard"), help="training loss")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the model")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key (see dstl/train/config.py), e.g. "
                        "--set model_args.base_width=16 "
                        "--set rare_classes=[9,10]; repeatable")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint of this run")
    p.add_argument("--checkpoint", help="checkpoint file (default runs/<out folder name>/checkpoint.pt)")
    p.add_argument("--stop-after-epoch", type=int, metavar="N",
                   help="stop once epoch N is done and checkpointed (continue later with --resume)")
    p.add_argument("--holdout", metavar="DATA2",
                   help="also score the final weights on every labelled image of this second dataset "
                        "folder (e.g. synthetic scenes from seeds never used for training); goes into "
                        "the model card")
    p.add_argument("--push-to-hub", metavar="OWNER/NAME",
                   help="publish the weights folder to this Hub repo (token from HF_TOKEN)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: torch's choice; 1 can be much faster on a CPU "
                        "shared with other busy processes)")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    return p


def resolve_config(args: argparse.Namespace) -> tuple[TrainConfig, str]:
    """Defaults <- recipe <- --set <- explicit flags; returns (config, recipe name)."""
    if args.recipe:
        cfg = load_recipe(args.recipe)
        recipe = args.recipe
        if args.model and args.model != cfg.model:
            raise ConfigError(f"--model {args.model} conflicts with recipe {args.recipe} "
                              f"(model = {cfg.model}); drop --model or pick a recipe for that model")
    elif args.model:
        cfg, recipe = TrainConfig(), "defaults"
    else:
        raise ConfigError("give --model {unet,res50unet} or --recipe NAME")
    flags = {key: getattr(args, dest) for dest, key in FLAG_KEYS.items() if getattr(args, dest) is not None}
    cfg = apply_layers(cfg, [(parse_set_args(args.set), "--set"), (flags, "command line")])
    return cfg, recipe


def check_push_target(repo: str) -> str:
    """Fail before any training if pushing cannot work: bad repo id, no token, offline mode."""
    from dstl.models.hub import parse_repo_id

    if parse_repo_id(repo) is None:
        raise DstlError(f"--push-to-hub {repo!r}: expected a Hub repo id owner/name[@branch]")
    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise DstlError("--push-to-hub needs a Hugging Face write token: set HF_TOKEN "
                        "(create one at https://huggingface.co/settings/tokens)")
    from huggingface_hub import constants

    offline_env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if constants.is_offline_mode() or offline_env:
        raise DstlError("--push-to-hub: HF_HUB_OFFLINE is set; unset it to publish")
    return token


# ---------------------------------------------------------------------------------------------
# Hardware helpers

def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 when asked for, or on "auto" where the hardware runs it natively; None = fp32."""
    if cfg.amp == "fp32":
        return None
    if cfg.amp == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_native_bf16() else None


def hardware_description(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = _cpu_name() + f" ({torch.get_num_threads()} threads)"
    return f"{world} x {what}" if world > 1 else what


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "CPU"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the crop sampler for one epoch: resuming at an epoch boundary redraws the same crops."""
    return (seed * 1_000_003 + epoch * 7919 + 12345) % 2**63


# ---------------------------------------------------------------------------------------------
# Model, optimiser, schedule

def build_model(cfg: TrainConfig, bands: tuple[str, ...]) -> tuple[torch.nn.Module, str | None]:
    """The architecture with the config's arguments; (model, backbone report text or None)."""
    from dstl.models import build_model as _build

    model = _build(cfg.model, {**cfg.model_args, "in_channels": len(bands), "num_classes": NUM_CLASSES},
                   where="config model_args")
    note = None
    if cfg.pretrained_backbone:
        from dstl.models.pretrained import load_pretrained_backbone

        rep = load_pretrained_backbone(model, cfg.pretrained_backbone, filename=cfg.backbone_file,
                                       bands=bands)
        note = rep.summary()
    return model, note


@torch.no_grad()
def init_head_bias(model: torch.nn.Module, frequency: np.ndarray) -> None:
    """Set the output layer's bias to logit(frequency) per class (clamped to [1e-4, 1 - 1e-4])."""
    head = getattr(model, "head", None)
    if not isinstance(head, torch.nn.Conv2d) or head.bias is None or head.out_channels != len(frequency):
        raise ConfigError("config: head_bias_prior needs a model whose `head` is a 1x1 conv with a bias "
                          "per class; set head_bias_prior=false")
    p = torch.as_tensor(frequency, dtype=torch.float64).clamp(1e-4, 1 - 1e-4)
    head.bias.copy_(torch.log(p / (1 - p)).to(head.bias.dtype))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on norm weights and biases (decaying them only hurts)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999))


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig):
    total = cfg.epochs * cfg.steps_per_epoch
    warm = max(1, int(round(cfg.warmup_frac * total)))
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=total, pct_start=max(warm / total, 1e-6),
            final_div_factor=1.0 / max(cfg.min_lr_ratio * 25.0, 1e-6) if cfg.min_lr_ratio else 1e4)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_step(train_model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, optimizer,
               scheduler, amp_dtype: torch.dtype | None, grad_clip: float) -> torch.Tensor:
    """One optimiser step on a batch; returns the (detached) loss. Used by bench/bench_train.py too."""
    with torch.autocast(x.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = train_model(x)
    loss = loss_fn(logits, y)  # computed in float32 whatever the autocast dtype
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(train_model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
    return loss.detach()


# ---------------------------------------------------------------------------------------------
# Data

@dataclass
class Data:
    train_ids: list[str]
    val_ids: list[str]
    trainset: TrainSet
    val_images: list[ValImage]
    synthetic: bool
    description: str


def load_init_weights(cfg: TrainConfig, bands: tuple[str, ...]):
    """The `LoadedModel` named by cfg.init_weights, checked against this run's architecture and bands."""
    from dstl.models import load_model

    start = load_model(cfg.init_weights)
    c = start.config
    if c.architecture != cfg.model:
        raise ConfigError(f"config: init_weights {cfg.init_weights} is a {c.architecture}, this run trains "
                          f"a {cfg.model}")
    if tuple(c.bands) != tuple(bands):
        raise ConfigError(f"config: init_weights {cfg.init_weights} takes bands {','.join(c.bands)}, "
                          f"this run trains on {','.join(bands)}")
    return start


#: Model arguments that change no weight (dropout rates and placement): init_weights may differ in them.
PARAMETER_FREE_ARGS = frozenset({"dropout", "dropout_placement", "drop_block", "drop_block_size"})


def copy_init_weights(model: torch.nn.Module, start, cfg: TrainConfig) -> None:
    """Copy the loaded weights into the freshly built `model` (same constructor arguments required)."""
    built = {k: v for k, v in dict(getattr(model, "model_args", {})).items() if k not in PARAMETER_FREE_ARGS}
    given = {k: v for k, v in dict(start.config.model_args).items() if k not in PARAMETER_FREE_ARGS}
    if built and built != given:
        raise ConfigError(f"config: init_weights {cfg.init_weights} was built with "
                          f"{start.config.model_args}, this run with {built}; set model_args to match")
    model.load_state_dict(start.module.state_dict(), strict=True)


def detect_synthetic(dataset) -> bool:
    """True for a folder written by `python -m dstl synth`: its ids carry the synthetic prefix
    (`synth_...`), which real DSTL ids never do."""
    from dstl.synthetic.writer import ID_PREFIX, is_synthetic_dataset

    return is_synthetic_dataset(dataset.root) or all(i.startswith(ID_PREFIX) for i in dataset.image_ids)


def load_data(roots: str | list[str], cfg: TrainConfig, bands: tuple[str, ...], device: torch.device,
              info: ddp.DistInfo, stats=None) -> Data:
    """Split the labelled images of one or more DSTL folders, load the training set into memory and
    keep the validation images.

    `stats` (BandStats) normalises the training crops; None estimates them from the training images.
    Raises DataError where an image id is in two folders, or where a held-out real image
    (dstl.splits.REAL_HOLDOUT_IDS, or a real-layout scene made on one) would be trained or validated on.
    """
    from dstl.dataset import DstlDataset
    from dstl.splits import check_not_held_out

    roots = [roots] if isinstance(roots, (str, os.PathLike)) else list(roots)
    source: dict[str, DstlDataset] = {}
    datasets = []
    for root in roots:
        ds = DstlDataset(root, mask_cache=0)
        datasets.append(ds)
        for i in ds.train_ids:
            if i in source:
                raise DataError(f"image id {i} is in both {source[i].root} and {root}; "
                                "--data folders must not share ids")
            source[i] = ds
    labelled = list(source)
    where = " + ".join(str(r) for r in roots)
    if len(labelled) < 2:
        raise DataError(f"{where}: training needs at least 2 labelled images (train_wkt_v4.csv), "
                        f"found {len(labelled)}")
    check_not_held_out(labelled, "training and validation")
    bar = dict(disable=not info.is_main, leave=False, dynamic_ncols=True)
    masks = {i: source[i].masks(i) for i in tqdm(labelled, desc="rasterising labels", **bar)}
    if cfg.val_ids:
        unknown = [i for i in cfg.val_ids if i not in masks]
        if unknown:
            raise ConfigError(f"config: val_ids {unknown} are not labelled images of {where}")
        val_ids = sorted(cfg.val_ids)
        train_ids = [i for i in sorted(labelled) if i not in val_ids]
        if not train_ids:
            raise ConfigError("config: val_ids leave no image for training")
    else:
        counts = {i: class_fractions(m) for i, m in masks.items()}
        train_ids, val_ids = split_ids(labelled, counts, cfg.val_fraction, cfg.split_seed)

    def size(i: str) -> tuple[int, int]:
        return source[i].image_size(i)

    small = [i for i in train_ids if min(size(i)) < cfg.crop_size]
    if small:
        raise DataError(_too_small_message(small, [size(i) for i in small], train_ids, cfg, bands))

    def load(k: int):
        image_id = train_ids[k]
        return source[image_id].read_scene(image_id, bands).data, masks[image_id]

    data_device = device if (device.type == "cuda" and cfg.data_on_device) else torch.device("cpu")
    trainset = TrainSet(train_ids, [size(i) for i in train_ids], load, bands, cfg.crop_size,
                        rare_classes=cfg.rare_classes, rare_prob=cfg.rare_prob, sample_by=cfg.sample_by,
                        device=data_device,
                        store_dtype=cfg.store_dtype, seed=cfg.split_seed, stats=stats,
                        progress=tqdm(total=len(train_ids), desc="loading training images", **bar))
    val_images = []
    scale = 1.0 / STORE_SCALE if cfg.store_dtype == "int16" else 1.0
    for image_id in tqdm(val_ids, desc="loading validation images", **bar):
        if info.is_main:  # only rank 0 validates
            ds = source[image_id]
            x = ds.read_scene(image_id, bands).data
            if cfg.store_dtype == "int16":  # half the memory; converted back per validation pass
                x = np.rint(np.clip(x, 0, 1) * STORE_SCALE).astype(np.int16)
            stored = x
            val_images.append(ValImage(image_id, stored, scale, np.asarray(masks[image_id]),
                                       ds.labels(image_id), ds.transform(image_id)))
    synthetic = all(detect_synthetic(ds) for ds in datasets)
    parts = [f"`{Path(ds.root).name}` ({len(ds.train_ids)})" for ds in datasets]
    folders = (f"folder {parts[0]}" if len(parts) == 1 else "folders " + " and ".join(parts))
    description = (f"SYNTHETIC scenes written by `python -m dstl synth` ({folders}, "
                   f"{len(labelled)} labelled images in the DSTL competition layout), no real imagery"
                   if synthetic else
                   f"the {len(labelled)} labelled images of the DSTL-layout {folders}")
    return Data(train_ids, val_ids, trainset, val_images, synthetic, description)


def _too_small_message(small: list[str], sizes: list[tuple[int, int]], train_ids: list[str],
                       cfg: TrainConfig, bands: tuple[str, ...]) -> str:
    """Why training images smaller than the crop stop the run, and what can be done about it."""
    rule = crop_rule(cfg, len(bands))
    side = min(min(s) for s in sizes)
    fit = rule.largest_fitting(side)
    more = f" (and {len(small) - 1} more)" if len(small) > 1 else ""
    which = f"training image {small[0]}{more} is {sizes[0][0]} x {sizes[0][1]} px"
    if fit is not None:
        return (f"{which}, smaller than crop_size {cfg.crop_size}; use --crop-size {fit} (the largest "
                f"{rule.model} crop the smallest training image allows)")
    ids = ", ".join(f'"{i}"' for i in small)
    return (f"{which}, smaller than crop_size {cfg.crop_size} and than the smallest crop {rule.model} "
            f"trains on ({rule.minimum} px); validate on it instead (--set 'val_ids=[{ids}]'; validation "
            f"takes whole images of any size), or train on larger images")


# ---------------------------------------------------------------------------------------------
# Validation through the engine

def engine_predictor(module: torch.nn.Module, model_config: ModelConfig, bands: tuple[str, ...],
                     device: torch.device):
    """A function ValImage -> (10, H, W) probabilities, via dstl.engine on a frozen copy of `module`."""
    from dstl.engine import Predictor
    from dstl.models import LoadedModel
    from dstl.scene import Scene

    frozen = copy.deepcopy(unwrap_module(module)).float().eval()
    loaded = LoadedModel(module=frozen, config=model_config, source="training run")
    # fp32 on CPU: "auto" could pick int8 there, and thresholds must be tuned on the model itself.
    predictor = Predictor(loaded, precision="auto" if device.type == "cuda" else "fp32", device=device)

    def predict(img: ValImage) -> np.ndarray:
        return predictor.predict(Scene(img.image_id, img.float_data(), bands)).probs

    return predict


def run_validation(module, model_config, bands, images, cfg, info, thresholds=None,
                   polygons: bool = True) -> ValResult:
    """Score `module` on whole `images` through the engine (see dstl/train/validate.py)."""
    bar = tqdm(total=len(images), desc="validating", leave=False, dynamic_ncols=True,
               disable=not info.is_main)

    def progress(n, total):
        bar.update(1)

    try:
        predict = engine_predictor(module, model_config, bands, info.device)
        return validate(predict, images, cfg.threshold_grid, progress=progress, thresholds=thresholds,
                        polygons=polygons)
    finally:
        bar.close()


# ---------------------------------------------------------------------------------------------
# The run

def main(argv: list[str] | None = None) -> dict:
    """Parse `argv`, train, write the weights folder; returns a summary dict (for tests)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    cfg, recipe = resolve_config(args)
    if args.print_config:
        import json

        print(json.dumps(cfg.to_dict(), indent=2))
        return {"config": cfg}
    # Everything that can be refused is refused here, before any data, weights or process group.
    check_options(cfg, len(bands_of(cfg)), world_size=env_ranks()[1])
    if args.push_to_hub:
        check_push_target(args.push_to_hub)
    out_dir = Path(args.out)
    ckpt_path = Path(args.checkpoint) if args.checkpoint else Path("runs") / out_dir.name / "checkpoint.pt"
    if args.holdout:
        from dstl.dataset import DstlDataset

        holdout_ds = DstlDataset(args.holdout)
        if not holdout_ds.train_ids:
            raise DataError(f"--holdout {args.holdout}: has no labelled images to score")

    if args.threads is not None:
        if args.threads < 1:
            raise DstlError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    info = ddp.init_distributed(cfg.device)
    try:
        return _train(args, argv, cfg, recipe, out_dir, ckpt_path, info)
    finally:
        ddp.cleanup(info)


def bands_of(cfg: TrainConfig) -> tuple[str, ...]:
    """The input bands of `cfg`: all 20, or R, G, B."""
    return ALL_BANDS if cfg.bands == "all" else RGB_BANDS


@dataclass
class Run:
    """One training run: what it was asked (args, config), where it runs and writes, and the state
    it carries from epoch to epoch (saved in every checkpoint)."""

    args: argparse.Namespace
    cfg: TrainConfig
    recipe: str
    command: str  # the command line recorded with the weights
    info: ddp.DistInfo
    out_dir: Path
    ckpt_path: Path
    hardware: str
    amp_dtype: torch.dtype | None
    data: Data
    model: torch.nn.Module  # the plain module; `train_model` wraps it (torch.compile, DDP)
    start: object | None  # the LoadedModel of cfg.init_weights, if any
    backbone_note: str | None
    t_start: float = field(default_factory=time.time)
    train_model: torch.nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: object | None = None
    loss_fn: torch.nn.Module | None = None
    # Progress (what a checkpoint restores).
    start_epoch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)
    best: dict | None = None  # {"epoch", "metric", "thresholds", "scores", "state"} of the kept epoch
    elapsed_before: float = 0.0  # seconds spent before a resume

    @property
    def bands(self) -> tuple[str, ...]:
        return bands_of(self.cfg)

    @property
    def device(self) -> torch.device:
        return self.info.device

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def model_config(self, thresholds=(0.5,) * NUM_CLASSES, training: dict | None = None) -> ModelConfig:
        """The weights' config.json for this run's model, normalisation and `thresholds`."""
        args = dict(getattr(self.model, "model_args", {**self.cfg.model_args, "in_channels": len(self.bands),
                                                        "num_classes": NUM_CLASSES}))
        return ModelConfig(architecture=self.cfg.model, model_args=args, bands=self.bands,
                           normalization=self.data.trainset.stats, thresholds=tuple(thresholds),
                           tile_size=self.cfg.tile_size, training=training)

    def elapsed(self) -> float:
        return self.elapsed_before + time.time() - self.t_start

    def log(self, text: str) -> None:
        """A line on stderr from rank 0 (above any progress bar)."""
        if self.info.is_main:
            tqdm.write(text, file=sys.stderr)


def _train(args, argv, cfg: TrainConfig, recipe: str, out_dir: Path, ckpt_path: Path,
           info: ddp.DistInfo) -> dict:
    run = _prepare(args, argv, cfg, recipe, out_dir, ckpt_path, info)
    _restore_or_start(run)
    _wrap_for_training(run)
    data = run.data
    run.log(f"training {cfg.model} ({run.num_parameters / 1e6:.2f} M parameters, {len(run.bands)} bands) on "
            f"{len(data.train_ids)} images ({data.trainset.memory_bytes() / 2**20:.0f} MiB in "
            f"{data.trainset.device.type} memory), validating on {len(data.val_ids)}; {run.hardware}, "
            f"{'bf16 autocast' if run.amp_dtype else 'fp32'}; recipe {recipe}")
    if run.backbone_note:
        run.log(run.backbone_note)

    stop_after = args.stop_after_epoch
    for epoch in range(run.start_epoch, cfg.epochs):
        if stop_after is not None and epoch >= stop_after:
            break
        row = _train_epoch(run, epoch)
        if (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs:
            row = ddp.broadcast_object(_validate_epoch(run, epoch, row) if info.is_main else row, info)
        run.history.append(row)
        if info.is_main:
            tqdm.write(_epoch_line(row), file=sys.stderr)
            _write_reports(out_dir, run.history, run.best, cfg, plot="val_loss" in row)
        _save_checkpoint(run, epoch)
        ddp.barrier(info)

    completed = len(run.history)
    module = unwrap_module(run.model)
    fingerprint = ddp.assert_same_parameters(module, info)
    result = {"model": module, "history": run.history, "completed_epochs": completed,
              "fingerprint": fingerprint, "out": out_dir, "checkpoint": ckpt_path, "finished": False}
    if completed < cfg.epochs:  # stopped early on request: the checkpoint is the product
        run.log(f"stopped after epoch {completed}/{cfg.epochs}; continue with --resume "
                f"(checkpoint {ckpt_path})")
        return result
    if info.is_main:
        result.update(_finish(run))
    ddp.barrier(info)
    result["finished"] = True
    return result


def _prepare(args, argv, cfg: TrainConfig, recipe: str, out_dir: Path, ckpt_path: Path,
             info: ddp.DistInfo) -> Run:
    """Settings, data, the model on identical initial weights everywhere, optimiser and loss."""
    t_start = time.time()
    world = info.world_size
    bands = bands_of(cfg)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to be deterministic
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    seed_everything(cfg.seed)
    command = shlex.join((["torchrun", f"--nproc_per_node={world}"] if world > 1 else ["python"])
                         + ["train/train.py", *argv])
    start = load_init_weights(cfg, bands) if cfg.init_weights else None
    data = load_data(args.data, cfg, bands, info.device, info,
                     stats=start.config.normalization if start else None)

    # Same seed on every rank (DDP also broadcasts rank 0's weights).
    seed_everything(cfg.seed)
    model, backbone_note = build_model(cfg, bands)
    if start is not None:
        copy_init_weights(model, start, cfg)
    elif cfg.head_bias_prior:
        init_head_bias(model, data.trainset.class_frequency)
    model.to(info.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    run = Run(args=args, cfg=cfg, recipe=recipe, command=command, info=info, out_dir=out_dir,
              ckpt_path=ckpt_path, hardware=hardware_description(info.device, world),
              amp_dtype=autocast_dtype(cfg, info.device), data=data, model=model, start=start,
              backbone_note=backbone_note, t_start=t_start)
    run.optimizer = make_optimizer(model, cfg)
    run.scheduler = make_scheduler(run.optimizer, cfg)
    run.loss_fn = SegmentationLoss(cfg.loss, cfg.loss_weight, cfg.class_weights or None).to(info.device)
    return run


def _restore_or_start(run: Run) -> None:
    """With --resume, the checkpoint's weights, optimiser, schedule, progress and RNG states."""
    info, cfg, path = run.info, run.cfg, run.ckpt_path
    if not run.args.resume:
        if path.exists():
            run.log(f"note: starting afresh; {path} will be overwritten (use --resume to continue it)")
        seed_everything(cfg.seed + info.rank)  # dropout differs per rank; crops come from epoch seeds
        return
    state = ckpt.load_checkpoint(path, map_location=run.device)
    _check_resumable(state, cfg, run.data, run.data.trainset.stats, path)
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.start_epoch, run.step = int(state["epoch"]), int(state["step"])
    run.history, run.best = list(state["history"]), state["best"]
    run.elapsed_before = float(state.get("elapsed_s", 0.0))
    rngs = state["rng"]
    if len(rngs) == info.world_size:
        ckpt.set_rng_state(rngs[info.rank])
    else:  # another process count: a fresh but deterministic stream per rank
        seed_everything(cfg.seed + 1000 * run.start_epoch + info.rank)
    run.log(f"resuming {path} after epoch {run.start_epoch} (step {run.step})")


def _wrap_for_training(run: Run) -> None:
    """`run.train_model`: the model, compiled and/or in DDP as configured."""
    train_model = run.model
    if run.cfg.compile:
        train_model = torch.compile(train_model)
    if run.info.distributed:
        from torch.nn.parallel import DistributedDataParallel

        # Stages frozen by an unfreeze schedule get no gradients: DDP must be told to expect that.
        device = run.device
        train_model = DistributedDataParallel(
            train_model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=bool(run.cfg.unfreeze_schedule))
    run.train_model = train_model


def _train_epoch(run: Run, epoch: int) -> dict:
    """One epoch of optimiser steps on crops drawn from the epoch's seed; the metrics.csv row."""
    cfg, info, device, trainset = run.cfg, run.info, run.device, run.data.trainset
    if cfg.unfreeze_schedule:
        from dstl.models.backbone import apply_unfreeze_schedule

        apply_unfreeze_schedule(run.model, epoch, cfg.unfreeze_schedule)
    gen = torch.Generator(device=trainset.device)
    gen.manual_seed(epoch_seed(cfg.seed, epoch))
    run.train_model.train()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    t0 = time.time()
    bar = tqdm(range(cfg.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
               dynamic_ncols=True, disable=not info.is_main)
    for i in bar:
        image, top, left, transform = trainset.sample_positions(cfg.batch_size, gen)
        x, y = trainset.crops(*[ddp.shard(t, info) for t in (image, top, left, transform)])
        loss = train_step(run.train_model, x.to(device, non_blocking=True), y.to(device, non_blocking=True),
                          run.loss_fn, run.optimizer, run.scheduler, run.amp_dtype, cfg.grad_clip)
        run.step += 1
        loss_sum += loss
        if info.is_main and (i % 10 == 9 or i == cfg.steps_per_epoch - 1):
            rate = (i + 1) * cfg.batch_size / max(time.time() - t0, 1e-9)
            bar.set_postfix(loss=f"{loss_sum.item() / (i + 1):.4f}",
                            lr=f"{run.scheduler.get_last_lr()[0]:.2e}", patches_s=f"{rate:.1f}")
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_time = time.time() - t0
    ddp.broadcast_buffers(run.model, info)
    if info.distributed:
        torch.distributed.all_reduce(loss_sum)
        loss_sum /= info.world_size
    return {"epoch": epoch + 1, "step": run.step, "lr": run.scheduler.get_last_lr()[0],
            "train_loss": loss_sum.item() / cfg.steps_per_epoch,
            "patches_per_s": cfg.steps_per_epoch * cfg.batch_size / train_time, "train_s": train_time}


def _validate_epoch(run: Run, epoch: int, row: dict) -> dict:
    """Rank 0: score the epoch on the validation images, keep its weights if they are the best; the
    row with the validation columns."""
    cfg = run.cfg
    t1 = time.time()
    last = epoch + 1 == cfg.epochs
    polygons = last or ((epoch + 1) // cfg.val_every) % cfg.polygon_every == 0
    val = run_validation(run.model, run.model_config(), run.bands, run.data.val_images, cfg, run.info,
                         polygons=polygons)
    row = {**row, **val.row(), "val_s": time.time() - t1}
    metric = _metric(val)
    if cfg.keep == "last" or run.best is None or metric > run.best["metric"]:
        state = {k: v.detach().to("cpu", copy=True) for k, v in run.model.state_dict().items()}
        run.best = {"epoch": epoch + 1, "metric": metric, "thresholds": val.thresholds,
                    "scores": val.scores(), "state": state}
    return row


def _save_checkpoint(run: Run, epoch: int) -> None:
    """Atomic checkpoint after `epoch` (the RNG states of every rank gathered to rank 0)."""
    rngs = ddp.all_gather_object(ckpt.get_rng_state(), run.info)
    if not run.info.is_main:
        return
    data = run.data
    ckpt.save_checkpoint(run.ckpt_path, {
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "epoch": epoch + 1, "step": run.step,
        "history": run.history, "best": run.best, "config": run.cfg.to_dict(),
        "split": {"train": data.train_ids, "val": data.val_ids}, "stats": data.trainset.stats.to_dict(),
        "rng": rngs, "world_size": run.info.world_size, "elapsed_s": run.elapsed(),
    })


def _metric(val: ValResult) -> float:
    """The number that picks the kept epoch: mean pixel IoU at the tuned thresholds (computed at
    every validation, unlike the polygon Jaccard; the two differ by ~0.01 for a given mask)."""
    return -math.inf if val.iou_mean is None else float(val.iou_mean)


def _epoch_line(row: dict) -> str:
    parts = [f"epoch {row['epoch']}", f"loss {row['train_loss']:.4f}",
             f"{row['patches_per_s']:.1f} patches/s"]
    if row.get("val_iou_mean") is not None:
        parts.append(f"val IoU {row['val_iou_mean']:.3f}")
    if row.get("val_jaccard_mean") is not None:
        parts.append(f"val Jaccard {row['val_jaccard_mean']:.3f}")
    return " | ".join(parts)


def _write_reports(out_dir: Path, history: list[dict], best: dict | None, cfg: TrainConfig,
                   plot: bool = True) -> None:
    """metrics.csv every epoch; curves.png when there are new validation scores (a plot costs ~1 s)."""
    report.write_metrics_csv(out_dir / "metrics.csv", history)
    if not plot:
        return
    final = best["scores"] if best else None
    title = f"{cfg.model} ({cfg.bands} bands)" + (f", kept epoch {best['epoch']}" if best else "")
    report.plot_curves(out_dir / "curves.png", history, final, title=title)


def _check_resumable(state: dict, cfg: TrainConfig, data: Data, stats, path: Path) -> None:
    old = state["config"]
    new = cfg.to_dict()
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if diff:
        raise ckpt.CheckpointError(f"checkpoint {path} was made with different settings ({', '.join(diff)}); "
                                   "resume with the same recipe/overrides, or start afresh without --resume")
    if state["split"] != {"train": data.train_ids, "val": data.val_ids} or state["stats"] != stats.to_dict():
        raise ckpt.CheckpointError(f"checkpoint {path} was made on different images; "
                                   "resume with the same --data")


def _finish(run: Run) -> dict:
    """Rank 0, after the last epoch: the kept weights in Hub layout (config, safetensors, model card)
    beside metrics.csv and curves.png, scored on --holdout if given, pushed if asked."""
    from dstl.models import push_to_hub, save_pretrained

    cfg, best, data = run.cfg, run.best, run.data
    module = _kept_module(run)
    thresholds = best["thresholds"] if best else [0.5] * NUM_CLASSES
    kept_epoch = best["epoch"] if best else len(run.history)
    if best is not None and best["scores"].get("jaccard_mean") is None and data.val_images:
        # The kept epoch's validation skipped polygons (polygon_every): score them now.
        val = run_validation(module, run.model_config(thresholds), run.bands, data.val_images, cfg, run.info,
                             thresholds=list(thresholds))
        best["scores"] = val.scores()  # same model and thresholds: the same pixel IoU, plus polygons
    holdout = None
    if run.args.holdout:
        holdout = score_holdout(run.args.holdout, module, run.model_config(thresholds), run.bands, cfg,
                                 run.info)
    val_scores = best["scores"] if best else None
    mc = run.model_config(thresholds, _training_record(run, kept_epoch, val_scores, holdout))
    mc.extra = {"train_config": cfg.to_dict()}
    notes = report.card_notes(
        synthetic=data.synthetic, train_ids=data.train_ids, val_ids=data.val_ids, recipe=run.recipe,
        config=cfg.to_dict(), kept_epoch=kept_epoch, epochs_run=len(run.history), thresholds=thresholds,
        val_scores=val_scores, holdout=holdout)
    save_pretrained(module, mc, run.out_dir, notes=notes)  # beside metrics.csv and curves.png
    run.log(f"wrote {run.out_dir} ({run.num_parameters / 1e6:.2f} M parameters, kept epoch {kept_epoch})")
    pushed = None
    if run.args.push_to_hub:
        repo = run.args.push_to_hub
        pushed = push_to_hub(run.out_dir, repo, token=check_push_target(repo))
        run.log(f"pushed {run.out_dir} to {repo}: {pushed}")
    return {"thresholds": thresholds, "kept_epoch": kept_epoch, "holdout": holdout, "pushed": pushed,
            "val_scores": val_scores}


def _kept_module(run: Run) -> torch.nn.Module:
    """The model with the kept epoch's weights (cfg.keep), in float32 on the CPU, in eval mode."""
    module = unwrap_module(run.model)
    if run.cfg.keep == "best" and run.best is not None:
        module.load_state_dict(run.best["state"])
    return module.float().to("cpu", memory_format=torch.contiguous_format).eval()


def _training_record(run: Run, kept_epoch: int, val_scores: dict | None, holdout: dict | None) -> dict:
    """config.json's `training` entry: data, split, recipe, command, hardware, metrics, limitations."""
    data, start = run.data, run.start
    band_word = "20-band" if len(run.bands) == 20 else "RGB-only"
    record = {
        "data": data.description,
        "synthetic": data.synthetic,
        "dataset": " ".join(str(d) for d in run.args.data),
        "train_ids": data.train_ids,
        "val_ids": data.val_ids,
        "recipe": run.recipe,
        "seed": run.cfg.seed,
        "epochs": len(run.history),
        "kept_epoch": kept_epoch,
        "hardware": run.hardware,
        "duration_min": round(run.elapsed() / 60, 1),
        "command": run.command,
    }
    if start is not None:
        record["init_weights"] = {"source": run.cfg.init_weights, "description": start.source,
                                  "command": (start.config.training or {}).get("command")}
    record["metrics"] = {"validation": val_scores, "holdout": holdout["scores"] if holdout else None}
    record["limitations"] = report.limitations(data.synthetic, len(data.train_ids) + len(data.val_ids),
                                               len(data.val_ids), band_word)
    return record


def read_images(ds, ids: list[str], bands: tuple[str, ...], desc: str = "loading held-out images",
                show: bool = True) -> list[ValImage]:
    """Labelled images `ids` of the DstlDataset `ds` as float32 ValImages (whole scenes, `bands`)."""
    bar = tqdm(ids, desc=desc, leave=False, disable=not show)
    return [ValImage(i, ds.read_scene(i, bands).data, 1.0, ds.masks(i), ds.labels(i), ds.transform(i))
            for i in bar]


def score_holdout(root, module, mc: ModelConfig, bands, cfg, info) -> dict:
    """Score `module` on every labelled image of the DSTL folder `root` at the thresholds of `mc`."""
    from dstl.dataset import DstlDataset

    ds = DstlDataset(root, mask_cache=0)
    images = read_images(ds, ds.train_ids, bands, show=info.is_main)
    res = run_validation(module, mc, bands, images, cfg, info, thresholds=list(mc.thresholds))
    return {"description": f"{len(images)} labelled images of `{Path(root).name}`", "ids": ds.train_ids,
            "scores": res.scores()}


def cli(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors for bad input (exit 2), 130 on Ctrl-C."""
    try:
        main(argv)
    except DstlError as e:
        print_error(e)
        return 2
    except KeyboardInterrupt:
        print_error("interrupted (resume with --resume)")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(cli())

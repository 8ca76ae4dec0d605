"""Weights between two weights folders of one model: theta(alpha) = (1 - alpha) * theta_A + alpha * theta_B.

    python -m dstl.train.interpolate A B --alpha 0.25 0.5 0.75 --data DIR [DIR ...] --out OUT [--holdout DIR]

A is where a fine-tuning run started (e.g. the bundled `unet-20band`) and B where it ended (a run of
`train/train.py` with `init_weights = A`). Fine-tuning B on a new world (real-layout scenes) costs
it some of A's (the rule-based scenes); a point on the straight line between the two often keeps
most of both (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022, "WiSE-FT").
Every float tensor of the state dict is interpolated, BatchNorm's running statistics included;
integer buffers (BatchNorm's batch counters) are B's.

For every alpha the thresholds are tuned on all of B's validation images together (its config.json
names them; they are looked up in the --data folders) exactly as training tunes them, and the alpha
with the highest validation score is written to OUT in Hub layout. The score (--select-by) is the
mean pixel IoU over all validation pixels ("pooled", training's rule for the kept epoch: large
scenes dominate it) or the mean over the --data folders of each folder's mean pixel IoU at those
thresholds ("folder-mean": every data world counts the same). Written: interpolated weights, those
thresholds, a `training` record that is B's plus an `interpolation` entry (both sources, every
alpha's validation IoU, the chosen alpha), B's metrics.csv and curves.png, and a model card. Held-
out images (--holdout) are scored with the saved thresholds only, after the choice. A and B must
share architecture, constructor arguments, bands and input normalisation (the same input means the
same thing to both).
"""

from __future__ import annotations

import argparse
import copy
import math
import shlex
import shutil
import sys
from pathlib import Path

import torch

from dstl.errors import DataError, DstlError
from dstl.progress import print_error
from dstl.train import distributed as ddp
from dstl.train import report
from dstl.train.config import ConfigError, TrainConfig
from dstl.train.train import PARAMETER_FREE_ARGS, read_images, score_holdout
from dstl.train.validate import ValImage, validate


def check_compatible(a, b, name_a: str, name_b: str) -> None:
    """Raise ConfigError (one line) unless LoadedModels `a` and `b` can be interpolated."""
    ca, cb = a.config, b.config

    def args(c):
        return {k: v for k, v in dict(c.model_args).items() if k not in PARAMETER_FREE_ARGS}

    checks = (("architecture", ca.architecture, cb.architecture), ("model_args", args(ca), args(cb)),
              ("bands", tuple(ca.bands), tuple(cb.bands)),
              ("normalization", ca.normalization, cb.normalization))
    for what, va, vb in checks:
        if va != vb:
            raise ConfigError(f"{name_a} and {name_b} differ in {what}; only weights of one model with one "
                              "input normalisation can be interpolated")


def interpolate_state(state_a: dict[str, torch.Tensor], state_b: dict[str, torch.Tensor],
                      alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) * A + alpha * B for every floating-point tensor, B's value for the others."""
    if set(state_a) != set(state_b):
        raise ConfigError("the two state dicts hold different tensors")
    out = {}
    for k, tb in state_b.items():
        ta = state_a[k]
        if ta.shape != tb.shape:
            raise ConfigError(f"tensor {k} is {tuple(ta.shape)} in one and {tuple(tb.shape)} in the other")
        if tb.is_floating_point():
            out[k] = torch.lerp(ta.float(), tb.float(), alpha).to(tb.dtype)
        else:
            out[k] = tb.clone()
    return out


def train_config_of(loaded) -> TrainConfig:
    """The TrainConfig B was trained with (config.json's extra.train_config), for the threshold grid."""
    stored = (loaded.config.extra or {}).get("train_config")
    if not stored:
        raise ConfigError("weights B carry no training configuration (extra.train_config in config.json); "
                          "B must be a folder written by train/train.py")
    return TrainConfig.from_dict(stored, source="weights B's extra.train_config")


def validation_images(roots: list[str], ids: list[str], bands: tuple[str, ...]) -> dict[str, list[ValImage]]:
    """B's validation images `ids`, each read from the --data folder that holds it: folder -> images
    (folders that hold none left out)."""
    from dstl.dataset import DstlDataset

    found = {}
    for root in roots:
        ds = DstlDataset(root, mask_cache=0)
        for i in ds.train_ids:
            found.setdefault(i, ds)
    missing = [i for i in ids if i not in found]
    if missing:
        raise DataError(f"validation images {missing} of weights B are not labelled images of "
                        f"{' + '.join(roots)}")
    groups: dict[str, list[ValImage]] = {}
    for i in ids:
        images = read_images(found[i], [i], bands, desc=f"reading {i}")
        groups.setdefault(str(found[i].root), []).extend(images)
    return groups


def score_alpha(module, mc, bands, groups: dict[str, list[ValImage]], cfg, info):
    """Validate `module` on all of `groups`' images (thresholds tuned on them together, as training
    does) and, at those thresholds, on each folder's images alone: (ValResult, {folder: pixel IoU},
    predict), where predict(image) returns the probabilities already computed (no second pass)."""
    from dstl.train.train import engine_predictor

    predict = engine_predictor(module, mc, bands, info.device)
    cache: dict[str, object] = {}

    def cached(img: ValImage):
        if img.image_id not in cache:
            cache[img.image_id] = predict(img)
        return cache[img.image_id]

    images = [img for imgs in groups.values() for img in imgs]
    pooled = validate(cached, images, cfg.threshold_grid, polygons=False)
    folders = {f: validate(cached, imgs, cfg.threshold_grid, thresholds=pooled.thresholds,
                           polygons=False).iou_mean
               for f, imgs in groups.items()}
    return pooled, folders, cached


#: How the alpha is chosen: "pooled" = pixel IoU over all validation pixels together (training's rule
#: for the kept epoch; large scenes dominate it); "folder-mean" = the mean over the --data folders of
#: each folder's pixel IoU (every data world counts the same, whatever its scenes' size).
SELECT_BY = ("pooled", "folder-mean")


def choose(scores: dict[float, float]) -> float:
    """The alpha of the highest validation IoU (the smaller alpha on a tie: closer to A)."""
    return max(sorted(scores), key=lambda a: (scores[a], -a))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dstl.train.interpolate", description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="weights at alpha 0: a folder, a bundled name or a Hub repo id")
    p.add_argument("b", help="weights at alpha 1: a folder written by train/train.py")
    p.add_argument("--alpha", type=float, nargs="+", required=True, help="values in [0, 1] to try")
    p.add_argument("--data", nargs="+", required=True, help="DSTL folders holding B's validation images")
    p.add_argument("--out", required=True, help="output folder (Hub layout)")
    p.add_argument("--select-by", choices=SELECT_BY, default="pooled",
                   help="pooled: pixel IoU over all validation pixels (training's rule); folder-mean: the "
                        "mean of each --data folder's pixel IoU (default: pooled)")
    p.add_argument("--holdout", help="a DSTL folder of held-out images, scored after the choice")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's)")
    return p


def main(argv: list[str] | None = None) -> dict:
    """Interpolate, tune, choose, write OUT. Returns {"alpha": chosen, "scores": alpha -> pooled
    validation IoU, "criterion": alpha -> the --select-by score, "by_folder": alpha -> {folder: IoU},
    "holdout": held-out record or None}."""
    from dstl.models import load_model, save_pretrained

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    bad = [a for a in args.alpha if not 0.0 <= a <= 1.0 or math.isnan(a)]
    if bad:
        raise ConfigError(f"--alpha {bad[0]} is outside [0, 1]")
    if args.threads:
        torch.set_num_threads(args.threads)
    a, b = load_model(args.a), load_model(args.b)
    check_compatible(a, b, args.a, args.b)
    cfg = train_config_of(b)
    training = dict(b.config.training or {})
    val_ids = list(training.get("val_ids") or [])
    if not val_ids:
        raise ConfigError(f"{args.b} records no validation images (training.val_ids)")
    bands = tuple(b.config.bands)
    groups = validation_images(args.data, val_ids, bands)
    images = [img for imgs in groups.values() for img in imgs]
    info = ddp.DistInfo()
    state_a, state_b = a.module.state_dict(), b.module.state_dict()
    module = copy.deepcopy(b.module).float().eval()
    results, by_folder, criterion = {}, {}, {}
    best_predict = None  # the cached probabilities of the best alpha so far (at most two caches alive)
    for alpha in sorted(set(args.alpha)):
        module.load_state_dict(interpolate_state(state_a, state_b, alpha))
        results[alpha], by_folder[alpha], predict = score_alpha(module, b.config, bands, groups, cfg, info)
        folder_mean = sum(by_folder[alpha].values()) / len(by_folder[alpha])
        criterion[alpha] = results[alpha].iou_mean if args.select_by == "pooled" else folder_mean
        parts = ", ".join(f"{Path(f).name} {v:.4f}" for f, v in by_folder[alpha].items())
        print(f"alpha {alpha:.3f}: validation pixel IoU {results[alpha].iou_mean:.4f} pooled, "
              f"{folder_mean:.4f} folder mean ({parts})", file=sys.stderr)
        if choose(criterion) == alpha:
            best_predict = predict
        del predict
    alpha = choose(criterion)
    module.load_state_dict(interpolate_state(state_a, state_b, alpha))
    thresholds = results[alpha].thresholds
    mc = copy.deepcopy(b.config)
    mc.thresholds = tuple(thresholds)
    # The chosen point's scores with polygons, from the probabilities its sweep step computed.
    val = validate(best_predict, images, cfg.threshold_grid, thresholds=list(thresholds))
    del best_predict
    holdout = score_holdout(args.holdout, module, mc, bands, cfg, info) if args.holdout else None
    training["interpolation"] = {
        "a": {"source": args.a, "command": (a.config.training or {}).get("command")},
        "b": {"source": args.b, "command": training.get("command")},
        "alpha": alpha,
        "select_by": args.select_by,
        "validation_iou_by_alpha": {f"{k:g}": v.iou_mean for k, v in results.items()},
        "validation_iou_by_alpha_and_folder": {f"{k:g}": {Path(f).name: v for f, v in d.items()}
                                               for k, d in by_folder.items()},
    }
    training["command"] = "python -m dstl.train.interpolate " + shlex.join(argv)
    training["metrics"] = {"validation": val.scores(), "holdout": holdout["scores"] if holdout else None}
    mc.training = training
    out = Path(args.out)
    notes = report.card_notes(
        synthetic=bool(training.get("synthetic")), train_ids=list(training.get("train_ids") or []),
        val_ids=val_ids, recipe=str(training.get("recipe")), config=cfg.to_dict(),
        kept_epoch=training.get("kept_epoch"), epochs_run=int(training.get("epochs") or 0),
        thresholds=list(thresholds), val_scores=val.scores(), holdout=holdout)
    # After the SYNTHETIC banner (if any), before the run's own sections.
    made = interpolation_notes(args.a, args.b, alpha, results, by_folder, args.select_by)
    cut = notes.find("## Data split and recipe")
    notes = notes[:cut] + made + notes[cut:] if cut >= 0 else made + notes
    save_pretrained(module, mc, out, notes=notes)
    src = Path(args.b)
    for name in ("metrics.csv", "curves.png"):  # B's run: the card says so
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    print(f"wrote {out} (alpha {alpha:g}: validation pixel IoU {val.iou_mean:.4f})", file=sys.stderr)
    return {"alpha": alpha, "scores": {k: v.iou_mean for k, v in results.items()}, "criterion": criterion,
            "by_folder": by_folder, "holdout": holdout}


def interpolation_notes(a: str, b: str, alpha: float, results: dict, by_folder: dict, select_by: str) -> str:
    """The card's paragraph on how these weights were made, with every alpha's validation IoU."""
    folders = list(next(iter(by_folder.values())))
    head = " | ".join(f"`{Path(f).name}`" for f in folders)
    rows = "\n".join(
        f"| {f'**{k:g}** (chosen)' if k == alpha else f'{k:g}'} | {v.iou_mean:.4f} | "
        + " | ".join(f"{by_folder[k][f]:.4f}" for f in folders) + " |"
        for k, v in sorted(results.items()))
    rule = ("pooled validation pixel IoU (all validation pixels together)" if select_by == "pooled" else
            "the mean over the data folders of each folder's validation pixel IoU")
    return (f"## Interpolated weights\n\nThese weights are (1 - {alpha:g}) x `{a}` + {alpha:g} x `{b}`, "
            "every float tensor interpolated (`python -m dstl.train.interpolate`, the command is in "
            "config.json); the thresholds were tuned on all the validation images for this point, and the "
            f"point was chosen by {rule}. The recipe, split and learning curves below are those of the run "
            f"that made `{b}`.\n\n"
            f"| alpha | validation pixel IoU, pooled | {head} |\n"
            f"|---|---|{'---|' * len(folders)}\n{rows}\n\n")


def cli(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors for bad input (exit 2)."""
    try:
        main(argv)
    except DstlError as e:
        print_error(e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())

"""Threshold rules compared: tuned on the weights' validation images, scored on held-out ones.

For one weights folder, runs the model (fp32, so that no precision effect mixes in) on the
validation images its card names (`training.val_ids`, looked up in the `--val-data` folders),
tunes per-class thresholds there with both rules of `dstl.train.validate.ThresholdTuner`:

- "one-SE": of the grid values whose validation pixel IoU is within one block-jackknife standard
  error of the top one, the nearest to 0.5 (what training uses since stage 3);
- "arg-max": the grid value of the highest validation pixel IoU (stage 2 and before);

and scores those, a flat 0.5 and the thresholds shipped in the card on the labelled images of
`--holdout` (never trained, validated or tuned on): pixel IoU and Kaggle polygon Jaccard per
class, summed over the images. The held-out images never choose a threshold here.

    python bench/threshold_rules.py --weights runs/unet-20band --val-data data/rl_rest data/synth-train \
        --holdout data/rl_holdout --json out/threshold_rules.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dstl.atomic import write_text_atomic  # noqa: E402
from dstl.classes import CLASSES, NUM_CLASSES  # noqa: E402
from dstl.dataset import DstlDataset  # noqa: E402
from dstl.engine import Predictor  # noqa: E402
from dstl.metrics import kaggle_jaccard, pixel_counts, scores_from_counts  # noqa: E402
from dstl.models import load_model  # noqa: E402
from dstl.polygonize import masks_to_polygons  # noqa: E402
from dstl.splits import check_not_held_out  # noqa: E402
from dstl.train.config import TrainConfig  # noqa: E402
from dstl.train.validate import ThresholdTuner  # noqa: E402


def _probs(predictor: Predictor, dataset: DstlDataset, image_id: str) -> np.ndarray:
    scene = dataset.read_scene(image_id, predictor.bands)
    return predictor.predict(scene).probs


def tune(predictor: Predictor, folders: list[DstlDataset], val_ids: list[str], grid: list[float]) -> dict:
    """Both rules' thresholds and the tuner's validation IoU / standard error at each."""
    tuner = ThresholdTuner()
    for image_id in val_ids:
        dataset = next((d for d in folders if image_id in d.train_ids), None)
        if dataset is None:
            raise SystemExit(f"validation image {image_id} is in none of the --val-data folders")
        tuner.add(_probs(predictor, dataset, image_id), dataset.masks(image_id))
    rules = {"one-SE": tuner.best(grid), "arg-max": tuner.best_plain(grid)}
    detail = {name: {"iou": [tuner.iou(k, t) for k, t in enumerate(th)],
                     "iou_error": [tuner.iou_error(k, t) for k, t in enumerate(th)]}
              for name, th in rules.items()}
    return {"thresholds": rules, "validation": detail, "blocks": int(tuner.blocks.shape[0])}


def score(predictor: Predictor, dataset: DstlDataset, ids: list[str], rules: dict[str, list[float]]) -> dict:
    """Held-out pixel IoU and Kaggle Jaccard of every rule's thresholds (one model run per image)."""
    counts = {name: None for name in rules}
    polys = {name: {} for name in rules}
    truths = {}
    for image_id in ids:
        probs = _probs(predictor, dataset, image_id)
        truth = dataset.masks(image_id)
        transform = dataset.transform(image_id)
        truths[image_id] = dataset.labels(image_id)
        for name, th in rules.items():
            masks = (probs >= np.asarray(th, dtype=np.float32).reshape(-1, 1, 1)).astype(np.uint8)
            c = pixel_counts(masks, truth)
            counts[name] = c if counts[name] is None else {k: counts[name][k] + c[k] for k in c}
            polys[name][image_id] = masks_to_polygons(masks, transform)
    out = {}
    for name in rules:
        pix = scores_from_counts(counts[name])
        kj = kaggle_jaccard(polys[name], truths)
        out[name] = {"pixel_iou": pix["iou"], "pixel_iou_mean": pix["mean_iou"],
                     "kaggle_jaccard": kj["per_class"], "kaggle_jaccard_mean": kj["mean"]}
    return out


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def markdown(rules: dict[str, list[float]], held: dict) -> str:
    names = list(rules)
    head = ["class"] + [f"{n}: threshold / Jaccard" for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in CLASSES:
        k = c.id - 1
        lines.append("| " + " | ".join([f"{c.id} {c.name}"] + [
            f"{rules[n][k]:.2f} / {_fmt(held[n]['kaggle_jaccard'][c.id])}" for n in names]) + " |")
    lines.append("| **mean** | " + " | ".join(
        f"**{_fmt(held[n]['kaggle_jaccard_mean'])}** (pixel IoU {_fmt(held[n]['pixel_iou_mean'])})"
        for n in names) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True,
                   help="a weights folder (or Hub id) whose config.json names its val_ids")
    p.add_argument("--val-data", type=Path, nargs="+", required=True,
                   help="the DSTL folders holding the validation images")
    p.add_argument("--holdout", type=Path, required=True, help="labelled DSTL folder never trained on")
    p.add_argument("--json", type=Path, default=None, help="write every figure here as JSON")
    args = p.parse_args(argv)

    loaded = load_model(args.weights)
    val_ids = list((loaded.config.training or {}).get("val_ids") or [])
    if not val_ids:
        raise SystemExit(f"{args.weights}: its config.json names no training.val_ids")
    check_not_held_out(val_ids, what="validation")
    holdout = DstlDataset(args.holdout)
    ids = list(holdout.train_ids)
    if set(ids) & set(val_ids):
        shared = ", ".join(sorted(set(ids) & set(val_ids)))
        raise SystemExit(f"the held-out folder holds validation images: {shared}")
    predictor = Predictor(loaded, precision="fp32")
    grid = TrainConfig().threshold_grid

    t0 = time.perf_counter()
    tuned = tune(predictor, [DstlDataset(d) for d in args.val_data], val_ids, grid)
    rules = {**tuned["thresholds"], "flat 0.5": [0.5] * NUM_CLASSES,
             "shipped": list(loaded.config.thresholds)}
    held = score(predictor, holdout, ids, rules)
    print(f"{args.weights}: tuned on {len(val_ids)} validation images ({tuned['blocks']} blocks of 512 px), "
          f"scored on {len(ids)} held-out images of {args.holdout} ({time.perf_counter() - t0:.0f} s)")
    print()
    print(markdown(rules, held))
    if args.json:
        out = {"weights": str(args.weights), "val_ids": val_ids, "holdout": str(args.holdout), "ids": ids,
               "grid": grid, "rules": rules, "validation": tuned["validation"], "held_out": held}
        write_text_atomic(args.json, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

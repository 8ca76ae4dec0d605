"""Proof of hardness: a per-pixel classifier on synthetic scenes, scored on held-out scenes.

Generates (or reuses) two synthetic DSTL datasets from different seeds — one to train on, one
held out — fits one-vs-rest logistic regression on the 20 band values of single pixels
(standardised, class-balanced, thresholds tuned for IoU on the training images;
`dstl.synthetic.baseline`), and reports per-class pixel IoU and the Kaggle polygon Jaccard
(`dstl.polygonize` + `dstl.metrics`) on the held-out scenes, plus the merged shape-defined pairs
(waterway ∪ standing water, road ∪ track). A per-pixel model finds the water and the paved
surfaces but cannot split them: that is what the synthetic data is built to demand.

    python bench/pixel_baseline.py --train 8 --holdout 4 --size 1024x1024 --json out/pixel_baseline.json

Or on folders already written, e.g. the real-layout scenes (`synth --layouts`): trained on every
labelled image of `--train-data` (held-out real ids refused), scored on every one of `--holdout-data`:

    python bench/pixel_baseline.py --train-data data/rl_rest --holdout-data data/rl_holdout \
        --json out/pixel_baseline_rl.json

Prints a table; writes JSON with every figure and the exact settings.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dstl.atomic import write_text_atomic  # noqa: E402
from dstl.classes import CLASSES  # noqa: E402
from dstl.cli.synth import parse_size  # noqa: E402
from dstl.dataset import DstlDataset  # noqa: E402
from dstl.splits import check_not_held_out  # noqa: E402
from dstl.synthetic import generate_dataset  # noqa: E402
from dstl.synthetic.baseline import (  # noqa: E402
    SHAPE_DEFINED_PAIRS,
    evaluate,
    fit_logistic,
    sample_pixels,
    tune_thresholds,
)


def _dataset(root: Path, n: int, size: tuple[int, int], seed: int) -> DstlDataset:
    """The labelled synthetic dataset at `root`, generated unless it is already there."""
    if not (root / "grid_sizes.csv").exists():
        generate_dataset(root, n_train=n, n_test=0, size=size, seed=seed)
    ds = DstlDataset(root)
    if len(ds.train_ids) < n:
        raise SystemExit(f"{root} holds {len(ds.train_ids)} labelled images, {n} asked for")
    return ds


def _fmt(v) -> str:
    return "   -  " if v is None else f"{v:6.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=int, default=8, help="training images (default: %(default)s)")
    p.add_argument("--holdout", type=int, default=4, help="held-out images (default: %(default)s)")
    p.add_argument("--size", default="1024x1024", help="nominal image size HxW (default: %(default)s)")
    p.add_argument("--train-seed", type=int, default=0,
                   help="seed of the training set (default: %(default)s)")
    p.add_argument("--holdout-seed", type=int, default=1000,
                   help="seed of the held-out set; must differ (default: %(default)s)")
    p.add_argument("--per-image", type=int, default=8000, help="uniform training pixels per image")
    p.add_argument("--per-class", type=int, default=1500, help="extra training pixels per class per image")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the datasets are generated / reused (default: a temporary folder)")
    p.add_argument("--train-data", type=Path, default=None,
                   help="a labelled DSTL folder to train on instead of generating one")
    p.add_argument("--holdout-data", type=Path, default=None,
                   help="a labelled DSTL folder to score on instead of generating one")
    p.add_argument("--json", type=Path, default=None, help="write the results here as JSON")
    args = p.parse_args(argv)
    if (args.train_data is None) != (args.holdout_data is None):
        p.error("--train-data and --holdout-data go together")
    if args.train_seed == args.holdout_seed:
        p.error("--train-seed and --holdout-seed must differ")
    size = parse_size(args.size)

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        t0 = time.perf_counter()
        tag = f"{size[0]}x{size[1]}"
        if args.train_data is not None:
            train, hold = DstlDataset(args.train_data), DstlDataset(args.holdout_data)
            train_ids, hold_ids = list(train.train_ids), list(hold.train_ids)
            check_not_held_out(train_ids, what=f"--train-data {args.train_data}")
            if set(train_ids) & set(hold_ids):
                p.error("--train-data and --holdout-data share labelled images: "
                        + ", ".join(sorted(set(train_ids) & set(hold_ids))[:5]))
        else:
            train = _dataset(work / f"train_s{args.train_seed}_{tag}_n{args.train}", args.train, size,
                             args.train_seed)
            hold = _dataset(work / f"holdout_s{args.holdout_seed}_{tag}_n{args.holdout}",
                            args.holdout, size, args.holdout_seed)
            train_ids, hold_ids = train.train_ids[:args.train], hold.train_ids[:args.holdout]
        t_gen = time.perf_counter() - t0
        rng = np.random.default_rng(0)
        X, Y = sample_pixels(train, train_ids, args.per_image, args.per_class, rng)
        t1 = time.perf_counter()
        clf = fit_logistic(X, Y)
        tune_thresholds(clf, train, train_ids)
        t_fit = time.perf_counter() - t1
        on_train = evaluate(clf, train, train_ids, polygons=False)
        result = evaluate(clf, hold, hold_ids)
        t_all = time.perf_counter() - t0

    if args.train_data is not None:
        print(f"per-pixel logistic regression on 20 bands: {len(X)} training pixels from {len(train_ids)} "
              f"images of {args.train_data}, scored on {len(hold_ids)} images of {args.holdout_data}")
    else:
        print(f"per-pixel logistic regression on 20 bands: {len(X)} training pixels from {len(train_ids)} "
              f"images (seed {args.train_seed}), scored on {len(hold_ids)} held-out images "
              f"(seed {args.holdout_seed}), {size[0]}x{size[1]} px")
    print(f"{'class':28s} {'pixel IoU':>9s} {'Kaggle J':>9s} {'(train IoU)':>11s} {'threshold':>9s} "
          f"{'union-as-both IoU':>17s}")
    for c in CLASSES:
        ref = result["union_as_both_iou"].get(c.id)
        print(f"{c.id:2d} {c.name:25s} {_fmt(result['pixel_iou'][c.id]):>9s} "
              f"{_fmt(result['kaggle_jaccard'][c.id]):>9s} {_fmt(on_train['pixel_iou'][c.id]):>11s} "
              f"{result['thresholds'][c.id]:9.2f} {'' if ref is None else _fmt(ref):>17s}")
    print(f"{'mean':28s} {_fmt(result['pixel_iou_mean']):>9s} {_fmt(result['kaggle_jaccard_mean']):>9s} "
          f"{_fmt(on_train['pixel_iou_mean']):>11s}")
    print("shape-defined pairs: merged pixel IoU (the pair's union found from spectra) and the sum of the")
    print("two classes' IoUs (1.0 is the best a shape-blind model can do, 2.0 a perfect split):")
    for name, (a, b) in SHAPE_DEFINED_PAIRS.items():
        ia, ib = result["pixel_iou"][a], result["pixel_iou"][b]
        total = None if ia is None or ib is None else ia + ib
        print(f"   {name:25s} merged {_fmt(result['merged_pixel_iou'][name])}   IoU sum {_fmt(total)}")
    print("union-as-both IoU: what predicting the true union of a pair for both of its classes scores "
          "(the best a model blind to shape can do)")
    print("true pixels of one class predicted as its twin only:",
          ", ".join(f"{k}: {_fmt(v).strip()}" for k, v in result["confusion"].items()))
    print(f"time: generation {t_gen:.1f} s, fit {t_fit:.1f} s, total {t_all:.1f} s")
    if args.json:
        payload = {"settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                                "size": list(size), "training_pixels": int(len(X))},
                   "ids": {"train": list(train_ids), "holdout": list(hold_ids)},
                   "holdout": result, "train": on_train,
                   "seconds": {"generation": t_gen, "fit": t_fit, "total": t_all}}
        write_text_atomic(args.json, json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

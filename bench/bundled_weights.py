"""The bundled weights next to each other and next to the per-pixel baseline, on held-out scenes.

Scores every weights folder given with `--weights` on the labelled images of `--holdout` through
the same inference API as the CLI and the app (`dstl.models.load_model`, `dstl.engine.Predictor`,
`dstl.pipeline.segment_image`; default precision, i.e. int8 on a CPU with VNNI, no TTA unless
`--tta`), polygonises the masks and computes the Kaggle polygon Jaccard and pixel IoU per class.
The per-pixel baseline comes from `bench/pixel_baseline.py --json` run on the same held-out
scenes (checked: same image ids):

    python bench/pixel_baseline.py --train 8 --holdout 8 --size 1024x1024 --json out/pixel_baseline.json
    python bench/bundled_weights.py --holdout data/synth-holdout --baseline out/pixel_baseline.json \
        --weights unet-20band unet-rgb --json out/bundled_weights.json

Prints a Markdown table (per class: baseline, each model, and the first two models' difference)
and writes every figure as JSON.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dstl.atomic import write_text_atomic  # noqa: E402
from dstl.classes import CLASSES  # noqa: E402
from dstl.dataset import DstlDataset  # noqa: E402
from dstl.engine import Predictor  # noqa: E402
from dstl.metrics import kaggle_jaccard, pixel_counts, scores_from_counts  # noqa: E402
from dstl.models import load_model  # noqa: E402
from dstl.pipeline import segment_image  # noqa: E402


def score_weights(source: str, dataset: DstlDataset, ids: list[str], precision: str, tta: bool) -> dict:
    """Per-class and mean Kaggle Jaccard and pixel IoU of one weights folder on `ids`."""
    loaded = load_model(source)
    predictor = Predictor(loaded, precision=precision, tta=tta)
    counts = None
    preds, truths = {}, {}
    t0 = time.perf_counter()
    for image_id in ids:
        result = segment_image(dataset, image_id, predictor, preview=False, metrics=False)
        c = pixel_counts(result.masks, dataset.masks(image_id))
        counts = c if counts is None else {k: counts[k] + c[k] for k in counts}
        preds[image_id] = result.polygons
        truths[image_id] = dataset.labels(image_id)
    kaggle = kaggle_jaccard(preds, truths)
    pixel = scores_from_counts(counts)  # summed over the images, like the Kaggle metric
    return {"source": str(source), "bands": list(loaded.config.bands), "precision": precision, "tta": tta,
            "parameters": sum(p.numel() for p in loaded.module.parameters()),
            "kaggle_jaccard": kaggle["per_class"], "kaggle_jaccard_mean": kaggle["mean"],
            "pixel_iou": pixel["iou"], "pixel_iou_mean": pixel["mean_iou"],
            "seconds": time.perf_counter() - t0}


def record_metrics(folder: Path, key: str, col: dict, ids: list[str], holdout: Path, command: str,
                   name: str | None) -> None:
    """Store one model's held-out figures in `folder`/config.json as training.metrics[key], in the
    layout train/train.py --holdout uses (per-class dicts keyed by class id as a string)."""
    path = folder / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    training = config.get("training")
    if not isinstance(training, dict):
        raise SystemExit(f"{path}: no training record to add metrics to (untrained weights?)")
    training.setdefault("metrics", {})[key] = {
        "name": name or f"the {len(ids)} labelled images of {holdout.name}",
        "dataset": holdout.name, "ids": ids, "command": command, "precision": col["precision"],
        "jaccard": {str(k): v for k, v in col["kaggle_jaccard"].items()},
        "jaccard_mean": col["kaggle_jaccard_mean"],
        "iou": {str(k): v for k, v in col["pixel_iou"].items()}, "iou_mean": col["pixel_iou_mean"],
    }
    write_text_atomic(path, json.dumps(config, indent=2) + "\n")


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _diff(a, b) -> str:
    return "–" if a is None or b is None else f"{a - b:+.3f}"


def markdown_table(names: list[str], columns: list[dict], baseline: dict | None) -> str:
    """Kaggle Jaccard per class and the mean: baseline, each model, first model minus second."""
    head = ["class"] + (["per-pixel baseline"] if baseline else []) + [f"`{n}`" for n in names]
    if len(columns) >= 2:
        head.append(f"`{names[0]}` − `{names[1]}`")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in CLASSES:
        row = [f"{c.id} {c.name}"]
        if baseline:
            row.append(_fmt(baseline["kaggle_jaccard"].get(str(c.id))))
        row += [_fmt(col["kaggle_jaccard"][c.id]) for col in columns]
        if len(columns) >= 2:
            row.append(_diff(columns[0]["kaggle_jaccard"][c.id], columns[1]["kaggle_jaccard"][c.id]))
        lines.append("| " + " | ".join(row) + " |")
    row = ["**mean**"]
    if baseline:
        row.append(f"**{_fmt(baseline['kaggle_jaccard_mean'])}**")
    row += [f"**{_fmt(col['kaggle_jaccard_mean'])}**" for col in columns]
    if len(columns) >= 2:
        row.append(f"**{_diff(columns[0]['kaggle_jaccard_mean'], columns[1]['kaggle_jaccard_mean'])}**")
    lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--holdout", type=Path, required=True, help="labelled DSTL-layout folder never trained on")
    p.add_argument("--weights", nargs="+", required=True, help="weights folders (or Hub ids) to score")
    p.add_argument("--baseline", type=Path, default=None, help="JSON of bench/pixel_baseline.py --json")
    p.add_argument("--precision", default="auto", help="engine precision (default: auto, as the CLI)")
    p.add_argument("--tta", action="store_true", help="average the 8 flips/rotations")
    p.add_argument("--names", nargs="+", default=None,
                   help="column names, one per --weights (default: each folder's name)")
    p.add_argument("--json", type=Path, default=None, help="write every figure here as JSON")
    p.add_argument("--record", metavar="KEY", default=None,
                   help="also write each local weights folder's figures into its config.json as "
                        "training.metrics.KEY (e.g. holdout_real_layout), with the held-out ids and "
                        "this command")
    p.add_argument("--record-name", default=None,
                   help="with --record: what the held-out images are, in words (the cards' model-index name)")
    args = p.parse_args(argv)
    names = args.names or [Path(s).name for s in args.weights]
    if len(names) != len(args.weights) or len(set(names)) != len(names):
        p.error("--names: one distinct name per --weights (two weights folders share the name "
                "'" + next((n for n in names if names.count(n) > 1), "?") + "'; give --names)")

    dataset = DstlDataset(args.holdout)
    ids = list(dataset.train_ids)
    baseline = None
    if args.baseline:
        payload = json.loads(args.baseline.read_text())
        baseline = payload["holdout"]
        settings = payload["settings"]
        origin = (f"held-out folder {settings['holdout_data']}" if settings.get("holdout_data")
                  else f"held-out seed {settings['holdout_seed']}")
        # pixel_baseline.py generates its held-out set itself (same generator, seed and size as
        # `python -m dstl synth`) or reads --holdout-data: it must have scored these very images.
        if payload["ids"]["holdout"] != ids:
            raise SystemExit(f"the baseline was scored on images {payload['ids']['holdout']}, "
                             f"{args.holdout} holds {ids}")
        print(f"baseline: per-pixel logistic regression, {origin}, {len(ids)} images")
    columns = []
    for source in args.weights:
        col = score_weights(source, dataset, ids, args.precision, args.tta)
        print(f"{source}: mean Kaggle Jaccard {_fmt(col['kaggle_jaccard_mean'])}, pixel IoU "
              f"{_fmt(col['pixel_iou_mean'])} ({col['seconds']:.0f} s for {len(ids)} images)", flush=True)
        columns.append(col)
    print()
    print(markdown_table(names, columns, baseline))
    if args.record:
        command = "python bench/bundled_weights.py " + " ".join(argv if argv is not None else sys.argv[1:])
        for source, col in zip(args.weights, columns, strict=True):
            if Path(source).is_dir():
                record_metrics(Path(source), args.record, col, ids, args.holdout, command, args.record_name)
                print(f"recorded training.metrics.{args.record} in {Path(source) / 'config.json'}")
    if args.json:
        models = dict(zip(names, columns, strict=True))
        out = {"holdout": str(args.holdout), "ids": ids, "models": models, "baseline": baseline}
        write_text_atomic(args.json, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

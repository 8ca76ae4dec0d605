"""`python -m dstl evaluate DATA SUBMISSION.csv [--json]`: the Kaggle metric of a submission.

Scores the submission's polygons against the labels of DATA (train_wkt_v4.csv, or
train_geojson_v3/ when there is no WKT file: `DstlDataset.label_source`) with the competition's Jaccard
(`dstl.metrics.kaggle_jaccard`, DESIGN.md §2) over the images of DATA that have labels; rows for
test images are read and checked but not scored, and a labelled image or class without a row
counts as empty. With --json it prints exactly
``{"per_class": {"1": j1, ..., "10": j10}, "mean": m}`` (null for a class whose union is empty
on every scored image); otherwise a table.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dstl.classes import CLASSES, NUM_CLASSES
from dstl.errors import DataError, DstlError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a submission CSV against the labels with the Kaggle polygon Jaccard",
        description="Score a submission (ImageId,ClassType,MultipolygonWKT rows in grid "
                    "coordinates) with the competition metric, the Kaggle Jaccard: per class, the "
                    "sum of intersection "
                    "areas over the sum of union areas across the labelled images of DATA; the "
                    "score is the mean over classes. Only images with labels in train_wkt_v4.csv "
                    "(or train_geojson_v3/ when there is no WKT file) are scored; a missing row "
                    "counts as an empty prediction.",
    )
    p.add_argument("data", metavar="DATA",
                   help="DSTL-layout folder with grid_sizes.csv and train_wkt_v4.csv or "
                        "train_geojson_v3/ (the truth)")
    p.add_argument("submission", metavar="SUBMISSION.csv",
                   help="submission CSV: header ImageId,ClassType,MultipolygonWKT; every ImageId "
                        "must be an image of DATA")
    p.add_argument("--json", action="store_true",
                   help='print only {"per_class": {"1": j1, ..., "10": j10}, "mean": m} as JSON '
                        "(null for classes absent from both prediction and truth)")
    p.set_defaults(func=run)


def read_submission(path: Path, known_ids, scored_ids) -> tuple[dict, int]:
    """Read a submission's rows for `scored_ids`, checking every row.

    Returns ({image_id: {class_id: MultiPolygon}}, number of repaired geometries). Raises
    DataError naming the line for an ImageId not in `known_ids` or a duplicate (image, class).
    """
    from dstl.labels import iter_wkt_rows

    pred: dict = {}
    seen: dict[tuple[str, int], int] = {}
    repaired = 0
    # A `with` block, so that the bar is cleared before a DataError's message is printed.
    with tqdm(desc="reading submission", unit="row", file=sys.stderr, leave=False) as bar:
        for row in iter_wkt_rows(path):
            bar.update()
            _check_row(path, row, known_ids, seen)
            repaired += row.repaired
            if row.image_id in scored_ids:
                pred.setdefault(row.image_id, {})[row.class_id] = row.geometry
    return pred, repaired


def _check_row(path: Path, row, known_ids, seen: dict) -> None:
    """DataError naming the line for an unknown ImageId or a repeated (image, class) row."""
    if row.image_id not in known_ids:
        raise DataError(f"{path}: line {row.line}: image id {row.image_id[:100]!r} is not an image "
                        "of the dataset (not in its grid_sizes.csv)")
    key = (row.image_id, row.class_id)
    if key in seen:
        raise DataError(f"{path}: line {row.line}: duplicate row for image {row.image_id} class "
                        f"{row.class_id} (first on line {seen[key]})")
    seen[key] = row.line


def format_table(scores: dict, n_images: int) -> str:
    lines = [f"Kaggle Jaccard over {n_images} labelled image(s)", "",
             f"{'class':>5}  {'name':<26}{'Jaccard':>8}"]
    for c in CLASSES:
        j = scores["per_class"][c.id]
        lines.append(f"{c.id:>5}  {c.name:<26}{'-' if j is None else f'{j:.4f}':>8}")
    mean = scores["mean"]
    n = sum(v is not None for v in scores["per_class"].values())
    lines.append("")
    lines.append(f"{'mean':>5}  {f'over {n} scored classes':<26}{'-' if mean is None else f'{mean:.4f}':>8}")
    if n < NUM_CLASSES:
        lines.append("(-: class absent from both prediction and truth; left out of the mean)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dstl.dataset import DstlDataset
    from dstl.metrics import jaccard_sums, scores_from_sums

    dataset = DstlDataset(args.data)
    scored = dataset.train_ids
    if not scored:
        raise DstlError(f"{dataset.root}: no labelled images (neither train_wkt_v4.csv nor "
                        "train_geojson_v3/ lists one); nothing to score against")
    path = Path(args.submission)
    pred, repaired = read_submission(path, set(dataset.image_ids), set(scored))
    missing = [i for i in scored if i not in pred]
    inter = np.zeros(NUM_CLASSES)
    union = np.zeros(NUM_CLASSES)
    for image_id in tqdm(scored, desc="scoring", unit="image", file=sys.stderr, leave=False):
        # Both sides come from dstl.labels readers: valid MultiPolygons already.
        i, u = jaccard_sums(pred.get(image_id), dataset.labels(image_id), valid=True)
        inter += i
        union += u
    scores = scores_from_sums(inter, union)
    if dataset.label_note:  # which labels are the truth (sizes play no part in the metric)
        print(f"note: {dataset.label_note}", file=sys.stderr)
    if missing:
        print(f"note: {len(missing)} of {len(scored)} labelled image(s) have no rows in {path} "
              f"(scored as empty), e.g. {missing[0]}", file=sys.stderr)
    if repaired:
        print(f"note: {repaired} row(s) of {path} hold invalid geometry (repaired for scoring; "
              "Kaggle would reject them)", file=sys.stderr)
    if args.json:
        print(json.dumps({"per_class": {str(k): v for k, v in scores["per_class"].items()},
                          "mean": scores["mean"]}))
    else:
        print(format_table(scores, len(scored)))
    return 0

"""`python -m dstl labels DATA [--to-wkt OUT.csv] [--from {wkt,geojson}]`: a dataset's labels.

Without --to-wkt, prints where the labels come from (`DstlDataset.label_source`) and the number
of polygons per class over every labelled image. With --to-wkt, writes them as a
``train_wkt_v4.csv``-style file: header ``ImageId,ClassType,MultipolygonWKT``, ten rows per
labelled image (ids sorted, classes 1..10), valid MULTIPOLYGONs in grid coordinates with 8
decimals (~0.004 px), ``MULTIPOLYGON EMPTY`` for a class without objects. This is how a user who
has only ``train_geojson_v3/`` gets the WKT file (the layers are mapped to the ten classes by
`dstl.geojson_labels.LAYER_CLASSES`). The file is written atomically.
"""

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from dstl.classes import CLASS_IDS, CLASSES
from dstl.errors import DstlError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "labels",
        help="show a dataset's label source and polygon counts, or convert its labels to a WKT CSV",
        description="Read the labels of every labelled image of DATA (train_wkt_v4.csv, or "
                    "train_geojson_v3/ when there is no WKT file; the WKT wins when both are "
                    "there) and print the number of polygons per class, or with --to-wkt write "
                    "them as a train_wkt_v4.csv-style file (ImageId,ClassType,MultipolygonWKT; "
                    "ten rows per image, grid coordinates, valid geometry).",
    )
    p.add_argument("data", metavar="DATA",
                   help="DSTL-layout folder with grid_sizes.csv and train_wkt_v4.csv or train_geojson_v3/")
    p.add_argument("--to-wkt", metavar="OUT.csv", default=None,
                   help="write the labels to this CSV (replaced if it exists; written only when complete)")
    p.add_argument("--from", dest="source", choices=("wkt", "geojson"), default=None,
                   help="read the labels from train_wkt_v4.csv (wkt) or train_geojson_v3/ (geojson) "
                        "only (default: the WKT file if present, else the GeoJSON folder)")
    p.set_defaults(func=run)


def _check_out(out: Path, dataset) -> Path:
    if out.is_dir():
        raise DstlError(f"--to-wkt {out}: is a folder; give a file name such as {out / 'train_wkt_v4.csv'}")
    if out.suffix.lower() != ".csv":
        raise DstlError(f"--to-wkt {out}: must be a CSV file name ending in .csv")
    source = dataset.label_path
    if source is not None and source.is_file() and out.resolve() == source.resolve():
        raise DstlError(f"--to-wkt {out}: is the label file being read; write to another file")
    return out


def run(args: argparse.Namespace) -> int:
    from dstl.dataset import DstlDataset
    from dstl.labels import write_wkt_csv

    dataset = DstlDataset(args.data, labels_from=args.source, label_cache=0)
    out = None if args.to_wkt is None else _check_out(Path(args.to_wkt), dataset)
    ids = dataset.train_ids
    if not ids:
        raise DstlError(f"{dataset.root}: no labels (neither train_wkt_v4.csv nor train_geojson_v3/ "
                        "lists an image)")
    if dataset.label_note:
        print(f"note: {dataset.label_note}", file=sys.stderr)
    counts = dict.fromkeys(CLASS_IDS, 0)

    def rows():
        for image_id in tqdm(ids, desc="labels", unit="image", file=sys.stderr, leave=False):
            labels = dataset.labels(image_id)
            for k in CLASS_IDS:
                counts[k] += len(labels[k].geoms)
                yield image_id, k, labels[k]

    if out is None:
        for _ in rows():
            pass
    else:
        try:
            write_wkt_csv(out, rows())
        except OSError as e:
            raise DstlError(f"cannot write {out}: {e.strerror or e}") from None
    print(f"labels of {len(ids)} image(s) from {dataset.label_path}")
    print(f"{'class':>5}  {'name':<26}{'polygons':>9}")
    for c in CLASSES:
        print(f"{c.id:>5}  {c.name:<26}{counts[c.id]:>9}")
    if out is not None:
        print(f"wrote {out}: {len(ids)} image(s) x {len(CLASS_IDS)} rows")
    return 0

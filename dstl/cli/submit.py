"""`python -m dstl submit DATA --out SUBMISSION.csv [--weights SRC] [--ids ID ...] [--tta]`.

Writes a complete Kaggle submission: header ``ImageId,ClassType,MultipolygonWKT``, then for each
image ten rows (classes 1..10 in order) of valid MULTIPOLYGONs in grid coordinates,
``MULTIPOLYGON EMPTY`` where a class has no objects. The images are those of DATA's
sample_submission.csv, in its order, or the --ids given, in the order given. Each image goes
through `dstl.pipeline.segment_image`, so its rows equal the <id>.csv that `predict` writes.

Several processes or GPUs::

    torchrun --standalone --nproc_per_node=N -m dstl submit DATA --out SUBMISSION.csv ...

(torchrun's -m runs a module like `python -m`.) Every rank checks the whole input, then takes
every N-th image (`dstl.parallel.shard_ids`: round robin) and writes its rows to a private
partial file beside SUBMISSION.csv (``.SUBMISSION.csv.rank<r>-of-<N>.partial.csv``); once all
ranks are done, rank 0 merges the partial files into SUBMISSION.csv in the images' order and
every rank deletes its partial file. The merged file is byte for byte the file one process
writes. If any rank fails, every rank stops, no SUBMISSION.csv is written and the partial files
are deleted; rank 0 prints the error. On CUDA each rank uses the GPU of its LOCAL_RANK. With
several machines the folder of SUBMISSION.csv must be shared by all of them.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tqdm import tqdm

from dstl.classes import CLASS_IDS, NUM_CLASSES
from dstl.cli.predict import (
    add_inference_arguments,
    check_writable_folder,
    describe_run,
    make_predictor,
    parse_thresholds,
    tile_bar,
    untrained_warning,
)
from dstl.errors import DataError, DstlError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "submit",
        help="write a complete Kaggle submission CSV for the test images (torchrun-parallel)",
        description="Segment every test image of DATA (the ids of sample_submission.csv, in its "
                    "order) or only --ids, and write one submission CSV: ten rows per image "
                    "(classes 1..10), valid MULTIPOLYGONs in grid coordinates, MULTIPOLYGON EMPTY "
                    "where a class has no objects. Split the work over N processes or GPUs with "
                    "`torchrun --standalone --nproc_per_node=N -m dstl submit ...`: the result is "
                    "the same file.",
    )
    p.add_argument("data", metavar="DATA",
                   help="DSTL-layout folder (three_band/, sixteen_band/, grid_sizes.csv, "
                        "sample_submission.csv)")
    p.add_argument("--out", required=True, metavar="SUBMISSION.csv",
                   help="the submission file to write (replaced if it exists; written only when complete)")
    p.add_argument("--ids", nargs="+", metavar="ID", default=None,
                   help="segment only these image ids of DATA, in this order (default: every id of "
                        "sample_submission.csv, in its order)")
    add_inference_arguments(p)
    p.set_defaults(func=run)


def submission_ids(dataset, ids: Sequence[str] | None) -> list[str]:
    """The images of the submission: `ids` (looked up, duplicates dropped) or the test ids."""
    if ids:
        return list(dict.fromkeys(dataset.check_id(i) for i in ids))
    test_ids = dataset.test_ids
    if not test_ids:
        raise DstlError(f"{dataset.root}: no sample_submission.csv (or it lists no images), so there "
                        "are no test ids; pass the images to segment with --ids")
    return list(test_ids)


def partial_path(out: Path, rank: int, world_size: int) -> Path:
    """The private file rank `rank` writes its rows to, beside `out`."""
    return out.parent / f".{out.name}.rank{rank}-of-{world_size}.partial.csv"


def _rows(dataset, ids: Sequence[str], predictor, show: bool, label: str) -> Iterator[tuple]:
    """(image_id, class_id, grid MultiPolygon) rows of `ids`, segmenting one image at a time."""
    from dstl.pipeline import segment_image

    with tqdm(ids, desc=label, unit="image", file=sys.stderr, disable=not show) as images:
        for image_id in images:
            bar, progress = tile_bar(image_id, enabled=show)
            with bar:
                result = segment_image(dataset, image_id, predictor, preview=False, metrics=False,
                                       progress=progress)
            for k in CLASS_IDS:
                yield image_id, k, result.polygons[k]


def _write(path: Path, rows) -> None:
    from dstl.labels import write_wkt_csv

    try:
        write_wkt_csv(path, rows)
    except OSError as e:
        raise DstlError(f"cannot write {path}: {e.strerror or e}") from None


def merge_partials(out: Path, ids: Sequence[str], parts: Sequence[Path]) -> None:
    """Write `out` (atomically) from the partial files of `len(parts)` ranks.

    Rank r's file holds the rows of ids r, r + N, r + 2N, ... in that order (`shard_ids`), so
    the files are read in lockstep and never held in memory whole. The rows are copied as text,
    so the result equals what `write_wkt_csv` writes in one process. Raises DstlError if a
    partial file is missing or does not hold exactly the expected rows.
    """
    from dstl.atomic import atomic_path
    from dstl.labels import WKT_HEADER

    world = len(parts)
    files, readers = [], []
    try:
        for part in parts:
            try:
                f = open(part, newline="", encoding="utf-8")
            except FileNotFoundError:
                raise DstlError(f"{part}: partial file not found (with several machines, the folder of "
                                "--out must be shared by all of them)") from None
            files.append(f)
            reader = csv.reader(f)
            if tuple(next(reader, ())) != WKT_HEADER:
                raise DataError(f"{part}: not a partial submission file (bad header)")
            readers.append(reader)
        with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as dst:
            writer = csv.writer(dst, lineterminator="\n")
            writer.writerow(WKT_HEADER)
            for n, image_id in enumerate(ids):
                reader = readers[n % world]
                for k in CLASS_IDS:
                    row = next(reader, None)
                    if row is None or len(row) != 3 or row[0] != image_id or row[1] != str(k):
                        raise DataError(f"{parts[n % world]}: expected the row of image {image_id} class "
                                        f"{k}, found {'the end of the file' if row is None else row[:2]}")
                    writer.writerow(row)
            for part, reader in zip(parts, readers, strict=True):
                if next(reader, None) is not None:
                    raise DataError(f"{part}: holds more rows than its share of the images")
    except OSError as e:
        raise DstlError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        for f in files:
            f.close()


def run(args: argparse.Namespace) -> int:
    from dstl.parallel import distributed

    with distributed() as group:
        try:
            return _run(args, group)
        except DstlError:
            if group.is_main:
                raise
            return 2  # rank 0 reports the error of whichever rank failed


def _run(args: argparse.Namespace, group) -> int:
    from dstl.dataset import DstlDataset
    from dstl.models import load_model
    from dstl.parallel import shard_ids
    from dstl.pipeline import check_images

    start = time.perf_counter()
    with group.together("checking the input"):
        out = Path(args.out)
        if out.is_dir():
            raise DstlError(f"--out {out}: is a folder; give a file name such as {out / 'submission.csv'}")
        check_writable_folder(out.parent, "--out folder")
        dataset = DstlDataset(args.data)
        ids = submission_ids(dataset, args.ids)
        parse_thresholds(args.thresholds)
        loaded = load_model(args.weights)
        predictor = make_predictor(loaded, args, group.device(args.device))
        ids = check_images(dataset, ids, predictor.bands)

    if group.is_main:
        warning = untrained_warning(loaded)
        if warning:
            print(warning, file=sys.stderr)
        print(describe_run(loaded, predictor))
        if group.distributed:
            print(f"{len(ids)} image(s) over {group.world_size} ranks (progress shown for rank 0)")
    mine = shard_ids(ids, group.rank, group.world_size)
    label = f"rank 0 of {group.world_size}" if group.distributed else "images"
    rows = _rows(dataset, mine, predictor, group.is_main, label)

    if not group.distributed:
        _write(out, rows)
    else:
        part = partial_path(out, group.rank, group.world_size)
        try:
            with group.together("segmenting its images"):
                _write(part, rows)
            with group.together("merging the partial files"):
                if group.is_main:
                    merge_partials(out, ids, [partial_path(out, r, group.world_size)
                                              for r in range(group.world_size)])
        finally:
            part.unlink(missing_ok=True)
    if group.is_main:
        print(f"wrote {out}: {len(ids)} image(s) x {NUM_CLASSES} rows in {time.perf_counter() - start:.1f} s")
    return 0

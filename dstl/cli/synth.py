"""`python -m dstl synth OUT [--train N] [--test M] [--size HxW] [--seed S]`: a synthetic dataset.

Writes a complete DSTL-layout folder (`dstl.synthetic.generate_dataset`): training images with
labels, test images listed in sample_submission.csv, all four products per image. OUT must be
new or empty; a previous synthetic dataset there is replaced only with --overwrite, and a folder
holding anything else is never written into. The dataset is assembled in OUT/.partial and moved
into place when complete, so an interrupted run leaves no half dataset.
"""

import argparse
import re
import sys
from pathlib import Path

from tqdm import tqdm

from dstl.errors import DstlError

DEFAULT_SIZE = "3350x3400"


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' (or a single number N for N x N) -> (H, W); DstlError if malformed or out of range."""
    from dstl.synthetic.writer import MAX_SIDE, MIN_SIDE

    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*", text)
    if not match:
        raise DstlError(f"--size {text!r}: expected HxW in pixels, e.g. 3350x3400 or 512x512")
    h = int(match.group(1))
    w = int(match.group(2)) if match.group(2) else h
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise DstlError(f"--size {text}: each side must be {MIN_SIDE} to {MAX_SIDE} px, got {h}x{w}")
    return h, w


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="write a synthetic dataset in the DSTL layout",
        description="Generate synthetic 20-band scenes in exactly the Kaggle DSTL folder layout "
                    "(three_band/, sixteen_band/ with _P, _M, _A products, grid_sizes.csv, "
                    "train_wkt_v4.csv, sample_submission.csv): rural and village landscapes with "
                    "crops, trees, roads, tracks, waterways, standing water, buildings, "
                    "structures and vehicles, at ~0.31 m/px. Ids look like synth_9100_0_3 and "
                    "cannot be mistaken for real ones. The same seed gives identical files.",
    )
    p.add_argument("out", metavar="OUT",
                   help="folder to write the dataset into; must be new or empty (or a previous "
                        "synthetic dataset, with --overwrite)")
    p.add_argument("--train", type=int, default=8, metavar="N",
                   help="number of labelled training images (default: %(default)s)")
    p.add_argument("--test", type=int, default=4, metavar="M",
                   help="number of unlabelled test images, listed in sample_submission.csv "
                        "(default: %(default)s)")
    p.add_argument("--size", default=DEFAULT_SIZE, metavar="HxW",
                   help="nominal size of the 3-band images in pixels, e.g. 512x512; each image "
                        "differs by a few pixels, M is ~1/4 and A ~1/25 of it (default: "
                        "%(default)s, a real DSTL scene)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="random seed, a non-negative integer; the same seed gives byte-identical "
                        "files (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a synthetic dataset already in OUT (other folders are never "
                        "overwritten)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dstl.synthetic import generate_dataset
    from dstl.synthetic.writer import check_arguments, check_destination

    size = parse_size(args.size)
    check_arguments(args.train, args.test, size, args.seed)
    check_destination(Path(args.out), args.overwrite)  # before the progress bar appears
    with tqdm(total=args.train + args.test, desc="synth", unit="image", file=sys.stderr) as bar:
        def progress(image_id: str) -> None:
            bar.set_postfix_str(image_id)
            bar.update()

        summary = generate_dataset(args.out, args.train, args.test, size, args.seed,
                                   overwrite=args.overwrite, progress=progress)
    print(f"wrote {len(summary.train_ids)} training and {len(summary.test_ids)} test images "
          f"(~{size[0]}x{size[1]} px, seed {args.seed}) to {summary.root} in {summary.seconds:.1f} s")
    return 0

"""`python -m dstl synth OUT [--train N] [--test M] [--size HxW] [--seed S]`: a synthetic dataset.

Writes a complete DSTL-layout folder (`dstl.synthetic.generate_dataset`): training images with
labels, test images listed in sample_submission.csv, all four products per image.

`python -m dstl synth OUT --layouts DATA [--ids ID ...] [--split holdout|rest] [--scale F]
[--window R,C,H,W] [--seed S]`: real-layout scenes instead (`dstl.synthetic.real_writer`): one
scene per labelled image of the real DSTL folder DATA, its labels that image's real polygons,
its pixels generated. OUT must be
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
    p.add_argument("--train", type=int, default=None, metavar="N",
                   help="number of labelled training images (default: 8)")
    p.add_argument("--test", type=int, default=None, metavar="M",
                   help="number of unlabelled test images, listed in sample_submission.csv "
                        "(default: 4)")
    p.add_argument("--size", default=None, metavar="HxW",
                   help="nominal size of the 3-band images in pixels, e.g. 512x512; each image "
                        f"differs by a few pixels, M is ~1/4 and A ~1/25 of it (default: "
                        f"{DEFAULT_SIZE}, a real DSTL scene)")
    real = p.add_argument_group(
        "real layouts", "scenes on the real label geometry of a real DSTL folder's training images "
                        "(ids synth_rl_<id>; labels real, pixels generated; a README.md in OUT says so)")
    real.add_argument("--layouts", metavar="DATA",
                      help="a real DSTL folder with train_geojson_v3/ and grid_sizes.csv, e.g. "
                           "../shared/real: write one scene per labelled image")
    real.add_argument("--ids", nargs="+", metavar="ID",
                      help="only these real image ids (default: every labelled image)")
    real.add_argument("--split", choices=("holdout", "rest"),
                      help="only the 5 held-out images of dstl.splits.REAL_HOLDOUT_IDS, or only "
                           "the other 20")
    real.add_argument("--scale", type=float, default=1.0, metavar="F",
                      help="reduced-size scenes: F times the rows and columns, 0 < F <= 1 "
                           "(default: %(default)s)")
    real.add_argument("--real-a", action="store_true",
                      help="use each image's REAL A (SWIR) product instead of the generated one "
                           "(whole images, scale 1; experiments only, see docs/swir_calibration.md)")
    real.add_argument("--window", metavar="R,C,H,W",
                      help="only the window of H x W full-size pixels at row R, column C of each "
                           "image (labels clipped to it; ids get _r<R>_c<C>)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="random seed, a non-negative integer; the same seed gives byte-identical "
                        "files (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a synthetic dataset already in OUT (other folders are never "
                        "overwritten)")
    p.set_defaults(func=run)


def parse_window(text: str) -> tuple[int, int, int, int]:
    """'R,C,H,W' -> (row, col, height, width); DstlError if malformed."""
    match = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", text)
    if not match:
        raise DstlError(f"--window {text!r}: expected R,C,H,W in full-size pixels, e.g. 1024,1024,640,640")
    return tuple(int(g) for g in match.groups())


def run_layouts(args: argparse.Namespace) -> int:
    from dstl.synthetic.real_writer import generate_real_layout_dataset, plan
    from dstl.synthetic.writer import check_destination

    given = [f"--{n}" for n in ("train", "test", "size") if getattr(args, n) is not None]
    if given:
        raise DstlError(f"{', '.join(given)}: not used with --layouts (one scene per real image)")
    if not 0 < args.scale <= 1:
        raise DstlError(f"--scale {args.scale:g}: must be in (0, 1]")
    if args.real_a and (args.scale != 1 or args.window):
        raise DstlError("--real-a: only for whole images at scale 1 (no --scale, no --window)")
    window = parse_window(args.window) if args.window else None
    ids = args.ids
    if args.split is not None:
        from dstl.splits import real_split

        held, rest = real_split(args.layouts)
        chosen = held if args.split == "holdout" else rest
        ids = [i for i in (ids or chosen) if i in chosen]
        if not ids:
            raise DstlError(f"--split {args.split}: none of the --ids is in that part of the split")
    jobs = plan(args.layouts, ids=ids, window=window)  # bad ids and windows fail before the bar
    check_destination(Path(args.out), args.overwrite)
    with tqdm(total=len(jobs), desc="synth", unit="scene", file=sys.stderr) as bar:
        def progress(scene_id: str) -> None:
            bar.set_postfix_str(scene_id)
            bar.update()

        summary = generate_real_layout_dataset(args.out, args.layouts, args.seed, ids=ids, scale=args.scale,
                                               window=window, overwrite=args.overwrite, real_a=args.real_a,
                                               progress=progress)
    total = sum(summary.seconds.values())
    print(f"wrote {len(summary.scene_ids)} real-layout scenes (labels of {args.layouts}, pixels "
          f"generated, seed {args.seed}, scale {args.scale:g}) to {summary.root} in {total:.1f} s")
    return 0


def run(args: argparse.Namespace) -> int:
    from dstl.synthetic import generate_dataset
    from dstl.synthetic.writer import check_arguments, check_destination

    if args.layouts is not None:
        return run_layouts(args)
    for opt in ("ids", "split", "window"):
        if getattr(args, opt) is not None:
            raise DstlError(f"--{opt}: only with --layouts DATA")
    if args.real_a:
        raise DstlError("--real-a: only with --layouts DATA")
    if args.scale != 1.0:
        raise DstlError("--scale: only with --layouts DATA (use --size for rule-based scenes)")
    args.train = 8 if args.train is None else args.train
    args.test = 4 if args.test is None else args.test
    size = parse_size(args.size or DEFAULT_SIZE)
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

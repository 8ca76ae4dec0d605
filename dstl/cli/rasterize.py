"""`python -m dstl rasterize DATA IMAGE_ID --out MASKS.tif`: an image's labels as a mask stack.

Writes uint8 (10, H, W) 0/1 masks, class k at band k-1, H x W = the image's 3-band size, using
the pixel-centre rule (`dstl.rasterize`). The TIFF is zlib-compressed and written atomically.
"""

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from dstl.errors import DstlError

TIFF_SUFFIXES = (".tif", ".tiff")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rasterize",
        help="rasterise an image's labelled polygons to a (10, H, W) mask TIFF",
        description="Rasterise the polygons of one labelled image (train_wkt_v4.csv, or "
                    "train_geojson_v3/ without it) to a uint8 "
                    "TIFF of shape (10, H, W) with values 0/1: band k-1 is class k, H x W is the "
                    "image's 3-band size. A pixel is in a class iff its centre lies inside the "
                    "class's polygons (holes respected).",
    )
    p.add_argument("data", metavar="DATA", help="DSTL-layout folder (three_band/, grid_sizes.csv, "
                                                "train_wkt_v4.csv or train_geojson_v3/; without "
                                                "three_band/ the 3-band size is estimated)")
    p.add_argument("image_id", metavar="IMAGE_ID", help="a labelled image id in DATA, e.g. 6120_2_2")
    p.add_argument("--out", required=True, metavar="MASKS.tif",
                   help="output TIFF file (.tif or .tiff); parent folders are created")
    p.set_defaults(func=run)


def check_tiff_out(out: Path) -> Path:
    """Refuse an --out that is a folder or lacks a TIFF suffix (DstlError)."""
    if out.is_dir():
        raise DstlError(f"--out {out}: is a folder; give a file name such as {out / 'masks.tif'}")
    if out.suffix.lower() not in TIFF_SUFFIXES:
        raise DstlError(f"--out {out}: must be a TIFF file name ending in .tif or .tiff")
    return out


def run(args: argparse.Namespace) -> int:
    from dstl.dataset import DstlDataset
    from dstl.tiff import write_tiff

    out = check_tiff_out(Path(args.out))
    dataset = DstlDataset(args.data)
    image_id = dataset.check_id(args.image_id)
    if not dataset.has_labels(image_id):
        where = dataset.label_path or dataset.root / "train_wkt_v4.csv"
        raise DstlError(f"image {image_id!r} has no labels in {where} (it is a test image); "
                        "nothing to rasterise")
    # Read what can be wrong with the input (TIFF header, labels) before any progress is shown.
    dataset.transform(image_id)
    dataset.labels(image_id)
    with tqdm(total=2, desc="rasterize", unit="step", file=sys.stderr, leave=False) as bar:
        bar.set_postfix_str("rasterising")
        masks = dataset.masks(image_id)
        bar.update()
        bar.set_postfix_str("writing")
        write_tiff(out, masks, compress=True)
        bar.update()
    for note in dataset.notes:
        print(f"note: {note}", file=sys.stderr)
    print(out)
    return 0

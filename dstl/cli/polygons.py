"""`python -m dstl polygons MASKS.tif --data DATA --image-id IMAGE_ID --out ROWS.csv`.

Vectorises a (10, H, W) 0/1 mask stack of one image (class k at band k-1, H x W = that image's
3-band size) into ten Kaggle submission rows ``ImageId,ClassType,MultipolygonWKT`` in grid
coordinates (`dstl.polygonize`: valid geometry, holes kept, per-class minimum area and
simplification). The CSV is written atomically.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dstl.classes import CLASS_IDS, NUM_CLASSES
from dstl.errors import DataError, DstlError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "polygons",
        help="vectorise a (10, H, W) mask TIFF to ten submission rows (WKT CSV)",
        description="Turn the 0/1 masks of one image (a uint8 TIFF of shape (10, H, W), band k-1 "
                    "= class k, as written by `rasterize` or `predict`) into ten Kaggle submission "
                    "rows: valid MULTIPOLYGONs with holes in the image's grid coordinates, small "
                    "objects below a per-class minimum area dropped, outlines simplified.",
    )
    p.add_argument("masks", metavar="MASKS.tif",
                   help="mask TIFF: 10 bands of 0/1 values, the image's 3-band size")
    p.add_argument("--data", required=True, metavar="DATA",
                   help="DSTL-layout folder the image belongs to (for its size and grid_sizes.csv)")
    p.add_argument("--image-id", required=True, metavar="IMAGE_ID",
                   help="the image id in DATA the masks belong to, e.g. 6120_2_2")
    p.add_argument("--out", required=True, metavar="ROWS.csv",
                   help="output CSV (header ImageId,ClassType,MultipolygonWKT; one row per class)")
    p.set_defaults(func=run)


def check_masks_size(path: Path, shape: tuple[int, ...], size: tuple[int, int], image_id: str) -> None:
    """DataError unless a (10, h, w) mask stack has the 3-band size `size` = (H, W) of its image."""
    if tuple(shape[1:]) != tuple(size):
        raise DataError(f"{path}: masks are {shape[1]}x{shape[2]} px but image "
                        f"{image_id} is {size[0]}x{size[1]} px (its 3-band size)")


def check_masks(path: Path, masks: np.ndarray, size: tuple[int, int], image_id: str) -> np.ndarray:
    """Validate a (10, H, W) 0/1 integer mask stack for an image of 3-band size `size`."""
    if masks.dtype != bool and not np.issubdtype(masks.dtype, np.integer):
        raise DataError(f"{path}: mask samples must be integers 0/1 (uint8), got {masks.dtype.name}")
    check_masks_size(path, masks.shape, size, image_id)
    if masks.size and (masks.min() < 0 or masks.max() > 1):
        raise DataError(f"{path}: mask values must be 0 or 1, found values in "
                        f"{masks.min()}..{masks.max()}")
    return masks.astype(np.uint8, copy=False)


def run(args: argparse.Namespace) -> int:
    from dstl.dataset import DstlDataset
    from dstl.labels import write_wkt_csv
    from dstl.polygonize import masks_to_polygons
    from dstl.tiff import read_tiff, read_tiff_shape

    out = Path(args.out)
    if out.is_dir():
        raise DstlError(f"--out {out}: is a folder; give a file name such as {out / 'rows.csv'}")
    dataset = DstlDataset(args.data)
    image_id = dataset.check_id(args.image_id)
    transform = dataset.transform(image_id)
    path = Path(args.masks)
    size = (transform.height, transform.width)  # within the image size limits (dstl.limits)
    # The header's size must be the image's before the pixels are read: it sizes the allocation.
    check_masks_size(path, read_tiff_shape(path, bands=NUM_CLASSES), size, image_id)
    masks = check_masks(path, read_tiff(path, bands=NUM_CLASSES), size, image_id)
    with tqdm(total=NUM_CLASSES, desc="polygons", unit="class", file=sys.stderr, leave=False) as bar:
        polys = masks_to_polygons(masks, transform, progress=lambda done, total: bar.update())
    write_wkt_csv(out, ((image_id, k, polys[k]) for k in CLASS_IDS))
    print(out)
    return 0

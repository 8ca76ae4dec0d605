"""Shared fixtures: tiny DSTL-layout dataset folders written by code in the real on-disk format.

`make_dstl_folder(path, sizes=..., labelled=...)` writes, under `path`:

    three_band/<id>.tif         uint16 (3, H, W), 11-bit, planar-separate RGB (band-first)
    sixteen_band/<id>_P.tif     uint16 (H, W) single page, 11-bit
    sixteen_band/<id>_M.tif     uint16 (8, ~H/4, ~W/4), 11-bit
    sixteen_band/<id>_A.tif     uint16 (8, ~H/25, ~W/25), 14-bit
    grid_sizes.csv              header ",Xmax,Ymin" (EMPTY first cell), one row per image
    train_wkt_v4.csv            10 rows per labelled image: polygons (one with a hole) and
                                MULTIPOLYGON EMPTY rows, grid coordinates
    sample_submission.csv       10 rows per unlabelled (test) image, in `sizes` order

Pixel values are seeded random noise within each product's bit depth. The polygons of a
labelled image are `label_polygons(H, W)` (pixel coordinates) mapped to the grid with the
competition transform; the `dstl_label_polygons` fixture hands that function to tests.
Files are written with tifffile/csv/shapely directly, not with the code under test.
"""

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import shapely
import tifffile
from shapely.geometry import MultiPolygon, Polygon, box

from dstl.bands import ALL_BANDS
from dstl.grid import GridTransform

#: Default images: 3-band (H, W) per id; odd sizes, all different. Region 9xxx is not a real one.
DEFAULT_SIZES: dict[str, tuple[int, int]] = {
    "9001_0_0": (64, 72),
    "9001_1_2": (67, 61),
    "9002_3_4": (50, 45),
}

BIT_DEPTH = {"3": 2047, "P": 2047, "M": 2047, "A": 16383}


def product_sizes(h: int, w: int) -> dict[str, tuple[int, int]]:
    """Per-product sizes like the real data's: P on the 3-band grid, M ~1/4, A ~1/25 (+ a pixel)."""
    return {"3": (h, w), "P": (h, w), "M": (round(h / 4) + 1, round(w / 4)),
            "A": (max(2, round(h / 25)), max(2, round(w / 25) + 1))}


def label_polygons(h: int, w: int) -> dict[int, MultiPolygon]:
    """Polygons in PIXEL coordinates for a labelled image of 3-band size h x w (h, w >= 40).

    Class 1: two rectangles; 3: a thin diagonal strip; 5: a square with a square hole;
    9: one tiny rectangle; every other class empty. Edges lie on whole pixels, so the
    pixel-centre rule gives exact masks (e.g. class 1 covers 16*14 + 6*6 pixels).
    """
    ring = Polygon(box(20, 20, 36, 36).exterior.coords, [box(24, 24, 32, 32).exterior.coords])
    polys = {
        1: MultiPolygon([box(2, 4, 18, 18), box(w - 10, h - 10, w - 4, h - 4)]),
        3: MultiPolygon([Polygon([(0, h - 2), (w - 2, 0), (w, 0), (w, 2), (2, h), (0, h)])]),
        5: MultiPolygon([ring]),
        9: MultiPolygon([box(38, 10, 41, 12)]),
    }
    return {k: polys.get(k, MultiPolygon()) for k in range(1, 11)}


def _grid_size(h: int, w: int, rng: np.random.Generator) -> tuple[float, float]:
    # Real values are ~0.0092 / -0.0090, varying in the 4th significant digit per image.
    return 0.009188 + float(rng.integers(0, 20)) * 1e-6, -0.00904 - float(rng.integers(0, 20)) * 1e-6


def _write_products(root: Path, image_id: str, sizes: dict[str, tuple[int, int]],
                    rng: np.random.Generator) -> None:
    for product, (h, w) in sizes.items():
        top = BIT_DEPTH[product] + 1
        if product == "3":
            tifffile.imwrite(root / "three_band" / f"{image_id}.tif",
                             rng.integers(0, top, (3, h, w), dtype=np.uint16),
                             photometric="rgb", planarconfig="separate")
        elif product == "P":
            tifffile.imwrite(root / "sixteen_band" / f"{image_id}_P.tif",
                             rng.integers(0, top, (h, w), dtype=np.uint16), photometric="minisblack")
        else:
            tifffile.imwrite(root / "sixteen_band" / f"{image_id}_{product}.tif",
                             rng.integers(0, top, (8, h, w), dtype=np.uint16),
                             photometric="minisblack", planarconfig="separate")


def _wkt(geom) -> str:
    return "MULTIPOLYGON EMPTY" if geom.is_empty else shapely.to_wkt(geom, rounding_precision=12)


def write_dstl_folder(path: str | os.PathLike, sizes=None, labelled=None, seed: int = 0) -> Path:
    """Write a tiny DSTL-layout folder at `path` (created) and return it as a Path.

    Args:
        sizes: {image_id: (H, W)} 3-band sizes (other products derived by `product_sizes`), or
            {image_id: {"3": (H, W), "P": (h, w), "M": ..., "A": ...}} to set products
            explicitly (missing ones derived). Default `DEFAULT_SIZES`.
        labelled: ids with rows in train_wkt_v4.csv (polygons from `label_polygons`; needs
            H, W >= 42); the others go to sample_submission.csv. Default: all but the last id.
        seed: seeds the pixel noise and grid sizes.
    """
    root = Path(path)
    sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
    ids = list(sizes)
    labelled = ids[:-1] if labelled is None else list(labelled)
    unknown = set(labelled) - set(ids)
    if unknown:
        raise ValueError(f"labelled ids {sorted(unknown)} are not in sizes")
    (root / "three_band").mkdir(parents=True, exist_ok=True)
    (root / "sixteen_band").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    grid, shapes = {}, {}
    for image_id, size in sizes.items():
        if isinstance(size, dict):
            per_product = {**product_sizes(*size["3"]), **size}
        else:
            per_product = product_sizes(*size)
        shapes[image_id] = per_product["3"]
        _write_products(root, image_id, per_product, rng)
        grid[image_id] = _grid_size(*per_product["3"], rng)

    with open(root / "grid_sizes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["", "Xmax", "Ymin"])
        for image_id, (xmax, ymin) in grid.items():
            writer.writerow([image_id, repr(xmax), repr(ymin)])

    header = ["ImageId", "ClassType", "MultipolygonWKT"]
    with open(root / "train_wkt_v4.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for image_id in labelled:
            h, w = shapes[image_id]
            transform = GridTransform(h, w, *grid[image_id])
            for class_id, geom in label_polygons(h, w).items():
                writer.writerow([image_id, class_id, _wkt(transform.to_grid(geom))])

    with open(root / "sample_submission.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for image_id in (i for i in ids if i not in labelled):
            for class_id in range(1, 11):
                # The Kaggle sample carries a tiny placeholder polygon in its first row per image.
                geom = box(0, -1e-5, 1e-5, 0) if class_id == 1 else MultiPolygon()
                writer.writerow([image_id, class_id, _wkt(MultiPolygon([geom]) if class_id == 1 else geom)])
    return root


@pytest.fixture
def make_dstl_folder():
    """Factory: `make_dstl_folder(path, sizes=..., labelled=..., seed=0) -> Path` (see module doc)."""
    return write_dstl_folder


@pytest.fixture
def dstl_label_polygons():
    """`label_polygons(H, W)`: the pixel-coordinate polygons written for a labelled image."""
    return label_polygons


def write_tiny_unet(folder, bands=ALL_BANDS, trained=True) -> Path:
    """Save a randomly initialised 4-wide UNet in Hub layout whose masks are never trivial:
    class 1 is everywhere (head bias +20), class 2 nowhere (-20), the others vary with the input.
    `trained=False` saves it with training=None (what untrained weights look like)."""
    import torch

    from dstl.classes import NUM_CLASSES
    from dstl.models import UNet, config_for, save_pretrained

    torch.manual_seed(0)
    m = UNet(len(bands), NUM_CLASSES, base_width=4, dropout=0.0)
    with torch.no_grad():
        m.head.weight.normal_(std=1.0)
        m.head.bias.zero_()
        m.head.bias[0], m.head.bias[1] = 20.0, -20.0
    training = {"data": "test fixture"} if trained else None
    return save_pretrained(m, config_for(m, bands, tile_size=64, training=training), folder)


@pytest.fixture(scope="session")
def save_tiny_unet():
    """Factory: `save_tiny_unet(folder, bands=ALL_BANDS, trained=True) -> Path` (see write_tiny_unet)."""
    return write_tiny_unet


def forge_tiff(path, shape: tuple[int, ...], dtype=np.uint16) -> Path:
    """Write a TIFF of a few kB whose header claims `shape` ((H, W), or band-first (C, H, W)).

    The pixel data is that of a 2 x 2 image (so the file is "truncated" for any larger claim):
    what a reader derives from the header alone - the size it would allocate - is what it sees.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    small = (2, 2) if len(shape) == 2 else (shape[0], 2, 2)
    extra = {"planarconfig": "separate"} if len(shape) == 3 else {}
    photometric = "rgb" if len(shape) == 3 and shape[0] == 3 else "minisblack"
    tifffile.imwrite(path, np.zeros(small, dtype), photometric=photometric, **extra)
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["ImageLength"].overwrite(int(shape[-2]))
        tif.pages[0].tags["ImageWidth"].overwrite(int(shape[-1]))
    return path


@pytest.fixture
def forge_tiff_header():
    """Factory: `forge_tiff_header(path, shape, dtype=np.uint16) -> Path` (see `forge_tiff`)."""
    return forge_tiff


@pytest.fixture(autouse=True)
def default_image_size_limit(monkeypatch):
    """Every test (and every command it starts) sees the default image size limit of `dstl.limits`,
    whatever the environment of the run says; tests that need another one set it themselves."""
    from dstl.limits import MAX_MEGAPIXELS_ENV

    monkeypatch.delenv(MAX_MEGAPIXELS_ENV, raising=False)

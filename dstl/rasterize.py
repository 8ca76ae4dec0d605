"""Polygons (grid coordinates) -> per-class binary masks on an image's 3-band pixel grid.

Rule (DESIGN.md §2): pixel (row r, column c) belongs to a class iff its centre
(c + 0.5, r + 0.5), in the pixel coordinates of `GridTransform.to_pixels`, lies inside the
class's polygons — GDAL/rasterio's default (`all_touched=False`). Holes are respected: a pixel
whose centre lies in a hole is outside. An empty class gives an all-zero mask.
"""

from collections.abc import Mapping

import numpy as np
import rasterio.features
import shapely
from rasterio.transform import IDENTITY
from shapely.geometry.base import BaseGeometry

from dstl.classes import CLASS_IDS, NUM_CLASSES
from dstl.grid import GridTransform


def rasterize_pixels(geom: BaseGeometry | None, height: int, width: int) -> np.ndarray:
    """Burn a polygonal geometry given in PIXEL coordinates into a uint8 (height, width) 0/1 mask.

    Only polygonal parts are burnt (lines/points of a collection are ignored).
    """
    out = np.zeros((height, width), dtype=np.uint8)
    if geom is None or geom.is_empty:
        return out
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")
             and not p.is_empty]
    if not parts:
        return out
    # Identity affine: pixel (r, c) spans [c, c+1) x [r, r+1), which is exactly our pixel space.
    rasterio.features.rasterize(((p, 1) for p in parts), out_shape=(height, width), out=out,
                                transform=IDENTITY, all_touched=False, dtype=np.uint8)
    return out


def rasterize_class(geom: BaseGeometry | None, transform: GridTransform) -> np.ndarray:
    """Rasterise one class's geometry (GRID coordinates) to a uint8 (H, W) 0/1 mask."""
    if geom is None or geom.is_empty:
        return np.zeros((transform.height, transform.width), dtype=np.uint8)
    return rasterize_pixels(transform.to_pixels(geom), transform.height, transform.width)


def rasterize_classes(polys: Mapping[int, BaseGeometry | None], transform: GridTransform) -> np.ndarray:
    """Rasterise ``{class_id: geometry}`` (GRID coordinates) to a uint8 (10, H, W) 0/1 stack.

    Class k goes to index k-1; classes missing from `polys` (or empty) are all zero.
    Raises ValueError for a class id outside 1..10.
    """
    bad = [k for k in polys if k not in CLASS_IDS]
    if bad:
        raise ValueError(f"class ids must be 1..{NUM_CLASSES}, got {bad}")
    masks = np.zeros((NUM_CLASSES, transform.height, transform.width), dtype=np.uint8)
    for class_id, geom in polys.items():
        if geom is not None and not geom.is_empty:
            masks[class_id - 1] = rasterize_class(geom, transform)
    return masks

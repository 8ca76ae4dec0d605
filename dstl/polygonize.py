"""Binary masks -> valid MultiPolygons (with holes), in pixel or grid coordinates.

Method (chosen by measuring the round trip polygons -> masks -> polygons against the
original polygons with the Kaggle metric; see tests/test_polygonize.py):

1. Split the mask into 8-connected components (scipy.ndimage.label) and drop components
   smaller than the class's minimum area (`MIN_AREA_PX`). Each remaining component is
   processed in its own bounding window (a few pixels of margin), so that the cost grows with
   the objects' size, not the scene's, and two components never merge into one polygon.
2. Smooth the component's 0/1 mask with a small Gaussian (sigma `SIGMA_PX` = 0.7 px) and trace
   the 0.5 iso-contour through the PIXEL CENTRES (marching squares, contourpy's filled contours,
   holes included). Why: under the pixel-centre rasterisation rule the true boundary lies
   somewhere between the last pixel centre inside and the first outside. Tracing pixel edges
   (rasterio.features.shapes) returns a staircase whose steps are up to half a pixel off
   every slanted edge; the contour through the centres cuts those steps diagonally, and the
   light smoothing averages the remaining steps along an edge, which recovers sub-pixel edge
   positions. At image borders the field is extended so that polygons reach the border itself.
   Measured on the full-size label set of tests/test_polygonize.py (3391 x 3348 px, every
   class), mean Kaggle Jaccard of the unsimplified round trip (small vehicles in brackets):
   pixel-edge staircase 0.955 (0.894); contour through centres 0.966 (0.920); smoothed
   contour sigma 0.5 px 0.969 (0.925), 0.7 px 0.972 (0.929), 1.0 px 0.973 (0.922) — wider
   smoothing rounds the corners of small objects. A contour level other than 0.5 only adds
   bias (0.45: 0.971, 0.4: 0.964).
3. Simplify each polygon with Douglas-Peucker, topology preserved, with a per-class tolerance
   (`TOLERANCE_PX`, a fraction of a pixel for small objects) — the contour has a vertex per
   pixel step, which would make submission files huge. On the same scene a uniform 0.3 px
   costs 0.001 mean Jaccard and cuts the vertices 5.6x (269k -> 48k); 0.5 px costs 0.004
   (small vehicles 0.929 -> 0.914), hence sub-pixel tolerances for small classes. With the
   defaults: mean 0.971, every class >= 0.926, ~40k vertices per scene. Holes smaller than the
   minimum area are filled.
4. Repair anything left invalid (`dstl.labels.to_multipolygon`), so the result is always a valid
   MultiPolygon that Kaggle accepts, and map it to grid coordinates with `GridTransform.to_grid`.

Thin components (real misc. structures: walls, fences 1-3 px wide): smoothing lowers such a
component's peak below 1, so its 0.5 contour is narrower than its pixels (a 1 px wall comes out
~0.2 px wide). Where the 0.5 contour keeps less than `THIN_AREA_RATIO` of the component's pixel
count, the level is lowered until the polygon's area matches the count (`_area_matched`), and
class 2 is smoothed less (`CLASS_SIGMA_PX`). On the real labels of all 25 training images this
lifted the round trip of class 2 from 0.838 to the figure in BENCHMARKS.md ("Real label
geometry"). A component that even that cannot bring back (a one-pixel-wide diagonal line, say)
falls back to the exact union of its pixel squares, so nothing above the minimum area is lost.
"""

from collections.abc import Callable, Mapping

import contourpy
import numpy as np
import rasterio.features
import shapely
from rasterio.transform import IDENTITY
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon, shape

from dstl.classes import CLASS_IDS, NUM_CLASSES
from dstl.grid import GridTransform
from dstl.labels import to_multipolygon

#: Minimum object area in pixels (at ~0.31 m/px one pixel is ~0.1 m²) below which a connected
#: component is dropped as noise; holes smaller than this are filled. Small enough that the
#: smallest real objects survive: a small car is ~15x6 px (~90 px²), a garden shed ~6x6 px.
MIN_AREA_PX: dict[int, float] = {
    1: 20.0,   # Buildings: the smallest huts are ~5x5 px
    2: 1.0,    # Misc. manmade structures: posts and wall stubs of a few px (8 px lost 0.015 Jaccard)
    3: 50.0,   # Road: long objects; short fragments are noise
    4: 30.0,   # Track
    5: 12.0,   # Trees: a single small tree crown is ~4 px across
    6: 200.0,  # Crops: fields are thousands of px²
    7: 100.0,  # Waterway
    8: 30.0,   # Standing water: ponds, puddles
    9: 30.0,   # Vehicle Large: trucks/buses ~30x8 px and more
    10: 1.0,   # Vehicle Small: cars ~15x6 px, but partly hidden ones and motorbikes are a few px
               # (the real labels' round trip: 8 px cost 0.024 Jaccard)
}

#: Douglas-Peucker tolerance in pixels. Below ~0.3 px the round trip is as good as unsimplified;
#: large, smooth classes tolerate more, which keeps submission files small.
TOLERANCE_PX: dict[int, float] = {
    1: 0.3, 2: 0.25, 3: 0.4, 4: 0.3, 5: 0.4, 6: 0.75, 7: 0.5, 8: 0.4, 9: 0.3, 10: 0.25,
}

#: Gaussian sigma (pixels) applied to each component's 0/1 mask before contouring at 0.5.
SIGMA_PX = 0.7

#: Per-class sigma where it differs from `SIGMA_PX`: misc. structures are mostly walls 1-3 px
#: wide, whose outlines a 0.7 px blur rounds away. On the real labels of 6120_2_2 and 6100_2_2
#: (3,655 structures) with area-matched levels: sigma 0.3 / 0.4 / 0.5 / 0.7 / 1.0 give class-2
#: Jaccard 0.789 / 0.792 / 0.793 / 0.781 / 0.741; small vehicles are best at 0.7 (0.884 vs 0.883).
CLASS_SIGMA_PX: dict[int, float] = {2: 0.5}

_LEVEL = 0.5

#: A component whose smoothed 0.5-contour keeps less than this share of its pixel count is thin
#: (walls, fences, poles 1-3 px wide): its contour level is lowered to match the pixel count
#: (`_area_matched`). Wide objects lose only their corners' rounding (> 0.95 of their count).
THIN_AREA_RATIO = 0.97

#: Lowest contour level `_area_matched` goes down to (a smoothed 1 px line peaks at ~0.5).
MIN_LEVEL = 0.12
_LEVEL_STEPS = 4
_EDGE = 1e-3  # width of the zero margin outside an image border (pixels), see `_contour`
_MARGIN = int(4.0 * SIGMA_PX + 0.5) + 1  # window margin >= the Gaussian's reach


def _contour(field: np.ndarray, r0: int, c0: int, height: int, width: int,
             level: float = _LEVEL) -> list[Polygon]:
    """Filled 0.5-contours of `field` (window at row r0, col c0 of an H x W image), pixel coords.

    The field's sample points are the pixel centres. Where the window touches an image border
    it is extended by a copy of the border samples placed ON the border and a zero sample just
    beyond it, so that an object touching the border is closed along the border itself, not
    half a pixel inside it.
    """
    h, w = field.shape
    xs = c0 + np.arange(w) + 0.5
    ys = r0 + np.arange(h) + 0.5
    left, right = int(c0 == 0), int(c0 + w == width)
    top, bottom = int(r0 == 0), int(r0 + h == height)
    if left or right or top or bottom:
        field = np.pad(field, ((top, bottom), (left, right)), mode="edge")
        field = np.pad(field, ((top, bottom), (left, right)), mode="constant")
        xs = np.r_[[-_EDGE, 0.0][: 2 * left], xs, [width, width + _EDGE][: 2 * right]]
        ys = np.r_[[-_EDGE, 0.0][: 2 * top], ys, [height, height + _EDGE][: 2 * bottom]]
    # The generator class directly: contourpy.contour_generator() adds ~0.3 ms of argument
    # checking per call, which dominates for the thousands of small windows of a scene.
    gx, gy = np.meshgrid(xs, ys)
    gen = contourpy.SerialContourGenerator(
        gx, gy, np.ascontiguousarray(field, dtype=np.float64), None, corner_mask=True,
        line_type=contourpy.LineType.Separate, fill_type=contourpy.FillType.OuterOffset,
        quad_as_tri=False, z_interp=contourpy.ZInterp.Linear)
    points, offsets = gen.filled(level, np.inf)
    polys = []
    for pts, offs in zip(points, offsets, strict=True):
        if left or right or top or bottom:  # pull the zero-margin vertices onto the border
            pts = np.clip(pts, 0.0, (width, height))
        rings = [pts[a:b] for a, b in zip(offs[:-1], offs[1:], strict=True)]
        polys.append(Polygon(rings[0], rings[1:]))
    return polys


def _area_matched(field, r0, c0, height, width, size, found, area):
    """Contour of a thin component at the level whose polygon area is the pixel count.

    The 0.5 level of the smoothed field lies on the pixel edges of a wide object, but a structure
    1-3 px wide never reaches the full height 1 after smoothing, so its 0.5 contour is narrower than
    its pixels (a 1 px wall comes out ~0.2 px wide). The pixel count is an unbiased estimate of the
    true area under the pixel-centre rule, so the level is lowered (area grows monotonically as
    the level falls) until the polygon's area matches it: secant steps on area(level), kept in
    [`MIN_LEVEL`, 0.5], at most `_LEVEL_STEPS` contours more. Returns (polygons, area).
    """
    lo, hi = (_LEVEL, area), None  # (level, area) below and above the pixel count
    best, best_area = found, area
    level = 0.3
    for _ in range(_LEVEL_STEPS):
        polys = _contour(field, r0, c0, height, width, level)
        a = sum(p.area for p in polys)
        if abs(a - size) < abs(best_area - size):
            best, best_area = polys, a
        if abs(a - size) <= 0.03 * size:
            break
        if a < size:
            lo = (level, a)
        else:
            hi = (level, a)
        if hi is None:  # still too thin: go lower
            if level <= MIN_LEVEL:
                break
            level = max(MIN_LEVEL, level - 0.1)
        else:  # secant between the levels that bracket the pixel count
            level = lo[0] + (size - lo[1]) * (hi[0] - lo[0]) / (hi[1] - lo[1])
    return best, best_area


def _pixel_squares(sub: np.ndarray, r0: int, c0: int) -> list[Polygon]:
    """Exact union of the pixel squares of a 0/1 window (pixel-edge staircase), pixel coords."""
    out = []
    for geom, _ in rasterio.features.shapes(sub, mask=sub.astype(bool), connectivity=8, transform=IDENTITY):
        out.extend(shapely.get_parts(to_multipolygon(shape(geom))))
    return [shapely.transform(p, lambda xy: xy + (c0, r0)) for p in out]


def _fill_small_holes(poly: Polygon, min_area: float) -> Polygon:
    if not poly.interiors:
        return poly
    holes = [r for r in poly.interiors if Polygon(r).area >= min_area]
    return poly if len(holes) == len(poly.interiors) else Polygon(poly.exterior, holes)


def mask_to_pixel_polygons(mask: np.ndarray, *, min_area: float = 0.0, tolerance: float = 0.0,
                           sigma: float = SIGMA_PX) -> MultiPolygon:
    """Vectorise one 2-D mask (nonzero = object) to a valid MultiPolygon in PIXEL coordinates.

    Pixel (row r, col c) spans [c, c+1) x [r, r+1) (the convention of `GridTransform`).

    Args:
        mask: (H, W) array; any nonzero value counts as object.
        min_area: drop 8-connected components with fewer pixels than this; fill smaller holes.
        tolerance: Douglas-Peucker tolerance in pixels (0 = no simplification).
        sigma: Gaussian smoothing in pixels before contouring (0 = plain marching squares).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    height, width = mask.shape
    binary = mask != 0
    if not binary.any():
        return MultiPolygon()
    labels, n = ndimage.label(binary, structure=np.ones((3, 3), dtype=bool))
    polys: list[Polygon] = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        r0 = max(sl[0].start - _MARGIN, 0)
        r1 = min(sl[0].stop + _MARGIN, height)
        c0 = max(sl[1].start - _MARGIN, 0)
        c1 = min(sl[1].stop + _MARGIN, width)
        sub = (labels[r0:r1, c0:c1] == i).astype(np.float32)
        size = int(np.count_nonzero(sub))
        if size < max(min_area, 1):
            continue
        field = ndimage.gaussian_filter(sub, sigma, mode="nearest") if sigma > 0 else sub
        found = _contour(field, r0, c0, height, width)
        area = sum(p.area for p in found)
        if sigma > 0 and area < THIN_AREA_RATIO * size:
            found, area = _area_matched(field, r0, c0, height, width, size, found, area)
        # What smoothing erases and a lower level cannot bring back: exact pixel squares.
        if area < 0.5 * size:
            found = _pixel_squares(sub.astype(np.uint8), r0, c0)
        polys.extend(found)
    if not polys:
        return MultiPolygon()
    geoms = np.asarray(polys, dtype=object)
    if tolerance > 0:
        geoms = shapely.simplify(geoms, tolerance, preserve_topology=True)
    if min_area > 0:
        geoms = [_fill_small_holes(p, min_area) for p in geoms]
    parts = [p for p in geoms if isinstance(p, Polygon) and not p.is_empty and p.area > 0]
    return to_multipolygon(MultiPolygon(parts)) if parts else MultiPolygon()


def mask_to_polygons(mask: np.ndarray, transform: GridTransform, class_id: int | None = None, *,
                     min_area: float | None = None, tolerance: float | None = None) -> MultiPolygon:
    """Vectorise one class's (H, W) mask to a valid MultiPolygon in GRID coordinates.

    `min_area` (pixels) and `tolerance` (pixels) default to the class's `MIN_AREA_PX` and
    `TOLERANCE_PX` when `class_id` is given, else to 0 and 0.25. Raises ValueError if the mask's
    shape is not the transform's (H, W).
    """
    mask = np.asarray(mask)
    if mask.shape != (transform.height, transform.width):
        raise ValueError(f"mask shape {mask.shape} does not match the image size "
                         f"{transform.height}x{transform.width}")
    if min_area is None:
        min_area = MIN_AREA_PX[class_id] if class_id is not None else 0.0
    if tolerance is None:
        tolerance = TOLERANCE_PX[class_id] if class_id is not None else 0.25
    sigma = CLASS_SIGMA_PX.get(class_id, SIGMA_PX) if class_id is not None else SIGMA_PX
    pixel_polys = mask_to_pixel_polygons(mask, min_area=min_area, tolerance=tolerance, sigma=sigma)
    if pixel_polys.is_empty:
        return pixel_polys
    return to_multipolygon(transform.to_grid(pixel_polys))


def masks_to_polygons(masks: np.ndarray, transform: GridTransform, *,
                      min_area: Mapping[int, float] | None = None,
                      tolerance: Mapping[int, float] | None = None,
                      progress: Callable[[int, int], None] | None = None) -> dict[int, MultiPolygon]:
    """Vectorise a (10, H, W) mask stack (class k at index k-1) to ``{k: MultiPolygon}`` in grid coords.

    Args:
        masks: (10, H, W) array, nonzero = object; H x W must be the transform's size.
        transform: the image's `GridTransform`.
        min_area, tolerance: per-class overrides (pixels) of `MIN_AREA_PX` / `TOLERANCE_PX`.
        progress: called as ``progress(done, total)`` after each class.

    Every class is present in the result; empty masks give ``MULTIPOLYGON EMPTY``.
    Raises ValueError for a stack that is not (10, H, W) at the transform's size.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[0] != NUM_CLASSES:
        raise ValueError(f"masks must be ({NUM_CLASSES}, H, W), got shape {masks.shape}")
    areas = {**MIN_AREA_PX, **(min_area or {})}
    tols = {**TOLERANCE_PX, **(tolerance or {})}
    out: dict[int, MultiPolygon] = {}
    for done, k in enumerate(CLASS_IDS, start=1):
        out[k] = mask_to_polygons(masks[k - 1], transform, k, min_area=areas[k], tolerance=tols[k])
        if progress is not None:
            progress(done, NUM_CLASSES)
    return out

"""Writers (and readers, for checking) of the files `python -m dstl predict` leaves per image.

DESIGN.md §6: for an image `<id>` the output folder gets

    <id>_masks.tif      uint8 (10, H, W), values 0/1, class k at index k-1, H x W = the image's
                        3-band size; planar-separate, zlib-compressed (lossless).
    <id>_overlay.png    the RGB preview with every class blended in its colour (opacity 0.5),
                        legend strip below the picture: rows 0..H-1 are the scene, pixel for
                        pixel; the rows after them are the legend.
    <id>.csv            Kaggle submission rows: header ImageId,ClassType,MultipolygonWKT,
                        10 rows (classes 1..10), grid coordinates, MULTIPOLYGON EMPTY if none.
    <id>.geojson        the polygons as a GeoJSON FeatureCollection (layout below).
    <id>_metrics.json   per-class IoU, Dice and Kaggle Jaccard vs the labels (labelled images only).

Every file is written atomically (`dstl.atomic`): it appears complete or not at all.

GeoJSON layout
--------------
One Feature per polygon (holes kept), in class-id order. DSTL coordinates are not geographic
(the competition removed the georeferencing), so no CRS is claimed and two coordinate systems
are given for each polygon:

- `geometry` — PIXEL coordinates of the 3-band image: x = column, growing to the right,
  y = row, growing DOWNWARDS, in pixels; pixel (row r, column c) covers [c, c+1) x [r, r+1).
  This is what image viewers, web canvases and the app draw on top of the picture. (A GIS
  program that assumes y grows upwards shows it upside down; use `grid_geometry` there.)
- `properties.grid_geometry` — the same polygon in the competition's GRID coordinates
  (x in [0, Xmax], y in [Ymin, 0], y growing upwards so that y < 0 inside the image), exactly
  what `<id>.csv` holds (DESIGN §2), related to pixels by `dstl.grid.GridTransform`.

Other properties: `image_id`, `class_id` (1..10), `class_name`, `colour` ("#rrggbb", the app's
colour), `area_px` (area in pixels), `area_grid` (area in grid units). The collection itself
carries the foreign members `image_id`, `image_size` {"height", "width"} and `grid_size`
{"xmax", "ymin"}. Pixel coordinates are snapped to 1/1000 px and grid coordinates to 1e-9
(~0.0003 px) with `shapely.set_precision`, which keeps the polygons valid.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from dstl.atomic import write_text_atomic
from dstl.classes import CLASS_IDS, CLASSES, NUM_CLASSES, class_by_id
from dstl.errors import DataError, DstlError
from dstl.grid import GridTransform

PIXEL_DECIMALS = 3
GRID_DECIMALS = 9

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def output_paths(out_dir: str | os.PathLike, image_id: str) -> dict[str, Path]:
    """The output files of one image: keys masks, overlay, csv, geojson, metrics.

    Raises DstlError if `image_id` is not a plain file name (letters, digits, '_', '-', '.'),
    so an id can never write outside `out_dir`.
    """
    if not isinstance(image_id, str) or not _SAFE_ID.fullmatch(image_id):
        raise DstlError(f"image id {image_id!r} cannot name an output file "
                        "(use letters, digits, '_', '-', '.')")
    d = Path(out_dir)
    return {
        "masks": d / f"{image_id}_masks.tif",
        "overlay": d / f"{image_id}_overlay.png",
        "csv": d / f"{image_id}.csv",
        "geojson": d / f"{image_id}.geojson",
        "metrics": d / f"{image_id}_metrics.json",
    }


# ------------------------------------------------------------------------------------ masks


def _as_mask_stack(masks: np.ndarray) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[0] != NUM_CLASSES:
        raise ValueError(f"masks must be ({NUM_CLASSES}, H, W), got shape {masks.shape}")
    if masks.dtype == np.uint8 and masks.max(initial=0) <= 1:
        return masks
    return (masks != 0).astype(np.uint8)


def write_masks_tiff(path: str | os.PathLike, masks: np.ndarray) -> None:
    """Write (10, H, W) masks (bool or integer; nonzero = class present) as uint8 0/1 TIFF.

    Planar-separate, zlib-compressed; read back by `read_masks_tiff` or
    `tifffile.imread(path)` -> (10, H, W) uint8.
    """
    from dstl.tiff import write_tiff

    write_tiff(path, _as_mask_stack(masks), compress=True)


def read_masks_tiff(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a masks TIFF: uint8 (10, H, W) with values 0/1.

    Raises DataError if the file is missing/corrupt, is not 10 bands of uint8 0/1, or (with
    `shape`) its H x W is not `shape`.
    """
    from dstl.tiff import read_tiff, read_tiff_shape

    _, h, w = read_tiff_shape(path, NUM_CLASSES)  # the size from the header, before any pixel
    if shape is not None and (h, w) != tuple(shape):
        raise DataError(f"{path}: masks are {h}x{w}, expected {shape[0]}x{shape[1]}")
    masks = read_tiff(path, NUM_CLASSES, dtype=np.uint8)
    if masks.max(initial=0) > 1:
        raise DataError(f"{path}: mask values must be 0 or 1, found {int(masks.max())}")
    return masks


# ---------------------------------------------------------------------------------- picture


def write_overlay_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 (H, W, 3) picture as PNG, atomically."""
    from dstl.render import save_png

    save_png(path, image)


def overlay_picture(preview: np.ndarray, masks: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """The `<id>_overlay.png` picture: all classes over `preview`, legend (with coverage) below."""
    from dstl import render

    over = render.overlay(preview, masks, None, opacity)
    return render.with_legend(over, coverage=render.class_coverage(masks))


# ------------------------------------------------------------------------------ submission


def write_submission_rows(path: str | os.PathLike, image_id: str,
                          polygons: Mapping[int, BaseGeometry | None]) -> None:
    """Write the 10 Kaggle rows of one image (classes 1..10, grid coordinates), atomically.

    A class missing from `polygons` (or None/empty) is written as MULTIPOLYGON EMPTY.
    """
    from dstl.labels import write_wkt_csv

    output_paths(".", image_id)  # validates the id
    write_wkt_csv(path, [(image_id, k, polygons.get(k)) for k in CLASS_IDS])


# --------------------------------------------------------------------------------- GeoJSON


def _polygon_parts(geom: BaseGeometry | None) -> list[Polygon]:
    if geom is None or geom.is_empty:
        return []
    from dstl.labels import to_multipolygon

    return list(to_multipolygon(geom).geoms)


def _rounded(obj, decimals: int):
    """Coordinates of a GeoJSON geometry mapping as nested lists of rounded floats."""
    if isinstance(obj, (tuple, list)):
        if obj and isinstance(obj[0], (int, float)):
            return [round(float(v), decimals) for v in obj]
        return [_rounded(o, decimals) for o in obj]
    return obj


def _geojson_geometry(geom: BaseGeometry, decimals: int) -> dict:
    m = mapping(geom)
    return {"type": m["type"], "coordinates": _rounded(m["coordinates"], decimals)}


def geojson_collection(image_id: str, polygons: Mapping[int, BaseGeometry | None],
                       transform: GridTransform) -> dict:
    """The GeoJSON FeatureCollection (a dict) of one image's polygons; see the module doc.

    Args:
        image_id: the image.
        polygons: class id -> (Multi)Polygon in GRID coordinates (as from
            `dstl.polygonize.masks_to_polygons` or `DstlDataset.labels`); missing = empty.
        transform: the image's grid <-> pixel transform.
    """
    features = []
    for k in CLASS_IDS:
        cls = class_by_id(k)
        for n, poly in enumerate(_polygon_parts(polygons.get(k))):
            grid = shapely.set_precision(poly, 10.0 ** -GRID_DECIMALS)
            pix = shapely.set_precision(transform.to_pixels(poly), 10.0 ** -PIXEL_DECIMALS)
            if grid.is_empty or pix.is_empty:
                continue  # collapsed at this precision: far below a pixel
            features.append({
                "type": "Feature",
                "id": f"{image_id}/{k}/{n}",
                "geometry": _geojson_geometry(pix, PIXEL_DECIMALS),
                "properties": {
                    "image_id": image_id,
                    "class_id": k,
                    "class_name": cls.name,
                    "colour": cls.hex,
                    "area_px": round(float(pix.area), 3),
                    "area_grid": float(grid.area),
                    "grid_geometry": _geojson_geometry(grid, GRID_DECIMALS),
                },
            })
    return {
        "type": "FeatureCollection",
        "image_id": image_id,
        "image_size": {"height": transform.height, "width": transform.width},
        "grid_size": {"xmax": transform.xmax, "ymin": transform.ymin},
        "coordinates": ("geometry: 3-band pixel coordinates (x = column to the right, y = row "
                        "downwards); properties.grid_geometry: DSTL grid coordinates (x in "
                        "[0, Xmax], y in [Ymin, 0]); no geographic CRS"),
        "features": features,
    }


def write_geojson(path: str | os.PathLike, image_id: str, polygons: Mapping[int, BaseGeometry | None],
                  transform: GridTransform) -> None:
    """Write `geojson_collection(image_id, polygons, transform)` to `path`, atomically."""
    output_paths(".", image_id)
    doc = geojson_collection(image_id, polygons, transform)
    write_text_atomic(path, json.dumps(doc, separators=(",", ":"), allow_nan=False))


@dataclass
class GeoJsonPolygons:
    """Polygons read back from a GeoJSON written by `write_geojson`.

    Attributes:
        image_id: from the collection.
        pixel: class id (1..10) -> MultiPolygon in pixel coordinates (empty if none).
        grid: class id -> MultiPolygon in grid coordinates (empty if none).
    """

    image_id: str | None
    pixel: dict[int, MultiPolygon]
    grid: dict[int, MultiPolygon]


def _multipolygon(parts: list[BaseGeometry]) -> MultiPolygon:
    polys: list[Polygon] = []
    for p in parts:
        polys.extend(p.geoms if isinstance(p, MultiPolygon) else [p])
    return MultiPolygon(polys)


def read_geojson(path: str | os.PathLike) -> GeoJsonPolygons:
    """Read a GeoJSON FeatureCollection written by `write_geojson` (pixel and grid geometry).

    Raises DataError naming the file (and feature) when it is missing, not JSON, or not laid
    out as `write_geojson` writes it.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise DataError(f"{path}: not a GeoJSON FeatureCollection")
    pixel: dict[int, list] = {k: [] for k in CLASS_IDS}
    grid: dict[int, list] = {k: [] for k in CLASS_IDS}
    for i, feat in enumerate(doc.get("features") or []):
        try:
            props = feat["properties"]
            k = int(props["class_id"])
            if k not in CLASS_IDS:
                raise ValueError(f"class_id {k} is not 1..{NUM_CLASSES}")
            pix = shape(feat["geometry"])
            grd = shape(props["grid_geometry"])
            if not isinstance(pix, (Polygon, MultiPolygon)) or not isinstance(grd, (Polygon, MultiPolygon)):
                raise ValueError("geometry is not a (Multi)Polygon")
        except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as e:
            raise DataError(f"{path}: feature {i}: malformed ({type(e).__name__}: {e})") from None
        pixel[k].append(pix)
        grid[k].append(grd)
    return GeoJsonPolygons(doc.get("image_id"), {k: _multipolygon(v) for k, v in pixel.items()},
                           {k: _multipolygon(v) for k, v in grid.items()})


# --------------------------------------------------------------------------------- metrics


def image_metrics(image_id: str, pred_masks: np.ndarray, true_masks: np.ndarray,
                  pred_polygons: Mapping[int, BaseGeometry | None] | None = None,
                  true_polygons: Mapping[int, BaseGeometry | None] | None = None) -> dict:
    """Scores of one image's prediction against its labels, as a JSON-ready dict.

    Layout::

        {"image_id": id,
         "per_class": {"1": {"class_name": "Buildings", "iou": .., "dice": .., "kaggle_jaccard": ..,
                             "pred_pixels": n, "true_pixels": n}, ..., "10": {...}},
         "mean": {"iou": m, "dice": m, "kaggle_jaccard": m}}

    IoU and Dice are on the pixel masks; `kaggle_jaccard` is the competition metric on the
    polygons (grid coordinates) for this one image. A score is null (None) where it is
    undefined (the class is absent from both prediction and truth), and means are over the
    classes that have a score; kaggle_jaccard is null everywhere if no polygons are given.
    """
    from dstl.metrics import kaggle_jaccard, pixel_counts, scores_from_counts

    counts = pixel_counts(_as_mask_stack(pred_masks), _as_mask_stack(true_masks))
    px = scores_from_counts(counts)
    if pred_polygons is not None and true_polygons is not None:
        kj = kaggle_jaccard({image_id: dict(pred_polygons)}, {image_id: dict(true_polygons)})
    else:
        kj = {"per_class": dict.fromkeys(CLASS_IDS), "mean": None}
    per_class = {}
    for c in CLASSES:
        per_class[str(c.id)] = {
            "class_name": c.name,
            "iou": px["iou"][c.id],
            "dice": px["dice"][c.id],
            "kaggle_jaccard": kj["per_class"][c.id],
            "pred_pixels": int(counts["pred"][c.index]),
            "true_pixels": int(counts["true"][c.index]),
        }
    return {
        "image_id": image_id,
        "per_class": per_class,
        "mean": {"iou": px["mean_iou"], "dice": px["mean_dice"], "kaggle_jaccard": kj["mean"]},
    }


def _json_safe(obj):
    """NaN/inf floats -> None, numpy scalars -> Python, so the JSON is strict."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_metrics_json(path: str | os.PathLike, metrics: Mapping) -> None:
    """Write a metrics dict (e.g. from `image_metrics`) as indented strict JSON, atomically."""
    write_text_atomic(path, json.dumps(_json_safe(metrics), indent=2, allow_nan=False) + "\n")


def read_metrics_json(path: str | os.PathLike) -> dict:
    """Read a metrics JSON file; DataError if missing or not a JSON object."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a JSON object")
    return doc


# ---------------------------------------------------------------------------- all at once


def write_prediction_files(out_dir: str | os.PathLike, image_id: str, masks: np.ndarray,
                           polygons: Mapping[int, BaseGeometry | None], transform: GridTransform,
                           preview: np.ndarray | None = None,
                           metrics: Mapping | None = None) -> dict[str, Path]:
    """Write every `predict` output of one image into `out_dir` (created); return their paths.

    Args:
        masks: uint8/bool (10, H, W) predicted masks on the image's 3-band grid.
        polygons: class id -> (Multi)Polygon in grid coordinates (from the masks).
        transform: the image's grid transform (its H x W must match the masks).
        preview: uint8 (H, W, 3) RGB preview for the overlay PNG; None skips the PNG.
        metrics: a dict from `image_metrics` for a labelled image; None skips the JSON.

    Returns:
        {"masks", "csv", "geojson"[, "overlay"][, "metrics"]} -> path written. Each file is
        atomic; a failure part-way leaves the earlier files complete and no partial file.
    """
    paths = output_paths(out_dir, image_id)
    masks = _as_mask_stack(masks)
    if masks.shape[1:] != (transform.height, transform.width):
        raise ValueError(f"masks are {masks.shape[1]}x{masks.shape[2]} but image {image_id} is "
                         f"{transform.height}x{transform.width}")
    written: dict[str, Path] = {}
    write_masks_tiff(paths["masks"], masks)
    written["masks"] = paths["masks"]
    if preview is not None:
        write_overlay_png(paths["overlay"], overlay_picture(preview, masks))
        written["overlay"] = paths["overlay"]
    write_submission_rows(paths["csv"], image_id, polygons)
    written["csv"] = paths["csv"]
    write_geojson(paths["geojson"], image_id, polygons, transform)
    written["geojson"] = paths["geojson"]
    if metrics is not None:
        write_metrics_json(paths["metrics"], metrics)
        written["metrics"] = paths["metrics"]
    return written

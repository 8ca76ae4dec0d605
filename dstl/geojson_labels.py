"""Labels as the Kaggle download ships them a second time: ``train_geojson_v3/<ImageId>/*.geojson``.

Each labelled image has a folder of GeoJSON FeatureCollections, one per *layer* (an object type of
the annotators' legend, e.g. ``001_MM_L3_RESIDENTIAL_BUILDING``, ``006_VEG_L5_GROUP_TREES``), plus
``Grid_<region>.geojson``, the image's extent. Coordinates are in the same normalised grid units as
``train_wkt_v4.csv`` (x in [0, Xmax], y in [Ymin, 0]). Files are CRLF text; a layer with no objects
in an image is simply absent from its folder.

About 30 layer names exist; ten classes are built from some of them (`LAYER_CLASSES`), the others
(pylons, masts, mines, orchards, non-crop fields, ...) belong to no class. A class's geometry is the
union of its layers' features, so touching or overlapping features merge as in the WKT file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import shapely
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, shape

from dstl.classes import CLASS_IDS
from dstl.errors import DataError
from dstl.labels import is_polygonal, to_multipolygon, union_polygons

__all__ = ["LAYER_CLASSES", "GEOJSON_DIR", "layer_files", "read_layer", "read_layers",
           "layer_parts", "layers_to_classes", "read_geojson_labels"]

#: Folder of a DSTL dataset that holds the GeoJSON labels, one sub-folder per labelled image.
GEOJSON_DIR = "train_geojson_v3"

#: Layer name -> class id (1..10), or None for a layer that belongs to no class.
#:
#: Derived from the layer names and proven against the real ``cls-stats.json`` (polygon count and
#: area fraction per image and class, computed from the real ``train_wkt_v4.csv``): with this map
#: the per-class union of the 25 training images' layers matches 248 of the 250 (image, class)
#: cells in polygon count and 248 in area within 0.2 %; every miss is class 2 (misc. structures),
#: off by one polygon or 0.3-1.1 % in area, where GeoJSON v3 and WKT v4 differ slightly
#: (tests/real/test_real_labels.py checks the cells, all 250 in a slow test; bench/real_geometry.py
#: reports them).
#: Adding any of the None layers to a class breaks counts that match otherwise (e.g. pylons or
#: satellite dishes to class 2, scrubland or orchards to class 5, dry riverbeds to class 7).
LAYER_CLASSES: Mapping[str, int | None] = MappingProxyType({
    "001_MM_L2_LARGE_BUILDING": 1,
    "001_MM_L3_RESIDENTIAL_BUILDING": 1,
    "001_MM_L3_NON_RESIDENTIAL_BUILDING": 1,
    "001_MM_L3_EXTRACTION_MINE": None,
    "001_MM_L4_BRIDGE": None,
    "001_MM_L5_MISC_SMALL_STRUCTURE": 2,
    "002_TR_L3_GOOD_ROADS": 3,
    "002_TR_L4_POOR_DIRT_CART_TRACK": 4,
    "002_TR_L6_FOOTPATH_TRAIL": 4,
    "003_VH_L4_AQUATIC_SMALL": None,
    "003_VH_L4_LARGE_VEHICLE": 9,
    "003_VH_L5_SMALL_VEHICLE": 10,
    "003_VH_L6_MOTORBIKE": 10,
    "004_UPI_L5_PYLONS": None,
    "004_UPI_L6_SATELLITE_DISHES_DISH_AERIAL": None,
    "005_VO_L6_MASTS_RADIO_TOWER": None,
    "005_VO_L7_FLAGPOLE": None,
    "006_VEG_L2_SCRUBLAND": None,
    "006_VEG_L2_WOODLAND": 5,
    "006_VEG_L3_HEDGEROWS": 5,
    "006_VEG_L5_GROUP_TREES": 5,
    "006_VEG_L5_STANDALONE_TREES": 5,
    "007_AGR_L2_CONTOUR_PLOUGHING_CROPLAND": 6,
    "007_AGR_L2_DEMARCATED_NON_CROP_FIELD": None,
    "007_AGR_L2_ORCHARD": None,
    "007_AGR_L6_ROW_CROP": 6,
    "007_AGR_L7_FARM_ANIMALS_IN_FIELD": None,
    "008_WTR_L2_STANDING_WATER": 8,
    "008_WTR_L3_DRY_RIVERBED": None,
    "008_WTR_L3_WATERWAY": 7,
})


def layer_files(folder: str | os.PathLike) -> dict[str, Path]:
    """``{layer name: path}`` of an image's label folder, sorted by name; the Grid_* extent is left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: GeoJSON label folder not found")
    return {p.name[: -len(".geojson")]: p for p in sorted(folder.glob("*.geojson"))
            if p.is_file() and not p.name.startswith("Grid_")}


def _fast_parts(path: Path, text: str) -> list | None:
    """The layer's geometries through GEOS's GeoJSON reader (~10x faster than json + shape), or
    None where it cannot be used (null geometries, anything unusual): the caller then takes the
    checked path."""
    if '"FeatureCollection"' not in text[:4096]:
        return None
    try:
        collection = shapely.from_geojson(text)
    except (GEOSException, ValueError):
        return None
    if collection is None or collection.geom_type != "GeometryCollection":
        return None
    return list(shapely.get_parts(collection))


def _checked_parts(path: Path, text: str) -> list:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {e.lineno}: malformed GeoJSON ({e.msg})") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" \
            or not isinstance(doc.get("features"), list):
        raise DataError(f"{path}: not a GeoJSON FeatureCollection")
    parts = []
    for i, feature in enumerate(doc["features"]):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not geometry:
            continue
        try:
            parts.append(shape(geometry))
        except (GEOSException, ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
            raise DataError(f"{path}: feature {i}: malformed geometry ({e})") from None
    return parts


def layer_parts(path: str | os.PathLike) -> list[MultiPolygon]:
    """One layer file's polygonal features, each repaired (`to_multipolygon`), not yet unioned.

    Features with null or non-polygonal geometry are skipped.

    Raises:
        DataError: the file is not UTF-8 JSON, not a FeatureCollection, or a geometry is malformed.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file ({e.reason})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    parts = _fast_parts(path, text)
    if parts is None:
        parts = _checked_parts(path, text)
    return [to_multipolygon(g) for g in parts if is_polygonal(g) and not g.is_empty]


def read_layer(path: str | os.PathLike) -> MultiPolygon:
    """One layer file's features as one valid MultiPolygon in grid coordinates.

    Features are repaired and unioned (`dstl.labels.union_polygons`), so overlapping or touching
    features become one polygon. Raises DataError as `layer_parts`.
    """
    return union_polygons(layer_parts(path))


def read_layers(folder: str | os.PathLike) -> dict[str, MultiPolygon]:
    """Every layer of an image's label folder: ``{layer name: MultiPolygon}`` in grid coordinates.

    Layers not in `LAYER_CLASSES` are read too (they are kept for backgrounds and figures).
    """
    return {name: read_layer(path) for name, path in layer_files(folder).items()}


def layers_to_classes(layers: Mapping[str, MultiPolygon]) -> dict[int, MultiPolygon]:
    """Union the layers of each class (`LAYER_CLASSES`): ``{class 1..10: MultiPolygon}``.

    Every class is present (empty if none of its layers is); layers of no class are ignored.
    """
    grouped: dict[int, list[MultiPolygon]] = {c: [] for c in CLASS_IDS}
    for name, geom in layers.items():
        class_id = LAYER_CLASSES.get(name)
        if class_id is not None and not geom.is_empty:
            grouped[class_id].append(geom)
    return {c: union_polygons(g) for c, g in grouped.items()}


def read_geojson_labels(folder: str | os.PathLike) -> dict[int, MultiPolygon]:
    """An image's ten classes from its GeoJSON label folder: ``{class 1..10: MultiPolygon}``, grid
    coordinates, valid. Only the layers of a class are read; each class's features (over all its
    layers) are unioned once (`dstl.labels.union_polygons`). ~0.1-0.5 s per real image."""
    grouped: dict[int, list[MultiPolygon]] = {c: [] for c in CLASS_IDS}
    for name, path in layer_files(folder).items():
        class_id = LAYER_CLASSES.get(name)
        if class_id is not None:
            grouped[class_id].extend(layer_parts(path))
    return {c: union_polygons(g) for c, g in grouped.items()}

"""Real-layout scenes: the real label geometry of a DSTL training image, pixels generated.

For a labelled image of a real DSTL folder (its ``train_geojson_v3/<id>/`` layers and its row of
``grid_sizes.csv``), `make_real_layout_image` returns a `SyntheticImage` whose labels ARE that
image's real labels (`dstl.geojson_labels.layers_to_classes`: the same polygons in the same grid
units, at the image's real grid size and real or estimated 3-band size, `dstl.real_sizes`) and
whose four products are rendered by the rule-based generator's renderer (`render`): the
generator's spectra, looks and textures, shadows, haze, noise, quantisation and product
mis-registration. Nothing of the real imagery is used.

Objects are the real layers' polygons, one object (one `Look`) per polygon:

- labelled layers (buildings, structures, roads, tracks, trees, crops, water, vehicles) draw
  with their class's looks; building roofs take their ridge from the polygon's long axis, crop
  rows run along the field's long side;
- the layers of no class make the ground varied: non-crop fields (meadow or fallow), orchards
  (crowns over grass), scrubland, extraction mines and dry riverbeds (bare soil, gravel),
  bridges (concrete), pylons, masts, dishes, boats and farm animals;
- between them, a generated ground: parcels (Voronoi cells ~100-250 m across) of meadow,
  fallow and dry grass, and gardens / yards / paved ground around buildings.

Overlaps are as the real labels have them: the masks are rasterised from the labels and the
renderer draws every labelled pixel with its highest-priority class (`render.CLASS_PRIORITY`).
Shadows are cast by buildings, trees, structures and vehicles; a non-convex caster (a wood, a
hedgerow) is swept in steps so its shadow follows its outline.

`scale` writes a reduced-size scene (same grid size and polygons, pixels `scale` times larger);
`window` a crop (row, col, height, width in full-size pixels) whose labels are the real ones
clipped to the window and moved to its origin, its grid size chosen so the ground sampling stays
the image's own.
"""

from __future__ import annotations

import copy
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, box
from shapely.geometry.base import BaseGeometry

from dstl.errors import DataError
from dstl.geojson_labels import GEOJSON_DIR, LAYER_CLASSES, layers_to_classes, read_layers
from dstl.grid import GridTransform
from dstl.labels import format_wkt, parse_wkt, read_grid_sizes, to_multipolygon
from dstl.rasterize import rasterize_classes
from dstl.real_sizes import three_band_size
from dstl.synthetic import looks
from dstl.synthetic.image import SyntheticImage
from dstl.synthetic.layout import (
    LAYER_BUILDINGS,
    LAYER_CROPS,
    LAYER_GROUND,
    LAYER_MARKINGS,
    LAYER_ROADS,
    LAYER_STRUCTURES,
    LAYER_TRACKS,
    LAYER_TREES,
    LAYER_VEHICLES,
    LAYER_WATER,
    Layout,
    SceneObject,
)
from dstl.synthetic.looks import TEXTURE_CROWNS, TEXTURE_NOISE, TEXTURE_PATCHES, Look, _mat
from dstl.synthetic.render import ProductGeometry, render_products
from dstl.synthetic.shapes import PX_PER_M
from dstl.synthetic.spectra import CALIBRATED_REFLECTANCE
from dstl.tiff import read_tiff_shape

__all__ = ["RealSource", "RealLayout", "class_rich_windows", "ID_PREFIX", "real_layout_id", "list_real_ids",
           "load_real_source", "build_real_layout", "prepare_real_layout", "make_real_layout_image"]

#: Prefix of a real-layout scene's id: ``synth_rl_6100_2_2`` is generated on the labels of 6100_2_2.
#: It starts with the rule-based scenes' ``synth_`` (so the folder is recognised as synthetic) and
#: can never be mistaken for a real id (those start with the region number).
ID_PREFIX = "synth_rl_"


def real_layout_id(real_id: str) -> str:
    """The id of the real-layout scene made on real image `real_id`, e.g. ``synth_rl_6100_2_2``."""
    return ID_PREFIX + real_id


@dataclass
class RealSource:
    """What a real-layout scene takes from the real data: geometry only.

    Attributes:
        image_id: the real id (e.g. "6100_2_2").
        xmax, ymin: its grid size (grid_sizes.csv).
        height, width: its 3-band size; `exact` says whether it is known or estimated from the
            grid size (`dstl.real_sizes.three_band_size`, within a pixel).
        a_size: (rows, cols) of its real A product when that file is present, else None.
        layers: layer name -> MultiPolygon in GRID coordinates (every layer, classes or not).
        labels: class 1..10 -> MultiPolygon in GRID coordinates (the union of its layers).
    """

    image_id: str
    xmax: float
    ymin: float
    height: int
    width: int
    exact: bool
    a_size: tuple[int, int] | None
    layers: dict[str, MultiPolygon]
    labels: dict[int, MultiPolygon]


def list_real_ids(data: str | os.PathLike) -> list[str]:
    """Sorted ids of the labelled images of a DSTL folder (the sub-folders of train_geojson_v3/).

    Raises:
        DataError: DATA has no train_geojson_v3/ folder, or it holds no image folder.
    """
    root = Path(data) / GEOJSON_DIR
    if not root.is_dir():
        raise DataError(f"{data}: no {GEOJSON_DIR}/ folder (real layouts need the real label layers)")
    ids = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not ids:
        raise DataError(f"{root}: holds no image folders")
    return ids


def load_real_source(data: str | os.PathLike, image_id: str,
                     grid_sizes: dict[str, tuple[float, float]] | None = None) -> RealSource:
    """Read one labelled image's layers, grid size and sizes from DSTL folder `data`.

    Raises:
        DataError: the image has no label folder or no row in grid_sizes.csv, or a file is malformed.
    """
    data = Path(data)
    grid = grid_sizes if grid_sizes is not None else read_grid_sizes(data / "grid_sizes.csv")
    if image_id not in grid:
        raise DataError(f"{data / 'grid_sizes.csv'}: no row for {image_id}")
    xmax, ymin = grid[image_id]
    a_path = data / "sixteen_band" / f"{image_id}_A.tif"
    a_size = read_tiff_shape(a_path, 8)[1:] if a_path.is_file() else None
    (height, width), exact = three_band_size(image_id, a_size, (xmax, ymin))
    layers = read_layers(data / GEOJSON_DIR / image_id)
    return RealSource(image_id, xmax, ymin, height, width, exact, a_size, layers, layers_to_classes(layers))


# --------------------------------------------------------------------------- layout

class RealLayout(Layout):
    """A `Layout` of real polygons; shadows and lengths follow its own pixel size.

    Attributes (besides Layout's):
        px_per_m: pixels per metre (~3.2 at full size, less for a reduced-size scene).
    """

    def __init__(self, *args, px_per_m: float = PX_PER_M, **kwargs):
        super().__init__(*args, **kwargs)
        self.px_per_m = px_per_m
        self._shadows: list | None = None

    def shadow_offset(self, height_m):
        tan = np.tan(np.radians(self.sun_elevation_deg))
        length = np.asarray(height_m, dtype=float) * self.px_per_m / tan
        sx, sy = self.sun_xy
        return -sx * length, -sy * length

    def shadows(self) -> list[tuple[BaseGeometry, float]]:
        """Shadow polygons with strengths. Nearly convex casters: hull of caster and its shifted
        copy; others (woods, hedgerows, L-shaped roofs): union of copies of the caster (outline
        simplified by 1 px) shifted in steps of <= 4 px along the shadow, so the shadow keeps the
        caster's outline. Casters excluded. Computed once per layout (rendering it again with
        other spectra reuses them)."""
        if self._shadows is None:
            self._shadows = self._cast()
        return self._shadows

    def _cast(self) -> list[tuple[BaseGeometry, float]]:
        casters = [o for o in self.objects if o.height_m > 0]
        if not casters:
            return []
        geoms = np.array([o.geom for o in casters], dtype=object)
        dx, dy = self.shadow_offset(np.array([o.height_m for o in casters]))
        convex = shapely.area(geoms) >= 0.85 * shapely.area(shapely.convex_hull(geoms))
        out = np.empty(len(geoms), dtype=object)
        idx = np.flatnonzero(convex)
        if len(idx):
            shifted = np.array([shapely.affinity.translate(g, x, y) for g, x, y in
                                zip(geoms[idx], dx[idx], dy[idx], strict=True)], dtype=object)
            out[idx] = shapely.convex_hull(shapely.union(geoms[idx], shifted))
        for i in np.flatnonzero(~convex):
            n = max(int(np.ceil(np.hypot(dx[i], dy[i]) / 4.0)), 1)
            g = shapely.make_valid(geoms[i].simplify(1.0))
            copies = [shapely.affinity.translate(g, dx[i] * k / n, dy[i] * k / n) for k in range(1, n + 1)]
            try:
                out[i] = shapely.union_all(copies)
            except GEOSException:  # floating-point overlay failed: snap-round to 1/100 px
                out[i] = shapely.union_all(copies, grid_size=0.01)
        try:
            out = shapely.difference(out, geoms)
        except GEOSException:  # one bad pair spoils the vectorised call: go one by one
            out = np.array([_minus(a, b) for a, b in zip(out, geoms, strict=True)], dtype=object)
        return [(g, o.shadow) for g, o in zip(out, casters, strict=True) if not g.is_empty]


def _minus(a: BaseGeometry, b: BaseGeometry) -> BaseGeometry:
    """a - b, robustly: floating-point overlay, else snap-rounded to 1/100 px, else on repaired
    inputs; as a last resort `a` itself (a shadow also darkening its caster's own pixels)."""
    def repaired(g: BaseGeometry) -> BaseGeometry:
        return shapely.make_valid(g).buffer(0)

    for attempt in (lambda: shapely.difference(a, b), lambda: shapely.difference(a, b, grid_size=0.01),
                    lambda: shapely.difference(repaired(a), repaired(b))):
        try:
            return attempt()
        except GEOSException:
            continue
    return a


def _axis(poly: BaseGeometry) -> float:
    """Angle (radians, pixel axes) of the long side of `poly`'s minimum rotated rectangle."""
    rect = shapely.oriented_envelope(poly)
    if rect.geom_type != "Polygon":
        return 0.0
    c = np.asarray(rect.exterior.coords)
    e1, e2 = c[1] - c[0], c[2] - c[1]
    e = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    return float(np.arctan2(e[1], e[0]))


def _scrub(rng: np.random.Generator) -> Look:
    return Look(_mat("dry_vegetation", "tree_broadleaf", "grass"), base0=rng.uniform(0.4, 0.7),
                base2=rng.uniform(0.0, 0.2), amp=0.35, bright=rng.uniform(0.85, 1.1), bamp=0.25,
                famp=0.05, texture=TEXTURE_CROWNS)


def _orchard(rng: np.random.Generator) -> Look:
    return Look(_mat("tree_broadleaf", "grass", "soil_dry"), base0=rng.uniform(0.35, 0.6),
                base2=rng.uniform(0.0, 0.15), amp=0.45, bright=rng.uniform(0.9, 1.05), bamp=0.3,
                famp=0.05, texture=TEXTURE_CROWNS)


def _bare(rng: np.random.Generator) -> Look:
    main = looks._pick(rng, {"gravel": 0.35, "soil_dry": 0.35, "dirt_compacted": 0.3})
    return Look(_mat(main, looks._pick(rng, looks.SOILS), "dry_vegetation"), base0=rng.uniform(0.6, 0.9),
                base2=rng.uniform(0.0, 0.1), amp=0.25, bright=rng.uniform(0.9, 1.2), bamp=0.08,
                famp=0.04, texture=TEXTURE_PATCHES)


def _small_thing(rng: np.random.Generator, kind: str) -> Look:
    mats = {"dish": ("paint_white", "concrete"), "mast": ("car_silver", "grass"),
            "animal": (looks._pick(rng, {"paint_white": 0.4, "soil_dry": 0.3, "car_dark": 0.3}), "grass"),
            "bridge": ("concrete", "asphalt_old")}[kind]
    return Look(_mat(*mats), base0=rng.uniform(0.6, 0.9), bright=rng.uniform(0.85, 1.1), famp=0.05,
                amp=0.1, texture=TEXTURE_NOISE)


def _gardens(rng: np.random.Generator) -> Look:
    """Ground around buildings: lawns and gardens with patches of yards, paths and car parks (unlabelled)."""
    paved = looks._pick(rng, {"asphalt_old": 0.4, "concrete": 0.3, "gravel": 0.3})
    return Look(_mat("grass", paved, "soil_dry"), base0=rng.uniform(0.45, 0.75), base2=rng.uniform(0.0, 0.12),
                amp=0.4, bright=rng.uniform(0.9, 1.05), bamp=0.06, famp=0.05, texture=TEXTURE_PATCHES)


def _parcel_look(rng: np.random.Generator) -> Look:
    kind = looks._pick(rng, {"meadow": 0.55, "fallow": 0.25, "dry": 0.2})
    if kind == "meadow":
        return looks.meadow(rng)
    if kind == "fallow":
        return looks.fallow(rng)
    return Look(_mat("dry_vegetation", "grass", looks._pick(rng, looks.SOILS)), base0=rng.uniform(0.5, 0.85),
                base2=rng.uniform(0.0, 0.2), amp=0.25, bright=rng.uniform(0.9, 1.1), bamp=0.06, famp=0.04,
                texture=TEXTURE_PATCHES)


def _ground(rng: np.random.Generator, height: int, width: int, px_per_m: float) -> list[SceneObject]:
    """Voronoi parcels (~100-250 m) of meadow, fallow and dry grass covering the image."""
    cell = rng.uniform(100, 250) * px_per_m
    n = max(int(height * width / cell**2), 4)
    pts = shapely.points(np.stack([rng.uniform(0, width, n), rng.uniform(0, height, n)], 1))
    frame = box(0, 0, width, height)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame))
    cells = shapely.intersection(cells, frame)
    return [SceneObject(0, c, _parcel_look(rng), LAYER_GROUND) for c in cells if c.area > 0]


#: Unlabelled layer -> (look maker, drawing layer, caster height range in metres or None).
_NO_CLASS_LAYERS = {
    "007_AGR_L2_DEMARCATED_NON_CROP_FIELD": (_parcel_look, LAYER_GROUND, None),
    "007_AGR_L2_ORCHARD": (_orchard, LAYER_CROPS, (2.5, 4.5)),
    "006_VEG_L2_SCRUBLAND": (_scrub, LAYER_CROPS, None),
    "001_MM_L3_EXTRACTION_MINE": (_bare, LAYER_CROPS, None),
    "008_WTR_L3_DRY_RIVERBED": (_bare, LAYER_CROPS, None),
    "001_MM_L4_BRIDGE": (lambda r: _small_thing(r, "bridge"), LAYER_MARKINGS, None),
    "004_UPI_L5_PYLONS": (lambda r: looks.structure(r, "pylon"), LAYER_STRUCTURES, (15.0, 30.0)),
    "004_UPI_L6_SATELLITE_DISHES_DISH_AERIAL": (lambda r: _small_thing(r, "dish"), LAYER_STRUCTURES,
                                                (1.0, 3.0)),
    "005_VO_L6_MASTS_RADIO_TOWER": (lambda r: _small_thing(r, "mast"), LAYER_STRUCTURES, (10.0, 30.0)),
    "005_VO_L7_FLAGPOLE": (lambda r: _small_thing(r, "mast"), LAYER_STRUCTURES, (5.0, 10.0)),
    "003_VH_L4_AQUATIC_SMALL": (lambda r: looks.vehicle(r, False), LAYER_VEHICLES, None),
    "007_AGR_L7_FARM_ANIMALS_IN_FIELD": (lambda r: _small_thing(r, "animal"), LAYER_VEHICLES, None),
}

#: Tree layers -> caster height range (m).
_TREE_HEIGHTS = {"006_VEG_L2_WOODLAND": (12.0, 22.0), "006_VEG_L5_GROUP_TREES": (8.0, 18.0),
                 "006_VEG_L5_STANDALONE_TREES": (5.0, 14.0), "006_VEG_L3_HEDGEROWS": (2.5, 6.0)}


def _class_object(rng: np.random.Generator, cls: int, layer: str, poly: BaseGeometry, layout_sun: tuple,
                  px_per_m: float) -> list[SceneObject]:
    """The object(s) drawing one labelled polygon (pixel coordinates)."""
    if cls == 6:
        rows = _axis(poly) + (np.pi / 2 if rng.random() < 0.3 else 0.0)
        return [SceneObject(6, poly, looks.crop(rng, rows), LAYER_CROPS)]
    if cls == 5:
        lo, hi = _TREE_HEIGHTS.get(layer, (6.0, 15.0))
        conifer = 0.4 if layer == "006_VEG_L2_WOODLAND" else 0.15
        return [SceneObject(5, poly, looks.trees(rng, conifer), LAYER_TREES, rng.uniform(lo, hi), 0.85)]
    if cls in (7, 8):
        body = looks.water(rng)
        inset = min(rng.uniform(0.5, 2.0) * px_per_m, 0.25 * np.sqrt(poly.area))
        inner = poly.buffer(-inset, quad_segs=2)
        if inner.is_empty:
            return [SceneObject(cls, poly, body, LAYER_WATER)]
        return [SceneObject(cls, poly, looks.shore(rng, body), LAYER_WATER),
                SceneObject(cls, inner, body, LAYER_WATER)]
    if cls == 4:
        return [SceneObject(4, poly, looks.track_surface(rng), LAYER_TRACKS)]
    if cls == 3:
        return [SceneObject(3, poly, looks.road_surface(rng), LAYER_ROADS)]
    if cls == 1:
        barn = layer != "001_MM_L3_RESIDENTIAL_BUILDING"
        c = poly.centroid
        roof = looks.roof(rng, (c.x, c.y), _axis(poly), layout_sun, barn)
        height = rng.uniform(6, 14) if barn else rng.uniform(5, 9)
        return [SceneObject(1, poly, roof, LAYER_BUILDINGS, height)]
    if cls == 2:
        long_thin = poly.length ** 2 / (4 * max(poly.area, 1e-9)) > 6
        kind = "wall" if long_thin else looks._pick(rng, {"tank": 0.5, "wall": 0.5})
        h = rng.uniform(1.2, 2.5) if kind == "wall" else rng.uniform(2, 8)
        return [SceneObject(2, poly, looks.structure(rng, kind), LAYER_STRUCTURES, h, 0.8)]
    large = cls == 9
    return [SceneObject(cls, poly, looks.vehicle(rng, large), LAYER_VEHICLES,
                        rng.uniform(2.5, 4) if large else rng.uniform(1.4, 1.8), 0.9)]


def build_real_layout(rng: np.random.Generator, layers: dict[str, BaseGeometry], height: int, width: int,
                      px_per_m: float = PX_PER_M) -> RealLayout:
    """A `RealLayout` of `height` x `width` px from layers given in PIXEL coordinates (see module doc)."""
    az, el = rng.uniform(110, 250), rng.uniform(35, 65)
    layout = RealLayout(height, width, [], looks.meadow(rng), az, el, px_per_m=px_per_m)
    objects = _ground(rng, height, width, px_per_m)
    buildings = [g for name, g in layers.items() if LAYER_CLASSES.get(name) == 1 and not g.is_empty]
    if buildings:
        # Gardens, yards and paved ground within ~10 m of buildings, in pieces of their own look.
        parts = np.concatenate([shapely.get_parts(g) for g in buildings])
        # Buffer each footprint, then union (10x faster than buffering the union, same area).
        around = shapely.union_all(shapely.buffer(parts, 10 * px_per_m, quad_segs=2)).simplify(px_per_m)
        for part in shapely.get_parts(shapely.clip_by_rect(around, 0, 0, width, height)):
            if part.geom_type == "Polygon" and part.area > 0:
                objects.append(SceneObject(0, part, _gardens(rng), LAYER_GROUND))
    for name in sorted(layers):
        geom = layers[name]
        if geom.is_empty:
            continue
        cls = LAYER_CLASSES.get(name)
        polys = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > 0]
        if cls is None:
            if name not in _NO_CLASS_LAYERS:
                continue
            make, layer, heights = _NO_CLASS_LAYERS[name]
            for p in polys:
                h = rng.uniform(*heights) if heights else 0.0
                objects.append(SceneObject(0, p, make(rng), layer, h, 0.5))
            continue
        for p in polys:
            objects.extend(_class_object(rng, cls, name, p, layout.sun_xy, px_per_m))
    layout.objects.extend(objects)
    layout.notes = {"objects": len(objects), "layers": sorted(n for n, g in layers.items() if not g.is_empty)}
    return layout


# --------------------------------------------------------------------------- image

def _window_frame(source: RealSource, window: tuple[int, int, int, int] | None
                  ) -> tuple[GridTransform, float, float, tuple[float, float] | None]:
    """(full-size transform, grid x0, grid y0 of the window's origin, window grid size or None)."""
    full = GridTransform(source.height, source.width, source.xmax, source.ymin)
    if window is None:
        return full, 0.0, 0.0, None
    r0, c0, h, w = window
    if not (0 <= r0 and 0 <= c0 and h >= 8 and w >= 8 and r0 + h <= source.height and c0 + w <= source.width):
        raise DataError(f"window {r0},{c0},{h},{w} (row, col, height, width) is not inside "
                        f"{source.image_id}'s {source.height}x{source.width} px")
    xmax = (w * w / (w + 1)) / full.x_scale
    ymin = (h * h / (h + 1)) / full.y_scale
    return full, c0 / full.x_scale, r0 / full.y_scale, (xmax, ymin)


def window_labels(source: RealSource, window: tuple[int, int, int, int] | None) -> tuple[dict, float, float]:
    """(labels, xmax, ymin) of the scene: the real labels, or for a window, the real labels clipped
    to it and moved to its origin (GRID coordinates), with the window's grid size."""
    full, gx0, gy0, grid = _window_frame(source, window)
    if grid is None:
        return dict(source.labels), source.xmax, source.ymin
    r0, c0, h, w = window
    x1, y1 = (c0 + w) / full.x_scale, (r0 + h) / full.y_scale
    out = {}
    for cls, g in source.labels.items():
        clipped = shapely.clip_by_rect(g, gx0, y1, x1, gy0) if not g.is_empty else g
        clipped = shapely.transform(clipped, lambda xy: xy - (gx0, gy0))
        out[cls] = to_multipolygon(clipped)
    return out, grid[0], grid[1]


def _product_geometry(rng: np.random.Generator, source: RealSource, H: int, W: int, *, exact_a: bool,
                      scale: float) -> ProductGeometry:
    """M at ~1/4 of the 3-band size (the real 6010_1_2 / 6120_2_2 ratios: round(H / 4)), A at the
    real A product's size for a full image (else the same ratio as the real A, or 1/25 without
    it); mis-registration up to ~2.5 px (M) and ~8 px (A) of the full-size grid."""
    if source.a_size is not None:
        a_size = source.a_size if exact_a else (max(int(round(H * source.a_size[0] / source.height)), 2),
                                                max(int(round(W * source.a_size[1] / source.width)), 2))
    else:
        a_size = (max(int(round(H / 25)), 2), max(int(round(W / 25)), 2))
    m_size = (max(int(round(H / 4)), 2), max(int(round(W / 4)), 2))
    shifts = rng.uniform(-1, 1, 4) * (2.5, 2.5, 8.0, 8.0) * scale
    return ProductGeometry(H, W, m_size, a_size, (float(shifts[0]), float(shifts[1])),
                           (float(shifts[2]), float(shifts[3])))


def as_written(geom: BaseGeometry) -> MultiPolygon:
    """`geom` exactly as train_wkt_v4.csv will hold it: formatted with 8 decimals and parsed back,
    repeated until stable (snapping can split a polygon at a pinch point once more on a second
    pass), so that formatting the result again writes the same polygons."""
    g = parse_wkt(format_wkt(geom))[0]
    for _ in range(4):
        again = parse_wkt(format_wkt(g))[0]
        if shapely.normalize(again).equals_exact(shapely.normalize(g), 0):
            break
        g = again
    return g


def class_rich_windows(source: RealSource, size: int, count: int) -> list[tuple[int, int, int, int]]:
    """`count` non-overlapping size x size windows of a real image showing most classes (deterministic).

    Windows on a size/2 stride are scored on the labels rasterised at 1/8 resolution: classes present
    first, then the pixels of the rarer classes (all but trees and crops), greedily.
    """

    f = 8
    h, w = source.height // f, source.width // f
    masks = rasterize_classes(source.labels, GridTransform(h, w, source.xmax, source.ymin))
    s, step = size // f, size // (2 * f)
    cands = []
    for r in range(0, h - s + 1, step):
        for c in range(0, w - s + 1, step):
            counts = masks[:, r:r + s, c:c + s].reshape(10, -1).sum(axis=1)
            rare = counts[[0, 1, 2, 3, 6, 7, 8, 9]].sum()
            cands.append((-(counts > 0).sum(), -int(rare), r, c))
    chosen: list[tuple[int, int]] = []
    for _, _, r, c in sorted(cands):
        if all(abs(r - r2) >= s or abs(c - c2) >= s for r2, c2 in chosen):
            chosen.append((r, c))
        if len(chosen) == count:
            break
    return [(r * f, c * f, size, size) for r, c in chosen]


def _scene_seed(seed: int, image_id: str, window, scale: float) -> np.random.SeedSequence:
    key = f"{image_id}|{window}|{scale:.6g}".encode()
    return np.random.SeedSequence([int(seed), 12, zlib.crc32(key)])


@dataclass
class PreparedScene:
    """Everything of a real-layout scene but its pixels (`prepare_real_layout`); `render` makes them."""

    image_id: str
    xmax: float
    ymin: float
    labels: dict[int, MultiPolygon]
    masks: np.ndarray
    layout: RealLayout
    geometry: ProductGeometry
    rng: np.random.Generator

    def render(self, reflectance: np.ndarray | None = None, lap=None) -> SyntheticImage:
        """The scene's image; `reflectance` (endmembers x 16) replaces the calibrated table
        (`spectra.CALIBRATED_REFLECTANCE`). Rendering again gives the same pixels for the same table."""
        rng = copy.deepcopy(self.rng)
        table = CALIBRATED_REFLECTANCE if reflectance is None else reflectance
        products = render_products(rng, self.layout, self.masks, self.geometry, lap, reflectance=table)
        return SyntheticImage(self.image_id, products, self.xmax, self.ymin, self.labels, self.masks,
                              self.layout, self.geometry)


def prepare_real_layout(source: RealSource, seed: int = 0, *, scale: float = 1.0,
                        window: tuple[int, int, int, int] | None = None,
                        timings: dict | None = None) -> PreparedScene:
    """Labels, masks, layout and product geometry of a real-layout scene (see `make_real_layout_image`)."""
    from dstl.synthetic.image import _Stopwatch

    if not 0 < scale <= 1:
        raise DataError(f"scale must be in (0, 1], got {scale}")
    clock = _Stopwatch(timings)
    rng = np.random.default_rng(_scene_seed(seed, source.image_id, window, scale))
    labels, xmax, ymin = window_labels(source, window)
    _, gx0, gy0, _ = _window_frame(source, window)
    h0, w0 = (source.height, source.width) if window is None else (window[2], window[3])
    H, W = max(int(round(h0 * scale)), 8), max(int(round(w0 * scale)), 8)
    transform = GridTransform(H, W, xmax, ymin)
    labels = {c: as_written(g) for c, g in labels.items()}
    clock.lap("labels")
    # Layers to pixels: the same translation and scale as the labels.
    px = {}
    x1, y1 = gx0 + W / transform.x_scale, gy0 + H / transform.y_scale
    for name, g in source.layers.items():
        if g.is_empty:
            continue
        if window is not None:
            g = shapely.clip_by_rect(g, gx0, y1, x1, gy0)
            if g.is_empty:
                continue
            g = shapely.transform(g, lambda xy: xy - (gx0, gy0))
        px[name] = transform.to_pixels(g)
    layout = build_real_layout(rng, px, H, W, PX_PER_M * scale)
    clock.lap("layout")
    masks = rasterize_classes(labels, transform)
    clock.lap("masks")
    geometry = _product_geometry(rng, source, H, W, exact_a=window is None and scale == 1, scale=scale)
    return PreparedScene(real_layout_id(source.image_id), xmax, ymin, labels, masks, layout, geometry, rng)


def make_real_layout_image(source: RealSource, seed: int = 0, *, scale: float = 1.0,
                           window: tuple[int, int, int, int] | None = None,
                           timings: dict | None = None) -> SyntheticImage:
    """Generate the real-layout scene of `source` (see the module docstring); deterministic.

    Args:
        source: `load_real_source`'s result.
        seed: any non-negative integer; the same (seed, image, window, scale) gives the same arrays.
        scale: pixel size factor, 0 < scale <= 1 (0.25: a quarter of the rows and columns).
        window: (row, col, height, width) in full-size 3-band pixels, or None for the whole image.
        timings: optional dict receiving (wall, cpu) seconds per stage.

    Returns:
        A SyntheticImage with id ``synth_rl_<real id>``; labels in grid coordinates as written
        (8 decimals), masks rasterised from them; spectra with the SWIR calibrated on the real
        A products (`spectra.CALIBRATED_REFLECTANCE`).
    """
    from dstl.synthetic.image import _Stopwatch

    prepared = prepare_real_layout(source, seed, scale=scale, window=window, timings=timings)
    return prepared.render(lap=_Stopwatch(timings).lap if timings is not None else None)

"""Where things are in a synthetic scene: a rural/village landscape laid out as polygons.

`build_layout(rng, height, width)` returns a `Layout`: a list of `SceneObject`s (class id,
polygon in PIXEL coordinates, `Look`, drawing layer, height above ground) for an image of
height x width pixels at ~0.31 m/px, plus the sun's position. Sizes are real-world sizes
converted with `shapes.m` (metres -> pixels); counts of compact objects scale with the image's
area, line networks with its side, relative to a full DSTL scene of ~3350 x 3400 px (~1 km²).

The landscape, bottom to top (`LAYER_*`; a higher layer hides what is under it, in the pixels
and in the labels):

- a lattice of field parcels (jittered, some split) used as crops, meadow, fallow, woodland,
  orchard or village gardens; hedgerows (trees) along some parcel edges;
- woods, tree clumps and single trees, with shadows;
- waterways: meandering rivers, narrow winding streams, straight canals (often with a towpath
  track) and field ditches — long and thin; standing water: ponds, lakes and reservoirs —
  compact. Both are drawn with the same water sampler (`looks.water`), so only shape tells them
  apart;
- tracks (2.4-4.2 m wide, winding or along field edges, some with a grassy centre strip) and
  roads (3.8-8.5 m wide, smooth and long, village streets, lane markings) from one pool of
  surfacing materials;
- buildings (rectangles and L-shapes, gable or flat roofs, 5-12 m high) in villages and
  farmsteads, with car parks, yards and drives (unlabelled paved ground);
- misc. structures, rare: silos and tanks, walls and fences, power-line pylons;
- vehicles, tiny and rare: cars (~4.5 x 1.8 m, ~15 x 6 px) and lorries/tractors on roads,
  car parks, drives and farm yards — drawn over roads, whose labels keep them (classes overlap).
"""

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from dstl.synthetic import looks
from dstl.synthetic.looks import Look
from dstl.synthetic.shapes import (
    blobs,
    boundary_point,
    cast_shadows,
    chaikin,
    dashes,
    gentle_curve,
    line_buffer,
    m,
    rectangles,
    sample_along,
    wander,
)

LAYER_GROUND = 1
LAYER_CROPS = 2
LAYER_TREES = 3
LAYER_WATER = 4
LAYER_TRACKS = 5
LAYER_ROADS = 6
LAYER_MARKINGS = 7
LAYER_BUILDINGS = 8
LAYER_STRUCTURES = 9
LAYER_VEHICLES = 10

#: Layers that do not hide what lies under them in the labels: a vehicle on a road is both
#: vehicle and road; road markings are part of the road they are painted on.
SEE_THROUGH_LAYERS = frozenset({LAYER_MARKINGS, LAYER_VEHICLES})

#: Precision (px) of the overlay operations that cut labels (differences). GEOS's
#: floating-point overlay can silently return a wrong difference for nearly coincident rings
#: (seen: a tree clump left inside the crops label); snap-rounding to 1/1000 px is robust and far
#: below what matters. Plain unions stay floating-point: they are correct and 3x faster.
GRID = 1e-3

#: Side of a full-size DSTL scene in pixels (area and length scaling of object counts).
FULL_SCENE_PX = (3350, 3400)


@dataclass
class SceneObject:
    """One drawable object. `cls` is the DSTL class id (0: unlabelled ground); `geom` is in
    pixel coordinates; objects with `height_m` > 0 cast a shadow of strength `shadow`."""

    cls: int
    geom: BaseGeometry
    look: Look
    layer: int
    height_m: float = 0.0
    shadow: float = 1.0


@dataclass
class Layout:
    """A scene's objects and sun. Azimuth: degrees clockwise from north (up); elevation: degrees.
    `notes`: a summary (village or not, numbers of roads, tracks and water bodies)."""

    height: int
    width: int
    objects: list[SceneObject]
    background: Look
    sun_azimuth_deg: float
    sun_elevation_deg: float
    notes: dict = field(default_factory=dict)

    @property
    def sun_xy(self) -> tuple[float, float]:
        """Unit vector towards the sun in pixel axes (x right, y down)."""
        az = np.radians(self.sun_azimuth_deg)
        return float(np.sin(az)), float(-np.cos(az))

    def shadow_offset(self, height_m: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dx, dy) px from an object's foot to the tip of its shadow on flat ground."""
        length = m(np.asarray(height_m, dtype=float)) / np.tan(np.radians(self.sun_elevation_deg))
        sx, sy = self.sun_xy
        return -sx * length, -sy * length

    def shadows(self) -> list[tuple[BaseGeometry, float]]:
        """Shadow polygons (pixel coordinates) with their strengths (0..1), casters excluded."""
        casters = [o for o in self.objects if o.height_m > 0]
        if not casters:
            return []
        geoms = np.array([o.geom for o in casters], dtype=object)
        dx, dy = self.shadow_offset(np.array([o.height_m for o in casters]))
        out = cast_shadows(geoms, dx, dy)
        return [(g, o.shadow) for g, o in zip(out, casters, strict=True) if not g.is_empty]

    def class_geometries(self) -> dict[int, BaseGeometry]:
        """The labels: per class 1..10, the union of its objects minus what higher layers hide.

        Pixel coordinates, clipped to the image, valid; classes without objects are absent.
        """
        by_layer: dict[int, list[SceneObject]] = defaultdict(list)
        for o in self.objects:
            by_layer[o.layer].append(o)
        layers = sorted(by_layer, reverse=True)
        labelled = [layer for layer in layers if any(o.cls for o in by_layer[layer])]
        occluder: BaseGeometry | None = None
        parts: dict[int, list[BaseGeometry]] = defaultdict(list)
        lowest = labelled[-1] if labelled else None
        for layer in layers:
            if lowest is None or layer < lowest:
                break  # unlabelled ground below every labelled layer: nothing to cut from
            objs = by_layer[layer]
            unions = {cls: _union([o.geom for o in objs if o.cls == cls])
                      for cls in sorted({o.cls for o in objs})}
            for cls, u in unions.items():
                if cls:
                    parts[cls].append(u.difference(occluder, grid_size=GRID) if occluder is not None else u)
            if layer not in SEE_THROUGH_LAYERS and layer > lowest:
                layer_union = _union(list(unions.values()))
                occluder = layer_union if occluder is None else occluder.union(layer_union)
        frame = box(0, 0, self.width, self.height)
        out = {}
        for cls, geoms in parts.items():
            g = _union(geoms, GRID)
            if not frame.contains(g):
                clipped = shapely.clip_by_rect(g, 0, 0, self.width, self.height)  # fast, no overlay
                g = clipped if clipped.is_valid else g.intersection(frame, grid_size=GRID)
            g = shapely.make_valid(g) if not g.is_valid else g
            polys = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and p.area > 0]
            if polys:
                out[cls] = MultiPolygon(polys) if len(polys) > 1 else polys[0]
        return out


def _union(geoms: list[BaseGeometry], grid_size: float | None = None) -> BaseGeometry:
    """Union of valid polygons (a single one is returned as is: unioning it costs time, changes nothing)."""
    return geoms[0] if len(geoms) == 1 else shapely.union_all(geoms, grid_size=grid_size)


def _poisson(rng: np.random.Generator, mean: float) -> int:
    return int(rng.poisson(max(mean, 0.0)))


class _Builder:
    """Builds one landscape; methods add objects in dependency order (see `build_layout`)."""

    def __init__(self, rng: np.random.Generator, height: int, width: int):
        self.rng = rng
        self.H, self.W = height, width
        self.area_f = height * width / (FULL_SCENE_PX[0] * FULL_SCENE_PX[1])
        self.len_f = float(np.sqrt(self.area_f))
        self.margin = m(40)
        self.frame = box(-self.margin, -self.margin, width + self.margin, height + self.margin)
        self.objects: list[SceneObject] = []
        self.roads: list[tuple[LineString, float, str]] = []   # centreline, width px, kind
        self.tracks: list[tuple[LineString, float]] = []
        self.blocked: list[BaseGeometry] = []   # footprints later objects must avoid
        self.buildings: list[BaseGeometry] = []
        self.vehicles: list[BaseGeometry] = []
        self.water_polys: list[BaseGeometry] = []  # every water body, for avoidance
        self.farm_sites: list[np.ndarray] = []     # minor-road ends where a farm may stand
        az, el = rng.uniform(110, 250), rng.uniform(25, 60)
        self.layout = Layout(height, width, self.objects, looks.meadow(rng), az, el)
        self.sun_xy = self.layout.sun_xy

    # ---------------------------------------------------------------- helpers
    def add(self, cls: int, geom: BaseGeometry, look: Look, layer: int, height_m: float = 0.0,
            shadow: float = 1.0) -> None:
        if geom is None or geom.is_empty:
            return
        x0, y0, x1, y1 = geom.bounds
        if x0 < -self.margin or y0 < -self.margin or x1 > self.W + self.margin or y1 > self.H + self.margin:
            geom = geom.intersection(self.frame)
            if geom.is_empty:
                return
        if cls == 5:
            # Canopy outlines from many unioned blobs carry far more vertices than 0.31 m pixels
            # can show; thin them (labels, rasterising and WKT all get cheaper).
            geom = geom.simplify(0.75)
        polys = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area >= 1.0]
        if not polys:
            return
        geom = polys[0] if len(polys) == 1 else MultiPolygon(polys)
        self.objects.append(SceneObject(cls, geom, look, layer, height_m, shadow))

    def inside(self, pts: np.ndarray, pad: float = 0.0) -> np.ndarray:
        pts = np.atleast_2d(pts)
        return ((pts[:, 0] >= -pad) & (pts[:, 0] <= self.W + pad)
                & (pts[:, 1] >= -pad) & (pts[:, 1] <= self.H + pad))

    def random_point(self, pad: float = 0.0) -> np.ndarray:
        return np.array([self.rng.uniform(pad, max(self.W - pad, pad + 1)),
                         self.rng.uniform(pad, max(self.H - pad, pad + 1))])

    def free(self, geom: BaseGeometry, extra: list[BaseGeometry] | None = None) -> bool:
        """True if `geom` touches nothing in `blocked` (or `extra`)."""
        others = self.blocked + (extra or [])
        if not others:
            return True
        return not bool(shapely.intersects(np.array(others, dtype=object), geom).any())

    # ---------------------------------------------------------------- fields
    def parcels(self) -> None:
        rng = self.rng
        self.angle = rng.uniform(0, np.pi / 2)
        a, b = m(rng.uniform(110, 260)), m(rng.uniform(90, 220))
        u = np.array([np.cos(self.angle), np.sin(self.angle)])
        v = np.array([-u[1], u[0]])
        c = np.array([self.W / 2, self.H / 2])
        reach = np.hypot(self.W, self.H) / 2 + self.margin + max(a, b)
        nu, nv = int(np.ceil(2 * reach / a)) + 1, int(np.ceil(2 * reach / b)) + 1
        i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
        pts = (c + (i[..., None] * a - reach) * u + (j[..., None] * b - reach) * v
               + rng.normal(0, 0.1 * min(a, b), (nu, nv, 2)))
        quads = []
        for ii in range(nu - 1):
            for jj in range(nv - 1):
                q = [pts[ii, jj], pts[ii + 1, jj], pts[ii + 1, jj + 1], pts[ii, jj + 1]]
                if rng.random() < 0.3:  # split a field in two, across its longer side
                    t = rng.uniform(0.3, 0.7)
                    if rng.random() < 0.5:
                        p, r = q[0] + t * (q[1] - q[0]), q[3] + t * (q[2] - q[3])
                        quads += [[q[0], p, r, q[3]], [p, q[1], q[2], r]]
                    else:
                        p, r = q[0] + t * (q[3] - q[0]), q[1] + t * (q[2] - q[1])
                        quads += [[q[0], q[1], r, p], [p, r, q[2], q[3]]]
                else:
                    quads.append(q)
        polys = shapely.polygons(np.array([q + [q[0]] for q in quads]))
        keep = shapely.intersects(polys, self.frame)
        self.parcel_polys = [p for p in polys[keep] if p.is_valid]
        edges = [LineString([pts[ii, jj], pts[ii + 1, jj]]) for ii in range(nu - 1) for jj in range(nv)]
        edges += [LineString([pts[ii, jj], pts[ii, jj + 1]]) for ii in range(nu) for jj in range(nv - 1)]
        self.edges = [e for e in edges if e.intersects(self.frame)]

        self.village = None
        if rng.random() < 0.55:
            self.village = (self.random_point(0.15 * min(self.W, self.H)), m(rng.uniform(100, 250)))
        self.uses = []
        for p in self.parcel_polys:
            cen = np.array(p.centroid.coords[0])
            if self.village is not None and np.hypot(*(cen - self.village[0])) < self.village[1] + 0.3 * a:
                use = "village"
            else:
                use = ["crop", "meadow", "woodland", "fallow", "orchard"][
                    int(rng.choice(5, p=[0.42, 0.3, 0.1, 0.14, 0.04]))]
            self.uses.append(use)

    def fill_parcels(self) -> None:
        rng = self.rng
        for poly, use in zip(self.parcel_polys, self.uses, strict=True):
            if use == "crop":
                # Rows usually follow one of the field's sides.
                angle = self.angle + (np.pi / 2 if rng.random() < 0.5 else 0.0) + rng.normal(0, 0.05)
                self.add(6, poly, looks.crop(rng, angle), LAYER_CROPS)
            elif use == "fallow":
                self.add(0, poly, looks.fallow(rng), LAYER_GROUND)
            elif use == "woodland":
                self.add(0, poly, looks.meadow(rng), LAYER_GROUND)
                self.woodland(poly)
            elif use == "orchard":
                self.add(0, poly, looks.meadow(rng), LAYER_GROUND)
                self.orchard(poly)
            else:  # meadow, village gardens
                self.add(0, poly, looks.meadow(rng), LAYER_GROUND)

    # ---------------------------------------------------------------- trees
    def woodland(self, parcel: Polygon) -> None:
        rng = self.rng
        wood = parcel.buffer(-m(rng.uniform(0, 6)), quad_segs=2)
        if wood.is_empty:
            return
        edge = wood.exterior if isinstance(wood, Polygon) else wood.boundary
        n = max(int(edge.length / m(12)), 3)
        pts = shapely.get_coordinates(shapely.line_interpolate_point(edge, np.linspace(0, edge.length, n)))
        radii = m(rng.uniform(3, 9, n))
        bumps = blobs(rng, pts, radii, roughness=0.2, vertices=10)
        out = rng.random(n) < 0.5
        wood = shapely.union_all([wood, *bumps[out]]).difference(shapely.union_all(bumps[~out]))
        if rng.random() < 0.5:  # a clearing
            cen = np.array(parcel.centroid.coords[0])
            wood = wood.difference(blobs(rng, cen[None], [m(rng.uniform(8, 25))])[0])
        self.add(5, wood, looks.trees(rng, conifer_share=0.4), LAYER_TREES, rng.uniform(12, 22), 0.9)

    def orchard(self, parcel: Polygon) -> None:
        rng = self.rng
        spacing = m(rng.uniform(5, 8))
        minx, miny, maxx, maxy = parcel.bounds
        xs, ys = np.meshgrid(np.arange(minx, maxx, spacing), np.arange(miny, maxy, spacing))
        pts = np.stack([xs.ravel(), ys.ravel()], 1) + rng.normal(0, spacing * 0.05, (xs.size, 2))
        inner = parcel.buffer(-spacing)
        pts = pts[shapely.contains_xy(inner, pts[:, 0], pts[:, 1])] if not inner.is_empty else pts[:0]
        pts = pts[self.inside(pts, self.margin)]
        if len(pts) == 0:
            return
        crowns = blobs(rng, pts, m(rng.uniform(1.5, 2.8, len(pts))), roughness=0.1, vertices=12)
        look = looks.trees(rng, conifer_share=0.0)
        self.add(5, shapely.union_all(crowns), look, LAYER_TREES, rng.uniform(3, 5), 0.85)

    def hedgerows(self) -> None:
        rng = self.rng
        for e in self.edges:
            if rng.random() > 0.35:
                continue
            mid = np.array(e.interpolate(0.5, normalized=True).coords[0])
            if self.village is not None and np.hypot(*(mid - self.village[0])) < self.village[1]:
                continue
            width = m(rng.uniform(2, 5))
            pieces = dashes(e, m(rng.uniform(25, 90)), m(rng.uniform(3, 15)), width,
                            offset=m(rng.uniform(0, 10)))
            if not pieces:
                continue
            hedge = shapely.union_all(pieces).buffer(m(0.8), quad_segs=2)
            n = max(int(e.length / m(30)), 1)
            trees_at = rng.random(n) < 0.3
            if trees_at.any():
                pts = shapely.get_coordinates(shapely.line_interpolate_point(
                    e, rng.uniform(0, e.length, int(trees_at.sum()))))
                hedge = shapely.union_all([hedge, *blobs(rng, pts, m(rng.uniform(3, 6, len(pts))))])
            self.add(5, hedge, looks.trees(rng, 0.1), LAYER_TREES, rng.uniform(2.5, 6), 0.8)

    def scattered_trees(self) -> None:
        rng = self.rng
        n = _poisson(rng, 12 * self.area_f)
        if n:
            pts = np.stack([rng.uniform(0, self.W, n), rng.uniform(0, self.H, n)], 1)
            radii = m(np.clip(rng.lognormal(np.log(7), 0.5, n), 3, 25))
            for g in blobs(rng, pts, radii, elongation=rng.uniform(1, 2.5, n), roughness=0.2):
                self.add(5, g, looks.trees(rng), LAYER_TREES, rng.uniform(8, 18), 0.9)
        n = _poisson(rng, 35 * self.area_f)
        if n:
            pts = np.stack([rng.uniform(0, self.W, n), rng.uniform(0, self.H, n)], 1)
            for g in blobs(rng, pts, m(rng.uniform(2, 5, n)), roughness=0.1, vertices=16):
                self.add(5, g, looks.trees(rng), LAYER_TREES, rng.uniform(6, 15), 0.85)

    # ---------------------------------------------------------------- roads and tracks
    def _add_road(self, pts: np.ndarray, width: float, kind: str, round_end: bool = False) -> None:
        rng = self.rng
        line = LineString(pts)
        poly = line_buffer(pts, width, flat=not round_end)
        surface = looks.road_surface(rng)
        self.add(3, poly, surface, LAYER_ROADS)
        self.roads.append((line, width, kind))
        self.blocked.append(poly.buffer(m(1.5), quad_segs=2))
        if kind == "main" and width > m(5.8) and rng.random() < 0.6:
            paint_w = m(rng.uniform(0.3, 0.45))
            marks = dashes(line, m(rng.uniform(3, 6)), m(rng.uniform(5, 9)), paint_w)
            if rng.random() < 0.5:
                inset = width / 2 - m(0.5)
                for side in (-1, 1):
                    edge_line = line.offset_curve(side * inset)
                    if not edge_line.is_empty and edge_line.geom_type == "LineString":
                        marks.append(edge_line.buffer(paint_w / 2, cap_style="flat"))
            if marks:
                geom = shapely.union_all(marks).intersection(poly)
                self.add(3, geom, looks.marking(rng, surface), LAYER_MARKINGS)

    def roads_network(self) -> None:
        rng = self.rng
        n_main = int(rng.random() < 0.85) + _poisson(rng, 0.6 * self.len_f)
        if self.village is not None:
            n_main = max(n_main, 1)
        for k in range(n_main):
            s1 = int(rng.integers(4))
            s2 = (s1 + 2) % 4 if rng.random() < 0.6 else (s1 + int(rng.choice([1, 3]))) % 4
            a = boundary_point(rng, self.W, self.H, s1, self.margin)
            b = boundary_point(rng, self.W, self.H, s2, self.margin)
            via = self.village[0] + rng.normal(0, m(15), 2) if (k == 0 and self.village is not None) else None
            pts = gentle_curve(rng, a, b, bend=0.05, via=via)
            self._add_road(pts, m(rng.uniform(5.5, 8.5)), "main")
        for _ in range(_poisson(rng, 0.8 * self.len_f)):
            start, heading = self._branch_start()
            pts = wander(rng, start, heading, m(rng.uniform(150, 700)), step=m(8), turn_sd=0.02,
                         persistence=0.95)
            self._add_road(pts, m(rng.uniform(3.8, 5.5)), "minor", round_end=True)
            end = pts[-1]
            if self.inside(end, -m(30)).all() and rng.random() < 0.6:
                self.farm_sites.append(end)
        if self.village is not None:
            for _ in range(int(rng.integers(2, 6))):
                start, heading = self._branch_start(near=self.village[0], spread=self.village[1] * 0.6)
                pts = wander(rng, start, heading, m(rng.uniform(50, 220)), step=m(8), turn_sd=0.03,
                             persistence=0.9)
                self._add_road(pts, m(rng.uniform(4.0, 5.5)), "street", round_end=True)

    def _branch_start(self, near: np.ndarray | None = None, spread: float = 0.0) -> tuple[np.ndarray, float]:
        """A point on an existing road (near `near` if given) and a heading leaving it sideways."""
        rng = self.rng
        if not self.roads:
            p = self.random_point() if near is None else near + rng.normal(0, spread, 2)
            return p, rng.uniform(0, 2 * np.pi)
        line, _, _ = self.roads[0] if near is not None else self.roads[int(rng.integers(len(self.roads)))]
        if near is not None:
            s0 = line.project(Point(near))
            s = float(np.clip(s0 + rng.normal(0, spread), 0, line.length))
        else:
            s = rng.uniform(0.1, 0.9) * line.length
        p, ang = sample_along(line, np.array([s]))
        heading = ang[0] + (np.pi / 2 if rng.random() < 0.5 else -np.pi / 2) + rng.normal(0, 0.25)
        return p[0], heading

    def tracks_network(self) -> None:
        rng = self.rng
        n = int(rng.random() < 0.8) + _poisson(rng, 6.0 * self.len_f)
        for _ in range(n):
            if rng.random() < 0.45 and self.edges:
                e = self.edges[int(rng.integers(len(self.edges)))]
                pts = shapely.get_coordinates(e.segmentize(m(10)))
                d = pts[-1] - pts[0]
                normal = np.array([-d[1], d[0]]) / (np.hypot(*d) or 1.0)
                wobble = np.cumsum(rng.normal(0, m(0.6), len(pts)))
                offset = (wobble - wobble.mean())[:, None] + m(rng.uniform(3, 8))
                pts = chaikin(pts + normal * offset, 2)
            else:
                if self.roads and rng.random() < 0.6:
                    start, heading = self._branch_start()
                else:
                    start, heading = self.random_point(), rng.uniform(0, 2 * np.pi)
                pts = wander(rng, start, heading, m(rng.uniform(150, 900)), step=m(6), turn_sd=0.12,
                             persistence=0.85)
            self._add_track(pts, m(rng.uniform(2.4, 4.2)))

    def _add_track(self, pts: np.ndarray, width: float) -> None:
        rng = self.rng
        line = LineString(pts)
        poly = line_buffer(pts, width, flat=False)
        surface = looks.track_surface(rng)
        self.add(4, poly, surface, LAYER_TRACKS)
        self.tracks.append((line, width))
        self.blocked.append(poly.buffer(m(1), quad_segs=2))
        if rng.random() < 0.4:
            strip = line_buffer(pts, m(rng.uniform(0.5, 0.9)), flat=True).intersection(poly)
            self.add(4, strip, looks.track_strip(rng, surface), LAYER_TRACKS)

    # ---------------------------------------------------------------- water
    def _add_water(self, cls: int, poly: BaseGeometry, width: float) -> None:
        rng = self.rng
        body = looks.water(rng)
        inset = min(m(rng.uniform(0.5, 2.0)), 0.3 * width)
        inner = poly.buffer(-inset, quad_segs=2)
        margin = poly.difference(inner) if not inner.is_empty else poly
        self.add(cls, margin, looks.shore(rng, body), LAYER_WATER)
        self.add(cls, inner, body, LAYER_WATER)
        self.water_polys.append(poly)

    def waterways(self) -> None:
        rng = self.rng
        n = int(rng.random() < 0.45) + _poisson(rng, 0.3 * self.len_f)
        short = min(self.W, self.H)
        for _ in range(n):
            kind = ["river", "stream", "canal", "ditch"][int(rng.choice(4, p=[0.35, 0.35, 0.15, 0.15]))]
            side = int(rng.integers(4))
            start = boundary_point(rng, self.W, self.H, side, self.margin)
            toward = np.array([self.W / 2, self.H / 2]) - start
            heading = np.arctan2(toward[1], toward[0]) + rng.normal(0, 0.35)
            length = 1.6 * np.hypot(self.W, self.H) + 2 * self.margin
            if kind == "river":
                width = min(m(np.clip(rng.lognormal(np.log(14), 0.5), 5, 45)), 0.12 * short)
                pts = wander(rng, start, heading, length, step=m(8), turn_sd=0.05, persistence=0.95,
                             meander_amp=rng.uniform(0.3, 0.7),
                             meander_wavelength=width * rng.uniform(10, 16))
            elif kind == "stream":
                width = min(m(rng.uniform(2, 5)), 0.1 * short)
                pts = wander(rng, start, heading, length, step=m(5), turn_sd=0.1, persistence=0.9,
                             meander_amp=rng.uniform(0.2, 0.5), meander_wavelength=m(rng.uniform(30, 80)))
            elif kind == "canal":
                width = min(m(rng.uniform(8, 16)), 0.1 * short)
                end = boundary_point(rng, self.W, self.H, (side + 2) % 4, self.margin)
                pts = gentle_curve(rng, start, end, bend=0.015)
            else:
                e = self.edges[int(rng.integers(len(self.edges)))]
                pts = shapely.get_coordinates(e.segmentize(m(10)))
                width = m(rng.uniform(1.5, 3.0))
            poly = line_buffer(pts, width, flat=True)
            self._add_water(7, poly, width)
            line = LineString(pts)
            if kind == "canal" and rng.random() < 0.6:
                tw = m(rng.uniform(2.5, 3.5))
                path = line.offset_curve(rng.choice([-1, 1]) * (width / 2 + m(rng.uniform(1.5, 4)) + tw / 2))
                if path.geom_type == "LineString" and not path.is_empty:
                    self._add_track(shapely.get_coordinates(path), tw)
            if kind in ("river", "stream") and rng.random() < 0.5:
                n_trees = max(int(line.length / m(rng.uniform(10, 30))), 1)
                r = m(rng.uniform(2.5, 6, n_trees))
                pts_t, _ = sample_along(line, rng.uniform(0, line.length, n_trees),
                                        rng.choice([-1, 1], n_trees) * (width / 2 + 0.8 * r))
                keep = self.inside(pts_t, self.margin)
                for g in blobs(rng, pts_t[keep], r[keep], roughness=0.2, vertices=16):
                    self.add(5, g, looks.trees(rng), LAYER_TREES, rng.uniform(6, 14), 0.85)

    def standing_water(self) -> None:
        rng = self.rng
        n = int(rng.random() < 0.5) + _poisson(rng, 0.8 * self.area_f)
        short = min(self.W, self.H)
        for _ in range(n):
            for _try in range(10):
                r = min(m(np.clip(rng.lognormal(np.log(15), 0.7), 4, 150)), 0.3 * short)
                c = self.random_point(min(r, 0.3 * short))
                if rng.random() < 0.15:  # reservoir: a rounded rectangle
                    e = rng.uniform(1, 2)
                    poly = rectangles(c[None], 2 * r * np.sqrt(e), 2 * r / np.sqrt(e),
                                      self.angle)[0].buffer(min(m(3), r / 3), quad_segs=3)
                else:
                    poly = blobs(rng, c[None], [r], elongation=rng.uniform(1, 1.8), roughness=0.12)[0]
                if self.free(poly, self.water_polys):
                    break
            else:
                continue
            self._add_water(8, poly, 2 * r)
            self.blocked.append(poly.buffer(m(2), quad_segs=2))
            if rng.random() < 0.4:
                n_trees = int(rng.integers(2, 8))
                ang = rng.uniform(0, 2 * np.pi, n_trees)
                rt = m(rng.uniform(2.5, 6, n_trees))
                pts_t = c + np.stack([np.cos(ang), np.sin(ang)], 1) * (r * 1.1 + rt)[:, None]
                for g in blobs(rng, pts_t, rt, roughness=0.2, vertices=16):
                    self.add(5, g, looks.trees(rng), LAYER_TREES, rng.uniform(6, 14), 0.85)

    # ---------------------------------------------------------------- buildings
    def _building(self, centre: np.ndarray, length: float, depth: float, angle: float,
                  barn: bool = False, el_shape: bool = False, avoid_roads: bool = True) -> Polygon | None:
        rng = self.rng
        parts = [rectangles(centre[None], length, depth, angle)[0]]
        if el_shape:
            wl, wd = length * rng.uniform(0.3, 0.5), depth * rng.uniform(0.6, 1.2)
            along = np.array([np.cos(angle), np.sin(angle)])
            back = np.array([-along[1], along[0]]) * rng.choice([-1, 1])
            end = rng.choice([-1, 1]) * (length / 2 - wl / 2)
            c2 = centre + along * end + back * (depth / 2 + wd / 2 - m(0.3))
            parts.append(rectangles(c2[None], wl, wd, angle)[0])
        foot = shapely.union_all(parts)
        extra = self.buildings + self.water_polys
        if not self.inside(np.array(foot.centroid.coords), self.margin).all():
            return None
        if avoid_roads:
            ok = self.free(foot, extra)
        else:  # farm buildings may stand by their own access track
            ok = not extra or not shapely.intersects(np.array(extra, dtype=object), foot).any()
        if not ok:
            return None
        height = rng.uniform(6, 12) if barn else rng.uniform(5, 9)
        for p in parts:
            c = np.array(p.centroid.coords[0])
            self.add(1, p, looks.roof(rng, (c[0], c[1]), angle, self.sun_xy, barn), LAYER_BUILDINGS, height)
        self.buildings.append(foot.buffer(m(2), quad_segs=2))
        return foot

    def village_houses(self) -> None:
        if self.village is None:
            return
        rng = self.rng
        vc, vr = self.village
        for line, width, kind in list(self.roads):
            if kind == "minor":
                continue
            s = m(rng.uniform(0, 10))
            while s < line.length:
                step = m(rng.uniform(14, 26))
                for side in (-1, 1):
                    if rng.random() < 0.2:
                        continue
                    length, depth = m(rng.uniform(7, 14)), m(rng.uniform(6, 10))
                    setback = width / 2 + m(rng.uniform(4, 12)) + depth / 2
                    p, ang = sample_along(line, np.array([s]), side * setback)
                    if np.hypot(*(p[0] - vc)) > vr or not self.inside(p, m(10)).all():
                        continue
                    foot = self._building(p[0], length, depth, ang[0], el_shape=rng.random() < 0.3)
                    if foot is None:
                        continue
                    if rng.random() < 0.4:  # a drive from the road to the house, maybe with a car
                        front, _ = sample_along(line, np.array([s]), side * (width / 2 + m(0.5)))
                        house_edge, _ = sample_along(line, np.array([s]), side * (setback - depth / 2))
                        drive = LineString([front[0], house_edge[0]]).buffer(m(1.6), cap_style="flat")
                        self.add(0, drive, looks.paved(rng), LAYER_GROUND)
                        if rng.random() < 0.5:
                            mid = (front[0] + house_edge[0]) / 2
                            self._vehicle(mid, ang[0] + np.pi / 2, large=False, within=drive.buffer(m(1.2)))
                    if rng.random() < 0.25:
                        behind = side * (setback + depth / 2 + m(rng.uniform(4, 10)))
                        tp, _ = sample_along(line, np.array([s]), behind)
                        g = blobs(rng, tp, [m(rng.uniform(2, 4.5))], roughness=0.12, vertices=16)[0]
                        self.add(5, g, looks.trees(rng), LAYER_TREES, rng.uniform(5, 10), 0.85)
                s += step
        if rng.random() < 0.3:  # a hall, church or school
            c = vc + rng.normal(0, vr / 3, 2)
            self._building(c, m(rng.uniform(18, 35)), m(rng.uniform(10, 18)), self.angle)
        if rng.random() < 0.4 and self.roads:
            self.car_park(vc)

    def car_park(self, near: np.ndarray) -> None:
        rng = self.rng
        line, width, _ = self.roads[0]
        s = line.project(Point(near))
        lot_w, lot_d = m(rng.uniform(20, 50)), m(rng.uniform(15, 30))
        side = rng.choice([-1, 1])
        c, ang = sample_along(line, np.array([s + m(rng.uniform(-40, 40))]),
                              side * (width / 2 + lot_d / 2 + m(0.3)))
        lot = rectangles(c, lot_w, lot_d, ang)[0]
        if not self.free(lot, self.buildings + self.water_polys):
            return
        self.add(0, lot, looks.paved(rng), LAYER_GROUND)
        fill = rng.uniform(0.2, 0.9)
        along = np.array([np.cos(ang[0]), np.sin(ang[0])])
        across = np.array([-along[1], along[0]])
        for row in (-1, 1):
            n_slots = int(lot_w / m(2.6))
            for k in range(n_slots):
                if rng.random() > fill:
                    continue
                off = (k - (n_slots - 1) / 2) * m(2.6)
                p = c[0] + along * off + across * row * (lot_d / 2 - m(3))
                self._vehicle(p, ang[0] + np.pi / 2, large=False, within=lot)

    def farmsteads(self) -> None:
        rng = self.rng
        sites = list(self.farm_sites)
        for _ in range(_poisson(rng, 0.6 * self.area_f) + int(rng.random() < 0.2)):
            sites.append(self.random_point(m(30)))
        for site in sites:
            if self.village is not None and np.hypot(*(site - self.village[0])) < self.village[1] + m(40):
                continue
            self.farm(site)

    def farm(self, site: np.ndarray) -> None:
        rng = self.rng
        angle = self.angle + rng.normal(0, 0.05)
        yw, yd = m(rng.uniform(30, 70)), m(rng.uniform(25, 50))
        yard = rectangles(site[None], yw, yd, angle)[0]
        if not self.free(yard, self.water_polys):
            return
        self.add(0, yard, looks.paved(rng), LAYER_GROUND)
        along = np.array([np.cos(angle), np.sin(angle)])
        across = np.array([-along[1], along[0]])
        placed = []
        for _ in range(int(rng.integers(2, 6))):
            bl, bd = m(rng.uniform(12, 40)), m(rng.uniform(8, 20))
            side = int(rng.integers(4))
            if side < 2:
                c = (site + across * (1 if side else -1) * (yd / 2 + bd / 2 + m(1))
                     + along * rng.uniform(-yw, yw) / 3)
                a = angle
            else:
                c = (site + along * (1 if side == 2 else -1) * (yw / 2 + bd / 2 + m(1))
                     + across * rng.uniform(-yd, yd) / 3)
                a = angle + np.pi / 2
            foot = self._building(c, bl, bd, a, barn=rng.random() < 0.8, avoid_roads=False)
            if foot is not None:
                placed.append(foot)
        if rng.random() < 0.5:  # silos / tanks beside the yard
            for _ in range(int(rng.integers(1, 4))):
                c = (site + along * rng.uniform(-0.6, 0.6) * yw
                     + across * (yd / 2 + m(rng.uniform(3, 8))) * rng.choice([-1, 1]))
                r = m(rng.uniform(2, 4))
                g = Point(c).buffer(r, quad_segs=6)
                if self.free(g, self.buildings + self.water_polys):
                    self.add(2, g, looks.structure(rng, "tank"), LAYER_STRUCTURES, rng.uniform(6, 15))
                    self.buildings.append(g.buffer(m(1)))
        if rng.random() < 0.3:  # a fence round the yard
            fence = yard.exterior.buffer(m(rng.uniform(0.3, 0.5)), cap_style="flat", join_style="mitre")
            self.add(2, fence.difference(shapely.union_all(placed)) if placed else fence,
                     looks.structure(rng, "wall"), LAYER_STRUCTURES, 1.5, 0.7)
        for _ in range(int(rng.integers(0, 4))):
            p = site + along * rng.uniform(-0.35, 0.35) * yw + across * rng.uniform(-0.3, 0.3) * yd
            self._vehicle(p, angle + rng.choice([0, np.pi / 2]), large=rng.random() < 0.5, within=yard)
        if not any(line.distance(Point(site)) < m(120) for line, _, _ in self.roads):
            # Reach the farm by a track from the nearest road, or from the image edge.
            if self.roads:
                line = min((r[0] for r in self.roads), key=lambda ln: ln.distance(Point(site)))
                start = np.array(line.interpolate(line.project(Point(site))).coords[0])
            else:
                start = boundary_point(rng, self.W, self.H, int(rng.integers(4)), self.margin)
            pts = gentle_curve(rng, start, site, bend=0.04, controls=3)
            self._add_track(pts, m(rng.uniform(2.8, 4.2)))

    def roadside_houses(self) -> None:
        rng = self.rng
        for line, width, kind in list(self.roads):
            if kind != "main" and kind != "minor":
                continue
            n = _poisson(rng, line.length / m(1000) * 3)
            for s in rng.uniform(0, line.length, n):
                depth = m(rng.uniform(6, 10))
                lateral = rng.choice([-1, 1]) * (width / 2 + m(rng.uniform(6, 20)) + depth / 2)
                p, ang = sample_along(line, np.array([s]), lateral)
                if self.inside(p, 0).all():
                    self._building(p[0], m(rng.uniform(8, 15)), depth, ang[0], el_shape=rng.random() < 0.3)

    # ---------------------------------------------------------------- structures
    def structures(self) -> None:
        rng = self.rng
        for _ in range(_poisson(rng, 10.0 * self.area_f)):
            if not self.edges:
                break
            e = self.edges[int(rng.integers(len(self.edges)))]
            length = min(m(rng.uniform(20, 150)), e.length)
            s0 = rng.uniform(0, max(e.length - length, 0))
            seg = shapely.ops.substring(e, s0, s0 + length)
            wall = seg.offset_curve(m(rng.uniform(1, 3)))
            if wall.is_empty or wall.geom_type != "LineString":
                continue
            g = wall.buffer(m(rng.uniform(0.3, 0.5)), cap_style="flat")
            self.add(2, g, looks.structure(rng, "wall"), LAYER_STRUCTURES, rng.uniform(1.2, 2.5), 0.8)
        if rng.random() < 0.2:  # a power line: pylons every 250-350 m on a straight line
            s1 = int(rng.integers(4))
            a = boundary_point(rng, self.W, self.H, s1, self.margin)
            b = boundary_point(rng, self.W, self.H, (s1 + 2) % 4, self.margin)
            line = LineString([a, b])
            step = m(rng.uniform(250, 350))
            pos = np.arange(rng.uniform(0, step), line.length, step)
            pts, ang = sample_along(line, pos)
            keep = self.inside(pts, 0)
            side = m(rng.uniform(6, 9))
            for g in rectangles(pts[keep], side, side, ang[keep]):
                if self.free(g, self.buildings + self.water_polys):
                    self.add(2, g, looks.structure(rng, "pylon"), LAYER_STRUCTURES)
        for _ in range(_poisson(rng, 2.0 * self.area_f)):  # tanks and silos by a road
            if not self.roads:
                break
            line, width, _ = self.roads[int(rng.integers(len(self.roads)))]
            pts, _ = sample_along(line, rng.uniform(0, line.length, 1),
                                  rng.choice([-1, 1]) * (width / 2 + m(rng.uniform(8, 30))))
            c = pts[0]
            if not self.inside(c, -m(10)).all():
                continue
            g = Point(c).buffer(m(rng.uniform(2, 8)), quad_segs=6)
            if self.free(g, self.buildings + self.water_polys):
                self.add(2, g, looks.structure(rng, "tank"), LAYER_STRUCTURES, rng.uniform(3, 10))
                self.buildings.append(g.buffer(m(1)))

    # ---------------------------------------------------------------- vehicles
    def _vehicle(self, centre: np.ndarray, angle: float, large: bool,
                 within: BaseGeometry | None = None) -> bool:
        rng = self.rng
        if large:
            length, width, height = m(rng.uniform(6.5, 16)), m(rng.uniform(2.3, 2.6)), rng.uniform(2.5, 4)
        else:
            length, width, height = m(rng.uniform(4.0, 4.9)), m(rng.uniform(1.7, 1.9)), rng.uniform(1.4, 1.8)
        g = rectangles(np.asarray(centre)[None], length, width, angle)[0]
        if within is not None and not within.contains(g):
            return False
        if not self.inside(np.asarray(centre), 0).all():
            return False
        others = self.vehicles + self.buildings
        if others and shapely.intersects(np.array(others, dtype=object), g).any():
            return False
        self.add(9 if large else 10, g, looks.vehicle(rng, large), LAYER_VEHICLES, height, 0.9)
        self.vehicles.append(g.buffer(m(0.4), quad_segs=1))
        return True

    def traffic(self) -> None:
        rng = self.rng
        if not self.roads and not self.tracks:
            return
        road_union = shapely.union_all([line_buffer(shapely.get_coordinates(ln), w, flat=False)
                                        for ln, w, _ in self.roads]) if self.roads else None
        level = rng.lognormal(0, 0.6)
        for line, width, kind in self.roads:
            density = {"main": 20, "minor": 6, "street": 14}[kind] * level  # vehicles per km
            n = _poisson(rng, line.length / m(1000) * density)
            for s in rng.uniform(0, line.length, n):
                if kind == "street":
                    lateral = rng.choice([-1, 1]) * (width / 2 - m(1.1))
                else:
                    lateral = rng.choice([-1, 1]) * width / 4
                p, ang = sample_along(line, np.array([s]), lateral)
                large = rng.random() < (0.12 if kind == "main" else 0.05)
                self._vehicle(p[0], ang[0] + (np.pi if lateral < 0 else 0), large, within=road_union)
        for line, width in self.tracks:
            if rng.random() < 0.12:
                s = rng.uniform(0, line.length)
                p, ang = sample_along(line, np.array([s]))
                self._vehicle(p[0], ang[0], True, within=line.buffer(width / 2 + m(0.3)))


def build_layout(rng: np.random.Generator, height: int, width: int) -> Layout:
    """Lay out one synthetic landscape of `height` x `width` pixels (see the module docstring)."""
    b = _Builder(rng, height, width)
    b.parcels()
    b.roads_network()
    b.tracks_network()
    b.waterways()
    b.standing_water()
    b.fill_parcels()
    b.hedgerows()
    b.scattered_trees()
    b.village_houses()
    b.roadside_houses()
    b.farmsteads()
    b.structures()
    b.traffic()
    b.layout.notes = {"village": b.village is not None, "roads": len(b.roads), "tracks": len(b.tracks),
                      "water_bodies": len(b.water_polys)}
    return b.layout

"""Geometric primitives for synthetic scenes, in PIXEL coordinates (x = column, y = row).

All lengths are pixels unless a name ends in `_m` (metres); `PX_PER_M` converts at the
DSTL 3-band resolution of ~0.31 m/px. Functions take a `numpy.random.Generator` and are
deterministic given it. Polygons come out valid (star-shaped blobs, buffered lines, rectangles).
"""

import numpy as np
import shapely
import shapely.affinity
import shapely.ops
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry

#: Ground sample distance of the 3-band product (metres per pixel) and its inverse.
GSD_M = 0.31
PX_PER_M = 1.0 / GSD_M


def m(metres: float) -> float:
    """Metres -> pixels."""
    return metres * PX_PER_M


def blobs(rng: np.random.Generator, centres: np.ndarray, radii: np.ndarray, *,
          elongation: np.ndarray | float = 1.0, angles: np.ndarray | float | None = None,
          roughness: float = 0.15, vertices: int = 28) -> np.ndarray:
    """Irregular star-shaped polygons (tree clumps, ponds, clearings), vectorised.

    The radius at angle t is r * (1 + sum_k a_k cos(k t + phi_k)) for harmonics k = 2..6 with
    a_k ~ N(0, roughness / k), floored at 0.35 r; then the shape is stretched by `elongation`
    along its axis (at `angles`, random if None) keeping its area, and moved to its centre.

    Returns:
        object array of n shapely Polygons.
    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    n = len(centres)
    if n == 0:
        return np.empty(0, dtype=object)
    radii = np.broadcast_to(np.asarray(radii, dtype=np.float64), (n,))
    elong = np.broadcast_to(np.asarray(elongation, dtype=np.float64), (n,))
    ang = rng.uniform(0, np.pi, n) if angles is None else np.broadcast_to(np.asarray(angles, float), (n,))
    t = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    k = np.arange(2, 7)
    amp = rng.normal(0.0, 1.0, (n, len(k))) * (roughness / k)
    phase = rng.uniform(0, 2 * np.pi, (n, len(k)))
    harmonics = np.cos(k[None, :, None] * t[None, None, :] + phase[..., None])   # (n, k, t)
    wobble = 1.0 + np.einsum("nk,nkt->nt", amp, harmonics)
    r = radii[:, None] * np.maximum(wobble, 0.35)
    sx = np.sqrt(elong)[:, None]
    x, y = r * np.cos(t) * sx, r * np.sin(t) / sx
    ca, sa = np.cos(ang)[:, None], np.sin(ang)[:, None]
    xr, yr = x * ca - y * sa + centres[:, :1], x * sa + y * ca + centres[:, 1:]
    coords = np.stack([xr, yr], axis=-1)
    coords = np.concatenate([coords, coords[:, :1]], axis=1)
    return shapely.polygons(coords)


def rectangles(centres: np.ndarray, lengths: np.ndarray, widths: np.ndarray,
               angles: np.ndarray) -> np.ndarray:
    """Oriented rectangles (length along `angles`, radians from the x axis), vectorised."""
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    n = len(centres)
    if n == 0:
        return np.empty(0, dtype=object)
    hl = np.broadcast_to(np.asarray(lengths, float), (n,))[:, None] / 2
    hw = np.broadcast_to(np.asarray(widths, float), (n,))[:, None] / 2
    a = np.broadcast_to(np.asarray(angles, float), (n,))[:, None]
    u = np.array([-1, 1, 1, -1, -1])[None, :] * hl
    v = np.array([-1, -1, 1, 1, -1])[None, :] * hw
    ca, sa = np.cos(a), np.sin(a)
    x = centres[:, :1] + u * ca - v * sa
    y = centres[:, 1:] + u * sa + v * ca
    return shapely.polygons(np.stack([x, y], axis=-1))


def chaikin(points: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Smooth an open polyline by Chaikin corner cutting (end points kept)."""
    p = np.asarray(points, dtype=np.float64)
    for _ in range(iterations):
        if len(p) < 3:
            break
        q = 0.75 * p[:-1] + 0.25 * p[1:]
        r = 0.25 * p[:-1] + 0.75 * p[1:]
        mid = np.empty((2 * len(q), 2))
        mid[0::2], mid[1::2] = q, r
        p = np.vstack([p[:1], mid[1:-1], p[-1:]])
    return p


def boundary_point(rng: np.random.Generator, width: float, height: float, side: int,
                   margin: float = 0.0) -> np.ndarray:
    """A random point on side 0 (top), 1 (right), 2 (bottom) or 3 (left) of the box, pushed
    `margin` px outside it (so lines built from it cross the whole image)."""
    t = rng.uniform(0.05, 0.95)
    return np.array([(t * width, -margin), (width + margin, t * height),
                     (t * width, height + margin), (-margin, t * height)][side])


def gentle_curve(rng: np.random.Generator, start: np.ndarray, end: np.ndarray, *,
                 bend: float = 0.06, controls: int = 4, via: np.ndarray | None = None) -> np.ndarray:
    """A smooth, nearly straight polyline from `start` to `end` (roads, canals).

    Control points on the chord (optionally through `via`) are pushed sideways by
    N(0, bend * chord length), then smoothed (Chaikin). Returns an (n, 2) array.
    """
    pts = [np.asarray(start, float)] + ([np.asarray(via, float)] if via is not None else [])
    pts.append(np.asarray(end, float))
    out = [pts[0]]
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        d = b - a
        length = float(np.hypot(*d)) or 1.0
        normal = np.array([-d[1], d[0]]) / length
        for s in np.linspace(0, 1, controls + 2)[1:-1]:
            out.append(a + s * d + normal * rng.normal(0, bend * length))
        out.append(b)
    return chaikin(np.array(out), 4)


def wander(rng: np.random.Generator, start: np.ndarray, heading: float, length: float, *,
           step: float = 12.0, turn_sd: float = 0.08, persistence: float = 0.9,
           meander_amp: float = 0.0, meander_wavelength: float = 400.0) -> np.ndarray:
    """A winding polyline (tracks, streams, rivers): heading follows an AR(1) random turn rate,
    plus an optional sinusoidal meander (`meander_amp` radians, period in px). Returns (n, 2)."""
    n = max(int(length / step), 2)
    turn = np.zeros(n)
    noise = rng.normal(0, turn_sd, n)
    for i in range(1, n):  # n is at most a few hundred: a plain loop is fine
        turn[i] = persistence * turn[i - 1] + noise[i]
    heading_t = heading + np.cumsum(turn) * (1 - persistence)
    if meander_amp:
        s = np.arange(n) * step
        heading_t = heading_t + meander_amp * np.sin(2 * np.pi * s / meander_wavelength + rng.uniform(0, 6.3))
    d = np.stack([np.cos(heading_t), np.sin(heading_t)], axis=1) * step
    pts = np.vstack([start, start + np.cumsum(d, axis=0)])
    return chaikin(pts, 2)


def line_buffer(points: np.ndarray, width: float, *, flat: bool = True) -> Polygon:
    """The polygon of a line of `width` px along `points` (flat or round ends)."""
    return LineString(points).buffer(width / 2, cap_style="flat" if flat else "round", quad_segs=4)


def dashes(line: LineString, dash: float, gap: float, width: float, offset: float = 0.0) -> list[Polygon]:
    """Buffered dashes of length `dash` every `dash + gap` px along `line` (road markings)."""
    out = []
    s = offset
    total = line.length
    while s + dash <= total:
        seg = shapely.ops.substring(line, s, s + dash)
        if seg.length > 0:
            out.append(seg.buffer(width / 2, cap_style="flat"))
        s += dash + gap
    return out


def sample_along(line: LineString, positions: np.ndarray, lateral: np.ndarray | float = 0.0,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Points at distances `positions` along `line`, shifted `lateral` px to its left, and the
    line's direction (radians) there. Returns (points (n, 2), angles (n,))."""
    positions = np.asarray(positions, dtype=np.float64)
    if len(positions) == 0:
        return np.zeros((0, 2)), np.zeros(0)
    eps = 1.5
    def at(s: np.ndarray) -> np.ndarray:
        return shapely.get_coordinates(shapely.line_interpolate_point(line, s))

    a, b = at(np.maximum(positions - eps, 0)), at(np.minimum(positions + eps, line.length))
    c = at(positions)
    d = b - a
    ang = np.arctan2(d[:, 1], d[:, 0])
    normal = np.stack([-np.sin(ang), np.cos(ang)], axis=1)
    lateral = np.broadcast_to(np.asarray(lateral, float), (len(positions),))
    return c + normal * lateral[:, None], ang


def cast_shadows(geoms: np.ndarray, dx: float | np.ndarray, dy: float | np.ndarray) -> np.ndarray:
    """Shadow polygons cast on flat ground: each caster swept by (dx, dy) px, minus the caster.

    The sweep of a convex footprint is the convex hull of it and its shifted copy; for the
    non-convex casters here (L-shaped buildings are passed as two rectangles, blobs are nearly
    convex) the hull is a close, slightly generous approximation.
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return geoms
    dx = np.broadcast_to(np.asarray(dx, float), (len(geoms),))
    dy = np.broadcast_to(np.asarray(dy, float), (len(geoms),))
    shifted = np.array([shapely.affinity.translate(g, x, y) for g, x, y in zip(geoms, dx, dy, strict=True)],
                       dtype=object)
    hulls = shapely.convex_hull(shapely.union(geoms, shifted))
    return shapely.difference(hulls, geoms)


def elongation(geom: BaseGeometry) -> float:
    """Length / width of a shape, estimated as perimeter² / (4 area): ~L/w for a strip of
    length L and width w however it bends, pi for a disc, 4 for a square; inf for zero area."""
    if geom.area <= 0:
        return float("inf")
    return float(geom.length ** 2 / (4 * geom.area))

"""Appearance of one synthetic object: which materials it is made of and how they vary across it.

A `Look` says, for every pixel of an object, how much of three endmembers (`spectra.ENDMEMBERS`)
it holds and how bright it is, as a function of a texture value t in about [-1, 1]:

    w0 = clip(base0 + amp * t, 0, 1 - base2),   w2 = base2,   w1 = 1 - w0 - w2
    brightness = bright * (1 + bamp * t + famp * white_noise)

The texture kinds (`TEXTURE_*`) pick t: none, medium-scale noise, large-scale patches, crop
rows (a sinusoid across the field at the field's own angle and period), tree crowns (blobby
noise with deep gaps), or a gable roof (two roof planes lit differently by the sun; this one
changes only the brightness: the renderer sets amp = 0 for it).

Class-internal variability comes from the samplers below (crop type and growth stage, roof
material, road surfacing, water type, paint colour), and the shape-defined class pairs draw from
one sampler each: `water` serves waterways and standing water alike; `road_surface` and
`track_surface` share one pool of surfacing materials with overlapping odds.
"""

from dataclasses import dataclass

import numpy as np

from dstl.synthetic.spectra import ENDMEMBER

TEXTURE_FLAT = 0
TEXTURE_NOISE = 1
TEXTURE_PATCHES = 2
TEXTURE_ROWS = 3
TEXTURE_CROWNS = 4
TEXTURE_GABLE = 5


@dataclass(frozen=True)
class Look:
    """Mixture, brightness and texture of an object (see the module docstring).

    Attributes:
        materials: three endmember indices (m0, m1, m2).
        base0, base2: fractions of m0 (at t = 0) and of m2.
        amp: how far the texture shifts fraction between m0 and m1.
        bright, bamp, famp: brightness, its texture modulation, its per-pixel noise.
        texture: one of the TEXTURE_* kinds.
        params: texture geometry, 5 floats: rows (angle rad, period px, phase rad, 0, 0);
            gable (ridge centre x, y px, unit normal nx, ny, sunlit contrast).
    """

    materials: tuple[int, int, int]
    base0: float = 1.0
    base2: float = 0.0
    amp: float = 0.0
    bright: float = 1.0
    bamp: float = 0.0
    famp: float = 0.02
    texture: int = TEXTURE_FLAT
    params: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)


def _mat(*names: str) -> tuple[int, int, int]:
    idx = [ENDMEMBER[n] for n in names]
    while len(idx) < 3:
        idx.append(idx[-1])
    return (idx[0], idx[1], idx[2])


def _pick(rng: np.random.Generator, options: dict[str, float]) -> str:
    names = list(options)
    p = np.array([options[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


SOILS = {"soil_dry": 0.45, "soil_moist": 0.35, "soil_dark": 0.2}


# ------------------------------------------------------------------------------- vegetation

def crop(rng: np.random.Generator, row_angle: float) -> Look:
    """A cultivated field: crop type and growth stage set the vegetation/soil mix; rows show
    most at mid growth. A share of fields is bare (ploughed or just sown) yet labelled crops."""
    kind = _pick(rng, {"crop_green": 0.4, "crop_young": 0.25, "crop_senescent": 0.2, "bare": 0.15})
    growth = {"crop_green": (0.8, 1.0), "crop_young": (0.35, 0.8),
              "crop_senescent": (0.7, 1.0), "bare": (0.0, 0.15)}[kind]
    g = rng.uniform(*growth)
    veg = "crop_young" if kind == "bare" else kind
    soil = _pick(rng, SOILS)
    weed = _pick(rng, {"grass": 0.5, "dry_vegetation": 0.5})
    rows = 0.05 + 0.6 * min(g, 1 - g)
    return Look(_mat(veg, soil, weed), base0=g, base2=rng.uniform(0, 0.08), amp=rows,
                bright=rng.uniform(0.9, 1.1), bamp=0.04, famp=0.03, texture=TEXTURE_ROWS,
                params=(row_angle, rng.uniform(5.0, 15.0), rng.uniform(0, 6.28), 0.0, 0.0))


def meadow(rng: np.random.Generator) -> Look:
    """Grassland, lawns, verges (unlabelled): spectrally close to crops, patchier, no rows."""
    return Look(_mat("grass", _pick(rng, {"dry_vegetation": 0.6, "crop_young": 0.4}), _pick(rng, SOILS)),
                base0=rng.uniform(0.55, 0.9), base2=rng.uniform(0.0, 0.15), amp=0.25,
                bright=rng.uniform(0.9, 1.1), bamp=0.06, famp=0.04, texture=TEXTURE_PATCHES)


def fallow(rng: np.random.Generator) -> Look:
    """Bare or weedy unlabelled ground."""
    return Look(_mat(_pick(rng, SOILS), _pick(rng, {"dry_vegetation": 0.5, "grass": 0.5}), "dirt_compacted"),
                base0=rng.uniform(0.5, 0.9), base2=rng.uniform(0.0, 0.2), amp=0.25,
                bright=rng.uniform(0.85, 1.15), bamp=0.08, famp=0.04, texture=TEXTURE_PATCHES)


def trees(rng: np.random.Generator, conifer_share: float = 0.3) -> Look:
    """Tree canopy: broadleaf or conifer, crowns with dark gaps between them."""
    main = "tree_conifer" if rng.random() < conifer_share else "tree_broadleaf"
    other = "tree_broadleaf" if main == "tree_conifer" else _pick(rng, {"tree_conifer": 0.3, "grass": 0.7})
    return Look(_mat(main, other, "dry_vegetation"), base0=rng.uniform(0.75, 0.95),
                base2=rng.uniform(0.0, 0.08), amp=0.1, bright=rng.uniform(0.85, 1.05), bamp=0.35,
                famp=0.05, texture=TEXTURE_CROWNS)


# ------------------------------------------------------------------------------- water

WATER_TYPES = {"water_clear": 0.4, "water_turbid": 0.4, "water_algal": 0.2}


def water(rng: np.random.Generator) -> Look:
    """Open water, for waterways and standing water alike (one sampler on purpose)."""
    a, b = _pick(rng, WATER_TYPES), _pick(rng, WATER_TYPES)
    return Look(_mat(a, b, a), base0=rng.uniform(0.3, 1.0), amp=0.15, bright=rng.uniform(0.8, 1.25),
                bamp=0.05, famp=0.03, texture=TEXTURE_PATCHES)


def shore(rng: np.random.Generator, body: Look) -> Look:
    """The shallow margin of a water body: its water mixed with bank soil or vegetation."""
    bank = _pick(rng, {"soil_moist": 0.4, "grass": 0.3, "dry_vegetation": 0.3})
    return Look((body.materials[0], ENDMEMBER[bank], body.materials[1]), base0=rng.uniform(0.45, 0.8),
                base2=0.0, amp=0.15, bright=body.bright, bamp=0.05, famp=0.04, texture=TEXTURE_NOISE)


# ------------------------------------------------------------------------------- surfaces

#: One pool of surfacing materials for roads and tracks; the odds differ but overlap widely, so
#: a pixel's spectrum alone cannot tell a road from a track.
SURFACES = ("asphalt_old", "asphalt_new", "concrete", "gravel", "dirt_compacted", "soil_dry")
_ROAD_ODDS = (0.30, 0.10, 0.10, 0.20, 0.22, 0.08)
_TRACK_ODDS = (0.15, 0.05, 0.05, 0.25, 0.30, 0.20)
_VERGE = {"dirt_compacted": 0.3, "soil_dry": 0.2, "dry_vegetation": 0.25, "grass": 0.25}


def _surface(rng: np.random.Generator, odds: tuple[float, ...]) -> Look:
    main = SURFACES[int(rng.choice(len(SURFACES), p=np.array(odds) / sum(odds)))]
    second = _pick(rng, {**{s: 0.12 for s in SURFACES}, **_VERGE})
    return Look(_mat(main, second, "asphalt_old"), base0=rng.uniform(0.6, 1.0),
                base2=rng.uniform(0.0, 0.1), amp=0.2, bright=rng.uniform(0.85, 1.15), bamp=0.06,
                famp=0.04, texture=TEXTURE_NOISE)


def road_surface(rng: np.random.Generator) -> Look:
    return _surface(rng, _ROAD_ODDS)


def track_surface(rng: np.random.Generator) -> Look:
    return _surface(rng, _TRACK_ODDS)


def track_strip(rng: np.random.Generator, surface: Look) -> Look:
    """The grassy strip between a track's wheel ruts (part of the track)."""
    return Look((ENDMEMBER["grass"], surface.materials[0], ENDMEMBER["dry_vegetation"]),
                base0=rng.uniform(0.3, 0.7), base2=rng.uniform(0, 0.2), amp=0.2,
                bright=surface.bright, bamp=0.05, famp=0.05, texture=TEXTURE_NOISE)


def marking(rng: np.random.Generator, surface: Look) -> Look:
    """White road paint, narrower than a pixel, so mixed with the road surface."""
    return Look((ENDMEMBER["paint_white"], surface.materials[0], surface.materials[1]),
                base0=rng.uniform(0.45, 0.8), bright=rng.uniform(0.85, 1.0), famp=0.05)


def paved(rng: np.random.Generator) -> Look:
    """Unlabelled paved ground (car parks, yards, drives): road materials, not a road."""
    main = _pick(rng, {"asphalt_old": 0.35, "asphalt_new": 0.15, "concrete": 0.25, "gravel": 0.25})
    return Look(_mat(main, _pick(rng, {"dirt_compacted": 0.5, "soil_dry": 0.2, "concrete": 0.3}), main),
                base0=rng.uniform(0.7, 1.0), amp=0.15, bright=rng.uniform(0.85, 1.15), bamp=0.05,
                famp=0.04, texture=TEXTURE_NOISE)


# ------------------------------------------------------------------------------- built things

_ROOFS = {"roof_tile_red": 0.33, "roof_slate": 0.25, "roof_metal": 0.1, "roof_membrane": 0.1,
          "roof_bitumen": 0.12, "concrete": 0.1}
_BARN_ROOFS = {"roof_metal": 0.4, "roof_membrane": 0.2, "metal_rust": 0.2, "concrete": 0.1,
               "roof_bitumen": 0.1}
_PITCHED = {"roof_tile_red", "roof_slate", "roof_metal", "metal_rust"}


def roof(rng: np.random.Generator, centre: tuple[float, float], ridge_angle: float,
         sun_xy: tuple[float, float], barn: bool = False) -> Look:
    """A roof: material by building type; pitched roofs get two planes lit by the sun."""
    material = _pick(rng, _BARN_ROOFS if barn else _ROOFS)
    dirt = _pick(rng, {"soil_dry": 0.4, "dry_vegetation": 0.3, "car_dark": 0.3})
    nx, ny = -np.sin(ridge_angle), np.cos(ridge_angle)
    if material in _PITCHED and rng.random() < 0.85:
        # Plane facing the sun brighter: contrast grows with how squarely the ridge faces it.
        contrast = 0.35 * (nx * sun_xy[0] + ny * sun_xy[1])
        return Look(_mat(material, dirt, material), base0=rng.uniform(0.85, 1.0),
                    bright=rng.uniform(0.85, 1.15), bamp=1.0, famp=0.03, texture=TEXTURE_GABLE,
                    params=(centre[0], centre[1], nx, ny, contrast))
    return Look(_mat(material, dirt, material), base0=rng.uniform(0.8, 1.0), amp=0.1,
                bright=rng.uniform(0.85, 1.15), bamp=0.04, famp=0.03, texture=TEXTURE_NOISE)


def structure(rng: np.random.Generator, kind: str) -> Look:
    """Misc. man-made structures: 'tank' (silo/tank), 'wall' (wall/fence), 'pylon' (see-through
    lattice tower over grass)."""
    if kind == "tank":
        mat = _pick(rng, {"roof_metal": 0.35, "car_silver": 0.25, "paint_white": 0.2, "concrete": 0.2})
        return Look(_mat(mat, "metal_rust", mat), base0=rng.uniform(0.8, 1.0), bright=rng.uniform(0.85, 1.1),
                    bamp=0.05, famp=0.03, texture=TEXTURE_NOISE)
    if kind == "wall":
        mat = _pick(rng, {"concrete": 0.4, "gravel": 0.2, "metal_rust": 0.2, "roof_slate": 0.2})
        return Look(_mat(mat, "dirt_compacted", mat), base0=rng.uniform(0.7, 1.0),
                    bright=rng.uniform(0.8, 1.1), famp=0.05)
    return Look(_mat("car_silver", "grass", "metal_rust"), base0=rng.uniform(0.3, 0.5), base2=0.1,
                bright=rng.uniform(0.9, 1.1), famp=0.08)


_PAINTS = {"car_white": 0.25, "car_silver": 0.2, "car_dark": 0.25, "car_red": 0.1, "car_blue": 0.1,
           "concrete": 0.1}
_LARGE_PAINTS = {"car_white": 0.35, "car_silver": 0.2, "metal_rust": 0.1, "car_red": 0.1, "car_blue": 0.1,
                 "car_dark": 0.1, "roof_metal": 0.05}


def vehicle(rng: np.random.Generator, large: bool) -> Look:
    """A vehicle seen from above: body paint with dark windows."""
    paint = _pick(rng, _LARGE_PAINTS if large else _PAINTS)
    body = rng.uniform(0.85, 0.97) if large else rng.uniform(0.65, 0.9)  # the rest is windows
    return Look(_mat(paint, "car_dark", paint), base0=body, bright=rng.uniform(0.85, 1.1), famp=0.05)

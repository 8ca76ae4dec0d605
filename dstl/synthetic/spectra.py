"""Reflectance signatures of the synthetic scenes' materials, and the atmosphere they are seen through.

Every surface in a synthetic scene is a linear mixture of a few *endmembers*: pure materials
with a surface reflectance (0..1) in each of the 16 WorldView-3 bands of the M and A products
(`SPECTRAL_BANDS`: M1..M8 coastal 425, blue 480, green 545, yellow 605, red 660, red edge 725,
NIR1 832, NIR2 950 nm; A1..A8 SWIR 1210, 1570, 1660, 1730, 2165, 2205, 2260, 2330 nm). The
full-resolution products are derived from the same curves: the pansharpened 3-band R, G, B are
the red, green and blue bands, P is a broadband (450-800 nm) weighted mean (`FULL_RES_WEIGHTS`).

The values follow the shapes of published library spectra (USGS / ECOSTRESS style): vegetation
dark in the visible with a green bump, a steep red edge and a bright NIR plateau, dipping at the
SWIR water bands; water dark everywhere beyond the red; soils rising smoothly with a clay
absorption near 2205 nm; limestone gravel with a carbonate dip at 2330 nm; asphalt dark and flat
with hydrocarbon dips at 1730 and 2260 nm; slate, asphalt and bitumen roofs close in the visible
but apart in the SWIR. Classes share endmembers on purpose (waterways and standing water use the
same water types, roads and tracks draw from the same surfacing materials), so that only shape
and context separate them.
"""

from dataclasses import dataclass

import numpy as np

#: Bands of the spectral table, in column order (the M then A products' bands).
SPECTRAL_BANDS: tuple[str, ...] = tuple(f"M{i}" for i in range(1, 9)) + tuple(f"A{i}" for i in range(1, 9))

#: Endmember name -> reflectance in M1..M8, A1..A8 (see the module docstring).
_TABLE: dict[str, tuple[float, ...]] = {
    # Vegetation ----------------------------------------------------------------------------
    "grass":          (.030, .040, .090, .070, .050, .200, .400, .410,
                       .380, .270, .260, .240, .140, .130, .120, .110),
    "crop_green":     (.025, .035, .100, .060, .035, .240, .480, .490,
                       .440, .300, .290, .270, .150, .140, .130, .120),
    "crop_young":     (.040, .050, .110, .090, .070, .220, .380, .390,
                       .360, .300, .295, .280, .180, .170, .160, .150),
    "crop_senescent": (.060, .080, .130, .170, .190, .240, .300, .320,
                       .360, .390, .390, .380, .320, .300, .290, .270),
    "tree_broadleaf": (.020, .030, .065, .045, .030, .170, .360, .370,
                       .320, .200, .190, .180, .090, .085, .080, .075),
    "tree_conifer":   (.015, .022, .045, .032, .022, .110, .250, .260,
                       .220, .130, .125, .120, .060, .055, .052, .050),
    "dry_vegetation": (.050, .065, .100, .120, .120, .200, .280, .300,
                       .330, .340, .335, .325, .260, .240, .235, .225),
    # Soils and unpaved surfaces --------------------------------------------------------------
    "soil_dry":       (.070, .090, .140, .190, .230, .260, .290, .310,
                       .350, .410, .420, .420, .370, .340, .355, .340),
    "soil_moist":     (.040, .055, .085, .115, .140, .160, .180, .195,
                       .210, .230, .235, .232, .190, .172, .180, .172),
    "soil_dark":      (.030, .038, .055, .070, .082, .095, .110, .120,
                       .140, .150, .150, .150, .120, .110, .115, .110),
    "dirt_compacted": (.090, .110, .150, .190, .215, .235, .255, .270,
                       .300, .340, .345, .345, .300, .275, .290, .280),
    "gravel":         (.160, .190, .230, .260, .275, .290, .305, .315,
                       .340, .370, .375, .370, .330, .315, .300, .255),
    # Paved surfaces -----------------------------------------------------------------------------
    "asphalt_new":    (.045, .048, .050, .052, .054, .056, .058, .060,
                       .065, .072, .073, .068, .070, .069, .064, .066),
    "asphalt_old":    (.085, .095, .105, .112, .118, .124, .132, .138,
                       .150, .170, .172, .160, .160, .158, .148, .152),
    "concrete":       (.200, .240, .280, .300, .310, .320, .330, .340,
                       .350, .360, .360, .355, .320, .305, .300, .290),
    "paint_white":    (.500, .600, .640, .650, .650, .650, .640, .630,
                       .580, .500, .490, .470, .300, .290, .280, .270),
    # Roofs ----------------------------------------------------------------------------------------
    "roof_tile_red":  (.060, .065, .085, .150, .240, .290, .330, .360,
                       .430, .490, .500, .500, .450, .430, .440, .430),
    "roof_slate":     (.080, .085, .088, .090, .092, .094, .096, .098,
                       .100, .102, .102, .101, .098, .097, .096, .096),
    "roof_metal":     (.380, .400, .410, .410, .405, .400, .390, .380,
                       .350, .320, .315, .310, .290, .285, .280, .280),
    "roof_membrane":  (.300, .340, .360, .365, .365, .365, .365, .365,
                       .360, .330, .325, .300, .200, .190, .185, .180),
    "roof_bitumen":   (.056, .058, .058, .059, .060, .063, .068, .073,
                       .100, .115, .117, .105, .095, .094, .085, .088),
    # Water ---------------------------------------------------------------------------------------
    "water_clear":    (.060, .055, .045, .028, .018, .010, .006, .004,
                       .003, .002, .002, .002, .002, .002, .002, .002),
    "water_turbid":   (.070, .085, .110, .100, .085, .055, .030, .018,
                       .008, .004, .004, .004, .003, .003, .003, .003),
    "water_algal":    (.040, .045, .075, .050, .035, .050, .055, .035,
                       .010, .004, .004, .004, .003, .003, .003, .003),
    # Vehicle paints and metal -----------------------------------------------------------------
    "car_white":      (.550, .620, .650, .660, .660, .660, .650, .640,
                       .600, .520, .500, .480, .350, .330, .320, .310),
    "car_dark":       (.040, .042, .043, .044, .045, .046, .048, .050,
                       .055, .060, .060, .058, .050, .050, .048, .048),
    "car_red":        (.050, .050, .055, .160, .420, .480, .520, .540,
                       .520, .450, .440, .420, .300, .290, .280, .270),
    "car_blue":       (.150, .190, .120, .080, .060, .060, .100, .150,
                       .200, .200, .195, .190, .140, .135, .130, .125),
    "car_silver":     (.300, .320, .330, .335, .335, .335, .330, .325,
                       .310, .290, .285, .280, .240, .235, .230, .225),
    "metal_rust":     (.060, .065, .080, .130, .190, .230, .270, .300,
                       .360, .400, .405, .405, .380, .370, .370, .365),
}

#: Endmember names in table order; `ENDMEMBER[name]` is the row index used in material maps.
ENDMEMBERS: tuple[str, ...] = tuple(_TABLE)
ENDMEMBER: dict[str, int] = {name: i for i, name in enumerate(ENDMEMBERS)}
NUM_ENDMEMBERS = len(ENDMEMBERS)

#: (NUM_ENDMEMBERS, 16) float32 reflectance table, rows in `ENDMEMBERS` order.
REFLECTANCE: np.ndarray = np.array([_TABLE[n] for n in ENDMEMBERS], dtype=np.float32)

#: Weights over the 16 spectral bands giving the full-resolution bands R, G, B, P (rows).
#: R, G, B are the red, green, blue M bands (the 3-band product is pansharpened RGB);
#: P (450-800 nm) is a mean over blue..NIR1 weighted by the bands' share of that range.
FULL_RES_BANDS: tuple[str, ...] = ("R", "G", "B", "P")
FULL_RES_WEIGHTS: np.ndarray = np.zeros((4, 16), dtype=np.float32)
FULL_RES_WEIGHTS[0, 4] = 1.0          # R = red (660 nm)
FULL_RES_WEIGHTS[1, 2] = 1.0          # G = green (545 nm)
FULL_RES_WEIGHTS[2, 1] = 1.0          # B = blue (480 nm)
FULL_RES_WEIGHTS[3, 1:7] = (0.12, 0.20, 0.20, 0.22, 0.16, 0.10)

_WAVELENGTH = np.array([425, 480, 545, 605, 660, 725, 832, 950,
                        1210, 1570, 1660, 1730, 2165, 2205, 2260, 2330], dtype=np.float64)


@dataclass(frozen=True)
class Atmosphere:
    """Per-scene illumination and atmosphere, per spectral band (16 values each).

    Attributes:
        transmittance: fraction of the surface signal reaching the sensor.
        path_radiance: additive haze term (reflectance units) at full haze; scaled per pixel by
            the scene's smooth haze field.
        diffuse: skylight share of the irradiance, i.e. what a shadow keeps (bluer than sunlight,
            so shadows are dark and blue-tinted, darkest in the NIR/SWIR).
    """

    transmittance: np.ndarray
    path_radiance: np.ndarray
    diffuse: np.ndarray

    def full_res(self, values: np.ndarray) -> np.ndarray:
        """Per-band values mapped to the 4 full-resolution bands R, G, B, P (`FULL_RES_WEIGHTS`)."""
        return (FULL_RES_WEIGHTS @ values.astype(np.float32)).astype(np.float32)


def sample_atmosphere(rng: np.random.Generator) -> Atmosphere:
    """Draw a scene's atmosphere: clear to moderately hazy (Rayleigh-like lambda^-2 scattering)."""
    haze = rng.uniform(0.0, 0.06)
    rel = (450.0 / _WAVELENGTH) ** 2
    path = haze * rel
    transmittance = 1.0 - 2.5 * path
    diffuse = np.clip(0.08 + 0.22 * (450.0 / _WAVELENGTH) ** 1.5 + 3.0 * path, 0.04, 0.6)
    return Atmosphere(transmittance.astype(np.float32), path.astype(np.float32), diffuse.astype(np.float32))


def scene_reflectance(rng: np.random.Generator, table: np.ndarray | None = None) -> np.ndarray:
    """This scene's endmember table: `table` (default `REFLECTANCE`) with smooth per-material
    spectral jitter.

    Each material's curve is multiplied by exp(noise), the noise a random walk over the bands
    (so neighbouring bands move together, ~4 % per band, ~8 % overall), modelling differences in
    moisture, age and sun-view geometry between scenes.
    """
    table = REFLECTANCE if table is None else np.asarray(table, dtype=np.float32)
    if table.shape != REFLECTANCE.shape:
        raise ValueError(f"reflectance table must be {REFLECTANCE.shape}, got {table.shape}")
    steps = rng.normal(0.0, 0.025, size=table.shape)
    walk = np.cumsum(steps, axis=1) + rng.normal(0.0, 0.05, size=(table.shape[0], 1))
    return (table * np.exp(walk)).astype(np.float32)


#: Endmember -> group whose SWIR (A1..A8) is scaled together by the calibration.
SWIR_GROUPS: dict[str, str] = {
    **{n: "vegetation" for n in ("grass", "crop_green", "crop_young", "crop_senescent", "tree_broadleaf",
                                 "tree_conifer", "dry_vegetation")},
    **{n: "soil" for n in ("soil_dry", "soil_moist", "soil_dark", "dirt_compacted", "gravel")},
    **{n: "paved" for n in ("asphalt_new", "asphalt_old", "concrete", "paint_white")},
    **{n: "roof" for n in ("roof_tile_red", "roof_slate", "roof_metal", "roof_membrane", "roof_bitumen")},
    **{n: "water" for n in ("water_clear", "water_turbid", "water_algal")},
    **{n: "vehicle" for n in ("car_white", "car_dark", "car_red", "car_blue", "car_silver", "metal_rust")},
}
GROUPS: tuple[str, ...] = ("vegetation", "soil", "paved", "roof", "water", "vehicle")

#: Per group, factors on A1..A8 fitted so that real-layout scenes' per-class A signatures match
#: the real A products under the real labels (docs/swir_calibration.md; printed by
#: `python bench/swir_calibration.py --window 1280 --seed 0`). 1.0 = the library spectra above.
#: Vegetation and soils are about twice as bright in the real SWIR as in the library curves, roofs
#: 2-3x (the real roofs of these villages are bright tile and concrete), asphalt a third darker;
#: water is bounded (its real A is mostly mixed pixels, see the doc). Used by real-layout scenes only
#: (`CALIBRATED_REFLECTANCE`); the rule-based scenes keep `REFLECTANCE`.
SWIR_FACTORS: dict[str, tuple[float, ...]] = {
    "vegetation": (1.655, 2.092, 2.045, 1.898, 2.163, 2.11, 2.083, 2.12),
    "soil": (2.854, 3.082, 2.693, 2.373, 2.16, 1.995, 2.033, 2.029),
    "paved": (0.894, 0.73, 0.738, 0.669, 0.632, 0.647, 0.621, 0.634),
    "roof": (2.539, 2.956, 2.672, 2.488, 2.257, 2.045, 2.019, 2.001),
    "water": (2.083, 1.547, 1.498, 1.396, 1.225, 1.198, 1.191, 1.163),
    "vehicle": (1.031, 1.042, 1.034, 1.032, 1.025, 1.021, 1.019, 1.021),
}


def swir_scaled(factors: dict[str, tuple[float, ...]] | None = None) -> np.ndarray:
    """`REFLECTANCE` with each endmember's A1..A8 multiplied by its group's `factors` (default
    `SWIR_FACTORS`), clipped to 0.95."""
    factors = SWIR_FACTORS if factors is None else factors
    table = REFLECTANCE.copy()
    for name, i in ENDMEMBER.items():
        table[i, 8:] *= np.asarray(factors.get(SWIR_GROUPS[name], (1.0,) * 8), dtype=np.float32)
    return np.minimum(table, 0.95).astype(np.float32)


#: The table real-layout scenes render with: SWIR calibrated on the real A products (`SWIR_FACTORS`).
CALIBRATED_REFLECTANCE: np.ndarray = swir_scaled()

"""Material spectra and appearance samplers: physically plausible, and shape-defined pairs shared."""

import numpy as np
import pytest

from dstl.synthetic import looks
from dstl.synthetic.layout import build_layout
from dstl.synthetic.spectra import (
    ENDMEMBER,
    FULL_RES_WEIGHTS,
    REFLECTANCE,
    SPECTRAL_BANDS,
    sample_atmosphere,
    scene_reflectance,
)

M = {b: i for i, b in enumerate(SPECTRAL_BANDS)}
RED, EDGE, NIR1, NIR2 = M["M5"], M["M6"], M["M7"], M["M8"]
SWIR = [M[f"A{i}"] for i in range(1, 9)]


def spectrum(name: str) -> np.ndarray:
    return REFLECTANCE[ENDMEMBER[name]].astype(float)


def rgb(name: str) -> np.ndarray:
    return FULL_RES_WEIGHTS[:3] @ spectrum(name)


@pytest.mark.parametrize("name", ["grass", "crop_green", "crop_young", "tree_broadleaf", "tree_conifer"])
def test_green_vegetation_is_bright_in_nir_with_a_red_edge(name):
    s = spectrum(name)
    assert s[NIR1] > 3 * s[RED]
    assert s[RED] < s[EDGE] < s[NIR1]
    assert s[M["M3"]] > s[M["M2"]] and s[M["M3"]] > s[RED]  # the green bump


@pytest.mark.parametrize("name", ["water_clear", "water_turbid", "water_algal"])
def test_water_is_dark_in_nir_and_swir(name):
    s = spectrum(name)
    assert s[NIR1] < 0.06 and s[NIR2] < 0.04
    assert s[SWIR].max() < 0.02
    assert s[M["M3"]] > s[NIR2]
    assert s[NIR1] < spectrum("grass")[NIR1] / 5


@pytest.mark.parametrize("a, b", [("roof_slate", "asphalt_old"), ("roof_bitumen", "asphalt_new"),
                                  ("dirt_compacted", "roof_tile_red"), ("soil_dry", "roof_tile_red")])
def test_lookalikes_in_rgb_are_apart_in_swir(a, b):
    d_rgb = np.linalg.norm(rgb(a) - rgb(b))
    d_swir = np.linalg.norm(spectrum(a)[SWIR] - spectrum(b)[SWIR])
    assert d_rgb < 0.1
    assert d_swir > 2 * d_rgb


def test_full_res_bands_are_the_pansharpened_rgb_and_a_broadband_pan():
    assert FULL_RES_WEIGHTS.shape == (4, 16)
    assert np.allclose(FULL_RES_WEIGHTS.sum(axis=1), 1.0)
    s = spectrum("crop_green")
    assert np.isclose(FULL_RES_WEIGHTS[0] @ s, s[RED])


def test_scene_jitter_is_smooth_deterministic_and_moderate():
    a = scene_reflectance(np.random.default_rng(1))
    b = scene_reflectance(np.random.default_rng(1))
    c = scene_reflectance(np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    ratio = a / REFLECTANCE
    assert 0.6 < ratio.min() and ratio.max() < 1.6
    # Neighbouring bands move together: band-to-band changes are small.
    assert np.abs(np.diff(np.log(ratio), axis=1)).max() < 0.15


def test_atmosphere_scatters_more_at_short_wavelengths():
    atm = sample_atmosphere(np.random.default_rng(0))
    assert np.all(np.diff(atm.path_radiance) <= 0)
    assert np.all(np.diff(atm.diffuse) <= 1e-9)  # shadows keep more blue than NIR/SWIR
    assert np.all((atm.transmittance > 0.5) & (atm.transmittance <= 1))


def test_shape_defined_pairs_share_their_material_pools():
    """Waterways and standing water draw from one water sampler; roads and tracks from one pool
    of surfaces: collect the main materials every such object uses over a few landscapes."""
    water_types = {ENDMEMBER[n] for n in looks.WATER_TYPES}
    surfaces = {ENDMEMBER[n] for n in looks.SURFACES}
    used = {3: set(), 4: set(), 7: set(), 8: set()}
    for seed in range(6):
        layout = build_layout(np.random.default_rng(seed), 900, 900)
        for o in layout.objects:
            if o.cls in used:
                used[o.cls].add(o.look.materials[0])
    assert used[7] and used[8] and used[3] and used[4]
    assert used[7] <= water_types and used[8] <= water_types
    paint, grass = ENDMEMBER["paint_white"], ENDMEMBER["grass"]
    assert used[3] - {paint} <= surfaces and used[4] - {grass} <= surfaces
    assert len((used[3] & used[4]) & surfaces) >= 3  # the same materials occur on both


def test_the_water_sampler_does_not_know_the_class():
    """One sampler, same draws: a waterway and a pond made from the same random state look the same."""
    a = looks.water(np.random.default_rng(5))
    b = looks.water(np.random.default_rng(5))
    assert a == b
    kinds = {looks.water(np.random.default_rng(s)).materials[0] for s in range(40)}
    assert kinds == {ENDMEMBER[n] for n in looks.WATER_TYPES}

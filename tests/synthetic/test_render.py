"""Rendering: pixels agree with labels, physics shows in the bands, coarse products are area means."""

import numpy as np
import pytest
from scipy import ndimage

from dstl.synthetic.image import make_image
from dstl.synthetic.render import (
    CLASS_PRIORITY,
    _area_matrix,
    _tables,
    object_map,
    sample_product_geometry,
    shadow_map,
    top_class,
)
from dstl.synthetic.writer import image_seed

# Image 5 of seed 12's training split at 384 x 384 has wide water, crops, trees and a track.
SEED, K, SIZE = 12, 5, (384, 384)


@pytest.fixture(scope="module")
def image():
    return make_image(np.random.default_rng(image_seed(SEED, K)), "synth_9100_0_1", SIZE)


def _on_full_grid(band: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A coarse band sampled at the full-res pixel centres (nearest coarse pixel)."""
    h, w = band.shape
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(int), h - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(int), w - 1)
    return band[np.ix_(rows, cols)].astype(float)


def test_every_pixel_is_drawn_with_an_object_of_its_top_label_class(image):
    tables = _tables(image.layout)
    obj = object_map(image.layout, image.masks, tables)
    assert np.array_equal(tables.cls[obj], top_class(image.masks))


def test_top_class_follows_the_priority_order():
    masks = np.zeros((10, 1, 3), dtype=np.uint8)
    masks[2, 0, :] = 1      # road everywhere
    masks[9, 0, 1] = 1      # a small vehicle on it
    masks[5, 0, 2] = 1      # crops under the road at the last pixel
    assert top_class(masks).tolist() == [[3, 10, 3]]
    assert CLASS_PRIORITY.index(10) < CLASS_PRIORITY.index(3) < CLASS_PRIORITY.index(6)


def test_water_is_dark_and_vegetation_bright_in_nir_where_the_labels_say_so(image):
    H, W = image.masks.shape[1:]
    m = image.products["M"]
    a = image.products["A"]
    nir = _on_full_grid(m[6], (H, W))        # M7, NIR1
    red = _on_full_grid(m[4], (H, W))        # M5
    swir = _on_full_grid(a[5], (H, W))       # A6
    # Stay a few M pixels (and the mis-registration) away from edges.
    water = ndimage.binary_erosion(image.masks[6] | image.masks[7], iterations=8)
    # Trees: always green (crops may be bare soil or ripe, yet labelled crops, as in DSTL).
    veg = ndimage.binary_erosion(image.masks[4], iterations=4)
    assert water.sum() > 200 and veg.sum() > 200
    assert np.median(nir[water]) < 0.35 * np.median(nir[veg])
    ndvi = (nir - red) / np.maximum(nir + red, 1)
    assert np.median(ndvi[veg]) > 0.3 > np.median(ndvi[water])
    wide_water = ndimage.binary_erosion(image.masks[6] | image.masks[7], iterations=20)
    if wide_water.sum() > 50:  # the A pixels are 25 px: only wide water is pure in SWIR
        assert np.median(swir[wide_water]) < 0.5 * np.median(swir[veg])


def test_shadows_darken_the_ground_they_fall_on(image):
    H, W = image.masks.shape[1:]
    sh = shadow_map(image.layout)
    assert sh.shape == (H, W) and sh.max() > 0
    crops = top_class(image.masks) == 6
    p = image.products["P"].astype(float)
    shaded = crops & (sh > 200)
    lit = crops & (sh == 0)
    assert shaded.sum() > 100
    assert np.median(p[shaded]) < 0.6 * np.median(p[lit])


def test_coarse_products_are_area_means_of_the_full_resolution_scene(image):
    """Block means of the 3-band red and the M red band agree closely (same surfaces, M a little
    mis-registered); the A product is smoother still."""
    H, W = image.masks.shape[1:]
    red_full = image.products["3"][0].astype(float)
    m_red = image.products["M"][4].astype(float)
    h, w = m_red.shape
    block = red_full[: (H // 4) * 4, : (W // 4) * 4].reshape(H // 4, 4, W // 4, 4).mean(axis=(1, 3))
    n = min(h, H // 4), min(w, W // 4)
    r = np.corrcoef(block[: n[0], : n[1]].ravel(), m_red[: n[0], : n[1]].ravel())[0, 1]
    assert r > 0.8
    a_red = image.products["A"][0]
    assert a_red.shape[0] == pytest.approx(H / 25, abs=1.5)


def test_product_sizes_and_misregistration_are_like_the_real_data():
    rng = np.random.default_rng(0)
    for H, W in ((3348, 3403), (3348, 3392), (512, 515)):
        g = sample_product_geometry(rng, H, W)
        assert abs(g.m_size[0] - round(H / 4)) <= 1 and abs(g.m_size[1] - round(W / 4)) <= 1
        assert abs(g.a_size[0] - round(H / 25)) <= 1 and abs(g.a_size[1] - round(W / 25)) <= 1
        assert max(map(abs, g.m_shift)) <= 2.5 and max(map(abs, g.a_shift)) <= 8


def test_area_matrix_averages_cells_and_applies_the_shift():
    mat = _area_matrix(5, 20, 4, 0.0).toarray()
    assert np.allclose(mat.sum(axis=1), 1.0)
    assert np.allclose(mat, np.eye(5))  # output pixel = exactly one 4-px cell
    ramp = np.arange(5, dtype=float)
    shifted = _area_matrix(5, 20, 4, 2.0).toarray() @ ramp
    assert np.allclose(shifted[:4], ramp[:4] + 0.5)  # half a cell over: the mean of two cells
    coarse = _area_matrix(2, 20, 4, 0.0).toarray()  # 10-px pixels over 4-px cells
    assert np.allclose(coarse @ np.ones(5), 1.0)
    assert np.allclose(coarse[0], [0.4, 0.4, 0.2, 0, 0])

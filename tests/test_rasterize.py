"""dstl.rasterize: polygons in grid coordinates -> (10, H, W) masks by the pixel-centre rule."""

import numpy as np
import pytest
import shapely
from shapely.geometry import GeometryCollection, LineString, MultiPolygon, Polygon, box

from dstl.grid import GridTransform
from dstl.rasterize import rasterize_class, rasterize_classes, rasterize_pixels


def centres_inside(geom_px, h: int, w: int) -> np.ndarray:
    """Reference rule, independent of GDAL: is each pixel centre (c+.5, r+.5) inside the polygon?"""
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    return shapely.contains_xy(geom_px, cols, rows).astype(np.uint8)


def test_transform_both_ways_on_hand_computed_numbers():
    t = GridTransform(height=99, width=199, xmax=0.0092, ymin=-0.0090)
    # W' = W*W/(W+1) = 198.005, H' = H*H/(H+1) = 98.01
    assert t.x_scale == pytest.approx(198.005 / 0.0092)
    assert t.y_scale == pytest.approx(98.01 / -0.0090)
    corner = t.to_pixels(Polygon([(0, 0), (0.0092, 0), (0.0092, -0.0090), (0, -0.0090)]))
    assert corner.bounds == pytest.approx((0.0, 0.0, 198.005, 98.01))  # y=0 is the top row
    p = Polygon([(0.001, -0.002), (0.005, -0.0021), (0.004, -0.008)])
    back = t.to_grid(t.to_pixels(p))
    assert np.allclose(shapely.get_coordinates(back), shapely.get_coordinates(p), atol=1e-15)


def test_pixel_centre_rule():
    # A pixel is in iff the box contains its centre (c + 0.5, r + 0.5).
    expected = [[1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    assert rasterize_pixels(box(0.4, 0.4, 2.6, 1.6), 3, 4).tolist() == expected
    assert rasterize_pixels(box(0.6, 0.6, 2.4, 1.4), 3, 4).sum() == 0  # touches pixels, no centre
    assert rasterize_pixels(box(0.45, 0.45, 0.55, 0.55), 3, 4).tolist()[0] == [1, 0, 0, 0]


def test_matches_the_reference_rule_on_random_polygons():
    rng = np.random.default_rng(1)
    h, w = 41, 57
    for _ in range(30):
        c = rng.uniform([0, 0], [w, h])
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        r = rng.uniform(2, 15, 9)
        poly = shapely.make_valid(Polygon(c + np.c_[r * np.cos(angles), r * np.sin(angles)]))
        assert np.array_equal(rasterize_pixels(poly, h, w), centres_inside(poly, h, w))


def test_holes_are_respected():
    ring = Polygon(box(1, 1, 9, 9).exterior.coords, [box(3, 3, 7, 7).exterior.coords])
    mask = rasterize_pixels(ring, 10, 10)
    assert mask.sum() == 64 - 16
    assert mask[4:7, 4:7].sum() == 0 and mask[1, 1] == 1 and mask[0, 0] == 0
    island = MultiPolygon([ring, box(4, 4, 6, 6)])  # an island inside the hole
    assert rasterize_pixels(island, 10, 10).sum() == 64 - 16 + 4


def test_empty_and_non_polygonal_geometry_give_zeros():
    assert rasterize_pixels(None, 5, 6).shape == (5, 6)
    assert rasterize_pixels(MultiPolygon(), 5, 6).sum() == 0
    assert rasterize_pixels(LineString([(0, 0), (5, 5)]), 5, 6).sum() == 0
    gc = GeometryCollection([box(0, 0, 2, 2), LineString([(0, 0), (5, 5)])])
    assert rasterize_pixels(gc, 5, 6).sum() == 4


@pytest.mark.parametrize("h, w", [(37, 53), (53, 37), (1, 9), (64, 64)])
def test_rasterize_classes_in_grid_coordinates_odd_sizes(h, w):
    t = GridTransform(h, w, 0.00917, -0.00904)
    px = {
        # edges off the pixel centres, so that the reference rule has no boundary ties
        1: box(0, 0, 0.5 * w + 0.13, 0.5 * h + 0.13),  # top-left (y grows downwards in pixels)
        4: box(0.5 * w + 0.37, 0.5 * h + 0.37, w, h),   # bottom-right
        7: MultiPolygon(),                   # EMPTY
    }
    masks = rasterize_classes({k: t.to_grid(g) for k, g in px.items()}, t)
    assert masks.shape == (10, h, w) and masks.dtype == np.uint8
    assert set(np.unique(masks)) <= {0, 1}
    for k, g in px.items():
        assert np.array_equal(masks[k - 1], centres_inside(g, h, w)), k
    assert masks[[1, 2, 4, 5, 6, 7, 8, 9]].sum() == 0  # absent and empty classes are zero
    if h > 1:
        assert masks[0, 0, 0] == 1 and masks[0, -1, -1] == 0
        assert masks[3, -1, -1] == 1 and masks[3, 0, 0] == 0


def test_grid_polygon_maps_to_expected_pixels():
    # A building at grid x in [0.001, 0.002], y in [-0.003, -0.002] on a 100x100 image.
    t = GridTransform(100, 100, 0.01, -0.01)
    masks = rasterize_class(box(0.001, -0.003, 0.002, -0.002), t)
    s = 100 * 100 / 101 / 0.01  # pixels per grid unit
    rows, cols = np.nonzero(masks)
    # centres c+0.5 in [0.001*s, 0.002*s] = [9.90, 19.80] -> columns 10..19; rows likewise 20..29
    assert (cols.min(), cols.max()) == (10, 19)
    assert (rows.min(), rows.max()) == (20, 29)
    assert masks.sum() == 100
    assert s * 0.001 < 10.5 and s * 0.002 > 19.5


def test_rasterize_classes_rejects_bad_class_ids():
    t = GridTransform(10, 10, 0.009, -0.009)
    with pytest.raises(ValueError, match="class ids"):
        rasterize_classes({0: box(0, -0.001, 0.001, 0)}, t)
    with pytest.raises(ValueError, match="class ids"):
        rasterize_classes({11: None}, t)

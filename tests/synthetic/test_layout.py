"""Synthetic landscapes: realistic sizes, shapes and frequencies; labels consistent with layers."""

import numpy as np
import pytest
import shapely
from shapely.geometry import box

from dstl.synthetic.layout import FULL_SCENE_PX, LAYER_VEHICLES, build_layout
from dstl.synthetic.shapes import elongation, m
from dstl.synthetic.spectra import ENDMEMBER

#: Main materials of unlabelled paved ground (car parks, yards, drives).
_PAVED = {ENDMEMBER[n] for n in ("asphalt_old", "asphalt_new", "concrete", "gravel")}


@pytest.fixture(scope="module")
def layouts():
    """A few 1200 x 1300 px landscapes (~370 x 400 m)."""
    return [build_layout(np.random.default_rng(seed), 1200, 1300) for seed in range(8)]


def _side_lengths(geom) -> tuple[float, float]:
    c = shapely.get_coordinates(shapely.minimum_rotated_rectangle(geom))
    a, b = np.hypot(*(c[1] - c[0])), np.hypot(*(c[2] - c[1]))
    return max(a, b), min(a, b)


def test_layout_is_deterministic():
    a = build_layout(np.random.default_rng(3), 500, 600)
    b = build_layout(np.random.default_rng(3), 500, 600)
    assert len(a.objects) == len(b.objects)
    for x, y in zip(a.objects, b.objects, strict=True):
        assert x.cls == y.cls and x.geom.equals(y.geom) and x.look == y.look


def test_vehicles_have_real_sizes(layouts):
    small = [o.geom for lay in layouts for o in lay.objects if o.cls == 10]
    large = [o.geom for lay in layouts for o in lay.objects if o.cls == 9]
    assert len(small) > 10 and large
    for g in small:
        length, width = _side_lengths(g)
        assert m(3.9) <= length <= m(5.0) and m(1.6) <= width <= m(2.0)  # ~15 x 6 px
    for g in large:
        length, width = _side_lengths(g)
        assert m(6.4) <= length <= m(16.1) and m(2.2) <= width <= m(2.7)


def test_vehicles_sit_on_roads_tracks_or_paved_ground_and_keep_the_road_label(layouts):
    on_road = 0
    for lay in layouts:
        labels = lay.class_geometries()
        ground = shapely.union_all([o.geom for o in lay.objects if o.cls in (3, 4) or
                                    (o.cls == 0 and o.look.materials[0] in _PAVED)])
        for o in lay.objects:
            if o.layer == LAYER_VEHICLES:
                assert o.geom.difference(ground).area < 0.1 * o.geom.area
                if 3 in labels and labels[3].intersection(o.geom).area > 0.9 * o.geom.area:
                    on_road += 1  # overlapping classes: the road label runs under the vehicle
    assert on_road > 5


def test_buildings_are_rectangles_and_l_shapes_of_house_to_barn_size(layouts):
    parts = [o.geom for lay in layouts for o in lay.objects if o.cls == 1]
    assert len(parts) > 20
    for g in parts:
        assert len(shapely.get_coordinates(g)) == 5  # each part a rectangle (L-shapes: two parts)
        length, width = _side_lengths(g)
        assert m(2) < width and length < m(41)


def test_waterways_are_long_and_thin_standing_water_is_compact():
    long_ones, compact = [], []
    for seed in range(12):
        lay = build_layout(np.random.default_rng(seed), 1500, 1500)
        frame = box(0, 0, 1500, 1500)
        for cls, out in ((7, long_ones), (8, compact)):
            bodies = shapely.union_all([o.geom for o in lay.objects if o.cls == cls]).intersection(frame)
            for part in shapely.get_parts(bodies):
                if part.area > 500:
                    out.append(elongation(part))
    assert len(long_ones) >= 3 and len(compact) >= 3
    # perimeter² / (4 area): ~length/width; a disc scores pi, a square 4.
    assert min(long_ones) > 15
    assert max(compact) < 6


def test_labels_are_valid_inside_the_image_and_layers_hide_what_is_below(layouts):
    for lay in layouts:
        labels = lay.class_geometries()
        frame = box(0, 0, lay.width, lay.height)
        for cls, g in labels.items():
            assert 1 <= cls <= 10 and g.is_valid and not g.is_empty
            assert g.difference(frame).area < 1e-6
        for upper, lower in ((1, 3), (3, 6), (5, 6), (7, 6), (8, 5), (1, 6), (4, 6)):
            if upper in labels and lower in labels:
                assert labels[upper].intersection(labels[lower]).area < 1.0, (upper, lower)


def test_full_size_scenes_have_realistic_class_frequencies():
    """Crops and trees dominate by area; vehicles and structures are rare and tiny."""
    H, W = FULL_SCENE_PX
    area = np.zeros(11)
    n_small = []
    for seed in range(3):
        lay = build_layout(np.random.default_rng(100 + seed), H, W)
        for cls, g in lay.class_geometries().items():
            area[cls] += g.area
        n_small.append(sum(o.cls == 10 for o in lay.objects))
    share = area / (3 * H * W)
    assert share[5] + share[6] > 0.3
    assert share[6] > share[1] and share[5] > share[1]
    assert share[9] + share[10] < 0.002
    assert share[2] < 0.01
    assert share[1] < 0.08
    assert max(n_small) < 300


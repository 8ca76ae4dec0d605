"""dstl.metrics: the Kaggle polygon Jaccard and pixel IoU/Dice on hand-computed cases."""

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from dstl.metrics import jaccard_sums, kaggle_jaccard, pixel_counts, pixel_scores, scores_from_counts


def test_kaggle_jaccard_sums_areas_over_images_before_dividing():
    truth = {
        "a": {1: box(1, 0, 3, 2), 3: box(0, 0, 1, 1)},
        "b": {1: box(0, 0, 1, 1)},
    }
    pred = {
        "a": {1: box(0, 0, 2, 2), 3: box(0, 0, 1, 1)},  # class 1: I = 2, U = 6
        "b": {1: box(0, 0, 1, 1)},                      # class 1: I = 1, U = 1
        "not-scored": {1: box(0, 0, 100, 100)},          # not in truth: ignored
    }
    s = kaggle_jaccard(pred, truth)
    assert s["per_class"][1] == pytest.approx(3 / 7)  # not the mean of 1/3 and 1
    assert s["per_class"][3] == pytest.approx(1.0)
    assert [s["per_class"][k] for k in (2, 4, 5, 6, 7, 8, 9, 10)] == [None] * 8  # empty union
    assert s["mean"] == pytest.approx((3 / 7 + 1.0) / 2)  # None classes left out of the mean
    assert list(s["per_class"]) == list(range(1, 11))


def test_missing_predictions_count_as_empty():
    truth = {"a": {2: box(0, 0, 2, 2)}, "b": {2: box(0, 0, 2, 2)}}
    s = kaggle_jaccard({"a": {2: box(0, 0, 2, 2)}}, truth)  # image b missing entirely
    assert s["per_class"][2] == pytest.approx(4 / 8)
    s = kaggle_jaccard({"a": {}, "b": {2: None}}, truth)  # classes missing or None
    assert s["per_class"][2] == 0.0 and s["mean"] == 0.0


def test_false_positives_on_an_empty_truth_class_score_zero():
    s = kaggle_jaccard({"a": {9: box(0, 0, 1, 1)}}, {"a": {9: MultiPolygon()}})
    assert s["per_class"][9] == 0.0 and s["mean"] == 0.0


def test_all_classes_empty_gives_no_mean():
    s = kaggle_jaccard({"a": {}}, {"a": {k: MultiPolygon() for k in range(1, 11)}})
    assert s == {"per_class": {k: None for k in range(1, 11)}, "mean": None}
    assert kaggle_jaccard({}, {})["mean"] is None


def test_holes_and_invalid_predictions():
    ring = Polygon(box(0, 0, 4, 4).exterior.coords, [box(1, 1, 3, 3).exterior.coords])  # area 12
    bowtie = Polygon([(0, 0), (4, 4), (4, 0), (0, 4), (0, 0)])  # invalid; lobes of area 4 + 4
    inter, union = jaccard_sums({5: bowtie}, {5: ring})
    # Bow-tie lobes are the left and right triangles; each covers 4 - (2x2 hole's part 1) = 3 of the ring.
    assert inter[4] == pytest.approx(6.0)
    assert union[4] == pytest.approx(12 + 8 - 6)


def test_pixel_scores_hand_computed():
    pred = np.zeros((10, 4, 4), np.uint8)
    true = np.zeros((10, 4, 4), np.uint8)
    pred[0, :2, :2] = 1          # 4 px
    true[0, :2, :3] = 1          # 6 px, overlap 4
    pred[1, 0, 0] = 1            # false positive only
    true[2, 3, 3] = 1            # false negative only
    pred[3] = 1
    true[3] = 1                  # perfect
    s = pixel_scores(pred, true)
    assert s["iou"][1] == pytest.approx(4 / 6) and s["dice"][1] == pytest.approx(8 / 10)
    assert s["iou"][2] == 0.0 and s["dice"][2] == 0.0
    assert s["iou"][3] == 0.0 and s["dice"][3] == 0.0
    assert s["iou"][4] == 1.0 and s["dice"][4] == 1.0
    assert all(s["iou"][k] is None and s["dice"][k] is None for k in range(5, 11))
    assert s["mean_iou"] == pytest.approx((4 / 6 + 0 + 0 + 1) / 4)
    assert s["mean_dice"] == pytest.approx((0.8 + 0 + 0 + 1) / 4)


def test_pixel_counts_add_up_over_images():
    rng = np.random.default_rng(0)
    a_p, a_t, b_p, b_t = (rng.random((10, 8, 9)) > 0.5 for _ in range(4))
    ca, cb = pixel_counts(a_p, a_t), pixel_counts(b_p, b_t)
    summed = scores_from_counts({k: ca[k] + cb[k] for k in ca})
    joint = pixel_scores(np.concatenate([a_p, b_p], axis=2), np.concatenate([a_t, b_t], axis=2))
    assert summed == joint  # integer counts: the same divisions, exactly


def test_pixel_scores_shape_mismatch():
    with pytest.raises(ValueError, match="equal shape"):
        pixel_scores(np.zeros((10, 4, 4)), np.zeros((10, 4, 5)))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        pixel_scores(np.zeros((4, 4)), np.zeros((4, 4)))


def test_intersection_area_part_by_part_equals_the_overlay():
    import numpy as np
    import shapely
    from shapely.geometry import MultiPolygon, Point

    from dstl.labels import union_polygons
    from dstl.metrics import intersection_area

    rng = np.random.default_rng(1)
    a = union_polygons([Point(x, y).buffer(2, 8) for x, y in rng.uniform(0, 100, (200, 2))])
    b = union_polygons([Point(x, y).buffer(3, 8) for x, y in rng.uniform(0, 100, (150, 2))])
    assert intersection_area(a, b) == pytest.approx(shapely.intersection(a, b).area, rel=1e-12)
    assert intersection_area(a, MultiPolygon()) == 0.0
    assert intersection_area(a, a) == pytest.approx(a.area, rel=1e-12)

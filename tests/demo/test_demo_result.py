"""A segmented scene re-thresholded without the model: coverage, scores, display masks, Jaccard."""

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, box

from dstl import render
from dstl.demo.result import DISPLAY_MIN_SIDE, SegmentationResult, pixel_grid, quantize, threshold_levels
from dstl.grid import GridTransform
from dstl.metrics import kaggle_jaccard, pixel_scores
from dstl.polygonize import masks_to_polygons


def _probs(h, w, seed=0):
    rng = np.random.default_rng(seed)
    # Smooth-ish fields so that masks have real regions, plus exact 0 and 1 somewhere.
    base = rng.random((10, h // 8 + 1, w // 8 + 1)).repeat(8, axis=1).repeat(8, axis=2)[:, :h, :w]
    p = np.clip(base + rng.normal(0, 0.05, (10, h, w)), 0, 1).astype(np.float32)
    p[:, 0, 0] = 0.0
    p[:, -1, -1] = 1.0
    return p


def _result(h=60, w=70, truth=True, seed=0, **kw):
    probs = _probs(h, w, seed)
    rng = np.random.default_rng(seed + 1)
    truth_masks = (_probs(h, w, seed + 1) > 0.6).astype(np.uint8) if truth else None
    transform = GridTransform(h, w, 0.0092, -0.009)
    truth_polys = masks_to_polygons(truth_masks, transform) if truth and h * w < 10**4 else None
    preview = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    result = SegmentationResult.create(image_id="9001_0_0", origin="dataset", model_key="m",
                                       model_summary="m: UNet", bands=("R", "G", "B"), probabilities=probs,
                                       preview=preview,
                                       thresholds=(0.5,) * 10, transform=transform, truth_masks=truth_masks,
                                       truth_polys=truth_polys, **kw)
    return result, probs, truth_masks, truth_polys


def test_quantize_rounds_to_255_levels_and_thresholds_match_p_ge_t():
    p = np.array([[[0.0, 0.5, 0.501, 1.0, 0.2]]] * 10, np.float32)
    q = quantize(p)
    assert q.dtype == np.uint8
    assert q[0, 0].tolist() == [0, 128, 128, 255, 51]
    assert threshold_levels([0.5] * 10).tolist() == [128] * 10
    assert threshold_levels([0.0, 1.0, 1.7, -1] + [0.5] * 6)[:4].tolist() == [0, 255, 255, 0]
    with pytest.raises(ValueError):
        threshold_levels([0.5] * 9)


@pytest.mark.parametrize("thr", [0.5, 0.05, 0.93])
def test_coverage_and_pixel_scores_from_histograms_equal_direct_computation(thr):
    result, probs, truth, _ = _result()
    thresholds = [thr] * 5 + [0.3, 0.7, 0.5, 0.1, 0.99]
    masks = result.masks(thresholds)
    # Masks are the quantised probabilities against the quantised thresholds.
    levels = threshold_levels(thresholds)
    np.testing.assert_array_equal(masks, (quantize(probs) >= levels[:, None, None]).astype(np.uint8))
    np.testing.assert_allclose(result.coverage(thresholds), masks.reshape(10, -1).mean(axis=1))
    assert result.pixel_scores(thresholds) == pixel_scores(masks, truth)


def test_display_masks_are_the_block_any_reduction_of_the_full_masks():
    result, _, truth, _ = _result(700, 500, display_max_side=256)
    f = render.display_factor(700, 500, 256)
    assert f == 3
    for thr in (0.2, 0.5, 0.8):
        full = result.masks([thr] * 10)
        np.testing.assert_array_equal(result.display_masks([thr] * 10), render.reduce_masks(full, f))
    np.testing.assert_array_equal(result.display_truth, render.reduce_masks(truth, f))
    assert result.display_preview.shape == (234, 167, 3)


def test_small_images_are_enlarged_for_display_by_pixel_replication():
    result, _, _, _ = _result(50, 40)
    up = DISPLAY_MIN_SIDE // 50
    assert result.display_preview.shape == (50 * up, 40 * up, 3)
    np.testing.assert_array_equal(result.display_preview[::up, ::up], result.preview)
    np.testing.assert_array_equal(result.display_masks([0.5] * 10)[:, ::up, ::up], result.masks([0.5] * 10))


def test_kaggle_jaccard_matches_the_metric_on_polygons_and_is_cached():
    result, _, _, truth_polys = _result()
    thresholds = [0.6] * 10
    assert result.cached_kaggle_jaccard(thresholds) is None
    pred = masks_to_polygons(result.masks(thresholds), result.transform)
    expected = kaggle_jaccard({"9001_0_0": pred}, {"9001_0_0": truth_polys})
    got = result.kaggle_jaccard(thresholds)
    assert got == expected
    assert result.cached_kaggle_jaccard(thresholds) is got
    m = result.metrics(thresholds, with_jaccard=False)
    assert m["jaccard_computed"] and m["mean"]["jaccard"] == expected["mean"]
    assert result.metrics([0.61] * 10, with_jaccard=False)["jaccard_computed"] is False


def test_without_truth_there_are_no_scores():
    result, _, _, _ = _result(truth=False)
    assert not result.has_truth
    assert result.pixel_scores([0.5] * 10) is None
    assert result.kaggle_jaccard([0.5] * 10) is None
    assert result.metrics([0.5] * 10) is None
    assert result.display_truth is None


def test_bad_shapes_are_rejected():
    probs = np.zeros((10, 8, 8), np.float32)
    common = {"image_id": "x", "origin": "upload", "model_key": "m", "model_summary": "", "bands": ("R",)}
    with pytest.raises(ValueError, match="preview"):
        SegmentationResult.create(**common, probabilities=probs, preview=np.zeros((8, 9, 3), np.uint8),
                                  thresholds=(0.5,) * 10, transform=pixel_grid(8, 8))
    with pytest.raises(ValueError, match=r"probabilities must be \(10, H, W\)"):
        SegmentationResult.create(**common, probabilities=probs[:9], preview=np.zeros((8, 8, 3), np.uint8),
                                  thresholds=(0.5,) * 10, transform=pixel_grid(8, 8))


def test_pixel_grid_maps_pixels_to_x_and_minus_y():
    t = pixel_grid(30, 40)
    geom = t.to_grid(box(2, 3, 12, 13))
    assert geom.bounds == pytest.approx((2, -13, 12, -3))
    assert isinstance(MultiPolygon([t.to_pixels(geom)]), MultiPolygon)


def test_memory_held_is_about_13_bytes_per_pixel_for_large_scenes():
    result, _, _, _ = _result(1200, 1100, truth=False)
    per_pixel = result.nbytes / (1200 * 1100)
    assert per_pixel == pytest.approx(13 * 1.25, rel=0.01)  # probs (10) + preview (3), display copies / 4


@pytest.mark.parametrize("thr", [0.5, 0.2])
def test_packed_masks_are_the_bit_field_of_the_full_masks(thr):
    result, _, truth, _ = _result()
    thresholds = [thr] * 10
    expected = render.pack_masks(result.masks(thresholds))
    np.testing.assert_array_equal(result.packed_masks(thresholds), expected)
    np.testing.assert_array_equal(result.truth_packed, render.pack_masks(truth))


def test_probe_reads_one_pixel_and_clamps_to_the_image():
    result, probs, truth, _ = _result()
    info = result.probe(7, 3, [0.5] * 10)
    q = np.rint(probs[:, 3, 7] * 255) / 255
    assert [info["probability"][k] for k in range(1, 11)] == pytest.approx(q, abs=1e-3)
    assert info["predicted"] == [k for k in range(1, 11) if q[k - 1] >= 0.5 - 1e-9]
    assert info["truth"] == [k for k in range(1, 11) if truth[k - 1, 3, 7]]
    edge = result.probe(10**6, -5, [0.5] * 10)
    assert (edge["x"], edge["y"]) == (69, 0)
    no_truth, _, _, _ = _result(truth=False)
    assert no_truth.probe(1, 1, [0.5] * 10)["truth"] is None

"""Views of a result: pictures for the shown classes / opacity / thresholds, coverage and metrics."""

import time

import numpy as np
import pytest

from dstl import render
from dstl.classes import CLASSES
from dstl.demo.result import SegmentationResult
from dstl.demo.views import (
    METRICS_HEADERS,
    VIEW_DEFINITION,
    View,
    coverage_html,
    coverage_rows,
    heatmap,
    metrics_html,
    metrics_rows,
    probe_html,
    render_view,
    status_markdown,
    timing_text,
)
from dstl.grid import GridTransform
from dstl.polygonize import masks_to_polygons


def _result(truth=True, h=48, w=40):
    rng = np.random.default_rng(3)
    probs = rng.random((10, h // 8, w // 8)).repeat(8, axis=1).repeat(8, axis=2).astype(np.float32)
    transform = GridTransform(h, w, 0.0092, -0.009)
    masks = (rng.random((10, h // 8, w // 8)) > 0.5).repeat(8, axis=1).repeat(8, axis=2).astype(np.uint8)
    return SegmentationResult.create(
        image_id="9001_0_0", origin="dataset" if truth else "upload", model_key="m",
        model_summary="m: UNet, RGB only (3 bands), trained on SYNTHETIC scenes", bands=("R", "G", "B"),
        probabilities=probs, preview=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), thresholds=(0.5,) * 10,
        transform=transform, truth_masks=masks if truth else None,
        truth_polys=masks_to_polygons(masks, transform) if truth and h * w < 10**4 else None, seconds=1.25)


def test_view_normalises_its_settings():
    v = View((5, 1, 1), 1.7, [0.2] * 9 + [-1])
    assert v.classes == (1, 5) and v.opacity == 1.0 and v.thresholds[-1] == 0.0
    with pytest.raises(ValueError):
        View((11,), 0.5, [0.5] * 10)
    with pytest.raises(ValueError):
        View((1,), 0.5, [0.5] * 3)


def test_toggling_a_class_changes_the_overlay_only_where_that_class_shows():
    result = _result()
    all_ids = tuple(c.id for c in CLASSES)
    full = render_view(result, View(all_ids, 0.6, result.thresholds))
    without = render_view(result, View(tuple(k for k in all_ids if k != 10), 0.6, result.thresholds))
    changed = np.any(full.overlay != without.overlay, axis=2)
    assert changed.any()
    # Class 10 is drawn last (on top): it shows, and can only change, where its mask is set.
    assert not changed[result.display_masks(result.thresholds)[9] == 0].any()
    none = render_view(result, View((), 0.6, result.thresholds))
    np.testing.assert_array_equal(none.overlay, result.display_preview)
    assert none.panels is None and none.compare is None
    assert full.panels is not None and full.compare is not None


def test_opacity_and_thresholds_change_the_picture_without_the_model():
    result = _result()
    ids = tuple(c.id for c in CLASSES)
    a = render_view(result, View(ids, 0.2, result.thresholds)).overlay
    b = render_view(result, View(ids, 0.9, result.thresholds)).overlay
    c = render_view(result, View(ids, 0.9, (0.95,) * 10)).overlay
    assert (a != b).any() and (b != c).any()


def test_coverage_rows_and_html():
    result = _result()
    view = View((1, 2), 0.5, (0.5,) * 10)
    rows = coverage_rows(result, view)
    assert [r["class_id"] for r in rows] == list(range(1, 11))
    assert rows[0]["shown"] and not rows[2]["shown"]
    np.testing.assert_allclose([r["coverage"] for r in rows], result.coverage(view.thresholds))
    assert rows[0]["pixels"] == int(result.masks(view.thresholds)[0].sum())
    text = coverage_html(rows)
    assert text.count("dstl-cov-row") == 10 and text.count("dstl-cov-hidden") == 8
    assert "#e6194b" in text  # the Buildings colour


def test_metrics_rows_and_html_follow_the_shown_classes():
    result = _result()
    view = View((1, 3), 0.5, (0.5,) * 10)
    rows = metrics_rows(result, view, with_jaccard=False)
    assert [r[0] for r in rows] == ["1. Buildings", "3. Road", "Mean of 2 classes"]
    assert len(rows[0]) == len(METRICS_HEADERS) and rows[0][3] == "…"  # Jaccard not computed yet
    rows = metrics_rows(result, view, with_jaccard=True)
    scores = result.metrics(view.thresholds, classes=view.classes)
    assert rows[0][1] == f"{scores['per_class']['Buildings']['iou']:.3f}" and rows[0][3] != "…"
    assert rows[-1][1] == f"{scores['mean']['iou']:.3f}"
    assert metrics_rows(result, view, with_jaccard=False)[0][3] == rows[0][3]  # from the cache now
    table = metrics_html(rows)
    assert "<table" in table and "Buildings" in table and "#e6194b" in table
    assert "No ground truth" in metrics_html(None)
    assert "nothing to score" in metrics_html(metrics_rows(result, View((), 0.5, (0.5,) * 10)))
    assert metrics_rows(_result(truth=False), view) is None


def test_every_mean_is_over_the_same_classes():
    # Class 3 (roads, 50 px minimum area): 5 predicted pixels, a speck the polygons drop: pixel IoU 0,
    # no polygon Jaccard;
    # class 1: a real square in both. Pixel and polygon means must both be over class 1 only.
    h = w = 64
    probs = np.zeros((10, h, w), np.float32)
    probs[0, 8:40, 8:40] = 0.9
    probs[2, 50, 50:55] = 0.9
    truth = np.zeros((10, h, w), np.uint8)
    truth[0, 10:40, 10:40] = 1
    transform = GridTransform(h, w, 0.0092, -0.009)
    result = SegmentationResult.create(
        image_id="9001_0_0", origin="dataset", model_key="m", model_summary="m", bands=("R", "G", "B"),
        probabilities=probs, preview=np.zeros((h, w, 3), np.uint8), thresholds=(0.5,) * 10,
        transform=transform, truth_masks=truth, truth_polys=masks_to_polygons(truth, transform))
    m = result.metrics((0.5,) * 10)
    assert m["per_class"]["Road"]["iou"] == 0.0
    assert m["per_class"]["Road"]["jaccard"] is None
    assert m["mean_over"] == [1]
    assert m["mean"]["iou"] == m["per_class"]["Buildings"]["iou"]
    assert m["mean"]["jaccard"] == m["per_class"]["Buildings"]["jaccard"]


def test_full_resolution_pictures_and_the_truth_drawn_like_the_prediction():
    result = _result(h=1104, w=896)  # shrunk for display (by 2)
    view = View((1, 2), 0.5, (0.5,) * 10)
    small = render_view(result, view)
    full = render_view(result, view, full=True)
    assert small.overlay.shape[:2] == small.image.shape[:2] == small.truth_overlay.shape[:2] == (552, 448)
    assert full.overlay.shape[:2] == full.image.shape[:2] == full.truth_overlay.shape[:2] == (1104, 896)
    expected = render.overlay(result.preview, result.masks(view.thresholds), view.classes, 0.5)
    np.testing.assert_array_equal(full.overlay, expected)
    assert _result(truth=False).display_truth is None
    assert render_view(_result(truth=False), view).truth_overlay is None


def test_heatmap_and_probe():
    result = _result()
    pic, map_height = heatmap(result, 1, result.thresholds)
    assert map_height == result.display_probs.shape[1] and pic.shape[0] > map_height
    assert pic.shape[1] == result.display_probs.shape[2]
    ringed, _ = heatmap(result, 1, result.thresholds, marker=(5, 5))
    assert (ringed != pic).any()
    info = result.probe(5, 6, result.thresholds)
    assert (info["x"], info["y"]) == (5, 6)
    assert info["probability"][1] == round(result.probs[0, 6, 5] / 255, 3)
    text = probe_html(info, result.thresholds)
    assert "x = 5, y = 6" in text and text.count("dstl-probe-row") == 10
    assert "Click the map" in probe_html(None)


def test_status_says_what_ran_how_long_and_warns_about_synthetic_weights():
    text = status_markdown(_result(), note="switched", timing="segmented in 1.2 s (model 1.0 s)")
    assert "9001_0_0" in text and "40 × 48 px" in text and "ground truth ✓" in text
    assert "1.2 s" in text and "synthetic scenes" in text and "switched" in text
    assert "no ground truth" in status_markdown(_result(truth=False))
    reused = timing_text(_result(), reused=True, request_seconds=0.02, created=time.time() - 300)
    assert reused == "20 ms: a kept result was reused (it was segmented in 1.2 s, 5 min ago)"


def test_the_view_definition_is_written_into_files():
    d = View((5, 1), 0.3, (0.2,) * 10).definition()
    assert d["classes_shown"] == [1, 5] and d["class_names_shown"] == ["Buildings", "Trees"]
    assert d["thresholds"]["Buildings"] == 0.2 and d["definition"] == VIEW_DEFINITION


def test_pictures_for_the_page_are_jpeg_over_imagery_and_png_for_masks(tmp_path):
    import io

    from PIL import Image

    from dstl.demo.views import picture_bytes, save_picture

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    data, suffix = picture_bytes(photo, photo=True)
    decoded = np.asarray(Image.open(io.BytesIO(data)))
    assert suffix == ".jpg" and decoded.shape == photo.shape
    assert np.abs(decoded.astype(int) - photo).mean() < 20  # lossy but close
    masks = (rng.random((40, 50, 3)) > 0.5).astype(np.uint8) * 255
    path = save_picture(masks, tmp_path, "m_masks", photo=False)
    assert path == tmp_path / "m_masks.png"
    np.testing.assert_array_equal(np.asarray(Image.open(path)), masks)  # exact

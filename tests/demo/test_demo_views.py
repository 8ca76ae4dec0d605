"""Views of a result: pictures for the shown classes / opacity / thresholds, coverage and metrics."""

import numpy as np
import pytest

from dstl.classes import CLASSES
from dstl.demo.result import SegmentationResult
from dstl.demo.views import (
    METRICS_HEADERS,
    View,
    coverage_html,
    coverage_rows,
    metrics_html,
    metrics_rows,
    render_view,
    status_markdown,
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
        truth_polys=masks_to_polygons(masks, transform) if truth else None, seconds=1.25)


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


def test_metrics_rows_and_html():
    result = _result()
    view = View((1,), 0.5, (0.5,) * 10)
    rows = metrics_rows(result, view, with_jaccard=False)
    assert len(rows) == 11 and rows[-1][0] == "Mean" and len(rows[0]) == len(METRICS_HEADERS)
    assert rows[0][3] == "…"  # Jaccard not computed yet
    rows = metrics_rows(result, view, with_jaccard=True)
    scores = result.metrics(view.thresholds)
    assert rows[0][1] == f"{scores['per_class']['Buildings']['iou']:.3f}"
    assert rows[0][3] != "…"
    assert metrics_rows(result, view, with_jaccard=False)[0][3] == rows[0][3]  # from the cache now
    assert "<table" in metrics_html(rows) and "Buildings" in metrics_html(rows)
    assert "No ground truth" in metrics_html(None)
    assert metrics_rows(_result(truth=False), view) is None


def test_status_says_what_ran_and_warns_about_synthetic_weights():
    text = status_markdown(_result(), note="switched")
    assert "9001_0_0" in text and "40 × 48 px" in text and "ground truth ✓" in text
    assert "1.2 s" in text and "synthetic scenes" in text and "switched" in text
    assert "no ground truth" in status_markdown(_result(truth=False))


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

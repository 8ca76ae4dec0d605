"""dstl/train/validate.py: threshold tuning from histograms, whole-image validation scores."""

import numpy as np
import pytest

from dstl.dataset import DstlDataset
from dstl.train.validate import ThresholdTuner, ValImage, validate


def test_histogram_iou_equals_direct_computation():
    rng = np.random.default_rng(0)
    probs = rng.random((10, 50, 60)).astype(np.float32)
    masks = (rng.random((10, 50, 60)) < 0.2).astype(np.uint8)
    tuner = ThresholdTuner()
    tuner.add(probs[:, :25], masks[:, :25])   # two "images"
    tuner.add(probs[:, 25:], masks[:, 25:])
    for k in (0, 4, 9):
        for t in (0.1, 0.35, 0.5, 0.85):
            pred = probs[k] >= t
            truth = masks[k] != 0
            direct = (pred & truth).sum() / (pred | truth).sum()
            assert tuner.iou(k, t) == pytest.approx(direct, abs=2e-3)


def test_best_threshold_separates_and_prefers_the_middle_on_ties():
    masks = np.zeros((10, 10, 10), dtype=np.uint8)
    masks[0, :5] = 1
    masks[1, :3] = 1
    probs = np.where(masks, 0.7, 0.3).astype(np.float32)
    probs[1] = np.where(masks[1], 0.25, 0.1)   # class 2 positives only reach 0.25
    tuner = ThresholdTuner()
    tuner.add(probs, masks)
    grid = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    best = tuner.best(grid)
    assert best[0] == 0.5          # anything in (0.3, 0.7] separates perfectly; 0.5 is nearest the default
    assert best[1] == 0.2          # the only grid value in (0.1, 0.25]
    assert best[2:] == [0.5] * 8   # no positives: default kept


def _val_images(root):
    ds = DstlDataset(root)
    return [ValImage(i, ds.read_scene(i, ("R", "G", "B")).data, 1.0, ds.masks(i), ds.labels(i),
                     ds.transform(i)) for i in ds.train_ids]


def test_validate_scores_a_perfect_predictor_at_one(make_dstl_folder, tmp_path):
    images = _val_images(make_dstl_folder(tmp_path / "data"))
    result = validate(lambda img: img.masks * 0.9 + 0.05, images, [0.3, 0.5, 0.7])
    present = [k for k in range(1, 11) if any(img.masks[k - 1].any() for img in images)]
    assert present == [1, 3, 5, 9]
    for k in present:
        assert result.iou[k] == pytest.approx(1.0)
    for k in (1, 3, 5):  # class 9's 3x2 px fixture vehicle is below polygonize's minimum area
        assert result.jaccard[k] > 0.9
    assert result.iou[2] is None and result.jaccard[2] is None
    assert result.thresholds == [0.5] * 10
    row = result.row()
    assert row["iou_1"] == pytest.approx(1.0) and row["threshold_10"] == 0.5


def test_validate_with_fixed_thresholds_does_not_tune(make_dstl_folder, tmp_path):
    images = _val_images(make_dstl_folder(tmp_path / "data"))
    result = validate(lambda img: img.masks * 0.4, images, [0.3], thresholds=[0.5] * 10, polygons=False)
    assert result.thresholds == [0.5] * 10
    assert result.iou[1] == 0.0 and result.jaccard == {}


def test_one_standard_error_rule_prefers_the_middle_on_a_noisy_plateau():
    # Class 1: positives at 0.45-0.95, negatives at 0.05-0.55, in 4 blocks of 512 px. The plain
    # arg-max picks some threshold on the plateau; the rule must pick one within one jackknife SE
    # of the best IoU and at least as near to 0.5.
    rng = np.random.default_rng(3)
    masks = np.zeros((10, 1024, 1024), dtype=np.uint8)
    masks[0] = rng.random((1024, 1024)) < 0.3
    probs = np.where(masks, rng.uniform(0.45, 0.95, masks.shape), rng.uniform(0.05, 0.55, masks.shape))
    tuner = ThresholdTuner()
    tuner.add(probs.astype(np.float32), masks)
    grid = [round(0.05 * i, 2) for i in range(1, 20)]
    plain, rule = tuner.best_plain(grid)[0], tuner.best(grid)[0]
    top = max(tuner.iou(0, t) for t in grid)
    assert tuner.iou(0, rule) >= top - tuner.iou_error(0, plain) - 1e-12
    assert abs(rule - 0.5) <= abs(plain - 0.5)
    assert tuner.iou_error(0, plain) > 0

"""The proof of hardness, fast: a per-pixel classifier finds water but cannot split it by shape.

The full report (more and larger scenes, Kaggle polygon Jaccard) is bench/pixel_baseline.py.
"""

import numpy as np
import pytest

from dstl.dataset import DstlDataset
from dstl.synthetic import generate_dataset
from dstl.synthetic.baseline import evaluate, fit_logistic, sample_pixels, tune_thresholds

# Seeds whose small scenes hold both waterways and standing water, in training and held out.
TRAIN_SEED, HOLDOUT_SEED, N, SIZE = 12, 2024, 6, (384, 384)


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardness")
    train = DstlDataset(generate_dataset(root / "train", N, 0, SIZE, TRAIN_SEED).root)
    hold = DstlDataset(generate_dataset(root / "holdout", N, 0, SIZE, HOLDOUT_SEED).root)
    for ds in (train, hold):  # the check means something only if both twins are there
        present = np.array([ds.masks(i).reshape(10, -1).any(axis=1) for i in ds.train_ids]).any(axis=0)
        assert present[[2, 3, 6, 7]].all()
    X, Y = sample_pixels(train, train.train_ids, 3000, 800, np.random.default_rng(0))
    clf = fit_logistic(X, Y)
    tune_thresholds(clf, train, train.train_ids)
    return evaluate(clf, hold, hold.train_ids, polygons=False)


def test_spectra_alone_find_the_water(scores):
    assert scores["merged_pixel_iou"]["water (7+8)"] > 0.6


def test_spectra_alone_cannot_tell_a_waterway_from_standing_water(scores):
    """A model blind to shape can at best predict all water as both classes, scoring
    IoU_7 + IoU_8 = |waterway| / |water| + |standing| / |water| = 1; one that splits them by
    shape approaches 2. The per-pixel model stays below 1, and well below its merged score x 2."""
    iou = scores["pixel_iou"]
    merged = scores["merged_pixel_iou"]["water (7+8)"]
    assert iou[7] + iou[8] < 1.0
    assert iou[7] + iou[8] < 2 * merged - 0.4
    assert sum(scores["union_as_both_iou"][k] for k in (7, 8)) == pytest.approx(1.0)


def test_spectra_alone_cannot_tell_a_road_from_a_track(scores):
    iou = scores["pixel_iou"]
    assert iou[3] + iou[4] < 0.8
    assert iou[4] < 0.3

"""dstl.synthetic.swir: class shares of A pixels, signatures, and the SWIR fit on small cases."""

from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, box

from dstl.synthetic import spectra
from dstl.synthetic.swir import NONE, class_fractions, fit_group_factors, signatures

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "real"


def test_class_fractions_of_a_square_on_the_a_grid():
    # A 4 x 4 A grid over a grid extent of 0.004 x -0.004: each A pixel ~0.001 grid units.
    # (W' = W*W/(W+1) makes the pixels a hair larger than 0.001.)
    square = MultiPolygon([box(0.0, -0.002, 0.002, 0.0)])        # the top-left 2 x 2 A pixels
    f = class_fractions({5: square}, 0.004, -0.004, (4, 4))
    assert f.shape == (11, 4, 4)
    assert f[4, :2, :2].min() > 0.8 and f[4, 2:, :].max() == 0 and f[4, :, 2:].max() == 0
    np.testing.assert_allclose(f[NONE] + f[4], 1.0, atol=1e-6)  # one class only: shares add up
    assert f[0].max() == 0


def test_signatures_are_means_of_pure_pixels():
    fractions = np.zeros((11, 2, 3), np.float32)
    fractions[4, 0, :] = 1.0      # top row: trees
    fractions[NONE, 1, :2] = 1.0  # bottom left: no class
    fractions[4, 1, 2] = 0.5      # mixed: not pure
    fractions[NONE, 1, 2] = 0.5
    values = np.zeros((8, 2, 3), np.float32)
    values[:, 0, :] = 0.3
    values[:, 1, :] = 0.1
    values[:, 1, 2] = 0.9
    sig = signatures([(values, fractions)])
    np.testing.assert_allclose(sig.mean[4], 0.3)
    np.testing.assert_allclose(sig.mean[NONE], 0.1)
    assert sig.n[4] == 3 and sig.n[NONE] == 2 and sig.n[0] == 0 and np.isnan(sig.mean[0]).all()


def test_fit_recovers_known_factors_of_a_linear_world():
    rng = np.random.default_rng(1)
    groups, classes = 3, 6
    contrib = rng.uniform(0.02, 0.2, (groups, classes, 8))    # each group's share of each class's value
    offset = 0.01
    base = offset + contrib.sum(0)
    doubled = np.stack([base + contrib[g] for g in range(groups)])
    truth = np.array([1.8, 0.6, 1.2])[:, None] * np.ones(8)
    target = offset + (truth[:, None, :] * contrib).sum(0)
    f = fit_group_factors(base, doubled, target, np.ones(classes), ridge=1e-6)
    np.testing.assert_allclose(f, truth, atol=1e-3)
    # A class left out (weight 0) does not take part; bounds hold.
    f2 = fit_group_factors(base, doubled, target * 50, np.ones(classes), bounds=(0.5, 2.0))
    assert f2.min() >= 0.5 and f2.max() <= 2.0


@pytest.mark.skipif(not (REAL / "train_geojson_v3").is_dir(), reason="../shared/real not present")
def test_fit_through_the_renderer_on_a_small_real_layout_scene():
    """Render one small real-layout scene with known SWIR factors, then recover them by the fit."""
    from dstl.synthetic.real_layout import class_rich_windows, load_real_source, prepare_real_layout

    source = load_real_source(REAL, "6010_1_2")
    # A full-resolution window, so that A pixels are 7.5 m and trees have pure ones.
    prepared = prepare_real_layout(source, 0, window=class_rich_windows(source, 1024, 1)[0])

    def sig(table):
        img = prepared.render(table)
        a = img.products["A"].astype(np.float32) / 16383
        return signatures([(a, class_fractions(img.labels, img.xmax, img.ymin, a.shape[1:]))])

    groups = ("vegetation", "soil")
    truth = {"vegetation": (1.6,) * 8, "soil": (0.7,) * 8}
    target = sig(spectra.swir_scaled(truth))
    base = sig(spectra.REFLECTANCE)
    doubled = np.stack([sig(spectra.swir_scaled({g: (2.0,) * 8})).mean for g in groups])
    weight = ((base.n >= 20) & (target.n >= 20)).astype(float)
    assert weight.sum() >= 2  # trees and the ground at least
    f = fit_group_factors(np.nan_to_num(base.mean), np.nan_to_num(doubled), np.nan_to_num(target.mean),
                          weight, ridge=1e-4)
    # Vegetation (trees, crops, meadows) dominates this image: its factor is recovered closely.
    np.testing.assert_allclose(f[0], 1.6, atol=0.12)
    err_before = np.abs(base.mean - target.mean)[weight > 0].mean()
    assert err_before > 0.02

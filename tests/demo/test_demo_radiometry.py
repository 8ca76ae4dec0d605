"""Bringing an 8-bit photo onto a model's input statistics, and saying how far off it was."""

import numpy as np
import pytest

from dstl.bands import RGB_BANDS
from dstl.demo.radiometry import band_statistics, distances, match_bands, photo_pixels
from dstl.normalization import BandStats
from dstl.scene import Scene

STATS = BandStats(RGB_BANDS, (0.12, 0.13, 0.09), (0.066, 0.041, 0.037))


def _photo(seed=0, h=60, w=80):
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal((110, 130, 90), (40, 30, 25), (h, w, 3)), 0, 255).round().astype(np.uint8)
    return Scene("photo", np.moveaxis(pixels, -1, 0).astype(np.float32) / 255, RGB_BANDS), pixels


def test_matched_bands_have_the_models_mean_and_spread():
    scene, _ = _photo()
    matched, report = match_bands(scene, STATS)
    mean, std = band_statistics(matched.data)
    np.testing.assert_allclose(mean, STATS.mean, atol=2e-3)  # clipping at 0 moves it very slightly
    np.testing.assert_allclose(std, STATS.std, rtol=0.05)  # R: mean 1.8 std above 0, so ~4 % are clipped
    # After the model's own normalisation each band is ~N(0, 1), as in training.
    normalised = STATS.normalize(matched.data)
    np.testing.assert_allclose(normalised.mean(axis=(1, 2)), 0, atol=0.05)
    assert matched.bands == RGB_BANDS and matched.data.dtype == np.float32
    assert 0 <= matched.data.min() and matched.data.max() <= 1


def test_the_report_says_how_far_off_the_photo_was():
    scene, _ = _photo()
    _, report = match_bands(scene, STATS)
    expected = [abs(m - mm) / s for m, mm, s in zip(scene.data.mean(axis=(1, 2)), STATS.mean, STATS.std,
                                                     strict=True)]
    np.testing.assert_allclose(report.sigmas_before, expected, rtol=1e-3)
    assert min(report.sigmas_before) > 4  # an ordinary photo is far off the 11-bit statistics
    text = report.describe()
    assert text.startswith("8-bit image") and "R, G, B" in text and "matched" in text
    assert distances(scene, STATS) == pytest.approx(dict(zip(RGB_BANDS, expected, strict=True)), rel=1e-3)


def test_a_flat_band_gets_the_models_mean():
    scene, _ = _photo()
    scene.data[1] = 0.5
    matched, _ = match_bands(scene, STATS)
    np.testing.assert_allclose(matched.data[1], STATS.mean[1], atol=1e-6)


def test_photo_pixels_are_the_photo_itself():
    scene, pixels = _photo()
    np.testing.assert_array_equal(photo_pixels(scene), pixels)

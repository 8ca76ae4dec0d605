"""The image size limits: one minimum side, one maximum pixel count set by one environment variable."""

import pytest

from dstl.errors import DataError, DstlError
from dstl.limits import (
    DEFAULT_MAX_MEGAPIXELS,
    MAX_MEGAPIXELS_ENV,
    MIN_SIDE,
    check_image_size,
    max_pixels,
)


def test_default_limit_holds_a_real_scene_but_not_a_forged_claim():
    assert max_pixels() == 64_000_000 == int(DEFAULT_MAX_MEGAPIXELS * 1e6)
    check_image_size("6120_2_2.tif", 3348, 3403)  # a real DSTL scene
    check_image_size("mosaic.tif", 8000, 8000)  # four scenes and more
    with pytest.raises(DataError, match=r"x\.tif: image of 20000 x 20000 px \(400\.0 megapixels\) is larger "
                                        r"than the limit of 64 megapixels; .*DSTL_MAX_IMAGE_MEGAPIXELS=400$"):
        check_image_size("x.tif", 20000, 20000)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (MIN_SIDE - 1, 5000), (5000, MIN_SIDE - 1)])
def test_too_small(height, width):
    with pytest.raises(DataError, match=f"{height} x {width} px is too small \\(at least {MIN_SIDE} px"):
        check_image_size("x.tif", height, width)
    check_image_size("x.tif", MIN_SIDE, MIN_SIDE)


def test_the_environment_variable_raises_and_lowers_the_limit(monkeypatch):
    monkeypatch.setenv(MAX_MEGAPIXELS_ENV, "400")
    assert max_pixels() == 400_000_000
    check_image_size("x.tif", 20000, 20000)
    monkeypatch.setenv(MAX_MEGAPIXELS_ENV, " 0.01 ")
    assert max_pixels() == 10_000
    check_image_size("x.tif", 100, 100)
    with pytest.raises(DataError, match=r"101 x 100 px \(0\.0 megapixels\) is larger than the limit of "
                                        r"0\.01 megapixels.*DSTL_MAX_IMAGE_MEGAPIXELS=1$"):
        check_image_size("x.tif", 101, 100)


@pytest.mark.parametrize("value", ["lots", "0", "-5", "nan", "inf"])
def test_a_bad_environment_value_is_named(monkeypatch, value):
    monkeypatch.setenv(MAX_MEGAPIXELS_ENV, value)
    with pytest.raises(DstlError, match=f"environment variable DSTL_MAX_IMAGE_MEGAPIXELS='{value}' must be a "
                                        "positive number of megapixels"):
        max_pixels()

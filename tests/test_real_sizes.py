"""dstl.real_sizes: the estimate from the grid size reproduces both known real sizes."""

import pytest

from dstl.real_sizes import KNOWN_THREE_BAND_SIZES, three_band_size

KNOWN_GRID = {"6010_1_2": (0.009169, -0.009042), "6120_2_2": (0.009188, -0.00904)}


@pytest.mark.parametrize("image_id", sorted(KNOWN_THREE_BAND_SIZES))
def test_grid_estimate_gives_the_known_sizes(image_id):
    # Under another id the known table is not consulted: the estimate alone must hit the size.
    size, exact = three_band_size("other", grid_size=KNOWN_GRID[image_id])
    assert (size, exact) == (KNOWN_THREE_BAND_SIZES[image_id], False)
    known = KNOWN_THREE_BAND_SIZES[image_id]
    assert three_band_size(image_id, grid_size=KNOWN_GRID[image_id]) == (known, True)


def test_a_product_estimate_is_within_15_px():
    (h, w), exact = three_band_size("other", (134, 137))
    assert not exact and abs(h - 3348) <= 15 and abs(w - 3403) <= 15
    with pytest.raises(ValueError, match="size unknown"):
        three_band_size("other")

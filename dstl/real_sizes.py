"""3-band image sizes of the real DSTL images, where known, and an estimate from the A product elsewhere.

The real 3-band and P images are not public (only the A products of the 25 training images and one
test image are, see ../shared/real/README.md), yet the pixel size of an image decides how its label
polygons rasterise. Two real sizes are known exactly; for the others the 3-band size is estimated
from the A (SWIR) product's size: the 3-band grid is ~25x finer than A's; in the two known images
the ratio is 24.99 for rows and 24.84-24.97 for columns.
"""

from __future__ import annotations

__all__ = ["KNOWN_THREE_BAND_SIZES", "A_TO_THREE_BAND", "three_band_size"]

#: (H, W) of the real 3-band TIFFs known exactly (shared/real/README.md).
KNOWN_THREE_BAND_SIZES: dict[str, tuple[int, int]] = {
    "6010_1_2": (3349, 3396),  # A 134 x 136
    "6120_2_2": (3348, 3403),  # A 134 x 137
}

#: 3-band pixels per A pixel, (rows, columns): the mean ratio of each axis over the two known
#: images ((3349/134 + 3348/134) / 2, (3396/136 + 3403/137) / 2). Rows are then exact for both
#: known images, columns within 9 px.
A_TO_THREE_BAND = ((3349 / 134 + 3348 / 134) / 2, (3396 / 136 + 3403 / 137) / 2)


def three_band_size(image_id: str, a_shape: tuple[int, int]) -> tuple[tuple[int, int], bool]:
    """((H, W), exact) of an image's 3-band grid: the known size, else estimated from A's (h, w).

    `exact` is False for an estimate. Used where a real image's labels must be rasterised without
    its 3-band TIFF (the real-geometry round trip, real-layout synthetic scenes).
    """
    if image_id in KNOWN_THREE_BAND_SIZES:
        return KNOWN_THREE_BAND_SIZES[image_id], True
    h, w = a_shape
    return (round(h * A_TO_THREE_BAND[0]), round(w * A_TO_THREE_BAND[1])), False

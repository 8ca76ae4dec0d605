"""3-band image sizes of the real DSTL images: known exactly for two, estimated for the others.

The real 3-band and P images are not public (only the A products of the 25 training images and one
test image are, see ../shared/real/README.md), yet the pixel size of an image decides how its label
polygons rasterise. Two real sizes are known exactly. For the others the size follows from the
image's grid size (grid_sizes.csv): every real image has the same ground sampling, so the grid
transform's W' = W*W/(W+1) (and H') is a fixed number of pixels per grid unit times Xmax (|Ymin|).
The two known images agree on that number to within 1e-4 (0.3 px at 3,400 px), and grid sizes are
given to 1e-6 units (0.4 px), so the estimate is within a pixel. Without a grid size, the A
product's size gives a rougher estimate (~25 3-band pixels per A pixel, within ~15 px).
"""

from __future__ import annotations

__all__ = ["KNOWN_THREE_BAND_SIZES", "PIXELS_PER_GRID_UNIT", "A_TO_THREE_BAND", "three_band_size"]

#: (H, W) of the real 3-band TIFFs known exactly (shared/real/README.md), with their grid sizes
#: (Xmax, Ymin) from the real grid_sizes.csv.
KNOWN_THREE_BAND_SIZES: dict[str, tuple[int, int]] = {
    "6010_1_2": (3349, 3396),  # grid (0.009169, -0.009042), A 134 x 136
    "6120_2_2": (3348, 3403),  # grid (0.009188, -0.00904),  A 134 x 137
}

#: W' / Xmax = H' / |Ymin| of the real data (pixels per grid unit, W' = W*W/(W+1)): the mean of
#: the four axes of the two known images (370,269; 370,272; 370,266; 370,243).
PIXELS_PER_GRID_UNIT = (3396**2 / 3397 / 0.009169 + 3349**2 / 3350 / 0.009042
                        + 3403**2 / 3404 / 0.009188 + 3348**2 / 3349 / 0.00904) / 4

#: 3-band pixels per A pixel, (rows, columns): the mean ratio of each axis over the two known
#: images ((3349/134 + 3348/134) / 2, (3396/136 + 3403/137) / 2); the fallback without a grid size.
A_TO_THREE_BAND = ((3349 / 134 + 3348 / 134) / 2, (3396 / 136 + 3403 / 137) / 2)


def three_band_size(image_id: str, a_shape: tuple[int, int] | None = None,
                    grid_size: tuple[float, float] | None = None) -> tuple[tuple[int, int], bool]:
    """((H, W), exact) of a real image's 3-band grid.

    The known size (exact=True); else, from `grid_size` (Xmax, Ymin) when given (within a pixel);
    else from the A product's (h, w) `a_shape` (within ~15 px). Used where a real image's labels
    must be rasterised without its 3-band TIFF (the real-geometry round trip, real-layout scenes).
    """
    if image_id in KNOWN_THREE_BAND_SIZES:
        return KNOWN_THREE_BAND_SIZES[image_id], True
    if grid_size is not None:
        xmax, ymin = grid_size
        # Invert W' = W*W/(W+1) = W - 1 + 1/(W+1): W = W' + 1 to within 3e-4 px.
        return (round(PIXELS_PER_GRID_UNIT * -ymin + 1), round(PIXELS_PER_GRID_UNIT * xmax + 1)), False
    if a_shape is None:
        raise ValueError(f"{image_id}: size unknown: give the grid size or the A product's shape")
    h, w = a_shape
    return (round(h * A_TO_THREE_BAND[0]), round(w * A_TO_THREE_BAND[1])), False

"""The size limits of an image, defined once and enforced by every reader.

Every array the project allocates for an image (the (C, H, W) float32 scene, the engine's
per-class accumulators, the (10, H, W) masks, the rasterised labels) is sized from the image's
3-band grid, and that size comes from a file header: a few bytes that can claim anything (a
25 kB TIFF can claim 20,000 x 20,000 px). So every reader checks the header's size against these
limits before it allocates anything:

- `MIN_SIDE` = 32 px per side, fixed: the models halve an image five times (32 = 2**5), and a
  smaller image holds too little to segment (or to rasterise labels on usefully).
- at most `max_pixels()` pixels (H x W): `DEFAULT_MAX_MEGAPIXELS` = 64 megapixels unless the
  environment variable `DSTL_MAX_IMAGE_MEGAPIXELS` (`MAX_MEGAPIXELS_ENV`) says otherwise. A real
  DSTL scene is ~3350 x 3400 = 11.4 megapixels; 64 allows mosaics of about five scenes. Reading
  and segmenting a 20-band image takes ~130 bytes per pixel (80 for the float32 scene, 40 for
  the engine's accumulators, 10 for the masks), ~8 GB at the default limit; a user who has such
  an image and the memory for it raises the limit, which every error message says how to do.

Who checks: `dstl.tiff.read_tiff` (the pixels of every TIFF, any product, any masks file),
`dstl.scene.read_grid` (the 3-band header behind `DstlDataset.image_size`, hence rasterising,
polygons, training, figures), `dstl.scene.read_scene_files` and `read_image` (predict, submit,
the app's dataset images and uploads), `dstl.engine.Predictor` (scenes built in memory) and
`dstl.synthetic` (the sizes it is asked to generate). The app's upload limits (`--max-upload-mb`,
`--max-megapixels`) are a separate, smaller policy for visitors on top of this one.
"""

import math
import os

from dstl.errors import DataError, DstlError

__all__ = ["MIN_SIDE", "DEFAULT_MAX_MEGAPIXELS", "MAX_MEGAPIXELS_ENV", "max_pixels", "raise_hint",
           "check_image_size", "check_pixels"]

#: Shortest side (pixels) of an image any command accepts.
MIN_SIDE = 32

#: Largest image (megapixels, H x W / 1e6) accepted when `MAX_MEGAPIXELS_ENV` is not set.
DEFAULT_MAX_MEGAPIXELS = 64.0

#: The environment variable that sets the largest image in megapixels (a positive number).
MAX_MEGAPIXELS_ENV = "DSTL_MAX_IMAGE_MEGAPIXELS"


def max_pixels() -> int:
    """The largest image accepted, in pixels (H x W): `MAX_MEGAPIXELS_ENV` x 1e6, or the default.

    Read from the environment at every call, so a value set before a command starts (or by a
    test) applies everywhere. Raises DstlError naming the variable if it is not a positive number.
    """
    raw = os.environ.get(MAX_MEGAPIXELS_ENV, "").strip()
    if not raw:
        return int(DEFAULT_MAX_MEGAPIXELS * 1e6)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise DstlError(f"environment variable {MAX_MEGAPIXELS_ENV}={raw!r} must be a positive number "
                        f"of megapixels (default {DEFAULT_MAX_MEGAPIXELS:g})")
    return int(value * 1e6)


def raise_hint(pixels: int) -> str:
    """How to raise the limit so that an image of `pixels` pixels is accepted (for messages)."""
    needed = math.ceil(pixels / 1e6)
    return (f"if you do have such an image and the memory for it (~130 bytes per pixel for 20 bands), "
            f"raise the limit with the environment variable {MAX_MEGAPIXELS_ENV}={needed}")


def check_pixels(name: str, height: int, width: int) -> None:
    """DataError naming `name` if an image of `height` x `width` px is over `max_pixels()`."""
    limit = max_pixels()
    pixels = int(height) * int(width)
    if pixels > limit:
        raise DataError(f"{name}: image of {height} x {width} px ({pixels / 1e6:.1f} megapixels) is larger "
                        f"than the limit of {limit / 1e6:g} megapixels; {raise_hint(pixels)}")


def check_image_size(name: str, height: int, width: int) -> None:
    """DataError naming `name` (a file, an argument) if an image of `height` x `width` px has a side
    shorter than `MIN_SIDE` or more pixels than `max_pixels()`. Call it on the header's size,
    before allocating anything for the image."""
    if min(height, width) < MIN_SIDE:
        raise DataError(f"{name}: image of {height} x {width} px is too small (at least {MIN_SIDE} px "
                        "per side: the models halve an image 5 times)")
    check_pixels(name, height, width)

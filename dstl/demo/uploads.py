"""Turn files a visitor uploads into a `Scene`, refusing anything the demo cannot or should not read.

Two kinds of upload are accepted:

- one plain image: PNG, JPEG or TIFF (8- or 16-bit; gray, RGB or RGBA), read by
  `dstl.scene.read_image` as an RGB-only scene (bands R, G, B);
- the four DSTL TIFFs of one image, named as in the Kaggle download — ``<id>.tif`` (three_band),
  ``<id>_P.tif``, ``<id>_M.tif`` and ``<id>_A.tif`` (sixteen_band) — read by
  `dstl.scene.read_scene_files` into the full 20-band scene on the 3-band grid.

Checks happen before any pixel is decoded: the file type (by name, then by content when the
reader opens it), each file's size (`max_bytes`) and the image's pixel count from its header
(`max_pixels`), so that a huge upload is refused cheaply. The uploaded file names are used only
to recognise the products and to label the result; they never become part of a path the demo
writes or reads (the readers get the upload's own temporary path). Error messages name the file
as the visitor called it, not the server's temporary path.
"""

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dstl.bands import ALL_BANDS
from dstl.errors import DataError
from dstl.scene import Scene, read_image, read_scene_files
from dstl.tiff import read_tiff_header

__all__ = ["IMAGE_SUFFIXES", "DSTL_HELP", "read_upload", "display_name", "safe_label", "image_bit_depth",
           "upload_preview"]

#: File name endings the demo accepts (case-insensitive).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

DSTL_HELP = ("upload one PNG, JPEG or TIFF image (RGB), or the four DSTL TIFFs of one image: "
             "ID.tif, ID_P.tif, ID_M.tif and ID_A.tif")

# "<id>.tif" is the three_band product, "<id>_P.tif" etc. the sixteen_band ones.
_DSTL_NAME = re.compile(r"^(?P<id>.+?)(?:_(?P<product>[PMApma]))?\.tiff?$", re.IGNORECASE)


def safe_label(name: str, limit: int = 64) -> str:
    """A display-only version of an uploaded file's stem: letters, digits, '_', '-', '.' kept."""
    stem = Path(name).stem if "." in name else name
    label = re.sub(r"[^A-Za-z0-9_.\-]+", "_", stem)
    label = re.sub(r"^[^A-Za-z0-9]+", "", label)[:limit].rstrip("._-")
    return label or "upload"


def display_name(path: str | os.PathLike) -> str:
    """The name the visitor gave the file (Gradio keeps it as the temporary file's base name)."""
    return Path(path).name


def _check_file(path: Path, max_bytes: int) -> None:
    name = display_name(path)
    if not path.is_file():
        raise DataError(f"{name}: the uploaded file is missing on the server; upload it again")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        kind = f"'{suffix}'" if suffix else "a file without an extension"
        raise DataError(f"{name}: unsupported file type {kind}; {DSTL_HELP}")
    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(f"{name}: file of {size / 2**20:.1f} MB is larger than this demo's limit of "
                        f"{max_bytes / 2**20:.0f} MB per file")
    if size == 0:
        raise DataError(f"{name}: the file is empty")


def _pixels_from_header(path: Path) -> tuple[int, int]:
    """(height, width) from the header, without decoding the pixels."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        shape = read_tiff_header(path).shape
        if len(shape) == 2:
            return shape[0], shape[1]
        if len(shape) == 3:
            # Band-first (C, H, W) has few bands first; band-last (H, W, C) few bands last.
            return (shape[1], shape[2]) if shape[0] <= shape[2] else (shape[0], shape[1])
        raise DataError(f"{path}: expected a 2-D or 3-D TIFF image, got shape {shape}")
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except Image.DecompressionBombError:
        raise DataError(f"{path}: image is far too large to read") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise DataError(f"{path}: not a readable PNG, JPEG or TIFF image") from None


def _check_pixels(path: Path, max_pixels: int) -> None:
    height, width = _pixels_from_header(path)
    if height * width > max_pixels:
        raise DataError(f"{path}: image of {width} x {height} px ({height * width / 1e6:.1f} megapixels) "
                        f"is larger than this demo's limit of {max_pixels / 1e6:.1f} megapixels")


def _named_as_uploaded(error: DataError, files: Sequence[Path]) -> DataError:
    """`error` naming the files as the visitor called them, not by the server's temporary paths."""
    message = str(error)
    for f in files:
        message = message.replace(str(f), display_name(f))
    return DataError(message)


def _dstl_products(paths: list[Path]) -> tuple[str, dict[str, Path]]:
    """Recognise <id>.tif, <id>_P.tif, <id>_M.tif, <id>_A.tif: (label, {product: path})."""
    products: dict[str, Path] = {}
    ids = set()
    for path in paths:
        m = _DSTL_NAME.match(display_name(path))
        if not m:
            raise DataError(f"{display_name(path)}: not a DSTL product TIFF; {DSTL_HELP}")
        product = (m.group("product") or "3").upper()
        if product in products:
            raise DataError(f"two files for the {product} product ({display_name(products[product])} and "
                            f"{display_name(path)}); {DSTL_HELP}")
        products[product] = path
        ids.add(m.group("id"))
    if len(ids) != 1:
        raise DataError(f"the four DSTL TIFFs must belong to one image, got ids {sorted(ids)}")
    missing = [p for p in ("3", "P", "M", "A") if p not in products]
    if missing:
        image_id = next(iter(ids))
        names = [f"{image_id}.tif" if p == "3" else f"{image_id}_{p}.tif" for p in missing]
        given = ", ".join(sorted(display_name(f) for f in products.values()))
        raise DataError(f"{len(products)} of the four DSTL TIFFs of {image_id} given ({given}): "
                        f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} missing; "
                        "upload all four together for 20-band input, or one RGB image")
    return safe_label(ids.pop()), products


def read_upload(paths: Sequence[str | os.PathLike], *, max_bytes: int, max_pixels: int) -> Scene:
    """Read an upload (one RGB image, or the four DSTL TIFFs of one image) into a Scene.

    Args:
        paths: the uploaded files (server-side temporary paths whose base names are the
            visitor's file names).
        max_bytes: the largest size allowed per file.
        max_pixels: the largest image (height x width of the 3-band grid) allowed.

    Returns:
        An RGB-only Scene (bands R, G, B) for one image, or a 20-band Scene (`ALL_BANDS`) for the
        four DSTL products. Its image_id is a display label derived from the file name.

    Raises:
        DataError: no file, wrong file type, too large, unreadable or corrupt, or a set of files
            that is not one image's four DSTL products.
    """
    files = [Path(p) for p in paths if p]
    if not files:
        raise DataError(f"no file uploaded; {DSTL_HELP}")
    for path in files:
        _check_file(path, max_bytes)
    try:
        if len(files) == 1:
            _check_pixels(files[0], max_pixels)
            scene = read_image(files[0])
            return Scene(safe_label(display_name(files[0])), scene.data, scene.bands)
        # Several files can only be DSTL products: name what is missing or doubled.
        label, products = _dstl_products(files)
        _check_pixels(products["3"], max_pixels)
        return read_scene_files({p: str(f) for p, f in products.items()}, ALL_BANDS, image_id=label)
    except DataError as e:
        raise _named_as_uploaded(e, files) from None


def image_bit_depth(path: str | os.PathLike) -> int:
    """8 or 16: the sample depth of a plain image (from its header; palette and gray images are 8)."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return 8 if read_tiff_header(path).dtype.itemsize == 1 else 16
    with Image.open(path) as img:
        return 16 if img.mode.startswith("I") else 8


def upload_preview(paths: Sequence[str | os.PathLike], *, max_bytes: int, max_pixels: int,
                   side: int = 512) -> tuple[np.ndarray, str]:
    """A small RGB picture of an upload and one line saying what it is, before anything runs.

    Checks the files as `read_upload` does (names, types, sizes, pixels) but decodes only the RGB
    image (for the four DSTL TIFFs, only ``<id>.tif``). Returns (uint8 (h, w, 3) with the longest
    side at most `side`, description); raises DataError as `read_upload` would.
    """
    from dstl import render
    from dstl.demo.radiometry import photo_pixels

    files = [Path(p) for p in paths if p]
    if not files:
        raise DataError(f"no file uploaded; {DSTL_HELP}")
    for path in files:
        _check_file(path, max_bytes)
    bits = None
    try:
        if len(files) == 1:
            _check_pixels(files[0], max_pixels)
            scene = read_image(files[0])
            bits = image_bit_depth(files[0])
            what = (f"{display_name(files[0])}: {bits}-bit RGB image, {scene.width} × {scene.height} px, for "
                    "a model made for RGB" + (" (its values will be matched to the model's training "
                                              "statistics)" if bits == 8 else ""))
        else:
            label, products = _dstl_products(files)
            _check_pixels(products["3"], max_pixels)
            scene = read_image(products["3"])
            what = (f"{label}: the four DSTL TIFFs, {scene.width} × {scene.height} px on the 3-band grid, "
                    "for 20-band input")
    except DataError as e:
        raise _named_as_uploaded(e, files) from None
    preview = photo_pixels(scene) if len(files) == 1 and bits == 8 else render.rgb_preview(scene)
    factor = render.display_factor(*preview.shape[:2], side)
    return render.reduce_image(preview, factor), what

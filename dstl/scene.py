"""A scene: aligned spectral bands of one image on its 3-band grid.

Readers for the DSTL layout (four TIFF products per image) and for plain RGB images return a
`Scene`; everything downstream (inference, rendering, training) consumes that.

- `read_scene(dataset, image_id, bands)` / `read_scene_files(files, bands)`: the 20 bands
  R, G, B, P, M1..M8, A1..A8 (`dstl.bands.ALL_BANDS`, or any subset in any order) of one DSTL
  image, each product resampled bilinearly (pixel-centre aligned) onto that image's 3-band grid
  and scaled to [0, 1] by its bit depth.
- `read_image(path)`: a PNG, JPEG or TIFF photo as bands R, G, B (`dstl.bands.RGB_BANDS`).
"""

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import tifffile
from PIL import Image, ImageOps, UnidentifiedImageError

from dstl.bands import A_BANDS, ALL_BANDS, BIT_DEPTH_MAX, M_BANDS, P_BANDS, RGB_BANDS
from dstl.errors import BandMismatchError, DataError
from dstl.limits import check_image_size
from dstl.tiff import read_tiff, read_tiff_header, read_tiff_shape


class ProductFiles(Protocol):
    """What `read_scene` needs of a dataset (`dstl.dataset.DstlDataset` is one): the checked id and
    the path of each of its products ("3", "P", "M", "A")."""

    def check_id(self, image_id: str) -> str: ...

    def product_path(self, image_id: str, product: str) -> Path: ...


@dataclass
class Scene:
    """Aligned bands of one image.

    Attributes:
        image_id: the DSTL ImageId, or a name derived from the uploaded file.
        data: float32 array (C, H, W), each band scaled to [0, 1] by its bit depth, on the
            3-band grid (~0.31 m/px for DSTL data).
        bands: names of the C bands in array order (see `dstl.bands`), e.g. `ALL_BANDS`
            for a full DSTL scene or `RGB_BANDS` for a plain image.
    """

    image_id: str
    data: np.ndarray
    bands: tuple[str, ...]

    def __post_init__(self):
        if self.data.ndim != 3 or self.data.shape[0] != len(self.bands):
            raise ValueError(f"data must be (C, H, W) with C={len(self.bands)}, got {self.data.shape}")

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])

    @property
    def is_rgb_only(self) -> bool:
        return tuple(self.bands) == RGB_BANDS

    @property
    def is_full(self) -> bool:
        return tuple(self.bands) == ALL_BANDS

    def select(self, bands: tuple[str, ...]) -> "Scene":
        """A scene holding only `bands` (in that order); KeyError names a band that is missing."""
        missing = [b for b in bands if b not in self.bands]
        if missing:
            raise KeyError(f"scene {self.image_id} lacks bands {missing}")
        idx = [self.bands.index(b) for b in bands]
        if idx == list(range(len(self.bands))):
            return self
        return Scene(self.image_id, self.data[idx], tuple(bands))

    def rgb(self) -> np.ndarray:
        """The R, G, B bands as a (H, W, 3) float32 view-or-copy in [0, 1]."""
        return np.moveaxis(self.select(RGB_BANDS).data, 0, -1)


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------

#: Bands of each DSTL product, in file order (see `dstl.bands`), and the number of bands in it.
PRODUCT_BANDS: dict[str, tuple[str, ...]] = {"3": RGB_BANDS, "P": P_BANDS, "M": M_BANDS, "A": A_BANDS}

#: 3-band pixels per product pixel along each side: P shares the 3-band grid (~0.31 m), M is
#: ~1.24 m and A ~7.5 m per pixel. A product of an image of H x W (3-band) pixels is about
#: H / ratio x W / ratio pixels (real 6010_1_2: 3-band 3349 x 3396, P 3348 x 3396, M 837 x 849,
#: A 134 x 136).
PRODUCT_RATIO: dict[str, int] = {"3": 1, "P": 1, "M": 4, "A": 25}

#: How far (in the product's own pixels, per side) a product may be from the 3-band size divided
#: by its `PRODUCT_RATIO`. Why 2: the real data is within 1.5 of it (P one row short of the 3-band
#: image; the 26 real A products in ../shared/real, against 3-band sizes derived from their grid
#: sizes, are off by at most 1.48 px, 6040_4_4's 134 columns for 3387 / 25 = 135.5), and the
#: synthetic writer rounds H / ratio and adds -1, 0 or +1 (at most 1.5 off). Beyond 2 the
#: product cannot be the same ground as the 3-band image: stretched onto the 3-band grid it
#: would be out by more than 2 x ratio px at the far edge (50 px = 15 m for A, 8 px for M), and
#: the wrong product or a product of another crop (an M of 8 x 1 x 1, an A larger than the 3-band
#: image) is far outside.
PRODUCT_SIZE_TOLERANCE = 2.0


def _band_products(bands: Sequence[str]) -> dict[str, list[tuple[int, int]]]:
    """Map each needed product to [(index in product, index in output), ...]."""
    where = {name: (product, i) for product, names in PRODUCT_BANDS.items() for i, name in enumerate(names)}
    unknown = [b for b in bands if b not in where]
    if unknown or not bands:
        raise BandMismatchError(f"unknown band names {unknown} (known: {', '.join(ALL_BANDS)})" if unknown
                                else "no bands requested")
    groups: dict[str, list[tuple[int, int]]] = {}
    for k, name in enumerate(bands):
        product, i = where[name]
        groups.setdefault(product, []).append((i, k))
    return groups


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices i0, i1 and weight w1 (float32) for linear resampling n_in -> n_out samples.

    Pixel-centre alignment: output sample j (centre j + 0.5) reads input coordinate
    (j + 0.5) * n_in / n_out - 0.5, clamped to [0, n_in - 1]; value = (1 - w1) a[i0] + w1 a[i1].
    This is torch's `interpolate(mode="bilinear", align_corners=False)` and scipy's
    `zoom(order=1, grid_mode=True, mode="nearest")`: the image's outer edges line up exactly.
    """
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


_ROW_CHUNK = 64  # output rows per step of the row pass (64 x 3400 float32 = 0.9 MB)


def resample_bilinear(band: np.ndarray, size: tuple[int, int], *, scale: float = 1.0,
                      out: np.ndarray | None = None) -> np.ndarray:
    """Resample a 2-D band to `size` = (H, W) bilinearly with pixel-centre alignment, times `scale`.

    Separable: columns first, on the input's rows (to (h, W), small for coarse products), then
    rows, gathering whole contiguous rows chunk by chunk into `out`; the only temporaries are the
    (h, W) column pass and a small scratch buffer. Works for up- and downsampling (no
    anti-aliasing: the DSTL products are only ever upsampled or resized by a few pixels).

    Args:
        band: (h, w) array of any real dtype.
        size: output (H, W).
        scale: factor applied to every value (e.g. 1 / 2047 to map 11-bit counts to [0, 1]).
        out: optional float32 (H, W) array to write into.

    Returns:
        float32 (H, W) array (`out` if given).
    """
    h, w = band.shape
    H, W = size
    if out is None:
        out = np.empty((H, W), dtype=np.float32)
    scale = np.float32(scale)
    if (h, w) == (H, W):
        np.multiply(band, scale, out=out, casting="unsafe")
        return out
    if w == W:
        cols = np.multiply(band, scale, dtype=np.float32)
    else:
        x0, x1, wx = _linear_taps(w, W)
        # np.take keeps rows contiguous (band[:, x0] would come out column-major: slow row pass).
        cols = np.take(band, x0, axis=1) * ((1 - wx) * scale)
        cols += np.take(band, x1, axis=1) * (wx * scale)
    if h == H:
        out[...] = cols
        return out
    cols = np.ascontiguousarray(cols, dtype=np.float32)
    y0, y1, wy = _linear_taps(h, H)
    # Rows in chunks that stay in cache, through one small scratch buffer: fresh full-size
    # temporaries would cost more in page faults than the arithmetic. mode="clip" keeps np.take
    # from buffering its output (indices are in range by construction).
    scratch = np.empty((min(_ROW_CHUNK, H), W), dtype=np.float32)
    for start in range(0, H, _ROW_CHUNK):
        stop = min(start + _ROW_CHUNK, H)
        top, below = out[start:stop], scratch[: stop - start]
        np.take(cols, y0[start:stop], axis=0, out=top, mode="clip")
        np.take(cols, y1[start:stop], axis=0, out=below, mode="clip")
        below -= top
        below *= wy[start:stop, None]
        top += below
    return out


def read_grid(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of a 3-band product (the image's grid) from its header, without reading pixels.

    Raises DataError if the file is missing, is not a 3-band TIFF, or the size is outside the
    image size limits of `dstl.limits` (a side under MIN_SIDE, more pixels than `max_pixels()`).
    """
    _, height, width = read_tiff_shape(path, bands=3)
    check_image_size(str(path), height, width)
    return height, width


def _about(n: float) -> str:
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.1f}"


def read_product_shape(path: str | os.PathLike, product: str, grid: tuple[int, int]) -> tuple[int, int, int]:
    """(C, h, w) of product "P", "M" or "A" of an image whose 3-band size is `grid` = (H, W).

    From the header only: the band count (`PRODUCT_BANDS`) and the size, which must lie within
    `PRODUCT_SIZE_TOLERANCE` product pixels per side of (H, W) / `PRODUCT_RATIO[product]`.
    Raises DataError naming the file, its size and the expected one.
    """
    bands, h, w = read_tiff_shape(path, bands=len(PRODUCT_BANDS[product]))
    H, W = grid
    ratio = PRODUCT_RATIO[product]
    if max(abs(h - H / ratio), abs(w - W / ratio)) > PRODUCT_SIZE_TOLERANCE:
        expected = (f"{H} x {W} px, its size" if ratio == 1 else
                    f"about {_about(H / ratio)} x {_about(W / ratio)} px, 1/{ratio} of it")
        raise DataError(f"{path}: {product} product of {h} x {w} px does not fit the 3-band image of "
                        f"{H} x {W} px: expected {expected} (give or take "
                        f"{PRODUCT_SIZE_TOLERANCE:g} px per side)")
    return bands, h, w


def read_scene_files(files: Mapping[str, str | os.PathLike], bands: Sequence[str] = ALL_BANDS,
                     image_id: str = "scene", grid: tuple[int, int] | None = None) -> Scene:
    """Read DSTL product files of one image into one aligned Scene on its 3-band grid.

    Args:
        files: product -> TIFF path, products "3" (three_band/<id>.tif, required: it defines the
            grid), "P", "M", "A" (sixteen_band/<id>_P.tif etc.; only those `bands` need).
        bands: band names in the order wanted (see `dstl.bands`); the default `ALL_BANDS` gives the
            20 bands R, G, B, P, M1..M8, A1..A8.
        image_id: the id to put in the Scene.
        grid: (H, W) of the 3-band grid when no 3-band file is given (e.g. an estimated size,
            `dstl.real_sizes`); the bands of the 3-band product cannot be read then.

    Returns:
        Scene with float32 data (len(bands), H, W), H x W being the 3-band file's size. Each
        product is resampled independently from its own size to H x W (bilinear, pixel-centre
        aligned: see `resample_bilinear`), band by band into one preallocated array, scaled to
        [0, 1] by its bit depth (`BIT_DEPTH_MAX`: 11-bit 3-band/P/M, 14-bit A) and clipped.
        Peak memory is the result plus one product's raw uint16 pixels plus at most one (H, W)
        float32 band of temporaries.

    Raises:
        DataError: a file is missing, not a TIFF, corrupt, truncated, not uint16, has the wrong
            band count; the grid is outside the image size limits (`dstl.limits`); a product's
            size does not fit the grid (`read_product_shape`). Sizes are checked from the
            headers of every needed file before any pixel is read.
        BandMismatchError: an unknown band name.
    """
    groups = _band_products(tuple(bands))
    if "3" in files:
        H, W = read_grid(files["3"])
    elif grid is None or "3" in groups:
        raise DataError("the 3-band file is required: it defines the scene's grid"
                        + (" and holds the bands R, G, B" if "3" in groups else ""))
    else:
        H, W = grid
        check_image_size(f"{image_id} (3-band grid)", H, W)
    missing = [p for p in groups if p not in files]
    if missing:
        raise DataError(f"no file given for product(s) {missing} needed for bands {list(bands)}")
    for product in groups:
        if product != "3":
            read_product_shape(files[product], product, (H, W))
    data = np.empty((len(bands), H, W), dtype=np.float32)
    for product in PRODUCT_BANDS:  # fixed order; only the products the bands need
        if product not in groups:
            continue
        raw = read_tiff(files[product], bands=len(PRODUCT_BANDS[product]), dtype=np.uint16)
        scale = 1.0 / BIT_DEPTH_MAX[product]
        for i, k in groups[product]:
            resample_bilinear(raw[i], (H, W), scale=scale, out=data[k])
            np.clip(data[k], 0.0, 1.0, out=data[k])
        del raw
    return Scene(image_id, data, tuple(bands))


def read_scene(dataset: ProductFiles, image_id: str, bands: Sequence[str] = ALL_BANDS) -> Scene:
    """Read one image of a DSTL-layout dataset as an aligned Scene (see `read_scene_files`).

    The id is looked up in the dataset (`UnknownImageError` if absent), never joined into a path
    unchecked; a listed image whose product file is missing raises DataError naming that file.
    """
    image_id = dataset.check_id(image_id)
    files = {p: dataset.product_path(image_id, p) for p in PRODUCT_BANDS}
    return read_scene_files(files, bands, image_id)


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _scale_for(data: np.ndarray) -> float:
    """1 / full scale: 8-bit by 255; 16-bit by 2047 if max <= 2047 (11-bit DSTL counts), else 65535."""
    if data.dtype == np.uint8:
        return 1.0 / 255
    return 1.0 / (2047 if int(data.max(initial=0)) <= 2047 else 65535)


def _to_rgb_scene(image_id: str, data: np.ndarray) -> Scene:
    """(C, H, W) uint8/uint16 with C = 1 (gray), 2 (gray + alpha), 3 (RGB), 4 (RGBA) -> RGB Scene."""
    colour = data[:3] if data.shape[0] >= 3 else data[:1]  # alpha dropped
    scale = np.float32(_scale_for(colour))
    out = np.empty((3, data.shape[1], data.shape[2]), dtype=np.float32)
    for k in range(3):
        np.multiply(colour[k if colour.shape[0] == 3 else 0], scale, out=out[k], casting="unsafe")
    np.clip(out, 0.0, 1.0, out=out)
    return Scene(image_id, out, RGB_BANDS)


def _read_tiff_image(path: Path) -> np.ndarray:
    """A plain TIFF as (C, H, W) uint8/uint16, C in 1..4; palette images mapped to 8-bit RGB."""
    header = read_tiff_header(path)
    shape = header.shape
    if len(shape) == 2:
        channels = 1
    elif len(shape) == 3 and shape[2] <= 4 and (header.axes.endswith("S") or shape[0] > 4):
        channels = shape[2]  # interleaved (H, W, C)
    elif len(shape) == 3 and shape[0] <= 4:
        channels = shape[0]  # planar (C, H, W)
    else:
        raise DataError(f"{path}: expected a gray, RGB or RGBA image (1 to 4 bands), "
                        f"got an array of shape {shape}")
    _, h, w = read_tiff_shape(path, channels)
    check_image_size(str(path), h, w)
    data = read_tiff(path, bands=channels, dtype=(np.uint8, np.uint16))
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        colormap = page.colormap if page.photometric == tifffile.PHOTOMETRIC.PALETTE else None
    if colormap is not None and channels == 1:
        # TIFF colour maps hold 16-bit values (8-bit palettes stored as v * 257): map to 8-bit RGB.
        lut = (colormap // 257 if colormap.max() > 255 else colormap).astype(np.uint8)
        data = lut[:, np.minimum(data[0], lut.shape[1] - 1)]
    return data


def _read_pil_image(path: Path) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # dstl.limits is the limit; PIL's own (89 megapixels) would only warn or refuse at twice it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                check_image_size(str(path), img.height, img.width)
                img = ImageOps.exif_transpose(img)
                if img.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
                    return np.asarray(img).astype(np.uint16)[None]
                if img.mode == "I":
                    arr = np.asarray(img)
                    if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
                        raise DataError(f"{path}: 32-bit integer pixels outside 0..65535 are not supported")
                    return arr.astype(np.uint16)[None]
                if img.mode not in ("L", "LA", "RGB", "RGBA"):
                    img = img.convert("RGBA" if "transparency" in img.info or "A" in img.mode else "RGB")
                arr = np.asarray(img)
    except Image.DecompressionBombError as e:
        raise DataError(f"{path}: image is too large for PIL to open ({e})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path}: not a readable PNG, JPEG or TIFF image ({e})") from None
    return arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)


def read_image(path: str | os.PathLike) -> Scene:
    """Read a plain image (PNG, JPEG, 8- or 16-bit TIFF) as an RGB-only Scene.

    The Scene's bands are `RGB_BANDS` (R, G, B) and its id is the file name without extension.
    Conversions: RGBA and gray + alpha drop the alpha; gray is replicated to R, G and B; palette
    images go through their palette. Scaling to [0, 1]: 8-bit by 255; 16-bit by 65535, except
    when no value exceeds 2047, which is taken to be 11-bit DSTL data and scaled by 2047 (as the
    DSTL reader does). The format is recognised from the file's content, not its name.

    Raises:
        DataError: missing or unreadable file, an unsupported pixel type (e.g. float TIFF), more
            than 4 bands, or a size outside the image size limits of `dstl.limits` (checked
            from the header before the pixels are decoded).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, "rb") as f:
        magic = f.read(4)
    data = _read_tiff_image(path) if magic in _TIFF_MAGIC else _read_pil_image(path)
    return _to_rgb_scene(path.stem, data)

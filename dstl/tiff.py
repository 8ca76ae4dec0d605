"""Reading and writing TIFF files with clear errors.

The DSTL products are uint16 TIFFs stored band-first: `three_band/<id>.tif` is (3, H, W),
`sixteen_band/<id>_M.tif` and `_A.tif` are (8, h, w), `_P.tif` is a single 2-D page (H, W).
GeoTIFF tools differ in how they lay out several bands (one page with planar-separate samples,
one page with interleaved samples, or one page per band), so `read_tiff` accepts a band-first
(C, H, W) or band-last (H, W, C) array and always returns it band-first. The layout is decided
by where the expected band count sits in the shape; when both ends match (e.g. a 3 x H x 3
image) the file's own axis labels decide, and band-first is the default.

Every failure a user's file can cause (missing, not a TIFF, corrupt, truncated, wrong shape,
wrong sample type, more pixels than the limit of `dstl.limits`) raises `DataError` with a
message naming the file and the problem. `write_tiff` writes atomically, so a failed write
never leaves a partial file.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from dstl.atomic import atomic_path
from dstl.errors import DataError
from dstl.limits import check_pixels

# tifffile logs its own warnings and errors for a corrupt or forged file (e.g. a header whose size
# disagrees with its strip counts); we raise a DataError that says it in one line, so its log lines
# would only break that line.
logging.getLogger("tifffile").setLevel(logging.CRITICAL)

__all__ = ["TiffHeader", "read_tiff", "read_tiff_header", "read_tiff_shape", "write_tiff"]


@dataclass(frozen=True)
class TiffHeader:
    """What a TIFF's header says about its first image series, read without decoding pixels.

    Attributes:
        shape: the series' shape as stored, e.g. (3, H, W), (H, W, 3) or (H, W).
        dtype: the sample type, e.g. uint16.
        axes: tifffile's axis labels for `shape` ('S' samples, 'Y' rows, 'X' columns, 'Q'/'I'
            pages), e.g. 'SYX' for planar-separate bands or 'YXS' for interleaved ones.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    axes: str


def _open(path: Path) -> tifffile.TiffFile:
    """Open `path` as a TIFF, turning every way it can fail into a DataError."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        return tifffile.TiffFile(path)
    except tifffile.TiffFileError as e:
        raise DataError(f"{path}: not a readable TIFF file ({e})") from None
    except MemoryError:
        raise
    except Exception as e:  # tifffile raises many types on corrupt headers (struct, Index, Value...)
        raise DataError(f"{path}: corrupt TIFF header ({type(e).__name__}: {e})") from None


def _header(path: Path, tif: tifffile.TiffFile) -> TiffHeader:
    if not tif.series:
        raise DataError(f"{path}: corrupt TIFF (no image found in it)")
    series = tif.series[0]
    try:
        return TiffHeader(tuple(int(n) for n in series.shape), np.dtype(series.dtype), str(series.axes))
    except Exception as e:
        raise DataError(f"{path}: corrupt TIFF header ({type(e).__name__}: {e})") from None


def read_tiff_header(path: str | os.PathLike) -> TiffHeader:
    """Shape, sample type and axes of the first image in a TIFF, without reading its pixels."""
    path = Path(path)
    with _open(path) as tif:
        return _header(path, tif)


def _band_layout(path: Path, header: TiffHeader, bands: int) -> str:
    """'first' for (C, H, W), 'last' for (H, W, C), '2d' for a single (H, W) page (bands == 1)."""
    shape = header.shape
    want = "a 2-D page (H x W)" if bands == 1 else f"{bands} bands (C x H x W)"
    if bands == 1 and len(shape) == 2:
        return "2d"
    if len(shape) != 3:
        raise DataError(f"{path}: expected {want}, got an array of shape {shape}")
    first, last = shape[0] == bands, shape[2] == bands
    if first and last:
        return "last" if header.axes.endswith("S") else "first"
    if first:
        return "first"
    if last:
        return "last"
    raise DataError(f"{path}: expected {want}, got an array of shape {shape} "
                    f"(neither band-first C x H x W nor band-last H x W x C with C = {bands})")


def _oriented_shape(header: TiffHeader, layout: str) -> tuple[int, int, int]:
    s = header.shape
    if layout == "2d":
        return (1, s[0], s[1])
    if layout == "last":
        return (s[2], s[0], s[1])
    return (s[0], s[1], s[2])


def _check_dtype(path: Path, header: TiffHeader, dtype) -> None:
    if dtype is None:
        return
    allowed = [np.dtype(d) for d in (dtype if isinstance(dtype, (tuple, list)) else (dtype,))]
    if header.dtype not in allowed:
        names = " or ".join(d.name for d in allowed)
        raise DataError(f"{path}: expected {names} samples, got {header.dtype.name}")


def _check_plane(path: Path, shape: tuple[int, ...]) -> None:
    """The image size limit (`dstl.limits`) on one band of `shape`, before any pixel is read."""
    # Band counts are small, so the two longest dimensions are the rows and columns in any layout.
    rows, cols = sorted(shape)[-2:]
    check_pixels(str(path), rows, cols)


def read_tiff_shape(path: str | os.PathLike, bands: int) -> tuple[int, int, int]:
    """The (C, H, W) shape `read_tiff(path, bands)` would return, from the header only.

    Raises DataError for the same layout problems as `read_tiff` (missing file, not a TIFF,
    wrong number of dimensions or bands); the pixel data is not read, so truncation and
    corrupt pixel data are found only by `read_tiff`.
    """
    path = Path(path)
    header = read_tiff_header(path)
    return _oriented_shape(header, _band_layout(path, header, bands))


def _check_complete(path: Path, tif: tifffile.TiffFile) -> None:
    """Raise DataError if the pixel data of the first series runs past the end of the file."""
    size = path.stat().st_size
    for page in tif.series[0].pages:
        if page is None:
            continue
        offsets = getattr(page, "dataoffsets", ())
        counts = getattr(page, "databytecounts", ())
        end = max((o + c for o, c in zip(offsets, counts, strict=False)), default=0)
        if end > size:
            raise DataError(f"{path}: truncated TIFF (pixel data ends at byte {end}, "
                            f"file has {size} bytes)")


def read_tiff(path: str | os.PathLike, bands: int | None = None, *, dtype=None) -> np.ndarray:
    """Read the first image of a TIFF file.

    Args:
        path: the TIFF file.
        bands: how many bands the caller expects. An int C returns a band-first (C, H, W)
            array, transposing a band-last (H, W, C) file (see the module docstring); C = 1
            also accepts a 2-D (H, W) page and returns (1, H, W). None returns the array as
            stored (2-D or 3-D), unchecked.
        dtype: the sample type(s) accepted (e.g. `np.uint16`, or a tuple); None accepts any.

    Returns:
        The pixels in the file's own sample type, band-first when `bands` is given.

    Raises:
        DataError: the file is missing, not a TIFF, corrupt or truncated, has the wrong number
            of dimensions or bands, the wrong sample type, or bands of more pixels than the
            image size limit (`dstl.limits.max_pixels`; checked before any pixel is read).
    """
    path = Path(path)
    with _open(path) as tif:
        header = _header(path, tif)
        if bands is None:
            if len(header.shape) not in (2, 3):
                raise DataError(f"{path}: expected a 2-D or 3-D image, got an array of shape {header.shape}")
            layout = None
        else:
            layout = _band_layout(path, header, bands)
        _check_dtype(path, header, dtype)
        _check_plane(path, header.shape)
        _check_complete(path, tif)
        try:
            data = tif.series[0].asarray()
        except MemoryError:
            raise
        except Exception as e:  # decoders raise zlib.error, ValueError, OSError... on bad data
            raise DataError(f"{path}: corrupt TIFF pixel data ({type(e).__name__}: {e})") from None
    if layout == "2d":
        return data.reshape(_oriented_shape(header, layout))
    if layout == "last":
        # A contiguous band-first copy: band-by-band consumers read each band at full speed.
        return np.ascontiguousarray(np.moveaxis(data, -1, 0))
    return data


def write_tiff(path: str | os.PathLike, array: np.ndarray, *, compress: bool = False,
               photometric: str | None = None) -> None:
    """Write a 2-D (H, W) or band-first (C, H, W) array to a TIFF file, atomically.

    A 3-D array is stored as one page with planar-separate samples (the DSTL layout, read back
    by `read_tiff(path, bands=C)` as (C, H, W)). The file appears complete or not at all.

    Args:
        path: destination; parent folders are created.
        array: the pixels, e.g. uint8 (10, H, W) masks or uint16 DSTL products.
        compress: zlib (deflate) compression, lossless; good for masks.
        photometric: TIFF photometric interpretation; default 'rgb' for 3 bands of uint8/uint16
            and 'minisblack' otherwise.
    """
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise ValueError(f"write_tiff needs a (H, W) or (C, H, W) array, got shape {array.shape}")
    if photometric is None:
        rgb = array.ndim == 3 and array.shape[0] == 3 and array.dtype in (np.uint8, np.uint16)
        photometric = "rgb" if rgb else "minisblack"
    kwargs = {"photometric": photometric, "compression": "zlib" if compress else None}
    if array.ndim == 3:
        kwargs["planarconfig"] = "separate"
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, array, **kwargs)

"""A DSTL-layout dataset folder: image ids, grid sizes, product files, labels and masks.

The layout is the Kaggle download's (DESIGN.md §2)::

    ROOT/three_band/<ImageId>.tif         RGB, 3 x H x W, uint16, 11-bit (defines the grid)
    ROOT/sixteen_band/<ImageId>_P.tif     panchromatic, H x W, uint16, 11-bit
    ROOT/sixteen_band/<ImageId>_M.tif     multispectral, 8 x ~H/4 x ~W/4, uint16, 11-bit
    ROOT/sixteen_band/<ImageId>_A.tif     SWIR, 8 x ~H/25 x ~W/25, uint16, 14-bit
    ROOT/grid_sizes.csv                   ",Xmax,Ymin": one row per image      (required)
    ROOT/train_wkt_v4.csv                 ImageId,ClassType,MultipolygonWKT    (optional: labels)
    ROOT/sample_submission.csv            same header, the test ids            (optional)

The images of the dataset are the ids listed in grid_sizes.csv (an image needs its grid size to
map polygons to pixels). An id listed there whose TIFF is missing stays listed; reading it
raises DataError naming the missing file. Every id a caller passes in is looked up in that list
(`check_id`) before it is used in a path, so user input never reaches the file system unchecked.
"""

import csv
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
from shapely.geometry import MultiPolygon

from dstl.bands import ALL_BANDS
from dstl.errors import DataError, UnknownImageError
from dstl.grid import GridTransform
from dstl.scene import Scene, read_grid, read_scene

__all__ = ["DstlDataset", "PRODUCTS"]

#: The four products of an image: "3" (three_band), "P", "M", "A" (sixteen_band).
PRODUCTS = ("3", "P", "M", "A")

# A file-name-safe id: what the real ids (e.g. 6120_2_2) and synthetic ones look like. Ids in
# grid_sizes.csv must match, so that no CSV content can point a path outside the dataset.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")

def _scan_ids(path: Path) -> list[str]:
    """ImageIds of a WKT CSV in first-appearance order, without parsing the geometry.

    Checks the header; the full parse (and its per-row checks) happens in `dstl.labels`.
    """
    # Importing dstl.labels also raises csv.field_size_limit for the multi-MB WKT fields.
    from dstl.labels import WKT_HEADER

    ids: dict[str, None] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or tuple(c.strip() for c in header) != WKT_HEADER:
                got = "nothing (empty file)" if header is None else repr(",".join(header)[:80])
                raise DataError(f"{path}: line 1: header must be {','.join(WKT_HEADER)}, got {got}")
            for row in reader:
                if row and row[0].strip():
                    ids.setdefault(row[0].strip(), None)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file ({e.reason})") from None
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV: {e}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    return list(ids)


class DstlDataset:
    """A DSTL-layout folder (see the module docstring).

    Args:
        root: the folder.
        mask_cache: how many images' (10, H, W) masks to keep in memory (~115 MB each at full
            size); least recently used ones are dropped.

    Raises:
        DataError: `root` is not a folder, lacks three_band/ or grid_sizes.csv, or grid_sizes.csv
            is malformed or lists an id that is not a plain file name.
    """

    def __init__(self, root: str | os.PathLike, *, mask_cache: int = 2):
        from dstl.labels import read_grid_sizes

        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset folder not found")
        if not (self.root / "three_band").is_dir():
            raise DataError(f"{self.root}: not a DSTL dataset folder: three_band/ is missing "
                            "(expected three_band/<id>.tif, sixteen_band/<id>_{P,M,A}.tif, grid_sizes.csv)")
        grid_path = self.root / "grid_sizes.csv"
        if not grid_path.is_file():
            raise DataError(f"{grid_path}: not found (every DSTL dataset folder has grid_sizes.csv)")
        self._grid = read_grid_sizes(grid_path)
        bad = [i for i in self._grid if not _SAFE_ID.fullmatch(i)]
        if bad:
            raise DataError(f"{grid_path}: image id {bad[0]!r} is not a plain file name "
                            "(letters, digits, '_', '-', '.')")
        if not self._grid:
            raise DataError(f"{grid_path}: lists no images")
        self.image_ids: list[str] = sorted(self._grid)
        self._sizes: dict[str, tuple[int, int]] = {}
        self._labels: dict[str, dict[int, MultiPolygon]] | None = None
        self._masks: OrderedDict[str, np.ndarray] = OrderedDict()
        self._mask_cache = max(0, int(mask_cache))
        self._lock = threading.Lock()  # the app calls in from several worker threads

    def __repr__(self) -> str:
        return f"DstlDataset({str(self.root)!r}, {len(self.image_ids)} images)"

    def __len__(self) -> int:
        return len(self.image_ids)

    # ------------------------------------------------------------------------- ids

    def _listed(self, path: Path, ids: list[str]) -> list[str]:
        unknown = [i for i in ids if i not in self._grid]
        if unknown:
            raise DataError(f"{path}: image id {unknown[0]!r} is not in grid_sizes.csv "
                            f"({len(unknown)} such id(s))")
        return ids

    @cached_property
    def train_ids(self) -> list[str]:
        """Labelled ids (those with rows in train_wkt_v4.csv), sorted; [] without that file."""
        path = self.root / "train_wkt_v4.csv"
        if not path.is_file():
            return []
        return sorted(self._listed(path, _scan_ids(path)))

    @cached_property
    def test_ids(self) -> list[str]:
        """Ids of sample_submission.csv in file order; [] without that file."""
        path = self.root / "sample_submission.csv"
        if not path.is_file():
            return []
        return self._listed(path, _scan_ids(path))

    @cached_property
    def _train_set(self) -> frozenset[str]:
        return frozenset(self.train_ids)

    def check_id(self, image_id: str) -> str:
        """Return `image_id` if the dataset has it; else raise UnknownImageError."""
        if isinstance(image_id, str) and image_id in self._grid:
            return image_id
        examples = ", ".join(self.image_ids[:3]) + (", ..." if len(self.image_ids) > 3 else "")
        raise UnknownImageError(f"unknown image id {str(image_id)[:100]!r} "
                                f"(dataset {self.root} has {len(self.image_ids)} images, e.g. {examples})")

    def has_labels(self, image_id: str) -> bool:
        """True if train_wkt_v4.csv has rows for this image (even if all are MULTIPOLYGON EMPTY)."""
        return self.check_id(image_id) in self._train_set

    # ------------------------------------------------------------------------- geometry

    def grid_size(self, image_id: str) -> tuple[float, float]:
        """(Xmax, Ymin) of the image from grid_sizes.csv."""
        return self._grid[self.check_id(image_id)]

    def image_size(self, image_id: str) -> tuple[int, int]:
        """(H, W) of the image's 3-band TIFF, from its header (pixels are not read).

        DataError if the size is outside the image size limits (`dstl.limits`): everything
        sized from it (masks, scenes) is then never allocated.
        """
        image_id = self.check_id(image_id)
        if image_id not in self._sizes:
            self._sizes[image_id] = read_grid(self.product_path(image_id, "3"))
        return self._sizes[image_id]

    def transform(self, image_id: str) -> GridTransform:
        """The grid <-> pixel transform of the image (its 3-band size and grid size)."""
        h, w = self.image_size(image_id)
        xmax, ymin = self.grid_size(image_id)
        return GridTransform(h, w, xmax, ymin)

    def product_path(self, image_id: str, product: str) -> Path:
        """Path of a product file: "3" -> three_band/<id>.tif, "P"/"M"/"A" -> sixteen_band/<id>_X.tif.

        The file may not exist; readers report that as DataError naming the path.
        """
        image_id = self.check_id(image_id)
        if product == "3":
            return self.root / "three_band" / f"{image_id}.tif"
        if product in ("P", "M", "A"):
            return self.root / "sixteen_band" / f"{image_id}_{product}.tif"
        raise ValueError(f"product must be one of {PRODUCTS}, got {product!r}")

    # ------------------------------------------------------------------------- labels

    def labels(self, image_id: str) -> dict[int, MultiPolygon]:
        """The image's polygons {class 1..10: MultiPolygon} in GRID coordinates (valid; repaired).

        The whole train_wkt_v4.csv is parsed once, on first use, and kept.

        Raises:
            DataError: the image has no labels, or train_wkt_v4.csv is malformed.
        """
        image_id = self.check_id(image_id)
        if not self.has_labels(image_id):
            raise DataError(f"image {image_id!r} has no labels (it is not in "
                            f"{self.root / 'train_wkt_v4.csv'})")
        with self._lock:  # parse once even if several threads ask at the same time
            if self._labels is None:
                from dstl.labels import read_wkt_csv

                self._labels = read_wkt_csv(self.root / "train_wkt_v4.csv")
        return dict(self._labels[image_id])

    def masks(self, image_id: str) -> np.ndarray:
        """The image's labels rasterised: uint8 (10, H, W) 0/1, class k at index k-1 (read-only).

        Pixel-centre rule of `dstl.rasterize`; the last few images' masks are cached.
        """
        image_id = self.check_id(image_id)
        with self._lock:
            if image_id in self._masks:
                self._masks.move_to_end(image_id)
                return self._masks[image_id]
        from dstl.rasterize import rasterize_classes

        masks = rasterize_classes(self.labels(image_id), self.transform(image_id))
        masks.flags.writeable = False  # shared by the cache: callers copy before editing
        with self._lock:
            if self._mask_cache:
                self._masks[image_id] = masks
                while len(self._masks) > self._mask_cache:
                    self._masks.popitem(last=False)
        return masks

    # ------------------------------------------------------------------------- pixels

    def read_scene(self, image_id: str, bands: Sequence[str] = ALL_BANDS) -> Scene:
        """The image's bands aligned on its 3-band grid, float32 in [0, 1].

        See `dstl.scene.read_scene_files` (band order R, G, B, P, M1..M8, A1..A8 by default;
        bilinear, pixel-centre aligned resampling; bit-depth scaling).
        """
        return read_scene(self, image_id, bands)

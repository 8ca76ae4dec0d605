"""A DSTL-layout dataset folder: image ids, grid sizes, product files, labels and masks.

The layout is the Kaggle download's (DESIGN.md §2)::

    ROOT/three_band/<ImageId>.tif         RGB, 3 x H x W, uint16, 11-bit (defines the grid)
    ROOT/sixteen_band/<ImageId>_P.tif     panchromatic, H x W, uint16, 11-bit
    ROOT/sixteen_band/<ImageId>_M.tif     multispectral, 8 x ~H/4 x ~W/4, uint16, 11-bit
    ROOT/sixteen_band/<ImageId>_A.tif     SWIR, 8 x ~H/25 x ~W/25, uint16, 14-bit
    ROOT/grid_sizes.csv                   ",Xmax,Ymin": one row per image      (required)
    ROOT/train_wkt_v4.csv                 ImageId,ClassType,MultipolygonWKT    (optional: labels)
    ROOT/train_geojson_v3/<ImageId>/*.geojson  the same labels as GeoJSON layers   (optional: labels)
    ROOT/sample_submission.csv            same header, the test ids            (optional)

Labels come from ONE source (`DstlDataset.label_source`): train_wkt_v4.csv when the folder has
it, else train_geojson_v3/ (each image's layers mapped to the ten classes by
`dstl.geojson_labels.LAYER_CLASSES`). With both present the WKT wins — it is the file the
competition scored against, and GeoJSON v3 differs from it in 3 of the 250 real (image, class)
cells — and `DstlDataset.label_note` says so, for commands and the app to print. Either way an
image's labels are read when first asked for, and only that image's: the WKT CSV is indexed by
image once (`dstl.labels.WktIndex`, no geometry parsed), a GeoJSON image is its own folder.

A folder without three_band/ is accepted when it has labels (e.g. the real labels and SWIR
products in ../shared/real, or a labels-only download): it has no 3-band pixels, so each image's
3-band size is ESTIMATED from its grid size with the real data's ground sampling
(`dstl.real_sizes.three_band_size`: exact for the two real images whose size is known, within
a pixel for other real images; meaningless for data that is not the real DSTL imagery), and
`DstlDataset.size_note` says so. Its scenes can hold the bands of the products it has (e.g.
the A bands, resampled onto the estimated grid), not R, G, B.

The images of the dataset are the ids listed in grid_sizes.csv (an image needs its grid size to
map polygons to pixels). An id listed there whose TIFF is missing stays listed; reading it
raises DataError naming the missing file. Every id a caller passes in is looked up in that list
(`check_id`) before it is used in a path, so user input never reaches the file system unchecked.
"""

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
from dstl.geojson_labels import GEOJSON_DIR
from dstl.grid import GridTransform
from dstl.limits import check_image_size
from dstl.real_sizes import KNOWN_THREE_BAND_SIZES, three_band_size
from dstl.scene import PRODUCT_BANDS, Scene, read_grid, read_scene, read_scene_files

__all__ = ["DstlDataset", "LABEL_SOURCES", "PRODUCTS", "WKT_FILE"]

#: The WKT label file of a DSTL folder (the competition's training labels).
WKT_FILE = "train_wkt_v4.csv"

#: The label sources a caller can ask for (`DstlDataset(labels_from=...)`) and their names.
LABEL_SOURCES = {"wkt": WKT_FILE, "geojson": GEOJSON_DIR}

#: The four products of an image: "3" (three_band), "P", "M", "A" (sixteen_band).
PRODUCTS = ("3", "P", "M", "A")

# A file-name-safe id: what the real ids (e.g. 6120_2_2) and synthetic ones look like. Ids in
# grid_sizes.csv must match, so that no CSV content can point a path outside the dataset.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")

class DstlDataset:
    """A DSTL-layout folder (see the module docstring).

    Args:
        root: the folder.
        mask_cache: how many images' (10, H, W) masks to keep in memory (~115 MB each at full
            size); least recently used ones are dropped.
        label_cache: how many images' parsed labels to keep (a real image's are up to ~100 MB
            of geometry); least recently used ones are dropped.
        labels_from: "wkt" or "geojson" to read the labels from that source only (DataError if
            the folder lacks it); None (default) picks train_wkt_v4.csv if present, else
            train_geojson_v3/.

    Raises:
        DataError: `root` is not a folder, lacks grid_sizes.csv, lacks three_band/ and has no
            labels either, or grid_sizes.csv is malformed or lists an id that is not a plain file name.
    """

    def __init__(self, root: str | os.PathLike, *, mask_cache: int = 2, label_cache: int = 4,
                 labels_from: str | None = None):
        from dstl.labels import read_grid_sizes

        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset folder not found")
        if labels_from not in (None, *LABEL_SOURCES):
            raise ValueError(f"labels_from must be None or one of {sorted(LABEL_SOURCES)}, "
                             f"got {labels_from!r}")
        self._labels_from = labels_from
        if labels_from is not None and self.label_source is None:
            name = LABEL_SOURCES[labels_from]
            raise DataError(f"{self.root / name}: not found (labels asked from {name})")
        self.has_three_band = (self.root / "three_band").is_dir()
        if not self.has_three_band and self.label_source is None:
            raise DataError(f"{self.root}: not a DSTL dataset folder: three_band/ is missing "
                            "(expected three_band/<id>.tif, sixteen_band/<id>_{P,M,A}.tif, grid_sizes.csv; "
                            f"a folder without three_band/ needs labels: {WKT_FILE} or {GEOJSON_DIR}/)")
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
        self._wkt_index = None
        self._labels: OrderedDict[str, dict[int, MultiPolygon]] = OrderedDict()
        self._label_cache = max(0, int(label_cache))
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
    def label_source(self) -> str | None:
        """Where the labels come from: "train_wkt_v4.csv", "train_geojson_v3" or None (no labels).

        The WKT file wins when both are present (see the module docstring and `label_note`).
        """
        wkt, geojson = (self.root / WKT_FILE).is_file(), (self.root / GEOJSON_DIR).is_dir()
        if self._labels_from is not None:
            name = LABEL_SOURCES[self._labels_from]
            return name if (wkt if name == WKT_FILE else geojson) else None
        return WKT_FILE if wkt else GEOJSON_DIR if geojson else None

    @property
    def label_note(self) -> str | None:
        """A one-line note when the choice of label source needs saying (both sources present)."""
        if self._labels_from is None and self.label_source == WKT_FILE and (self.root / GEOJSON_DIR).is_dir():
            return (f"labels from {WKT_FILE}; {GEOJSON_DIR}/ is also in {self.root} and is not used "
                    "(the WKT file wins)")
        return None

    @property
    def notes(self) -> list[str]:
        """The notes a command should print about this folder (`label_note`, `size_note`)."""
        return [n for n in (self.label_note, self.size_note) if n]

    @property
    def label_path(self) -> Path | None:
        """The file or folder the labels are read from (None without labels)."""
        return None if self.label_source is None else self.root / self.label_source

    @property
    def size_note(self) -> str | None:
        """A one-line note when image sizes are estimated (a folder without three_band/)."""
        if self.has_three_band:
            return None
        return (f"{self.root} has no three_band/: 3-band sizes are estimated from the grid sizes "
                "with the real DSTL ground sampling (dstl.real_sizes; exact for "
                f"{', '.join(sorted(KNOWN_THREE_BAND_SIZES))}, within a pixel for other real images)")

    def _index(self):
        """The WKT CSV's index by image (built on first use, under the lock)."""
        from dstl.labels import WktIndex

        with self._lock:
            if self._wkt_index is None:
                self._wkt_index = WktIndex(self.root / WKT_FILE)
        return self._wkt_index

    @cached_property
    def train_ids(self) -> list[str]:
        """Labelled ids, sorted; [] without labels.

        From train_wkt_v4.csv: the ids with rows (found by `dstl.labels.WktIndex`, which checks
        each row's id and class but parses no geometry). From train_geojson_v3/: the sub-folders.
        Every id must be in grid_sizes.csv (DataError otherwise).
        """
        source = self.label_source
        if source == WKT_FILE:
            return sorted(self._listed(self.root / WKT_FILE, self._index().image_ids))
        if source == GEOJSON_DIR:
            folder = self.root / GEOJSON_DIR
            ids = sorted(p.name for p in folder.iterdir() if p.is_dir())
            return self._listed(folder, ids)
        return []

    @cached_property
    def test_ids(self) -> list[str]:
        """Ids of sample_submission.csv in file order; [] without that file."""
        path = self.root / "sample_submission.csv"
        if not path.is_file():
            return []
        from dstl.labels import WktIndex

        return self._listed(path, WktIndex(path).image_ids)

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
        """True if the label source has this image: rows in train_wkt_v4.csv (even if all are
        MULTIPOLYGON EMPTY) or a folder in train_geojson_v3/."""
        return self.check_id(image_id) in self._train_set

    # ------------------------------------------------------------------------- geometry

    def grid_size(self, image_id: str) -> tuple[float, float]:
        """(Xmax, Ymin) of the image from grid_sizes.csv."""
        return self._grid[self.check_id(image_id)]

    def image_size(self, image_id: str) -> tuple[int, int]:
        """(H, W) of the image's 3-band grid.

        From the 3-band TIFF's header (pixels are not read); in a folder without three_band/,
        estimated from the grid size (`size_estimated`, `size_note`). DataError if the size is
        outside the image size limits (`dstl.limits`): everything sized from it (masks,
        scenes) is then never allocated.
        """
        image_id = self.check_id(image_id)
        if image_id not in self._sizes:
            if self.has_three_band:
                self._sizes[image_id] = read_grid(self.product_path(image_id, "3"))
            else:
                (h, w), _ = three_band_size(image_id, grid_size=self.grid_size(image_id))
                check_image_size(f"{image_id} (size estimated from grid_sizes.csv)", h, w)
                self._sizes[image_id] = (h, w)
        return self._sizes[image_id]

    def size_estimated(self, image_id: str) -> bool:
        """True when `image_size` is an estimate (no three_band/ folder, not a known real size)."""
        return not self.has_three_band and self.check_id(image_id) not in KNOWN_THREE_BAND_SIZES

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

        Read from the label source (`label_source`) on first use, only this image's rows or
        layer files; the last few images' labels are kept (`label_cache`). The dict is a copy.

        Raises:
            DataError: the image has no labels, or its labels are malformed.
        """
        image_id = self.check_id(image_id)
        if not self.has_labels(image_id):
            where = self.label_path or self.root / WKT_FILE
            raise DataError(f"image {image_id!r} has no labels (it is not in {where})")
        with self._lock:
            if image_id in self._labels:
                self._labels.move_to_end(image_id)
                return dict(self._labels[image_id])
        if self.label_source == WKT_FILE:
            labels = self._index().labels(image_id)
        else:
            from dstl.geojson_labels import read_geojson_labels

            labels = read_geojson_labels(self.root / GEOJSON_DIR / image_id)
        with self._lock:
            if self._label_cache:
                self._labels[image_id] = labels
                while len(self._labels) > self._label_cache:
                    self._labels.popitem(last=False)
        return dict(labels)

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
        bilinear, pixel-centre aligned resampling; bit-depth scaling). In a folder without
        three_band/ the grid is the estimated size (`image_size`) and R, G, B cannot be read.
        """
        if self.has_three_band:
            return read_scene(self, image_id, bands)
        image_id = self.check_id(image_id)
        files = {p: self.product_path(image_id, p) for p in PRODUCT_BANDS if p != "3"}
        return read_scene_files(files, bands, image_id, grid=self.image_size(image_id))

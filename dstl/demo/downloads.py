"""Download files of the current view, written with `dstl.exports` into a private temporary folder.

For an image ``<id>`` (a dataset id, or the upload's sanitised file name):

    <id>_masks.tif     uint8 (10, H, W) 0/1 masks; planes of hidden classes are all zero
    <id>.csv           Kaggle submission rows, classes 1..10 (grid coordinates; for uploads see
                       below); hidden classes are MULTIPOLYGON EMPTY
    <id>.geojson       the shown classes' polygons in pixel and grid coordinates (`dstl.exports`)
    <id>_overlay.png   the view's overlay (shown classes, opacity) at full resolution, legend below
    <id>_metrics.json  the summary: coverage and per-class IoU / Dice / Kaggle Jaccard of the shown
                       classes, means over the same classes (labelled images only)

"The current view" is `dstl.demo.views.View` (shown classes and thresholds): every file follows
it, and every file that can carry text carries `View.definition()` — the TIFF in its
ImageDescription tag (JSON), the GeoJSON and metrics.json as a "view" member, the PNG in a
"dstl:view" text chunk. (A Kaggle CSV has no room for it; its hidden classes are empty rows.)

An upload has no grid_sizes.csv row: its "grid" is x = pixel column, y = -pixel row (see
`dstl.demo.result`). Each export goes to a fresh folder under one temporary root per process;
only the newest `keep` folders are kept (the web framework copies files it serves into its own
cache), and the root is removed when the process exits.
"""

import atexit
import json
import shutil
import tempfile
import threading
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from dstl import render
from dstl.atomic import atomic_path, write_text_atomic
from dstl.demo.result import SegmentationResult
from dstl.demo.views import View
from dstl.exports import (
    geojson_collection,
    output_paths,
    write_masks_tiff,
    write_metrics_json,
    write_submission_rows,
)
from dstl.polygonize import masks_to_polygons

__all__ = ["ExportFolders", "write_downloads"]


def write_downloads(result: SegmentationResult, view: View, folder: Path, summary: dict) -> list[Path]:
    """Write the files listed in the module docstring into `folder`; return their paths in that order.

    `summary` is the metrics.json content (`DemoService.summary(result, view)`).
    """
    paths = output_paths(folder, result.image_id)
    folder.mkdir(parents=True, exist_ok=True)
    definition = view.definition()
    masks = result.masks(view.thresholds)
    hidden = [k for k in range(1, 11) if k not in view.classes]
    for k in hidden:
        masks[k - 1] = 0
    polygons = {k: p for k, p in masks_to_polygons(masks, result.transform).items() if k in view.classes}
    write_masks_tiff(paths["masks"], masks, description=json.dumps(
        {"bands": "class k at index k-1, 1 = present", "view": definition}))
    write_submission_rows(paths["csv"], result.image_id, polygons)
    collection = geojson_collection(result.image_id, polygons, result.transform)
    collection["view"] = definition
    write_text_atomic(paths["geojson"], json.dumps(collection, separators=(",", ":"), allow_nan=False))
    picture = render.overlay(result.preview, masks, view.classes, view.opacity)
    if view.classes:
        coverage = {c: float(v) for c, v in zip(range(1, 11), result.coverage(view.thresholds), strict=True)}
        picture = render.with_legend(picture, view.classes, coverage)
    info = PngInfo()
    info.add_text("dstl:view", json.dumps(definition))
    with atomic_path(paths["overlay"]) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG", compress_level=3, pnginfo=info)
    written = [paths["masks"], paths["csv"], paths["geojson"], paths["overlay"]]
    if result.has_truth:
        write_metrics_json(paths["metrics"], summary)
        written.append(paths["metrics"])
    return written


class ExportFolders:
    """Fresh folders for exports under one private temporary root; only the newest `keep` survive."""

    def __init__(self, keep: int = 32):
        self.keep = keep
        self._root: Path | None = None
        self._made: list[Path] = []
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="dstl-demo-"))
                atexit.register(shutil.rmtree, self._root, True)
            return self._root

    def new(self) -> Path:
        folder = Path(tempfile.mkdtemp(prefix="export-", dir=self.root))
        with self._lock:
            self._made.append(folder)
            old, self._made = self._made[:-self.keep], self._made[-self.keep:]
        for f in old:
            shutil.rmtree(f, ignore_errors=True)
        return folder

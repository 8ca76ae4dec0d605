"""Download files for the current view, written with `dstl.exports` into a private temporary folder.

For an image ``<id>`` (a dataset id, or the upload's sanitised file name):

    <id>_masks.tif     uint8 (10, H, W) 0/1 masks of all ten classes at the view's thresholds
    <id>.csv           Kaggle submission rows (grid coordinates; for uploads, see below)
    <id>.geojson       the polygons in pixel and grid coordinates (`dstl.exports` layout)
    <id>_overlay.png   the view's overlay (shown classes, opacity) at full resolution, legend below
    <id>_metrics.json  the API summary with per-class IoU / Dice / Kaggle Jaccard (labelled images only)

An upload has no grid_sizes.csv row: its "grid" is x = pixel column, y = -pixel row (see
`dstl.demo.result`). Each export goes to a fresh folder under one temporary root per process;
only the newest `keep` folders are kept (the web framework copies files it serves into its own
cache), and the root is removed when the process exits.
"""

import atexit
import shutil
import tempfile
import threading
from pathlib import Path

from dstl import render
from dstl.demo.result import SegmentationResult
from dstl.demo.views import View
from dstl.exports import (
    output_paths,
    write_geojson,
    write_masks_tiff,
    write_metrics_json,
    write_overlay_png,
    write_submission_rows,
)

__all__ = ["ExportFolders", "write_downloads"]


def write_downloads(result: SegmentationResult, view: View, folder: Path, summary: dict) -> list[Path]:
    """Write the files listed in the module docstring into `folder`; return their paths in that order."""
    paths = output_paths(folder, result.image_id)
    folder.mkdir(parents=True, exist_ok=True)
    masks = result.masks(view.thresholds)
    polygons = result.polygons(view.thresholds)
    write_masks_tiff(paths["masks"], masks)
    write_submission_rows(paths["csv"], result.image_id, polygons)
    write_geojson(paths["geojson"], result.image_id, polygons, result.transform)
    picture = render.overlay(result.preview, masks, view.classes, view.opacity)
    coverage = {c: float(v) for c, v in zip(range(1, 11), result.coverage(view.thresholds), strict=True)}
    write_overlay_png(paths["overlay"], render.with_legend(picture, view.classes or None, coverage)
                      if view.classes else picture)
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

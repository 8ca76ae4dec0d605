"""The demo's work, independent of the web framework: segment a dataset image or an upload.

`DemoService` ties together the weight sources (`ModelRegistry`), an optional DSTL-layout
dataset, the upload limits and a cache of results:

- `segment_image(image_id, model)` looks the id up in the dataset's list (never joining it into
  a path unchecked), picks the right model for the bands, reads the bands it needs, runs the
  inference engine with a progress callback, and attaches the ground truth when the image is
  labelled;
- `segment_upload(paths, model)` validates and reads an upload (`dstl.demo.uploads`), then the same;
- `export(result, view)` writes the download files of the current view into a private folder;
- `summary(result, view)` is the JSON the public API returns.

Results are cached by (model, image) — by content hash for uploads — in an LRU bounded by memory,
and concurrent requests for the same key wait for one computation instead of running it twice.
"""

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dstl import render
from dstl.bands import ALL_BANDS, RGB_BANDS
from dstl.classes import CLASSES
from dstl.demo.downloads import ExportFolders, write_downloads
from dstl.demo.registry import ModelRegistry, describe_bands
from dstl.demo.result import SegmentationResult, pixel_grid
from dstl.demo.uploads import read_upload
from dstl.demo.views import View, save_picture
from dstl.errors import UnknownImageError
from dstl.exports import overlay_picture
from dstl.scene import Scene

__all__ = ["Limits", "Segmented", "ResultCache", "DemoService", "Progress"]

#: progress(fraction 0..1, description) — what the service reports while it works.
Progress = Callable[[float, str], None]


def _no_progress(fraction: float, desc: str) -> None:
    pass


@dataclass(frozen=True)
class Limits:
    """Upload limits: bytes per file and pixels (height x width) per image."""

    max_bytes: int = 200 * 2**20
    max_pixels: int = 4096 * 4096


@dataclass
class Segmented:
    """A result and, when the requested model was replaced by a better-fitting one, a note saying so."""

    result: SegmentationResult
    note: str | None = None


class ResultCache:
    """Thread-safe LRU of results bounded by their memory (`SegmentationResult.nbytes`).

    `get_or_compute(key, fn)` returns the cached result or runs `fn()` once per key: other callers
    of the same key wait for it rather than computing it again.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[tuple, SegmentationResult] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: tuple) -> bool:
        return key in self._items

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._items.values())

    def get(self, key: tuple) -> SegmentationResult | None:
        with self._lock:
            result = self._items.get(key)
            if result is not None:
                self._items.move_to_end(key)
            return result

    def put(self, key: tuple, result: SegmentationResult) -> None:
        with self._lock:
            self._items[key] = result
            self._items.move_to_end(key)
            total = sum(r.nbytes for r in self._items.values())
            while len(self._items) > 1 and total > self.max_bytes:  # always keep the newest
                _, old = self._items.popitem(last=False)
                total -= old.nbytes

    def get_or_compute(self, key: tuple, compute: Callable[[], SegmentationResult]) -> SegmentationResult:
        result = self.get(key)
        if result is not None:
            return result
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            result = self.get(key)
            if result is None:
                result = compute()
                if self.max_bytes > 0:
                    self.put(key, result)
        with self._lock:
            self._key_locks.pop(key, None)
        return result


def model_summary(registry: ModelRegistry, key: str) -> str:
    """One line, e.g. "unet-20band: UNet, all 20 bands (...), trained on SYNTHETIC scenes"."""
    from dstl.demo.cards import short_summary

    return short_summary(registry, key)


def _file_digest(paths: Sequence[str | Path]) -> str:
    """sha256 over the uploaded files' names and contents (the cache key of an upload)."""
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(p.name.encode("utf-8", "replace") + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


class DemoService:
    """See the module docstring.

    Args:
        registry: the weight sources.
        dataset: a `DstlDataset`, or None to serve uploads only.
        limits: upload limits.
        cache_bytes: memory budget of the result cache (0 disables caching).
        predictor_args: keyword arguments of `dstl.engine.Predictor` (precision, batch_size, ...).

    One `dstl.engine.Predictor` is made per model, on first use, and shared: it prepares the module
    (device, memory format) once, and its `predict` only reads the module, so several requests can
    run it at once (the app's queue bounds how many).
    """

    def __init__(self, registry: ModelRegistry, dataset=None, *, limits: Limits = Limits(),
                 cache_bytes: int = 1 << 30, predictor_args: dict | None = None):
        self.registry = registry
        self.dataset = dataset
        self.limits = limits
        self.cache = ResultCache(cache_bytes)
        self.predictor_args = dict(predictor_args or {})
        self.export_folders = ExportFolders()
        self.picture_folders = ExportFolders(keep=512)
        self._predictors: dict[str, object] = {}
        self._predictors_lock = threading.Lock()

    # ----------------------------------------------------------------- dataset

    @property
    def image_ids(self) -> list[str]:
        return list(self.dataset.image_ids) if self.dataset is not None else []

    def image_choices(self) -> list[tuple[str, str]]:
        """(label, id) for the image menu, labelled images first; the label says whether truth exists."""
        if self.dataset is None:
            return []
        labelled = [i for i in self.dataset.image_ids if self.dataset.has_labels(i)]
        others = [i for i in self.dataset.image_ids if not self.dataset.has_labels(i)]
        return ([(f"{i}  ✓ labelled", i) for i in labelled] + [(f"{i}  · no labels", i) for i in others])

    def check_image_id(self, image_id: str) -> str:
        """The id as listed in the dataset; UnknownImageError (never a path) otherwise."""
        if self.dataset is None:
            raise UnknownImageError("this demo has no dataset loaded; upload an image instead")
        image_id = (image_id or "").strip()
        if not image_id:
            raise UnknownImageError("no image id given; pick one from the list or upload an image")
        if image_id not in set(self.dataset.image_ids):
            shown = image_id if len(image_id) <= 40 else image_id[:40] + "…"
            raise UnknownImageError(f"unknown image id {shown!r}: it is not in this dataset's list "
                                    f"({len(self.dataset.image_ids)} images)")
        return self.dataset.check_id(image_id)

    # ----------------------------------------------------------------- segmenting

    def segment_image(self, image_id: str, model_key: str | None, *, allow_switch: bool = True,
                      progress: Progress = _no_progress) -> Segmented:
        """Segment a dataset image (all four products available, so any model fits)."""
        image_id = self.check_image_id(image_id)
        key, note = self.registry.choose(model_key or None, ALL_BANDS, allow_switch=allow_switch)

        def compute() -> SegmentationResult:
            predictor = self._predictor(key, progress)
            needed = tuple(predictor.bands)
            bands = needed + tuple(b for b in RGB_BANDS if b not in needed)
            progress(0.02, f"Reading {image_id} ({describe_bands(needed)})")
            scene = self.dataset.read_scene(image_id, bands)
            truth_masks = truth_polys = None
            if self.dataset.has_labels(image_id):
                progress(0.04, "Reading the ground truth")
                truth_masks = self.dataset.masks(image_id)
                truth_polys = self.dataset.labels(image_id)
            return self._run(scene, key, predictor, "dataset", self.dataset.transform(image_id),
                             truth_masks, truth_polys, progress)

        return Segmented(self.cache.get_or_compute(("dataset", key, image_id), compute), note)

    def segment_upload(self, paths: Sequence[str | Path], model_key: str | None, *,
                       allow_switch: bool = True, progress: Progress = _no_progress) -> Segmented:
        """Segment an upload: one RGB image, or the four DSTL TIFFs of one image."""
        paths = [Path(p) for p in paths if p]
        progress(0.0, "Checking the upload")
        scene = read_upload(paths, max_bytes=self.limits.max_bytes, max_pixels=self.limits.max_pixels)
        key, note = self.registry.choose(model_key or None, scene.bands, allow_switch=allow_switch)

        def compute() -> SegmentationResult:
            predictor = self._predictor(key, progress)
            return self._run(scene, key, predictor, "upload", pixel_grid(scene.height, scene.width),
                             None, None, progress)

        return Segmented(self.cache.get_or_compute(("upload", key, _file_digest(paths)), compute), note)

    def _predictor(self, key: str, progress: Progress):
        """The shared `Predictor` of model `key` (the model is loaded on first use)."""
        predictor = self._predictors.get(key)
        if predictor is not None:
            return predictor
        if not self.registry.is_loaded(key):
            progress(0.01, f"Loading model {key}")
        loaded = self.registry.load(key)
        with self._predictors_lock:
            predictor = self._predictors.get(key)
            if predictor is None:
                from dstl.engine import Predictor

                predictor = Predictor(loaded, **self.predictor_args)
                self._predictors[key] = predictor
        return predictor

    def _run(self, scene: Scene, key: str, predictor, origin: str, transform, truth_masks, truth_polys,
             progress: Progress) -> SegmentationResult:
        preview = render.rgb_preview(scene)
        start = time.perf_counter()

        def on_tiles(done: int, total: int) -> None:
            progress(0.05 + 0.9 * done / max(total, 1), f"Segmenting {scene.image_id}: tile {done}/{total}")

        # The engine picks the model's bands from the scene per tile (no copy of the scene).
        probabilities = predictor.predict(scene, progress=on_tiles).probs
        seconds = time.perf_counter() - start
        progress(0.97, "Preparing the view")
        return SegmentationResult.create(
            image_id=scene.image_id, origin=origin, model_key=key,
            model_summary=model_summary(self.registry, key), bands=tuple(predictor.bands),
            probabilities=probabilities, preview=preview, thresholds=tuple(predictor.thresholds),
            transform=transform, truth_masks=truth_masks, truth_polys=truth_polys, seconds=seconds)

    # ----------------------------------------------------------------- outputs

    def summary(self, result: SegmentationResult, view: View | None = None, *,
                with_jaccard: bool = True) -> dict:
        """The public API's JSON for `result` at `view` (default: the model's thresholds, all classes)."""
        view = view or View.default(result)
        coverage = result.coverage(view.thresholds)
        return {
            "image_id": result.image_id,
            "source": result.origin,
            "model": result.model_key,
            "model_summary": result.model_summary,
            "bands": list(result.bands),
            "height": result.height,
            "width": result.width,
            "seconds": round(result.seconds, 3),
            "has_ground_truth": result.has_truth,
            "thresholds": {c.name: view.thresholds[c.index] for c in CLASSES},
            "coverage": {c.name: float(coverage[c.index]) for c in CLASSES},
            "metrics": result.metrics(view.thresholds, with_jaccard=with_jaccard),
        }

    def api_overlay(self, result: SegmentationResult) -> Path:
        """The API's picture, as a PNG file: every class at the model's thresholds over the
        full-resolution preview, opacity 0.5, legend with coverage below (the same picture as
        `predict`'s overlay PNG)."""
        picture = overlay_picture(result.preview, result.masks(result.thresholds))
        path = self.picture_folders.new() / f"{result.image_id}_overlay.png"
        path.write_bytes(render.png_bytes(picture, compress_level=3))
        return path

    def picture(self, image: np.ndarray | None, name: str, *, photo: bool) -> str | None:
        """A picture for the page written to a private temporary file (see `views.picture_bytes`)."""
        if image is None:
            return None
        return str(save_picture(image, self.picture_folders.new(), name, photo))

    def export(self, result: SegmentationResult, view: View) -> list[Path]:
        """Write the download files of `view` into a fresh private folder; see `dstl.demo.downloads`."""
        return write_downloads(result, view, self.export_folders.new(), self.summary(result, view))

"""The demo's work, independent of the web framework: segment a dataset image or an upload.

`DemoService` ties together the weight sources (`ModelRegistry`), an optional DSTL-layout
dataset, the upload limits and the store of finished results (`dstl.demo.store.ResultStore`):

- `segment_image(image_id, model)` looks the id up in the dataset's list (never joining it into
  a path unchecked), picks the right model for the bands, reads the bands it needs, runs the
  inference engine with a progress callback, and attaches the ground truth when the image is
  labelled;
- `segment_upload(paths, model)` validates and reads an upload (`dstl.demo.uploads`), brings a
  plain 8-bit photo onto the model's input statistics (`dstl.demo.radiometry`), then the same;
- both return a `Segmented`: the result, the token it is kept under (what a page or a link
  holds), whether a kept result was reused, and how long the request took;
- `stored(token)` gives a kept result back (or says clearly that it is gone);
- `export(result, view)` writes the download files of the current view into a private folder;
- `summary(result, view)` is the JSON the public API returns.

Results are reused by (model, image) — by content hash for uploads — while the store keeps them,
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
from dstl.demo import gpu
from dstl.demo.downloads import ExportFolders, write_downloads
from dstl.demo.radiometry import FAR_OFF_SIGMAS, distances, match_bands, photo_pixels
from dstl.demo.registry import ModelRegistry, describe_bands
from dstl.demo.result import SegmentationResult, pixel_grid
from dstl.demo.store import ResultStore, Stored
from dstl.demo.uploads import image_bit_depth, read_upload
from dstl.demo.views import View, save_picture, timing_text
from dstl.errors import DataError, DstlError, UnknownImageError
from dstl.exports import overlay_picture
from dstl.scene import Scene

__all__ = ["Limits", "Segmented", "DemoService", "Progress", "ResultGoneError"]

#: progress(fraction 0..1, description) — what the service reports while it works.
Progress = Callable[[float, str], None]


def _no_progress(fraction: float, desc: str) -> None:
    pass


class ResultGoneError(DstlError):
    """A page or link names a result the server no longer keeps."""


@dataclass(frozen=True)
class Limits:
    """Upload limits: bytes per file and pixels (height x width) per image."""

    max_bytes: int = 200 * 2**20
    max_pixels: int = 4096 * 4096


@dataclass
class Segmented:
    """A segmentation request's answer.

    Attributes:
        result: the result; token: the key it is kept under in the service's store.
        note: set when the requested model was replaced by a better-fitting one, saying so.
        reused: a kept result was returned instead of running the model.
        request_seconds: time this request took in the service (reading, model, preparation).
        created: when the result was computed (seconds since the epoch).
    """

    result: SegmentationResult
    token: str
    note: str | None = None
    reused: bool = False
    request_seconds: float = 0.0
    created: float = 0.0

    def timing(self, seconds: float | None = None) -> str:
        """The status line's timing; `seconds` replaces `request_seconds` (e.g. with rendering)."""
        return timing_text(self.result, reused=self.reused, created=self.created,
                           request_seconds=self.request_seconds if seconds is None else seconds)


def model_summary(registry: ModelRegistry, key: str) -> str:
    """One line, e.g. "unet-20band: UNet, all 20 bands (...), trained on SYNTHETIC scenes"."""
    from dstl.demo.cards import short_summary

    return short_summary(registry, key)


def _file_digest(paths: Sequence[str | Path]) -> str:
    """sha256 over the uploaded files' names and contents (the reuse key of an upload)."""
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
        cache_bytes: memory budget of the kept results (`ResultStore`); 0 keeps only the newest
            result (and the pinned example) and turns reuse off, so that every request runs the model.
        predictor_args: keyword arguments of `dstl.engine.Predictor` (precision, batch_size, ...).

    One `dstl.engine.Predictor` is made per model, on first use, and shared: it prepares the module
    (device, memory format) once, and its `predict` only reads the module, so several requests can
    run it at once (the app's queue bounds how many). On a ZeroGPU Space requests run through
    `dstl.demo.gpu.predict_on_zero_gpu` instead.
    """

    def __init__(self, registry: ModelRegistry, dataset=None, *, limits: Limits = Limits(),
                 cache_bytes: int = 1 << 30, predictor_args: dict | None = None):
        self.registry = registry
        self.dataset = dataset
        self.limits = limits
        self.store = ResultStore(cache_bytes, reuse=cache_bytes > 0)
        self.predictor_args = dict(predictor_args or {})
        self.export_folders = ExportFolders()
        self.picture_folders = ExportFolders(keep=512)
        self._predictors: dict[str, object] = {}
        self._predictors_lock = threading.Lock()
        self._image_files: OrderedDict[tuple, str] = OrderedDict()  # (token, full) -> preview file
        self._image_files_lock = threading.Lock()

    # ----------------------------------------------------------------- dataset

    @property
    def image_ids(self) -> list[str]:
        return list(self.dataset.image_ids) if self.dataset is not None else []

    def labelled_ids(self) -> list[str]:
        """The dataset's ids with ground truth, in the dataset's order."""
        if self.dataset is None:
            return []
        return [i for i in self.dataset.image_ids if self.dataset.has_labels(i)]

    def image_choices(self) -> list[tuple[str, str]]:
        """(label, id) for the image menu, labelled images first; the label says whether truth exists."""
        if self.dataset is None:
            return []
        labelled = self.labelled_ids()
        others = [i for i in self.dataset.image_ids if i not in set(labelled)]
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
                      progress: Progress = _no_progress, pin: bool = False) -> Segmented:
        """Segment a dataset image (all four products available, so any model fits).

        `pin` keeps the result for the life of the process (the example shown on arrival).
        """
        start = time.perf_counter()
        image_id = self.check_image_id(image_id)
        key, note = self.registry.choose(model_key or None, ALL_BANDS, allow_switch=allow_switch)

        def compute() -> SegmentationResult:
            t0 = time.perf_counter()
            needed = tuple(self.registry.bands(key))
            bands = needed + tuple(b for b in RGB_BANDS if b not in needed)
            progress(0.02, f"Reading {image_id} ({describe_bands(needed)})")
            scene = self.dataset.read_scene(image_id, bands)
            truth_masks = truth_polys = None
            if self.dataset.has_labels(image_id):
                progress(0.04, "Reading the ground truth")
                truth_masks = self.dataset.masks(image_id)
                truth_polys = self.dataset.labels(image_id)
            return self._run(scene, key, "dataset", self.dataset.transform(image_id), truth_masks,
                             truth_polys, progress, t0)

        if pin:
            stored, reused = self.store.put(compute(), ("dataset", key, image_id), pinned=True), False
        else:
            stored, reused = self.store.get_or_compute(("dataset", key, image_id), compute)
        return self._answer(stored, note, reused, start)

    def segment_upload(self, paths: Sequence[str | Path], model_key: str | None, *,
                       allow_switch: bool = True, progress: Progress = _no_progress) -> Segmented:
        """Segment an upload: one RGB image, or the four DSTL TIFFs of one image."""
        start = time.perf_counter()
        paths = [Path(p) for p in paths if p]
        progress(0.0, "Checking the upload")
        scene = read_upload(paths, max_bytes=self.limits.max_bytes, max_pixels=self.limits.max_pixels)
        key, note = self.registry.choose(model_key or None, scene.bands, allow_switch=allow_switch)
        bits = image_bit_depth(paths[0]) if len(paths) == 1 else None

        def compute() -> SegmentationResult:
            t0 = time.perf_counter()
            return self._run(scene, key, "upload", pixel_grid(scene.height, scene.width), None, None,
                             progress, t0, photo_bits=bits)

        stored, reused = self.store.get_or_compute(("upload", key, _file_digest(paths)), compute)
        return self._answer(stored, note, reused, start)

    def segment_with(self, token: str, model_key: str, paths: Sequence[str | Path] | None = None, *,
                     progress: Progress = _no_progress) -> Segmented:
        """The image of the kept result `token`, segmented by model `model_key` (no switching): a
        dataset image by its id; an upload from `paths`, which must be the same files."""
        stored = self.stored(token)
        result = stored.result
        if result.origin == "dataset":
            return self.segment_image(result.image_id, model_key, allow_switch=False, progress=progress)
        paths = [p for p in (paths or []) if p]
        if not paths or stored.key is None or stored.key[-1] != _file_digest(paths):
            raise DataError(f"the upload box no longer holds {result.image_id}; upload it again to compare "
                            "models on it")
        return self.segment_upload(paths, model_key, allow_switch=False, progress=progress)

    def _answer(self, stored: Stored, note: str | None, reused: bool, start: float) -> Segmented:
        return Segmented(stored.result, stored.token, note, reused, time.perf_counter() - start,
                         stored.created)

    def stored(self, token: str | None) -> Stored:
        """The kept result of `token`; ResultGoneError saying why when the store no longer has it."""
        found = self.store.get(token)
        if found is None:
            raise ResultGoneError(
                "this result is no longer kept on the server (it keeps the most recent results within "
                f"{self.store.max_bytes / 2**20:.0f} MB, and nothing across restarts); "
                "segment the image again")
        return found

    def warm_up(self) -> dict[str, str]:
        """Load every served model and measure its speed profile now, at start-up, so that no
        visitor waits for it and `precision="auto"` can pick bf16/int8 for small images too (the
        engine measures on its own only for runs of 100+ tiles, see `dstl.autotune`).

        Returns {model key: what was done}; a model that fails to load is reported, not raised
        (its error reaches the visitor who picks it). Nothing is measured on a ZeroGPU Space
        (CUDA exists only inside its GPU calls) nor on a GPU.
        """
        done: dict[str, str] = {}
        if gpu.on_zero_gpu():
            return {key: "not measured (ZeroGPU)" for key in self.registry.keys}
        for key in self.registry.keys:
            try:
                predictor = self._predictor(key, _no_progress)
            except DstlError as e:
                done[key] = f"not loaded: {e}"
                continue
            if predictor.device.type != "cpu":
                done[key] = f"not measured ({predictor.device.type}: auto is bf16 where supported)"
                continue
            predictor.speed_profile()
            done[key] = "measured"
        return done

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

                args = dict(self.predictor_args)
                if gpu.on_zero_gpu():
                    args["device"] = "cpu"  # CUDA exists only inside ZeroGPU calls
                predictor = Predictor(loaded, **args)
                self._predictors[key] = predictor
        return predictor

    def _predict(self, key: str, scene: Scene, progress: Progress) -> tuple[np.ndarray, float]:
        """(probabilities, model seconds) of model `key` on `scene`: ZeroGPU on such a Space, else
        the shared predictor (the engine picks the model's bands from the scene per tile)."""
        start = time.perf_counter()
        if gpu.on_zero_gpu():
            progress(0.1, f"Segmenting {scene.image_id} on the GPU")
            probs, _ = gpu.predict_on_zero_gpu(self.registry.load(key), scene, self.predictor_args)
            return probs, time.perf_counter() - start
        predictor = self._predictor(key, progress)

        def on_tiles(done: int, total: int) -> None:
            progress(0.05 + 0.9 * done / max(total, 1), f"Segmenting {scene.image_id}: tile {done}/{total}")

        return predictor.predict(scene, progress=on_tiles).probs, time.perf_counter() - start

    def _run(self, scene: Scene, key: str, origin: str, transform, truth_masks, truth_polys,
             progress: Progress, t0: float, photo_bits: int | None = None) -> SegmentationResult:
        preview = photo_pixels(scene) if photo_bits == 8 else render.rgb_preview(scene)
        radiometry = None
        if photo_bits is not None:
            stats = self.registry.load(key).config.normalization
            if photo_bits == 8:
                scene, match = match_bands(scene, stats)
                radiometry = match.describe()
            else:
                far = distances(scene, stats)
                if far and max(far.values()) > FAR_OFF_SIGMAS:
                    radiometry = (f"{photo_bits}-bit image used as sensor counts: its "
                                  f"{', '.join(far)} sit {', '.join(f'{v:.1f}' for v in far.values())} "
                                  "standard deviations away from the model's training statistics, so "
                                  "expect poor results.")
        probabilities, model_seconds = self._predict(key, scene, progress)
        progress(0.97, "Preparing the view")
        return SegmentationResult.create(
            image_id=scene.image_id, origin=origin, model_key=key,
            model_summary=model_summary(self.registry, key), bands=tuple(self.registry.bands(key)),
            probabilities=probabilities, preview=preview, thresholds=tuple(self._thresholds(key)),
            transform=transform, truth_masks=truth_masks, truth_polys=truth_polys,
            seconds=time.perf_counter() - t0, model_seconds=model_seconds, radiometry=radiometry)

    def _thresholds(self, key: str) -> tuple[float, ...]:
        config = self.registry.load(key).config
        return tuple(config.thresholds)

    # ----------------------------------------------------------------- outputs

    def summary(self, result: SegmentationResult, view: View | None = None, *,
                with_jaccard: bool = True, segmented: Segmented | None = None) -> dict:
        """The public API's JSON for `result` at `view` (default: the model's thresholds, all classes).

        Coverage, thresholds and scores are those of the view's shown classes; the means are over
        the same classes (see `dstl.demo.views.VIEW_DEFINITION`, written in as "view").
        `seconds` is how long the result took to compute; with `segmented`, `request_seconds` and
        `reused` say what this request cost.
        """
        view = view or View.default(result)
        coverage = result.coverage(view.thresholds)
        shown = [c for c in CLASSES if c.id in view.classes]
        out = {
            "image_id": result.image_id,
            "source": result.origin,
            "model": result.model_key,
            "model_summary": result.model_summary,
            "bands": list(result.bands),
            "height": result.height,
            "width": result.width,
            "seconds": round(result.seconds, 3),
            "model_seconds": round(result.model_seconds, 3),
            "has_ground_truth": result.has_truth,
            "view": view.definition(),
            "thresholds": {c.name: view.thresholds[c.index] for c in shown},
            "coverage": {c.name: float(coverage[c.index]) for c in shown},
            "metrics": result.metrics(view.thresholds, classes=view.classes, with_jaccard=with_jaccard),
            "input_adjustment": result.radiometry,
        }
        if segmented is not None:
            out["request_seconds"] = round(segmented.request_seconds, 3)
            out["reused"] = segmented.reused
        return out

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

    def image_picture(self, token: str, result: SegmentationResult, image: np.ndarray, full: bool) -> str:
        """The plain RGB picture of a result for the page, encoded once per (token, resolution)."""
        with self._image_files_lock:
            path = self._image_files.get((token, full))
            if path is not None and Path(path).is_file():
                self._image_files.move_to_end((token, full))
                return path
        path = self.picture(image, f"{result.image_id}_image{'_full' if full else ''}", photo=True)
        with self._image_files_lock:
            self._image_files[(token, full)] = path
            while len(self._image_files) > 64:
                self._image_files.popitem(last=False)
        return path

    def export(self, result: SegmentationResult, view: View) -> list[Path]:
        """Write the download files of `view` into a fresh private folder; see `dstl.demo.downloads`."""
        return write_downloads(result, view, self.export_folders.new(), self.summary(result, view))

"""One segmented scene, held so that the view can change without running the model again.

`SegmentationResult` keeps the per-class probabilities quantised to uint8 (p * 255, rounded:
a quarter of float32's memory, and 1/255 is finer than any threshold a person sets), the RGB
preview, and — for a labelled dataset image — the ground-truth polygons. From these it answers,
for any per-class thresholds:

- masks at full resolution (for downloads) and at display resolution (for pictures: shrunk by
  the integer factor of `dstl.render.display_factor` so the longest side is at most
  `DISPLAY_MAX_SIDE`, the probabilities by block *maximum* — thresholding that equals the
  block-any reduction of the full mask, so vehicles stay visible — so that rendering and
  sending a picture of a full ~3350 x 3400 scene stays well under a second; images smaller than
  `DISPLAY_MIN_SIDE` are enlarged by pixel replication instead);
- per-class area coverage and pixel IoU / Dice, exactly and instantly, from per-class 256-bin
  histograms of the quantised probabilities computed once (all pixels, and truth pixels only);
- the Kaggle polygon Jaccard (needs polygons: computed on demand and cached per thresholds);
- the probabilities of every class at one pixel (`probe`), for the page's click-to-inspect.

Means of scores (`metrics`) are over one set of classes for every score: the classes asked for
(the shown ones) whose every reported score is defined, i.e. the class is present in the
prediction or the truth both as pixels and as polygons. (A class whose few predicted pixels
vanish when vectorised has a pixel IoU of 0 but no polygon Jaccard; it is left out of every mean,
not of one.)

A threshold t keeps the pixels whose quantised probability q = round(255 p) is at least
round(255 t): the same as p >= t up to the 1/255 quantisation.

Coordinates of an upload: an uploaded image has no grid_sizes.csv row, so its polygons (CSV rows,
GeoJSON, Kaggle Jaccard) use a grid in which x is the pixel column and y minus the pixel row
(Xmax = W^2 / (W + 1), Ymin = -H^2 / (H + 1) in the competition transform).
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dstl.classes import CLASSES, NUM_CLASSES
from dstl.grid import GridTransform
from dstl.render import display_factor, pack_masks, reduce_image, reduce_masks

__all__ = ["DISPLAY_MAX_SIDE", "SegmentationResult", "quantize", "threshold_levels", "pixel_grid", "mean_of"]

#: Longest side (pixels) of the pictures shown in the page.
DISPLAY_MAX_SIDE = 1024

#: Images whose longest side is below this are enlarged for display by an integer factor
#: (pixel replication), so that titles and legends drawn on the pictures stay readable.
DISPLAY_MIN_SIDE = 384


def quantize(probs: np.ndarray) -> np.ndarray:
    """float (C, H, W) probabilities in [0, 1] -> uint8 round(255 p), one class at a time (bounded memory)."""
    out = np.empty(probs.shape, dtype=np.uint8)
    tmp = np.empty(probs.shape[1:], dtype=np.float32)
    for k in range(probs.shape[0]):
        np.multiply(probs[k], 255.0, out=tmp)
        np.clip(tmp, 0.0, 255.0, out=tmp)
        np.rint(tmp, out=tmp)
        out[k] = tmp
    return out


def threshold_levels(thresholds: Sequence[float]) -> np.ndarray:
    """Per-class quantised levels (int, 0..255) for thresholds in [0, 1]."""
    t = np.clip(np.asarray(thresholds, dtype=np.float64), 0.0, 1.0)
    if t.shape != (NUM_CLASSES,):
        raise ValueError(f"expected {NUM_CLASSES} thresholds, got {t.shape}")
    return np.rint(t * 255.0).astype(np.int64)


def pixel_grid(height: int, width: int) -> GridTransform:
    """The transform used for uploads: grid x = pixel column, grid y = -pixel row."""
    return GridTransform(height, width, width * width / (width + 1), -(height * height / (height + 1)))


def _block_max(planes: np.ndarray, factor: int) -> np.ndarray:
    """uint8 (C, H, W) -> (C, ceil(H/f), ceil(W/f)), each output pixel the max of its f x f block.

    Thresholding the block maximum at a level equals the block-*any* reduction of the
    full-resolution mask (`dstl.render.reduce_masks`), so tiny objects stay visible.
    """
    if factor == 1:
        return planes.copy()
    c, h, w = planes.shape
    padded = np.pad(planes, ((0, 0), (0, (-h) % factor), (0, (-w) % factor)))
    # Strided maxima (rows, then columns): ~10x faster than a max over reshaped block axes.
    rows = padded[:, 0::factor, :].copy()
    for i in range(1, factor):
        np.maximum(rows, padded[:, i::factor, :], out=rows)
    out = rows[:, :, 0::factor].copy()
    for i in range(1, factor):
        np.maximum(out, rows[:, :, i::factor], out=out)
    return out


def _enlarge(planes: np.ndarray, factor: int, axes: tuple[int, int]) -> np.ndarray:
    """Repeat each pixel factor x factor times along `axes` (no interpolation: honest pixels)."""
    if factor == 1:
        return planes
    return np.repeat(np.repeat(planes, factor, axis=axes[0]), factor, axis=axes[1])


def _histograms(q: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """(C, 256) int64 counts of each quantised level per class (only where `where[k]` if given)."""
    hist = np.zeros((q.shape[0], 256), dtype=np.int64)
    for k in range(q.shape[0]):
        values = q[k] if where is None else q[k][where[k] != 0]
        hist[k] = np.bincount(values.ravel(), minlength=256)
    return hist


@dataclass
class SegmentationResult:
    """A segmented scene (see the module docstring).

    Build it with `SegmentationResult.create`. Attributes:
        image_id: dataset id, or a display label for an upload.
        origin: "dataset" or "upload".
        model_key: the model menu key that produced it; model_summary its one-line description.
        bands: the bands the model read.
        probs: uint8 (10, H, W) quantised probabilities.
        preview: uint8 (H, W, 3) RGB preview.
        thresholds: the model's default per-class thresholds.
        transform: grid <-> pixel transform for polygons.
        truth_polys: ground-truth polygons {class: geometry} in grid coordinates, or None.
        truth_packed: uint16 (H, W) ground-truth bit field (`dstl.render.pack_masks`), or None.
        seconds: time from reading the image to the finished result (model included).
        model_seconds: time the model took.
        radiometry: what was done to the upload's values before the model, in words, or None.
    """

    image_id: str
    origin: str
    model_key: str
    model_summary: str
    bands: tuple[str, ...]
    probs: np.ndarray
    preview: np.ndarray
    thresholds: tuple[float, ...]
    transform: GridTransform
    truth_polys: dict | None = None
    truth_packed: np.ndarray | None = None
    seconds: float = 0.0
    model_seconds: float = 0.0
    radiometry: str | None = None
    display_probs: np.ndarray = field(init=False, repr=False)
    display_preview: np.ndarray = field(init=False, repr=False)
    display_truth: np.ndarray | None = field(init=False, repr=False)
    hist: np.ndarray = field(init=False, repr=False)
    hist_true: np.ndarray | None = field(init=False, repr=False)
    _jaccard_cache: dict = field(init=False, repr=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    @classmethod
    def create(cls, *, image_id: str, origin: str, model_key: str, model_summary: str,
               bands: Sequence[str], probabilities: np.ndarray, preview: np.ndarray,
               thresholds: Sequence[float], transform: GridTransform,
               truth_masks: np.ndarray | None = None, truth_polys: dict | None = None,
               seconds: float = 0.0, model_seconds: float = 0.0, radiometry: str | None = None,
               display_max_side: int = DISPLAY_MAX_SIDE) -> "SegmentationResult":
        """Quantise `probabilities` (float (10, H, W) in [0, 1]) and precompute what views need.

        `truth_masks` (uint8 (10, H, W)) is used for the histograms and the display copy and kept
        packed (2 bytes a pixel, for full-resolution pictures); `truth_polys` is kept for the
        Kaggle Jaccard.
        """
        probs = probabilities if probabilities.dtype == np.uint8 else quantize(probabilities)
        if probs.shape[0] != NUM_CLASSES or probs.ndim != 3:
            raise ValueError(f"probabilities must be ({NUM_CLASSES}, H, W), got {probs.shape}")
        if preview.shape != (*probs.shape[1:], 3):
            raise ValueError(f"preview {preview.shape} does not match probabilities {probs.shape}")
        result = cls(image_id=image_id, origin=origin, model_key=model_key, model_summary=model_summary,
                     bands=tuple(bands), probs=probs, preview=np.ascontiguousarray(preview, dtype=np.uint8),
                     thresholds=tuple(float(t) for t in thresholds), transform=transform,
                     truth_polys=truth_polys, seconds=seconds, model_seconds=model_seconds,
                     radiometry=radiometry)
        factor = display_factor(*probs.shape[1:], display_max_side)
        up = max(1, DISPLAY_MIN_SIDE // max(probs.shape[1:])) if factor == 1 else 1
        result.display_probs = _enlarge(_block_max(probs, factor), up, (1, 2))
        preview_small = reduce_image(result.preview, factor)
        result.display_preview = np.ascontiguousarray(_enlarge(preview_small, up, (0, 1)))
        result.hist = _histograms(probs)
        if truth_masks is not None:
            if truth_masks.shape != probs.shape:
                raise ValueError(f"truth masks {truth_masks.shape} do not match probabilities {probs.shape}")
            result.hist_true = _histograms(probs, truth_masks)
            result.display_truth = _enlarge(reduce_masks(truth_masks, factor), up, (1, 2))
            result.truth_packed = pack_masks(truth_masks)
        else:
            result.hist_true = None
            result.display_truth = None
        return result

    # ------------------------------------------------------------------ basic facts

    @property
    def height(self) -> int:
        return int(self.probs.shape[1])

    @property
    def width(self) -> int:
        return int(self.probs.shape[2])

    @property
    def has_truth(self) -> bool:
        return self.hist_true is not None

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (for the cache's budget)."""
        arrays = [self.probs, self.preview, self.display_probs, self.display_preview, self.display_truth,
                  self.truth_packed]
        return int(sum(a.nbytes for a in arrays if a is not None))

    @property
    def display_scale(self) -> float:
        """Display pixels per full-resolution pixel (< 1 when shrunk, > 1 when enlarged)."""
        return self.display_probs.shape[2] / self.width

    # ------------------------------------------------------------------ masks

    def masks(self, thresholds: Sequence[float]) -> np.ndarray:
        """Full-resolution uint8 (10, H, W) 0/1 masks for `thresholds`."""
        levels = threshold_levels(thresholds).astype(np.uint8)
        return (self.probs >= levels[:, None, None]).astype(np.uint8)

    def packed_masks(self, thresholds: Sequence[float]) -> np.ndarray:
        """Full-resolution uint16 (H, W) bit field of the masks (bit k-1 <=> class k, as
        `dstl.render.pack_masks`), built one class at a time: 2 bytes a pixel, no (10, H, W) copy."""
        levels = threshold_levels(thresholds)
        packed = np.zeros(self.probs.shape[1:], np.uint16)
        plane = np.empty(self.probs.shape[1:], bool)
        bit = np.empty(self.probs.shape[1:], np.uint16)
        for k in range(NUM_CLASSES):
            np.greater_equal(self.probs[k], levels[k], out=plane)
            np.left_shift(plane, k, out=bit, casting="unsafe")
            packed |= bit
        return packed

    def display_masks(self, thresholds: Sequence[float]) -> np.ndarray:
        """Display-resolution uint8 (10, h, w) 0/1 masks for `thresholds`."""
        levels = threshold_levels(thresholds).astype(np.uint8)
        return (self.display_probs >= levels[:, None, None]).astype(np.uint8)

    # ------------------------------------------------------------------ numbers

    def coverage(self, thresholds: Sequence[float]) -> np.ndarray:
        """Fraction (0..1) of the scene's pixels in each class's mask, float64 (10,)."""
        levels = threshold_levels(thresholds)
        above = np.array([self.hist[k, levels[k]:].sum() for k in range(NUM_CLASSES)], dtype=np.float64)
        return above / (self.height * self.width)

    def pixel_scores(self, thresholds: Sequence[float]) -> dict | None:
        """Per-class pixel IoU and Dice at full resolution, or None without ground truth.

        ``{"iou": {k: v|None}, "dice": {...}, "mean_iou": m|None, "mean_dice": m|None}`` as
        `dstl.metrics.pixel_scores` (a class empty in both is None and left out of the means).
        """
        if self.hist_true is None:
            return None
        from dstl.metrics import scores_from_counts

        levels = threshold_levels(thresholds)
        pred = np.array([self.hist[k, levels[k]:].sum() for k in range(NUM_CLASSES)])
        inter = np.array([self.hist_true[k, levels[k]:].sum() for k in range(NUM_CLASSES)])
        true = self.hist_true.sum(axis=1)
        return scores_from_counts({"intersection": inter, "union": pred + true - inter,
                                   "pred": pred, "true": true})

    def polygons(self, thresholds: Sequence[float]) -> dict:
        """Predicted polygons {class: MultiPolygon} in grid coordinates for `thresholds`."""
        from dstl.polygonize import masks_to_polygons

        return masks_to_polygons(self.masks(thresholds), self.transform)

    def cached_kaggle_jaccard(self, thresholds: Sequence[float]) -> dict | None:
        """The Kaggle Jaccard at `thresholds` if already computed, else None (never computes)."""
        key = tuple(int(v) for v in threshold_levels(thresholds))
        with self._lock:
            return self._jaccard_cache.get(key)

    def kaggle_jaccard(self, thresholds: Sequence[float]) -> dict | None:
        """The Kaggle polygon Jaccard of this image at `thresholds` (cached), or None without truth."""
        if self.truth_polys is None:
            return None
        key = tuple(int(v) for v in threshold_levels(thresholds))
        with self._lock:
            if key in self._jaccard_cache:
                return self._jaccard_cache[key]
        from dstl.metrics import kaggle_jaccard

        scores = kaggle_jaccard({self.image_id: self.polygons(thresholds)}, {self.image_id: self.truth_polys})
        with self._lock:
            self._jaccard_cache[key] = scores
        return scores

    def metrics(self, thresholds: Sequence[float], *, classes: Sequence[int] | None = None,
                with_jaccard: bool = True) -> dict | None:
        """Per-class IoU, Dice and Kaggle Jaccard of `classes` (default all), or None without truth.

        ``{"per_class": {name: {"class_id", "iou", "dice", "jaccard"}}, "mean": {"iou", "dice",
        "jaccard"}, "mean_over": [class ids], "jaccard_computed": bool}``; per-class values are None
        where undefined (class empty in prediction and truth). Every mean is over the same classes,
        `mean_over` (see the module docstring). With `with_jaccard` False the Jaccard is taken from
        the cache if it was computed for these thresholds, else None everywhere (and
        jaccard_computed is False; `mean_over` then follows the pixel scores alone).
        """
        px = self.pixel_scores(thresholds)
        if px is None:
            return None
        ids = sorted({int(k) for k in classes}) if classes is not None else [c.id for c in CLASSES]
        kj = self.kaggle_jaccard(thresholds) if with_jaccard else self.cached_kaggle_jaccard(thresholds)
        per_class = {c.name: {"class_id": c.id, "iou": px["iou"][c.id], "dice": px["dice"][c.id],
                              "jaccard": kj["per_class"][c.id] if kj else None}
                     for c in CLASSES if c.id in ids}
        over = [k for k in ids if px["iou"][k] is not None and (kj is None or kj["per_class"][k] is not None)]
        mean = {"iou": mean_of(px["iou"][k] for k in over), "dice": mean_of(px["dice"][k] for k in over),
                "jaccard": mean_of(kj["per_class"][k] for k in over) if kj else None}
        return {"per_class": per_class, "mean": mean, "mean_over": over, "jaccard_computed": kj is not None}

    # ------------------------------------------------------------------ one pixel

    def probe(self, x: int, y: int, thresholds: Sequence[float]) -> dict:
        """What the result says about full-resolution pixel (x = column, y = row), both clamped to
        the image: ``{"x", "y", "probability": {class id: p}, "predicted": [ids at `thresholds`],
        "truth": [ids] or None}``; probabilities are the kept quantised values (1/255 steps)."""
        x = int(min(max(x, 0), self.width - 1))
        y = int(min(max(y, 0), self.height - 1))
        q = self.probs[:, y, x].astype(np.int64)
        levels = threshold_levels(thresholds)
        truth = None
        if self.truth_packed is not None:
            bits = int(self.truth_packed[y, x])
            truth = [c.id for c in CLASSES if bits >> c.index & 1]
        return {"x": x, "y": y, "probability": {c.id: round(q[c.index] / 255, 3) for c in CLASSES},
                "predicted": [c.id for c in CLASSES if q[c.index] >= levels[c.index]], "truth": truth}


def mean_of(values) -> float | None:
    """The mean of `values` (an iterable of floats), or None when there are none."""
    values = list(values)
    return float(sum(values) / len(values)) if values else None

"""One dataset image through the whole chain: read -> infer -> masks -> polygons (-> metrics).

`python -m dstl predict` and `python -m dstl submit` both call `segment_image`, so a row in a
submission is exactly the row `predict` writes for the same image, weights and options.

    predictor = Predictor(load_model(src), tta=True)          # once (device, memory format)
    ids = check_images(dataset, ids, predictor.bands)          # before any work
    result = segment_image(dataset, image_id, predictor, progress=cb)
    result.masks        # uint8 (10, H, W) 0/1 on the image's 3-band grid, class k at k-1
    result.polygons     # {1..10: valid MultiPolygon} in GRID coordinates (submission rows)
    result.metrics      # `dstl.exports.image_metrics` dict for a labelled image, else None

In two stages, so that a picture can be shown before the polygon-based results exist (on a full
3350 x 3400 scene, polygons and the Kaggle Jaccard take ~5-10 s of a 2-core CPU after the masks):

    result = infer_image(dataset, image_id, predictor)   # read, infer, masks, preview
    show(result.overlay())                                # uint8 (H, W, 3), all classes, 50 %
    finish_image(result, dataset)                         # polygons, then metrics if labelled

`segment_image` is exactly `finish_image(infer_image(...))`.

Bands: a dataset image offers all 20 bands (`dstl.bands.ALL_BANDS`) from four product files.
Only the products the model's bands live in are read — an RGB model on a 20-band dataset reads
`three_band/<id>.tif` alone; a 20-band model needs all four. `check_images` confirms, from TIFF
headers only (no pixels), that every product file an image needs exists, has the right band
layout and a size that fits the image's 3-band grid, and that the grid is within the image size
limits, so a missing or mis-sized file is reported before any inference or output.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from shapely.geometry import MultiPolygon

from dstl import render
from dstl.bands import ALL_BANDS, RGB_BANDS
from dstl.engine import Prediction, Predictor
from dstl.errors import BandMismatchError, DataError
from dstl.grid import GridTransform
from dstl.polygonize import masks_to_polygons
from dstl.scene import PRODUCT_BANDS, read_product_shape

__all__ = ["ImageResult", "products_for_bands", "check_image", "check_images", "segment_image",
           "infer_image", "finish_image"]

#: Order in which products are listed (three_band first: it defines the grid).
_PRODUCT_ORDER = ("3", "P", "M", "A")


@dataclass
class ImageResult:
    """The outcome of `segment_image` for one dataset image.

    Attributes:
        image_id: the image.
        prediction: the engine's `dstl.engine.Prediction` (float32 (10, H, W) probabilities,
            thresholds, run info: device, precision, tiles, seconds, ...).
        masks: uint8 (10, H, W) 0/1 masks at the prediction's thresholds.
        polygons: class id (1..10) -> valid MultiPolygon in GRID coordinates (empty if none),
            from `dstl.polygonize.masks_to_polygons`; None until `finish_image` has run.
        transform: the image's grid <-> pixel transform.
        preview: uint8 (H, W, 3) RGB preview (percentile stretch), or None if not asked for.
        metrics: `dstl.exports.image_metrics(...)` against the labels for a labelled image when
            asked for, else None.
        seconds: wall time per stage: "read" (scene and preview), "infer" (engine and masks),
            "polygons", "metrics".
    """

    image_id: str
    prediction: Prediction
    masks: np.ndarray
    polygons: dict[int, MultiPolygon] | None
    transform: GridTransform
    preview: np.ndarray | None = None
    metrics: dict | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.masks.shape[1])

    @property
    def width(self) -> int:
        return int(self.masks.shape[2])

    @property
    def finished(self) -> bool:
        """True once the polygons (and metrics, where asked for) are there."""
        return self.polygons is not None

    def overlay(self, opacity: float = 0.5) -> np.ndarray:
        """uint8 (H, W, 3): every class's mask over the preview (`dstl.exports.overlay_picture`,
        the picture `predict` writes as <id>_overlay.png). Needs the preview."""
        if self.preview is None:
            raise ValueError(f"{self.image_id}: no preview was made (preview=False)")
        from dstl.exports import overlay_picture

        return overlay_picture(self.preview, self.masks, opacity)

    def coverage(self) -> dict[int, float]:
        """Fraction of the image's pixels in each class's mask (class id -> 0..1)."""
        n = max(self.height * self.width, 1)
        return {k + 1: float(np.count_nonzero(self.masks[k])) / n for k in range(self.masks.shape[0])}


def products_for_bands(bands: Iterable[str]) -> tuple[str, ...]:
    """The DSTL products ("3", "P", "M", "A") that hold `bands`, in that order.

    Raises BandMismatchError for a band that no DSTL product holds (see `dstl.bands.ALL_BANDS`).
    """
    where = {b: p for p, names in PRODUCT_BANDS.items() for b in names}
    bands = tuple(bands)
    unknown = [b for b in bands if b not in where]
    if unknown:
        raise BandMismatchError(f"the model needs band(s) {','.join(unknown)} that no DSTL product holds "
                                f"(DSTL bands: {','.join(ALL_BANDS)})")
    needed = {where[b] for b in bands}
    return tuple(p for p in _PRODUCT_ORDER if p in needed)


def _read_bands(model_bands: Sequence[str], preview: bool) -> tuple[str, ...]:
    """The bands to read: the model's, plus R, G, B for the preview (from the same 3-band file)."""
    bands = tuple(model_bands)
    if preview:
        bands += tuple(b for b in RGB_BANDS if b not in bands)
    return bands


def check_image(dataset, image_id: str, bands: Sequence[str]) -> str:
    """Check that `dataset` can give `bands` of `image_id`; return the id.

    Looks the id up (`UnknownImageError`), then reads the header of the 3-band file (the grid:
    `DataError` if missing, malformed or outside the image size limits of `dstl.limits`) and of
    every other product file those bands need (`DataError` naming a missing or malformed file,
    or one whose size does not fit the grid: `dstl.scene.read_product_shape`). Pixels are not
    read, so a truncated or corrupt pixel block is found only when the scene is read.
    """
    image_id = dataset.check_id(image_id)
    grid = dataset.image_size(image_id)
    for product in products_for_bands(bands):
        if product == "3":
            continue
        try:
            read_product_shape(dataset.product_path(image_id, product), product, grid)
        except DataError as e:
            used = [b for b in bands if b in PRODUCT_BANDS[product]]
            raise DataError(f"{e} (needed for band(s) {','.join(used)} of the model; a model on R,G,B "
                            "only needs three_band/ alone)") from None
    return image_id


def check_images(dataset, image_ids: Iterable[str], bands: Sequence[str]) -> list[str]:
    """`check_image` for every id, in order, duplicates dropped (first occurrence kept).

    All ids are looked up before any file is opened, so an unknown id is reported first.
    """
    ids = list(dict.fromkeys(dataset.check_id(i) for i in image_ids))
    products_for_bands(bands)
    for image_id in ids:
        check_image(dataset, image_id, bands)
    return ids


def segment_image(dataset, image_id: str, predictor, *, thresholds=None, tta: bool | None = None,
                  preview: bool = True, metrics: bool = True, progress=None, cancel=None) -> ImageResult:
    """Segment one image of a DSTL-layout dataset: masks, grid polygons and (if labelled) metrics.

    Args:
        dataset: a `dstl.dataset.DstlDataset`.
        image_id: an id of the dataset (looked up, never joined into a path unchecked).
        predictor: a `dstl.engine.Predictor` (preferred: made once, reused for every image), or
            a `LoadedModel` (a Predictor is made for this call with default options).
        thresholds, tta, progress, cancel: passed to `Predictor.predict` (per-class threshold
            override; test-time augmentation; `progress(done_tiles, total_tiles)`; a
            `threading.Event` that stops the run).
        preview: also make the RGB preview (reads R, G, B besides the model's bands).
        metrics: for a labelled image, also score the prediction against its labels (pixel IoU,
            Dice and the Kaggle polygon Jaccard).

    Raises:
        UnknownImageError, DataError (missing/corrupt product file, malformed labels),
        BandMismatchError, DstlError (bad thresholds), dstl.engine.Cancelled.
    """
    result = infer_image(dataset, image_id, predictor, thresholds=thresholds, tta=tta, preview=preview,
                         progress=progress, cancel=cancel)
    return finish_image(result, dataset, metrics=metrics)


def infer_image(dataset, image_id: str, predictor, *, thresholds=None, tta: bool | None = None,
                preview: bool = True, progress=None, cancel=None) -> ImageResult:
    """The first stage of `segment_image` (same arguments): read the bands, run the engine,
    threshold the masks and make the preview. The result's `polygons` and `metrics` are None
    until `finish_image`; `result.overlay()` is ready at once."""
    if not isinstance(predictor, Predictor):
        predictor = Predictor(predictor)
    image_id = dataset.check_id(image_id)
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    scene = dataset.read_scene(image_id, _read_bands(predictor.bands, preview))
    transform = dataset.transform(image_id)
    picture = render.rgb_preview(scene) if preview else None
    seconds["read"] = time.perf_counter() - t

    t = time.perf_counter()
    prediction = predictor.predict(scene, thresholds=thresholds, tta=tta, progress=progress, cancel=cancel)
    del scene  # the largest buffer (4 bytes per band per pixel); not needed any more
    masks = prediction.masks()
    seconds["infer"] = time.perf_counter() - t
    return ImageResult(image_id, prediction, masks, None, transform, picture, None, seconds)


def finish_image(result: ImageResult, dataset, *, metrics: bool = True) -> ImageResult:
    """The second stage of `segment_image`: grid polygons of `result.masks` and, for a labelled
    image when `metrics` is true, its scores against the labels. Fills `result` in place and
    returns it; a result that is already finished is returned as it is."""
    if result.finished:
        return result
    t = time.perf_counter()
    polygons = masks_to_polygons(result.masks, result.transform)
    result.seconds["polygons"] = time.perf_counter() - t

    if metrics and dataset.has_labels(result.image_id):
        from dstl.exports import image_metrics

        t = time.perf_counter()
        result.metrics = image_metrics(result.image_id, result.masks, dataset.masks(result.image_id),
                                       polygons, dataset.labels(result.image_id))
        result.seconds["metrics"] = time.perf_counter() - t
    result.polygons = polygons
    return result

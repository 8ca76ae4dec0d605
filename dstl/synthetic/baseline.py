"""A per-pixel baseline: the proof that the synthetic scenes need shape and context.

One-vs-rest logistic regression on the 20 band values of single pixels (standardised), with
class-balanced weights, fitted by L-BFGS; per-class decision thresholds are then tuned for pixel
IoU on the training images (the strongest a per-pixel linear model can be made). It learns what
spectra can tell — water, vegetation, paved or built surfaces — and must fail where only shape
or context can: waterway vs standing water (the same water, long and thin vs compact) and road
vs track (the same surfacing pool, wide and smooth vs narrow and winding). `evaluate` therefore
also reports the merged pairs (waterway ∪ standing water, road ∪ track): high merged scores next
to low split scores are the signature of a shape-defined pair.

Used by `bench/pixel_baseline.py` (full report) and the synthetic tests (a fast version).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dstl.bands import ALL_BANDS
from dstl.classes import CLASS_IDS, NUM_CLASSES
from dstl.dataset import DstlDataset
from dstl.metrics import kaggle_jaccard
from dstl.polygonize import masks_to_polygons

#: Class pairs that share spectra by construction and differ only in shape / context.
SHAPE_DEFINED_PAIRS: dict[str, tuple[int, int]] = {"water (7+8)": (7, 8), "road+track (3+4)": (3, 4)}


def sample_pixels(dataset: DstlDataset, image_ids: Sequence[str], per_image: int, per_class: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Training pixels: `per_image` uniformly drawn pixels of each image plus up to `per_class`
    pixels of each class present in it (so rare classes are represented).

    Returns:
        X float32 (n, 20) band values in [0, 1] (`ALL_BANDS` order), Y uint8 (n, 10) labels.
    """
    xs, ys = [], []
    for image_id in image_ids:
        data = dataset.read_scene(image_id, ALL_BANDS).data.reshape(len(ALL_BANDS), -1)
        masks = dataset.masks(image_id).reshape(NUM_CLASSES, -1)
        n = data.shape[1]
        picks = [rng.choice(n, size=min(per_image, n), replace=False)]
        for k in range(NUM_CLASSES):
            where = np.flatnonzero(masks[k])
            if len(where):
                picks.append(rng.choice(where, size=min(per_class, len(where)), replace=False))
        idx = np.unique(np.concatenate(picks))
        xs.append(data[:, idx].T.copy())
        ys.append(masks[:, idx].T.copy())
    return np.concatenate(xs), np.concatenate(ys)


@dataclass
class PixelClassifier:
    """Standardisation (mean, std over 20 bands), weights (20, 10), biases (10,), thresholds (10,)."""

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    thresholds: np.ndarray

    def scores(self, data: np.ndarray) -> np.ndarray:
        """Probabilities (10, H, W) float32 for a (20, H, W) scene."""
        c, h, w = data.shape
        x = (data.reshape(c, -1).T - self.mean) / self.std
        z = x @ self.weights + self.bias
        return (1.0 / (1.0 + np.exp(-z))).T.reshape(NUM_CLASSES, h, w).astype(np.float32)

    def predict(self, data: np.ndarray) -> np.ndarray:
        """Masks (10, H, W) uint8 at the tuned thresholds."""
        return (self.scores(data) >= self.thresholds[:, None, None]).astype(np.uint8)


def _logistic_loss(Z1: np.ndarray, y: np.ndarray, sw: np.ndarray, theta: np.ndarray, l2: float) -> float:
    z = Z1 @ theta
    return float(sw @ (np.logaddexp(0.0, z) - y * z)) + 0.5 * l2 * float(theta[:-1] @ theta[:-1])


def fit_logistic(X: np.ndarray, Y: np.ndarray, l2: float = 1e-3, iterations: int = 25) -> PixelClassifier:
    """One-vs-rest logistic regression with balanced class weights (positives and negatives of
    each class weigh half each) and an L2 penalty `l2` on the weights, fitted per class by
    Newton's method (IRLS, 21 parameters, step halving if a step does not lower the loss).
    Classes without positives (or negatives) get a large constant score. Thresholds start at 0.5.
    """
    mean = X.mean(axis=0)
    std = X.std(axis=0) + 1e-6
    Z1 = np.hstack([(X - mean) / std, np.ones((len(X), 1))]).astype(np.float64)
    d = Z1.shape[1]
    reg = np.full(d, l2)
    reg[-1] = 0.0  # biases are not penalised
    weights = np.zeros((d - 1, NUM_CLASSES))
    bias = np.zeros(NUM_CLASSES)
    for k in range(NUM_CLASSES):
        y = Y[:, k].astype(np.float64)
        n_pos = y.sum()
        if n_pos == 0 or n_pos == len(y):
            bias[k] = -20.0 if n_pos == 0 else 20.0
            continue
        sw = np.where(y > 0, 0.5 / n_pos, 0.5 / (len(y) - n_pos))
        theta = np.zeros(d)
        value = _logistic_loss(Z1, y, sw, theta, l2)
        for _ in range(iterations):
            p = 0.5 * (1.0 + np.tanh(0.5 * (Z1 @ theta)))   # sigmoid, stable
            grad = Z1.T @ (sw * (p - y)) + reg * theta
            hess = (Z1 * (sw * p * (1 - p))[:, None]).T @ Z1 + np.diag(reg + 1e-9)
            step = np.linalg.solve(hess, grad)
            for _ in range(20):
                new_value = _logistic_loss(Z1, y, sw, theta - step, l2)
                if new_value <= value:
                    break
                step = step / 2
            else:
                break
            theta, improved = theta - step, value - new_value
            value = new_value
            if improved < 1e-10:
                break
        weights[:, k], bias[k] = theta[:-1], theta[-1]
    return PixelClassifier(mean.astype(np.float32), std.astype(np.float32), weights.astype(np.float32),
                           bias.astype(np.float32), np.full(NUM_CLASSES, 0.5, dtype=np.float32))


def tune_thresholds(clf: PixelClassifier, dataset: DstlDataset, image_ids: Sequence[str],
                    grid: np.ndarray | None = None) -> np.ndarray:
    """Set `clf.thresholds` to the per-class value in `grid` maximising pixel IoU summed over the
    images (computed from score histograms, one pass per image); returns them."""
    grid = np.linspace(0.02, 0.98, 49) if grid is None else np.asarray(grid)
    bins = np.concatenate([[-np.inf], grid, [np.inf]])
    pos_hist = np.zeros((NUM_CLASSES, len(bins) - 1))
    neg_hist = np.zeros((NUM_CLASSES, len(bins) - 1))
    for image_id in image_ids:
        scores = clf.scores(dataset.read_scene(image_id, ALL_BANDS).data).reshape(NUM_CLASSES, -1)
        truth = dataset.masks(image_id).reshape(NUM_CLASSES, -1).astype(bool)
        for k in range(NUM_CLASSES):
            pos_hist[k] += np.histogram(scores[k][truth[k]], bins)[0]
            neg_hist[k] += np.histogram(scores[k][~truth[k]], bins)[0]
    # Predicting "score >= grid[j]" keeps the histogram bins from j + 1 on.
    tp = np.cumsum(pos_hist[:, ::-1], axis=1)[:, ::-1][:, 1:]
    fp = np.cumsum(neg_hist[:, ::-1], axis=1)[:, ::-1][:, 1:]
    total_pos = pos_hist.sum(axis=1, keepdims=True)
    iou = tp / np.maximum(total_pos + fp, 1)
    clf.thresholds = grid[np.argmax(iou, axis=1)].astype(np.float32)
    return clf.thresholds


def evaluate(clf: PixelClassifier, dataset: DstlDataset, image_ids: Sequence[str],
             polygons: bool = True) -> dict:
    """Scores of `clf` on labelled images.

    Returns:
        {"pixel_iou": {k: IoU or None}, "kaggle_jaccard": {k: J or None} (if `polygons`),
        "pixel_iou_mean", "kaggle_jaccard_mean", "merged_pixel_iou": {pair name: IoU of the
        union of the pair's predictions vs the union of their truths},
        "confusion": {"7->8": share of waterway pixels predicted standing water only, ...},
        "union_as_both_iou": {7: the IoU class 7 would get if the TRUE union of 7 and 8 were
        predicted for both (what a perfect spectral model that cannot split the pair achieves),
        likewise 8, 3, 4}}
        Means are over classes with a non-empty union.
    """
    inter = np.zeros(NUM_CLASSES)
    union = np.zeros(NUM_CLASSES)
    merged = {name: np.zeros(2) for name in SHAPE_DEFINED_PAIRS}
    both = {k: np.zeros(2) for pair in SHAPE_DEFINED_PAIRS.values() for k in pair}
    swap = {f"{a}->{b}": np.zeros(2) for a, b in SHAPE_DEFINED_PAIRS.values()}
    swap.update({f"{b}->{a}": np.zeros(2) for a, b in SHAPE_DEFINED_PAIRS.values()})
    preds, truths = {}, {}
    for image_id in image_ids:
        pred = clf.predict(dataset.read_scene(image_id, ALL_BANDS).data).astype(bool)
        truth = dataset.masks(image_id).astype(bool)
        inter += (pred & truth).reshape(NUM_CLASSES, -1).sum(axis=1)
        union += (pred | truth).reshape(NUM_CLASSES, -1).sum(axis=1)
        for name, (a, b) in SHAPE_DEFINED_PAIRS.items():
            p, t = pred[a - 1] | pred[b - 1], truth[a - 1] | truth[b - 1]
            merged[name] += ((p & t).sum(), (p | t).sum())
            for x, y in ((a, b), (b, a)):
                swap[f"{x}->{y}"] += ((truth[x - 1] & pred[y - 1] & ~pred[x - 1]).sum(), truth[x - 1].sum())
                both[x] += (truth[x - 1].sum(), t.sum())
        if polygons:
            transform = dataset.transform(image_id)
            preds[image_id] = masks_to_polygons(pred.astype(np.uint8), transform)
            truths[image_id] = dataset.labels(image_id)
    iou = {k: (float(inter[k - 1] / union[k - 1]) if union[k - 1] else None) for k in CLASS_IDS}
    vals = [v for v in iou.values() if v is not None]
    out = {"pixel_iou": iou, "pixel_iou_mean": float(np.mean(vals)) if vals else None,
           "merged_pixel_iou": {n: (float(i / u) if u else None) for n, (i, u) in merged.items()},
           "confusion": {n: (float(i / u) if u else None) for n, (i, u) in swap.items()},
           "union_as_both_iou": {k: (float(i / u) if u else None) for k, (i, u) in both.items()},
           "thresholds": {k: float(clf.thresholds[k - 1]) for k in CLASS_IDS}}
    if polygons:
        kj = kaggle_jaccard(preds, truths)
        out["kaggle_jaccard"] = kj["per_class"]
        out["kaggle_jaccard_mean"] = kj["mean"]
    return out

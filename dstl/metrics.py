"""Scores: the Kaggle polygon Jaccard (DESIGN.md §2) and per-class pixel IoU / Dice.

Kaggle Jaccard, per class k: J_k = Σ_i area(P_ik ∩ T_ik) / Σ_i area(P_ik ∪ T_ik), summed over
the scored images i (the images present in the truth), with polygons in grid coordinates. A
prediction missing for an image or class counts as empty. A class whose union is empty on every
scored image has no defined score: it is None and left out of the mean over classes.

Pixel scores use the same convention on (10, H, W) masks: IoU_k = |P ∩ T| / |P ∪ T| and
Dice_k = 2|P ∩ T| / (|P| + |T|), None where the denominator is 0.
"""

from collections.abc import Mapping

import numpy as np
import shapely
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

from dstl.classes import CLASS_IDS, NUM_CLASSES
from dstl.labels import to_multipolygon

Polys = Mapping[int, BaseGeometry | None]


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(sum(vals) / len(vals)) if vals else None


def intersection_area(a: BaseGeometry, b: BaseGeometry) -> float:
    """Area of the intersection of two valid MultiPolygons, in time ~linear in their parts.

    The parts of a valid MultiPolygon do not overlap, so the intersection's area is the sum of
    the areas of the part-by-part intersections; an STRtree pairs only the parts whose boxes
    meet. One overlay of two MultiPolygons of thousands of parts (48,000 real tree crowns)
    costs far more: GEOS overlays them as wholes. Same value as
    ``shapely.intersection(a, b).area`` to rounding.
    """
    pa, pb = shapely.get_parts(a), shapely.get_parts(b)
    if len(pa) == 0 or len(pb) == 0:
        return 0.0
    if len(pa) == 1 and len(pb) == 1:
        return float(shapely.intersection(pa[0], pb[0]).area)
    i, j = shapely.STRtree(pb).query(pa, predicate="intersects")
    if len(i) == 0:
        return 0.0
    return float(shapely.area(shapely.intersection(pa[i], pb[j])).sum())


def jaccard_sums(pred: Polys | None, truth: Polys, *, valid: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-class intersection and union areas for ONE image: two float64 arrays of length 10.

    `pred`/`truth` map class id -> geometry (grid coordinates); missing or None means empty.
    Invalid geometry is repaired first (shapely's overlay needs valid input), unless `valid`
    says every geometry is already a valid MultiPolygon (what the `dstl.labels` readers and
    `DstlDataset.labels` hand out): the validity check costs seconds on real labels.
    """
    pred = pred or {}
    inter = np.zeros(NUM_CLASSES)
    union = np.zeros(NUM_CLASSES)
    for k in CLASS_IDS:
        p, t = pred.get(k), truth.get(k)
        if valid:
            p = MultiPolygon() if p is None else p
            t = MultiPolygon() if t is None else t
        else:
            p, t = to_multipolygon(p), to_multipolygon(t)
        pa, ta = p.area, t.area
        if pa == 0 or ta == 0:
            i = 0.0
        else:  # clamped: rounding in the overlay must not push a perfect match above 1
            i = min(intersection_area(p, t), pa, ta)
        inter[k - 1] = i
        union[k - 1] = pa + ta - i
    return inter, union


def scores_from_sums(inter: np.ndarray, union: np.ndarray) -> dict:
    """``{"per_class": {k: J_k or None}, "mean": mean or None}`` from summed areas."""
    per_class = {k: (float(inter[k - 1] / union[k - 1]) if union[k - 1] > 0 else None) for k in CLASS_IDS}
    return {"per_class": per_class, "mean": _mean(per_class.values())}


def kaggle_jaccard(pred: Mapping[str, Polys], truth: Mapping[str, Polys]) -> dict:
    """The competition metric over the images in `truth`.

    Args:
        pred: ``{image_id: {class_id: geometry}}``; images or classes it lacks count as empty,
            images not in `truth` are ignored.
        truth: ``{image_id: {class_id: geometry}}`` — the scored images.

    Returns:
        ``{"per_class": {1: J_1, ..., 10: J_10}, "mean": m}``; J_k is None when class k's union
        is empty on every scored image, and m is the mean of the non-None J_k (None if all are).
    """
    inter = np.zeros(NUM_CLASSES)
    union = np.zeros(NUM_CLASSES)
    for image_id, t in truth.items():
        i, u = jaccard_sums(pred.get(image_id), t)
        inter += i
        union += u
    return scores_from_sums(inter, union)


def pixel_counts(pred_masks: np.ndarray, true_masks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class pixel counts of one (C, H, W) pair: intersection, union, pred and true sums.

    Counts can be added over images before turning them into scores (`scores_from_counts`).
    Any nonzero value counts as positive. Raises ValueError if the shapes differ or are not 3-D.
    """
    pred_masks = np.asarray(pred_masks)
    true_masks = np.asarray(true_masks)
    if pred_masks.shape != true_masks.shape or pred_masks.ndim != 3:
        raise ValueError(f"masks must be (C, H, W) of equal shape, got {pred_masks.shape} "
                         f"and {true_masks.shape}")
    n = len(pred_masks)
    inter = np.zeros(n, dtype=np.int64)
    p_sum = np.zeros(n, dtype=np.int64)
    t_sum = np.zeros(n, dtype=np.int64)
    for k in range(n):  # class by class: a few H x W temporaries, not (C, H, W) ones
        p = pred_masks[k] != 0
        t = true_masks[k] != 0
        p_sum[k] = np.count_nonzero(p)
        t_sum[k] = np.count_nonzero(t)
        inter[k] = np.count_nonzero(p & t)
    return {"intersection": inter, "union": p_sum + t_sum - inter, "pred": p_sum, "true": t_sum}


def scores_from_counts(counts: Mapping[str, np.ndarray]) -> dict:
    """IoU and Dice per class from (possibly summed) `pixel_counts`; see `pixel_scores`."""
    inter, union = counts["intersection"], counts["union"]
    total = counts["pred"] + counts["true"]
    iou = {k + 1: (float(inter[k] / union[k]) if union[k] > 0 else None) for k in range(len(inter))}
    dice = {k + 1: (float(2 * inter[k] / total[k]) if total[k] > 0 else None) for k in range(len(inter))}
    return {"iou": iou, "dice": dice, "mean_iou": _mean(iou.values()), "mean_dice": _mean(dice.values())}


def pixel_scores(pred_masks: np.ndarray, true_masks: np.ndarray) -> dict:
    """Per-class pixel IoU and Dice of (C, H, W) masks (C = 10 for DSTL; class k at index k-1).

    Returns ``{"iou": {1: .., ..., C: ..}, "dice": {...}, "mean_iou": m, "mean_dice": m}``; a
    class empty in both prediction and truth is None and left out of the means.
    """
    return scores_from_counts(pixel_counts(pred_masks, true_masks))

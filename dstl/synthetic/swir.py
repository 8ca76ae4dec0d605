"""Per-class SWIR (A product) signatures under label polygons, and fitting the generator's to real ones.

The A product is 8 bands at ~7.5 m (about 25 x 25 3-band pixels per A pixel), values 0..16383
(14-bit); here they are divided by 16383. `class_fractions` gives, for every A pixel, the share
of it each class (and "none": no class) covers, by rasterising the label polygons on a grid
`SUPERSAMPLE` times finer than the A grid over the same extent. A class's signature is then
measured on its *pure* A pixels (share >= `PURE`): mean and standard deviation per band, and the
number of such pixels. Those give class-to-class contrasts too (mean_c - mean_c').

`fit_group_factors` fits the generator's SWIR: scenes on the same labels are rendered once with
the library spectra and once per endmember group with that group's A reflectance doubled; since
a pixel's value is linear in the reflectances (up to noise and clipping), the class signatures
for factors f are base + sum_g (f_g - 1) * (doubled_g - base), and the factors come from a
bounded, lightly regularised least-squares fit to the real signatures, band by band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from dstl.grid import GridTransform
from dstl.rasterize import rasterize_pixels

__all__ = ["SUPERSAMPLE", "PURE", "NONE", "class_fractions", "Signatures", "signatures", "fit_group_factors"]

SUPERSAMPLE = 5
PURE = 0.75
#: Index of "no class" in the fraction stack (after classes 1..10 at 0..9).
NONE = 10


def class_fractions(labels: dict, xmax: float, ymin: float, a_shape: tuple[int, int]) -> np.ndarray:
    """(11, h, w) float32: share of each A pixel covered by class 1..10 (rows 0..9) and by none (row 10).

    `labels`: class -> geometry in GRID coordinates; `a_shape`: (h, w) of the A product, whose
    pixels tile the image's extent.
    """
    h, w = a_shape
    s = SUPERSAMPLE
    fine = GridTransform(h * s, w * s, xmax, ymin)
    any_class = np.zeros((h * s, w * s), dtype=bool)
    out = np.zeros((11, h, w), dtype=np.float32)
    for cls in range(1, 11):
        g = labels.get(cls)
        if g is None or g.is_empty:
            continue
        m = rasterize_pixels(fine.to_pixels(g), h * s, w * s)
        any_class |= m.astype(bool)
        out[cls - 1] = m.reshape(h, s, w, s).mean(axis=(1, 3))
    out[NONE] = 1.0 - any_class.reshape(h, s, w, s).mean(axis=(1, 3))
    return out


@dataclass
class Signatures:
    """Per class (rows: classes 1..10, then none) and A band (columns A1..A8).

    Attributes:
        mean, std: over the pure A pixels of all images pooled (values / 16383); NaN if none.
        n: number of pure pixels.
        image_std: standard deviation over images of the per-image class means (images with
            >= 5 pure pixels), i.e. the scene-to-scene spread; NaN if fewer than 2 such images.
        all_mean, all_std: over every A pixel, per band (8,).
    """

    mean: np.ndarray
    std: np.ndarray
    n: np.ndarray
    image_std: np.ndarray
    all_mean: np.ndarray
    all_std: np.ndarray


def signatures(pairs: list[tuple[np.ndarray, np.ndarray]], pure: float = PURE) -> Signatures:
    """Signatures from (A values (8, h, w) / 16383, `class_fractions` (11, h, w)) pairs, one per image."""
    pooled: list[list[np.ndarray]] = [[] for _ in range(11)]
    per_image: list[list[np.ndarray]] = [[] for _ in range(11)]
    every = []
    for values, fractions in pairs:
        v = values.reshape(8, -1).T
        every.append(v)
        f = fractions.reshape(11, -1)
        for c in range(11):
            sel = f[c] >= pure
            if sel.any():
                pooled[c].append(v[sel])
                if sel.sum() >= 5:
                    per_image[c].append(v[sel].mean(axis=0))
    mean = np.full((11, 8), np.nan)
    std = np.full((11, 8), np.nan)
    image_std = np.full((11, 8), np.nan)
    n = np.zeros(11, dtype=np.int64)
    for c in range(11):
        if pooled[c]:
            x = np.concatenate(pooled[c])
            mean[c], std[c], n[c] = x.mean(axis=0), x.std(axis=0), len(x)
        if len(per_image[c]) >= 2:
            image_std[c] = np.std(per_image[c], axis=0)
    allv = np.concatenate(every)
    return Signatures(mean, std, n, image_std, allv.mean(axis=0), allv.std(axis=0))


def fit_group_factors(base: np.ndarray, doubled: np.ndarray, target: np.ndarray, weight: np.ndarray,
                      ridge: float = 0.02, bounds: tuple[float, float] = (0.3, 4.0)) -> np.ndarray:
    """Factors (groups, 8) making base + sum_g (f_g - 1) (doubled_g - base) match `target`.

    Args:
        base: (classes, 8) generated class means with the library spectra.
        doubled: (groups, classes, 8) the same with one group's A reflectance doubled.
        target: (classes, 8) real class means.
        weight: (classes,) weight of each class's residual (0 leaves a class out).
        ridge: pull of each factor towards 1 (in units of the residuals).
        bounds: allowed range of the factors.
    """
    groups = doubled.shape[0]
    factors = np.ones((groups, 8))
    w = np.sqrt(np.asarray(weight, float))
    for b in range(8):
        sens = (doubled[:, :, b] - base[None, :, b]).T          # (classes, groups): d value / d factor
        ok = w > 0
        a = np.vstack([sens[ok] * w[ok, None], ridge * np.eye(groups)])
        y = np.concatenate([(target[ok, b] - base[ok, b] + sens[ok].sum(axis=1)) * w[ok],
                            ridge * np.ones(groups)])
        factors[:, b] = lsq_linear(a, y, bounds=bounds).x
    return factors

"""Bringing an uploaded plain photo onto the input statistics a model was trained on.

The bundled models read bands scaled to [0, 1] by their bit depth and then normalised with the
per-band mean and standard deviation saved in their config.json (`dstl.normalization`). DSTL
three-band data is 11-bit (0..2047) and dark: the bundled RGB model's R, G, B means are ~0.09-0.13
with standard deviations ~0.04-0.07. An 8-bit photo divided by 255 has means of ~0.3-0.5 and
lands 5-8 of those standard deviations away: the network then sees inputs unlike anything it was
trained on.

An 8-bit image has no known radiometric relation to WorldView-3 counts, so the demo matches
statistics instead (`match_bands`): each band is shifted and scaled so that its mean and standard
deviation over the image equal the model's (x' = mean_model + (x - mean_image) * std_model /
std_image). The model's normalisation then gives that band mean 0 and standard deviation 1, as
during training. This is a linear map per band, so the RGB preview (a percentile stretch) looks the
same. 16-bit images are taken as sensor counts, as the reader scales them (11-bit DSTL data when no
value exceeds 2047), and are not changed; `distances` says how far off they are so the page can warn.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dstl.normalization import BandStats
from dstl.scene import Scene

__all__ = ["BandMatch", "band_statistics", "distances", "match_bands", "photo_pixels", "FAR_OFF_SIGMAS"]

#: A band whose mean is this many of the model's standard deviations away is "far off".
FAR_OFF_SIGMAS = 3.0

_SAMPLE_STEP_PIXELS = 1 << 20  # statistics from at most ~1 M pixels per band (a strided sample)


@dataclass(frozen=True)
class BandMatch:
    """What `match_bands` did: per band, the image's and the model's mean and std, and the distance
    |mean_image - mean_model| / std_model before matching (in the model's standard deviations)."""

    bands: tuple[str, ...]
    image_mean: tuple[float, ...]
    image_std: tuple[float, ...]
    model_mean: tuple[float, ...]
    model_std: tuple[float, ...]

    @property
    def sigmas_before(self) -> tuple[float, ...]:
        return tuple(abs(m - mm) / s for m, mm, s in zip(self.image_mean, self.model_mean, self.model_std,
                                                          strict=True))

    def describe(self) -> str:
        """One sentence for the page, e.g. "R, G, B were 5.6, 7.0, 7.9 standard deviations off ..."."""
        far = ", ".join(f"{v:.1f}" for v in self.sigmas_before)
        return (f"8-bit image: its {', '.join(self.bands)} sat {far} standard deviations away from the "
                "11-bit imagery the model was trained on, so each band's mean and spread were matched to "
                "the model's training statistics (config.json) before segmenting.")


def _stats_for(stats: BandStats, bands: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    index = {b: i for i, b in enumerate(stats.bands)}
    mean = np.array([stats.mean[index[b]] for b in bands], dtype=np.float64)
    std = np.array([stats.std[index[b]] for b in bands], dtype=np.float64)
    return mean, std


def band_statistics(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and standard deviation (float64 (C,)) of (C, H, W) data, from a strided sample."""
    flat = data.reshape(data.shape[0], -1)
    step = max(1, flat.shape[1] // _SAMPLE_STEP_PIXELS)
    sample = flat[:, ::step].astype(np.float64)
    return sample.mean(axis=1), sample.std(axis=1)


def distances(scene: Scene, stats: BandStats) -> dict[str, float]:
    """{band: |image mean - model mean| / model std} for the scene's bands the statistics know."""
    bands = [b for b in scene.bands if b in stats.bands]
    if not bands:
        return {}
    idx = [scene.bands.index(b) for b in bands]
    mean, _ = band_statistics(scene.data[idx])
    m_mean, m_std = _stats_for(stats, bands)
    return {b: float(abs(v - mm) / s) for b, v, mm, s in zip(bands, mean, m_mean, m_std, strict=True)}


def match_bands(scene: Scene, stats: BandStats) -> tuple[Scene, BandMatch]:
    """A copy of `scene` whose bands have the mean and std of `stats` (see the module docstring).

    A band that is flat in the image (std ~ 0) gets the model's mean. Results are clipped to [0, 1]
    (a `Scene`'s range), which touches only the darkest few pixels of a typical photo.
    """
    bands = tuple(b for b in scene.bands if b in stats.bands)
    mean, std = band_statistics(scene.data)
    m_mean, m_std = _stats_for(stats, scene.bands) if bands == tuple(scene.bands) else (None, None)
    if m_mean is None:
        raise ValueError(f"statistics for bands {stats.bands} do not cover the scene's {scene.bands}")
    out = np.empty(scene.data.shape, dtype=np.float32)
    for k in range(scene.data.shape[0]):
        scale = m_std[k] / std[k] if std[k] > 1e-6 else 0.0
        # x' = m_model + (x - m_image) * scale, as one fused multiply-add per band
        np.multiply(scene.data[k], np.float32(scale), out=out[k])
        out[k] += np.float32(m_mean[k] - mean[k] * scale)
    np.clip(out, 0.0, 1.0, out=out)
    report = BandMatch(bands, tuple(map(float, mean)), tuple(map(float, std)), tuple(map(float, m_mean)),
                       tuple(map(float, m_std)))
    return Scene(scene.image_id, out, scene.bands), report


def photo_pixels(scene: Scene) -> np.ndarray:
    """An 8-bit photo's own pixels, uint8 (H, W, 3), from its scene (values v / 255): a photo is
    already a picture, so it is shown as it is rather than contrast-stretched like sensor data."""
    rgb = np.moveaxis(scene.data[:3], 0, -1) * np.float32(255.0)
    return np.ascontiguousarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))

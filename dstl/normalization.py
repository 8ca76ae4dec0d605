"""Per-band normalisation statistics that travel with model weights.

A model is trained on inputs `(x - mean) / std` per band, where x is the band scaled to [0, 1]
by its bit depth (see `dstl.bands`). The statistics are data, saved in the weights' config.json
as {"bands": [...], "mean": [...], "std": [...]}, so that inference normalises exactly as
training did.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BandStats:
    """Mean and standard deviation of each band, in the order of `bands`."""

    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self):
        if not len(self.bands) == len(self.mean) == len(self.std):
            raise ValueError("bands, mean and std must have the same length")
        if any(s <= 0 for s in self.std):
            raise ValueError("every std must be positive")

    @classmethod
    def identity(cls, bands: tuple[str, ...]) -> "BandStats":
        """Statistics that leave values unchanged (mean 0, std 1)."""
        return cls(tuple(bands), (0.0,) * len(bands), (1.0,) * len(bands))

    @classmethod
    def from_arrays(cls, bands: tuple[str, ...], arrays: list[np.ndarray],
                    max_pixels: int = 2_000_000, seed: int = 0) -> "BandStats":
        """Estimate statistics from (C, H, W) arrays, sampling at most `max_pixels` pixels each."""
        rng = np.random.default_rng(seed)
        samples = []
        for a in arrays:
            flat = a.reshape(a.shape[0], -1)
            n = flat.shape[1]
            idx = rng.choice(n, size=min(n, max_pixels), replace=False) if n > max_pixels else slice(None)
            samples.append(np.asarray(flat[:, idx], dtype=np.float64))
        s = np.concatenate(samples, axis=1)
        std = np.maximum(s.std(axis=1), 1e-6)
        return cls(tuple(bands), tuple(float(v) for v in s.mean(axis=1)), tuple(float(v) for v in std))

    def to_dict(self) -> dict:
        return {"bands": list(self.bands), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "BandStats":
        return cls(tuple(d["bands"]), tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["std"]))

    def normalize(self, data: np.ndarray) -> np.ndarray:
        """Return `(data - mean) / std` as float32 for a (C, ...) array with C == len(bands)."""
        if data.shape[0] != len(self.bands):
            raise ValueError(f"expected {len(self.bands)} bands, got {data.shape[0]}")
        shape = (-1,) + (1,) * (data.ndim - 1)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(shape)
        inv_std = (1.0 / np.asarray(self.std, dtype=np.float32)).reshape(shape)
        return (data.astype(np.float32, copy=False) - mean) * inv_std

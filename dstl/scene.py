"""A scene: aligned spectral bands of one image on its 3-band grid.

Readers for the DSTL layout (four TIFF products per image) and for plain RGB images return a
`Scene`; everything downstream (inference, rendering, training) consumes that.
"""

from dataclasses import dataclass

import numpy as np

from dstl.bands import ALL_BANDS, RGB_BANDS


@dataclass
class Scene:
    """Aligned bands of one image.

    Attributes:
        image_id: the DSTL ImageId, or a name derived from the uploaded file.
        data: float32 array (C, H, W), each band scaled to [0, 1] by its bit depth, on the
            3-band grid (~0.31 m/px for DSTL data).
        bands: names of the C bands in array order (see `dstl.bands`), e.g. `ALL_BANDS`
            for a full DSTL scene or `RGB_BANDS` for a plain image.
    """

    image_id: str
    data: np.ndarray
    bands: tuple[str, ...]

    def __post_init__(self):
        if self.data.ndim != 3 or self.data.shape[0] != len(self.bands):
            raise ValueError(f"data must be (C, H, W) with C={len(self.bands)}, got {self.data.shape}")

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])

    @property
    def is_rgb_only(self) -> bool:
        return tuple(self.bands) == RGB_BANDS

    @property
    def is_full(self) -> bool:
        return tuple(self.bands) == ALL_BANDS

    def select(self, bands: tuple[str, ...]) -> "Scene":
        """A scene holding only `bands` (in that order); KeyError names a band that is missing."""
        missing = [b for b in bands if b not in self.bands]
        if missing:
            raise KeyError(f"scene {self.image_id} lacks bands {missing}")
        idx = [self.bands.index(b) for b in bands]
        if idx == list(range(len(self.bands))):
            return self
        return Scene(self.image_id, self.data[idx], tuple(bands))

    def rgb(self) -> np.ndarray:
        """The R, G, B bands as a (H, W, 3) float32 view-or-copy in [0, 1]."""
        return np.moveaxis(self.select(RGB_BANDS).data, 0, -1)

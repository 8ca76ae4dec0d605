"""The competition's coordinate transform between grid coordinates and pixels.

WKT polygons are given in a normalised grid: x in [0, Xmax], y in [Ymin, 0] with Ymin < 0
(values from grid_sizes.csv). For an image of H x W pixels (its 3-band size):

    W' = W * W / (W + 1),   H' = H * H / (H + 1)
    pixel_x = x * W' / Xmax,   pixel_y = y * H' / Ymin

Pixel coordinates here are continuous: pixel (row r, column c) covers [c, c+1) x [r, r+1) and
its centre is (c + 0.5, r + 0.5).
"""

from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True)
class GridTransform:
    """Scales between grid and pixel coordinates for one image.

    Attributes:
        height, width: the image's 3-band size in pixels.
        xmax: Xmax from grid_sizes.csv (> 0).
        ymin: Ymin from grid_sizes.csv (< 0).
    """

    height: int
    width: int
    xmax: float
    ymin: float

    def __post_init__(self):
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"image size must be positive, got {self.height}x{self.width}")
        if not self.xmax > 0 or not self.ymin < 0:
            raise ValueError(f"grid size must have Xmax > 0 and Ymin < 0, got {self.xmax}, {self.ymin}")

    @property
    def x_scale(self) -> float:
        """Pixels per grid unit along x: W' / Xmax."""
        w = self.width
        return (w * w / (w + 1)) / self.xmax

    @property
    def y_scale(self) -> float:
        """Pixels per grid unit along y: H' / Ymin (positive, since y and Ymin are both <= 0)."""
        h = self.height
        return (h * h / (h + 1)) / self.ymin

    def to_pixels(self, geom: BaseGeometry) -> BaseGeometry:
        """Map a geometry from grid to pixel coordinates."""
        sx, sy = self.x_scale, self.y_scale
        return shapely.transform(geom, lambda xy: xy * (sx, sy))

    def to_grid(self, geom: BaseGeometry) -> BaseGeometry:
        """Map a geometry from pixel to grid coordinates (inverse of `to_pixels`)."""
        sx, sy = self.x_scale, self.y_scale
        return shapely.transform(geom, lambda xy: xy / (sx, sy))

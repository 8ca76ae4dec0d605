"""One synthetic image: layout -> labels in grid coordinates -> masks -> the four products.

The labels are produced first and exactly as a reader will see them: each class's polygons are
mapped to grid coordinates (`GridTransform.to_grid`), formatted as WKT with 8 decimals
(`dstl.labels.format_wkt`) and parsed back. The masks that drive the rendering are rasterised
from those parsed polygons with `dstl.rasterize.rasterize_classes` (pixel-centre rule), so the
pixels agree with what `train_wkt_v4.csv` says, pixel for pixel.
"""

import time
from dataclasses import dataclass

import numpy as np
from shapely.geometry import MultiPolygon

from dstl.grid import GridTransform
from dstl.labels import format_wkt, parse_wkt
from dstl.rasterize import rasterize_classes
from dstl.synthetic.layout import Layout, build_layout
from dstl.synthetic.render import ProductGeometry, render_products, sample_product_geometry


@dataclass
class SyntheticImage:
    """A generated image.

    Attributes:
        image_id: its id (e.g. "synth_9100_0_3").
        products: {"3", "P", "M", "A"} -> uint16 arrays in the DSTL shapes.
        xmax, ymin: its grid size (grid_sizes.csv).
        labels: class id 1..10 -> MultiPolygon in GRID coordinates, exactly as written
            (empty MultiPolygon where absent).
        masks: uint8 (10, H, W) rasterised labels.
        layout: the objects it was drawn from (pixel coordinates).
        geometry: product sizes and mis-registrations.
    """

    image_id: str
    products: dict[str, np.ndarray]
    xmax: float
    ymin: float
    labels: dict[int, MultiPolygon]
    masks: np.ndarray
    layout: Layout
    geometry: ProductGeometry

    @property
    def transform(self) -> GridTransform:
        return GridTransform(self.geometry.height, self.geometry.width, self.xmax, self.ymin)


def sample_grid_size(rng: np.random.Generator) -> tuple[float, float]:
    """Xmax, Ymin like the real grid_sizes.csv (~0.0090-0.0092, ~-0.0090 to -0.0091)."""
    return round(float(rng.uniform(0.00900, 0.00920)), 6), -round(float(rng.uniform(0.00900, 0.00910)), 6)


def labels_from_pixels(pixel_geoms: dict, transform: GridTransform) -> dict[int, MultiPolygon]:
    """Pixel-coordinate class geometries -> grid-coordinate MultiPolygons as a reader parses them
    from the WKT that `format_wkt` writes (8 decimals). Classes 1..10 all present."""
    out = {}
    for cls in range(1, 11):
        g = pixel_geoms.get(cls)
        if g is None or g.is_empty:
            out[cls] = MultiPolygon()
            continue
        out[cls] = parse_wkt(format_wkt(transform.to_grid(g)))[0]
    return out


class _Stopwatch:
    """Accumulates wall and CPU seconds per stage into a dict (when one is given)."""

    def __init__(self, out: dict | None):
        self.out = out
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self, stage: str) -> None:
        if self.out is None:
            return
        wall, cpu = time.perf_counter(), time.process_time()
        w, c = self.out.get(stage, (0.0, 0.0))
        self.out[stage] = (w + wall - self.wall, c + cpu - self.cpu)
        self.wall, self.cpu = wall, cpu


def size_jitter(side: int) -> int:
    """The most pixels `make_image` adds to or removes from a side of nominal length `side`."""
    return max(round(side * 0.002), 2)


def make_image(rng: np.random.Generator, image_id: str, size: tuple[int, int],
               timings: dict | None = None) -> SyntheticImage:
    """Generate one image of about `size` = (H, W) pixels, deterministic given `rng`.

    Each side is jittered by up to 0.2 % (at least 2 px), like the real scenes' 3348-3403 px.
    If `timings` is a dict, (wall, cpu) seconds per stage are added to it.
    """
    clock = _Stopwatch(timings)
    H0, W0 = size
    jitter_h, jitter_w = size_jitter(H0), size_jitter(W0)
    H = H0 + int(rng.integers(-jitter_h, jitter_h + 1))
    W = W0 + int(rng.integers(-jitter_w, jitter_w + 1))
    xmax, ymin = sample_grid_size(rng)
    geometry = sample_product_geometry(rng, H, W)
    layout = build_layout(rng, H, W)
    clock.lap("layout")
    transform = GridTransform(H, W, xmax, ymin)
    labels = labels_from_pixels(layout.class_geometries(), transform)
    clock.lap("labels")
    masks = rasterize_classes(labels, transform)
    clock.lap("masks")
    products = render_products(rng, layout, masks, geometry, clock.lap)
    return SyntheticImage(image_id, products, xmax, ymin, labels, masks, layout, geometry)

"""Synthetic scenes in the exact DSTL layout, hard enough to mean something (DESIGN.md §4).

`generate_dataset(out, n_train, n_test, size=(H, W), seed)` writes a complete DSTL-layout
folder (`writer`); `make_image(rng, image_id, size)` makes one image in memory (`image`).

Modules, one concern each:

- `spectra`: 16-band reflectance of ~30 materials, scene-to-scene spectral jitter, atmosphere.
- `looks`: how an object mixes materials and varies (crop type and growth, roof material, water
  type, road/track surfacing, texture kinds).
- `shapes`: geometric primitives in pixel coordinates (blobs, rectangles, winding lines, shadows).
- `layout`: the landscape: fields, trees, water, tracks, roads, buildings, structures, vehicles.
- `render`: label masks + objects -> the four products (materials, shadows, area-averaged
  M and A, haze, noise, quantisation).
- `image`: one image: layout -> labels (grid coordinates, as written) -> masks -> products.
- `writer`: the dataset folder, ids, CSVs, atomic completion.
"""

from dstl.synthetic.image import SyntheticImage, make_image
from dstl.synthetic.writer import DatasetSummary, generate_dataset, image_id, is_synthetic_dataset

__all__ = ["DatasetSummary", "SyntheticImage", "generate_dataset", "image_id", "is_synthetic_dataset",
           "make_image"]

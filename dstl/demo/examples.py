"""The examples the page offers: dataset images with thumbnails, a plain RGB photo, four DSTL TIFFs.

- `dataset_examples`: up to `limit` dataset ids (labelled first) with a small RGB thumbnail each,
  written once into a private temporary folder.
- `RGB_SAMPLE`: an 8-bit JPEG shipped with the package (`dstl/demo/samples/`): the RGB preview
  (2-98 % stretch) of a 384 x 384 SYNTHETIC scene from `python -m dstl synth --seed 2024`, a seed
  that neither the bundled weights' training and held-out scenes (seeds 0 and 1000) nor the demo
  dataset (seed 777) use. It stands in for "a plain photo": 8-bit, no sensor calibration, so the
  app has to bring it onto the RGB model's input statistics (`dstl.demo.radiometry`). Rebuild it
  with `python -m dstl.demo.examples`.
- `dstl_sample`: the four product TIFFs of one dataset image (the smallest), copied into a private
  temporary folder under their Kaggle names, for the "upload four TIFFs" example (the dataset's own
  folder may lie outside what the web framework is allowed to serve).
"""

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from dstl import render
from dstl.bands import RGB_BANDS

__all__ = ["RGB_SAMPLE", "RGB_SAMPLE_SEED", "dataset_examples", "dstl_sample", "write_rgb_sample"]

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
RGB_SAMPLE = SAMPLES_DIR / "synthetic_rgb_photo.jpg"
RGB_SAMPLE_SEED = 2024
RGB_SAMPLE_SIZE = (384, 384)

#: Largest total size (bytes) of the four TIFFs offered as an upload example.
MAX_SAMPLE_BYTES = 40 * 2**20


def _folder(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def dataset_examples(dataset, limit: int = 6, side: int = 112) -> list[tuple[str, Path]]:
    """(image id, thumbnail PNG) for up to `limit` dataset images, labelled ones first."""
    if dataset is None:
        return []
    ids = sorted(dataset.image_ids, key=lambda i: not dataset.has_labels(i))[:limit]
    folder = _folder("dstl-demo-thumbs-")
    out = []
    for image_id in ids:
        preview = render.rgb_preview(dataset.read_scene(image_id, RGB_BANDS))
        factor = render.display_factor(*preview.shape[:2], side)
        path = folder / f"{image_id}.png"
        Image.fromarray(render.reduce_image(preview, factor)).save(path)
        out.append((image_id, path))
    return out


def dstl_sample(dataset) -> list[Path] | None:
    """Copies of the four product TIFFs of the dataset's smallest image (None if over the size cap)."""
    if dataset is None or not dataset.image_ids:
        return None

    def files(image_id):
        return [dataset.product_path(image_id, p) for p in ("3", "P", "M", "A")]

    def size(image_id):
        return sum(p.stat().st_size for p in files(image_id) if p.is_file())

    image_id = min(dataset.image_ids, key=size)
    if size(image_id) > MAX_SAMPLE_BYTES or not all(p.is_file() for p in files(image_id)):
        return None
    folder = _folder("dstl-demo-sample-")
    return [Path(shutil.copy(p, folder / p.name)) for p in files(image_id)]


def write_rgb_sample(path: str | os.PathLike = RGB_SAMPLE, seed: int = RGB_SAMPLE_SEED,
                     size: tuple[int, int] = RGB_SAMPLE_SIZE) -> Path:
    """Make the shipped RGB sample (see the module docstring): one synthetic scene's RGB preview as JPEG."""
    from dstl.dataset import DstlDataset
    from dstl.synthetic import generate_dataset

    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(Path(tmp) / "synth", n_train=0, n_test=1, size=size, seed=seed)
        ds = DstlDataset(Path(tmp) / "synth")
        preview = render.rgb_preview(ds.read_scene(ds.image_ids[0], RGB_BANDS))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(preview)).save(path, format="JPEG", quality=88)
    return path


if __name__ == "__main__":
    print(write_rgb_sample())

"""Write a synthetic dataset in exactly the DSTL folder layout (DESIGN.md §2).

::

    OUT/three_band/<id>.tif          uint16 (3, H, W), 11-bit
    OUT/sixteen_band/<id>_P.tif      uint16 (H, W), 11-bit
    OUT/sixteen_band/<id>_M.tif      uint16 (8, ~H/4, ~W/4), 11-bit
    OUT/sixteen_band/<id>_A.tif      uint16 (8, ~H/25, ~W/25), 14-bit
    OUT/grid_sizes.csv               ",Xmax,Ymin" (first header cell empty), every image
    OUT/train_wkt_v4.csv             10 rows per training image, MULTIPOLYGON EMPTY where absent
    OUT/sample_submission.csv        10 rows per test image, all MULTIPOLYGON EMPTY

Ids look like the real ones but cannot be mistaken for them: ``synth_<region>_<row>_<col>``
with regions 9100.. for training images and 9500.. for test images (real regions are
6010..6180). Image k of a split is generated from the seed sequence (seed, split, k) alone, so
the same seed gives byte-identical files, and a larger dataset starts with the same images.

The dataset is written into ``OUT/.partial`` and moved into place only when complete
(grid_sizes.csv last, since readers look for it first), so an interrupted run leaves no half
dataset; a stale ``.partial`` from such a run is removed on the next one.
"""

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dstl.atomic import write_text_atomic
from dstl.errors import DstlError
from dstl.labels import read_grid_sizes, write_wkt_csv
from dstl.limits import check_pixels
from dstl.synthetic.image import SyntheticImage, make_image, size_jitter
from dstl.tiff import write_tiff

ID_PREFIX = "synth_"
TRAIN_REGION = 9100
TEST_REGION = 9500

#: Limits on what `generate_dataset` accepts.
MIN_SIDE = 64
MAX_SIDE = 8192
MAX_IMAGES = 10000

#: Entries of a dataset folder, in the order they are moved into place (grid_sizes.csv last).
#: README.md is optional (real-layout datasets write one saying what they are).
ENTRIES = ("three_band", "sixteen_band", "train_wkt_v4.csv", "sample_submission.csv", "README.md",
           "grid_sizes.csv")
PARTIAL = ".partial"


def image_id(k: int, test: bool = False) -> str:
    """Id of image k (0-based) of the training or test split, e.g. ``synth_9100_0_3``."""
    region = (TEST_REGION if test else TRAIN_REGION) + k // 25
    return f"{ID_PREFIX}{region}_{(k % 25) // 5}_{k % 5}"


def image_seed(seed: int, k: int, test: bool = False) -> np.random.SeedSequence:
    """The seed sequence image k of a split is generated from."""
    return np.random.SeedSequence([seed, 1 if test else 0, k])


@dataclass
class DatasetSummary:
    """What `generate_dataset` wrote.

    Attributes:
        root: the dataset folder.
        seed, size: the arguments (nominal (H, W)).
        train_ids, test_ids: ids written, in order.
        image_sizes: id -> actual 3-band (H, W).
        class_fraction: per class id, the share of training pixels labelled with it.
        seconds: wall-clock time taken.
    """

    root: Path
    seed: int
    size: tuple[int, int]
    train_ids: list[str] = field(default_factory=list)
    test_ids: list[str] = field(default_factory=list)
    image_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    class_fraction: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"root": str(self.root), "seed": self.seed, "size": list(self.size),
                "train_ids": self.train_ids, "test_ids": self.test_ids,
                "image_sizes": {k: list(v) for k, v in self.image_sizes.items()},
                "class_fraction": {str(k): v for k, v in self.class_fraction.items()},
                "seconds": self.seconds}


def check_arguments(n_train: int, n_test: int, size: tuple[int, int], seed: int) -> None:
    """Raise DstlError naming the argument when a `generate_dataset` argument is out of range."""
    for name, n in (("number of training images", n_train), ("number of test images", n_test)):
        if not isinstance(n, int | np.integer) or not 0 <= n <= MAX_IMAGES:
            raise DstlError(f"{name} must be an integer from 0 to {MAX_IMAGES}, got {n!r}")
    if n_train + n_test < 1:
        raise DstlError("nothing to generate: ask for at least one training or test image")
    if len(size) != 2 or not all(isinstance(s, int | np.integer) for s in size):
        raise DstlError(f"size must be two integers (height, width), got {size!r}")
    if not all(MIN_SIDE <= s <= MAX_SIDE for s in size):
        raise DstlError(f"image size {size[0]}x{size[1]} is outside {MIN_SIDE}..{MAX_SIDE} px per side")
    # Never write images that every reader would refuse (the largest one the jitter can make).
    check_pixels(f"image size {size[0]}x{size[1]}", *(int(s) + size_jitter(int(s)) for s in size))
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise DstlError(f"seed must be a non-negative integer, got {seed!r}")


def is_synthetic_dataset(root: Path) -> bool:
    """True if `root` holds only dataset entries and its grid_sizes.csv lists only synthetic ids."""
    names = {p.name for p in root.iterdir()} - {PARTIAL}
    if not names or not names <= set(ENTRIES) or "grid_sizes.csv" not in names:
        return False
    try:
        ids = read_grid_sizes(root / "grid_sizes.csv")
    except DstlError:
        return False
    return bool(ids) and all(i.startswith(ID_PREFIX) for i in ids)


def check_destination(root: Path, overwrite: bool) -> None:
    """Raise DstlError unless `root` may receive a dataset (see `generate_dataset`)."""
    if root.exists() and not root.is_dir():
        raise DstlError(f"{root}: exists and is not a folder")
    if not root.exists():
        return
    others = [p.name for p in root.iterdir() if p.name != PARTIAL]
    if not others:
        return
    if is_synthetic_dataset(root):
        if not overwrite:
            raise DstlError(f"{root}: already holds a synthetic dataset; "
                            "pass --overwrite (overwrite=True) to replace it")
        return
    shown = ", ".join(sorted(others)[:3]) + (", ..." if len(others) > 3 else "")
    raise DstlError(f"{root}: folder is not empty ({shown}) and is not a synthetic dataset; "
                    "refusing to write into it (choose a new or empty folder)")


def write_image(root: Path, image: SyntheticImage) -> None:
    """Write the four product TIFFs of one image under `root`."""
    p = image.products
    write_tiff(root / "three_band" / f"{image.image_id}.tif", p["3"])
    for product in ("P", "M", "A"):
        write_tiff(root / "sixteen_band" / f"{image.image_id}_{product}.tif", p[product])


@contextmanager
def partial_dataset(root: Path) -> Iterator[Path]:
    """Yield ``root/.partial`` (fresh, with empty three_band/ and sixteen_band/) to write a dataset
    into; when the block ends normally the dataset is installed into `root` (`install`), on any
    exception (Ctrl-C included) the partial folder is removed and `root` is left as it was."""
    partial = root / PARTIAL
    if partial.exists():
        shutil.rmtree(partial)
    try:
        (partial / "three_band").mkdir(parents=True)
        (partial / "sixteen_band").mkdir()
        yield partial
        install(partial, root)
        shutil.rmtree(partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def write_tables(partial: Path, label_rows: list, sample_rows: list, grid_rows: list[str]) -> None:
    """Write the dataset's CSVs: train_wkt_v4.csv, sample_submission.csv ((id, class, geometry)
    rows) and grid_sizes.csv (``id,Xmax,Ymin`` lines under the real, first-cell-empty header)."""
    write_wkt_csv(partial / "train_wkt_v4.csv", label_rows)
    write_wkt_csv(partial / "sample_submission.csv", sample_rows)
    write_text_atomic(partial / "grid_sizes.csv", "\n".join([",Xmax,Ymin", *grid_rows]) + "\n")


def install(partial: Path, root: Path) -> None:
    """Move a complete dataset from `partial` into `root`, replacing a previous synthetic one.

    The old dataset's entries go first (grid_sizes.csv first, so readers stop seeing a dataset),
    into `partial`/old; the new grid_sizes.csv comes last. Entries absent from `partial` are skipped.
    """
    old = partial / "old"
    old.mkdir()
    for name in reversed(ENTRIES):
        if (root / name).exists():
            os.replace(root / name, old / name)
    for name in ENTRIES:
        if (partial / name).exists():
            os.replace(partial / name, root / name)


def generate_dataset(out: str | os.PathLike, n_train: int = 8, n_test: int = 4,
                     size: tuple[int, int] = (3350, 3400), seed: int = 0, *, overwrite: bool = False,
                     progress: Callable[[str], None] | None = None) -> DatasetSummary:
    """Generate a synthetic dataset in the DSTL layout (see the module docstring).

    Args:
        out: destination folder: new, empty, or (with `overwrite`) a previous synthetic dataset.
        n_train, n_test: number of labelled training and unlabelled test images.
        size: nominal 3-band size (H, W) in pixels; each image's own size is jittered by a
            few pixels. A real DSTL scene is ~3350 x 3400.
        seed: any non-negative integer; the same seed gives byte-identical files.
        overwrite: replace a previous synthetic dataset at `out`. Folders holding anything else
            are never written into.
        progress: called with each image id once that image is written.

    Returns:
        A DatasetSummary.

    Raises:
        DstlError: an argument out of range, or `out` is a file, a non-empty folder that is not
            a synthetic dataset, or a synthetic dataset without `overwrite`.
    """
    start = time.perf_counter()
    size = (int(size[0]), int(size[1])) if len(size) == 2 else tuple(size)
    check_arguments(n_train, n_test, size, seed)
    root = Path(out)
    check_destination(root, overwrite)
    summary = DatasetSummary(root, int(seed), size)
    with partial_dataset(root) as partial:
        grid_rows: list[str] = []
        label_rows = []
        pixels = np.zeros(10)
        total = 0
        for test, n in ((False, n_train), (True, n_test)):
            for k in range(n):
                iid = image_id(k, test)
                image = make_image(np.random.default_rng(image_seed(seed, k, test)), iid, size)
                write_image(partial, image)
                grid_rows.append(f"{iid},{image.xmax!r},{image.ymin!r}")
                summary.image_sizes[iid] = (image.geometry.height, image.geometry.width)
                if test:
                    summary.test_ids.append(iid)
                else:
                    summary.train_ids.append(iid)
                    label_rows += [(iid, c, image.labels[c]) for c in range(1, 11)]
                    pixels += image.masks.reshape(10, -1).sum(axis=1)
                    total += image.masks.shape[1] * image.masks.shape[2]
                del image
                if progress is not None:
                    progress(iid)
        write_tables(partial, label_rows, [(iid, c, None) for iid in summary.test_ids for c in range(1, 11)],
                     grid_rows)
    summary.class_fraction = {c: float(pixels[c - 1] / total) if total else 0.0 for c in range(1, 11)}
    summary.seconds = time.perf_counter() - start
    return summary

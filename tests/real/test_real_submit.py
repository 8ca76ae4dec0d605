"""`python -m dstl submit` over a folder with the real sample_submission.csv and grid_sizes.csv:
the submission has the rows of the real sample, in its id order (which is not sorted).

The 429 test images' pixels are not public: each gets a tiny random 3-band TIFF (40 x 40, the
real on-disk format) so that the command runs end to end with a tiny RGB model."""

import csv
import os

import numpy as np
import pytest
import tifffile

from dstl.bands import RGB_BANDS
from dstl.cli import main
from dstl.cli.submit import submission_ids
from dstl.dataset import DstlDataset
from dstl.labels import WktIndex


def test_submission_ids_are_the_real_samples_in_its_order(real):
    with open(real / "sample_submission.csv", newline="") as f:
        want = list(dict.fromkeys(r[0] for r in list(csv.reader(f))[1:]))
    got = submission_ids(DstlDataset(real), None)
    assert got == want and len(got) == 429 and got != sorted(got)
    assert got[:3] == ["6120_2_4", "6120_2_3", "6120_2_1"]


@pytest.mark.slow  # 429 images through the engine: ~1-2 s each on 2 busy cores
def test_submit_writes_the_real_sample_submissions_ids_in_its_order(real, tmp_path, save_tiny_unet):
    root = tmp_path / "data"
    (root / "three_band").mkdir(parents=True)
    for name in ("grid_sizes.csv", "sample_submission.csv"):
        os.symlink(real / name, root / name)
    ids = WktIndex(real / "sample_submission.csv").image_ids
    assert len(ids) == 429 and ids != sorted(ids)
    rng = np.random.default_rng(0)
    for image_id in ids:
        tifffile.imwrite(root / "three_band" / f"{image_id}.tif",
                         rng.integers(0, 2048, (3, 40, 40), dtype=np.uint16),
                         photometric="rgb", planarconfig="separate")
    weights = save_tiny_unet(tmp_path / "weights", bands=RGB_BANDS)
    out = tmp_path / "submission.csv"
    assert main(["submit", str(root), "--out", str(out), "--weights", str(weights),
                 "--precision", "fp32", "--device", "cpu"]) == 0
    with open(out, newline="") as f:
        got = [(r[0], r[1]) for r in csv.reader(f)]
    with open(real / "sample_submission.csv", newline="") as f:
        want = [(r[0], r[1]) for r in csv.reader(f)]
    assert got == want and len(got) == 4291  # header + 429 x 10 rows, in the sample's order

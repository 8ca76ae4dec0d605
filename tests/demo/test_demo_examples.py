"""The page's examples: dataset thumbnails, the shipped RGB photo, a four-TIFF sample."""

import numpy as np
from PIL import Image

from dstl.dataset import DstlDataset
from dstl.demo.examples import RGB_SAMPLE, dataset_examples, dstl_sample


def test_dataset_examples_are_thumbnails_labelled_first(dstl_folder):
    ds = DstlDataset(dstl_folder)
    shown = dataset_examples(ds, limit=2, side=16)
    assert [i for i, _ in shown] == ["9001_0_0", "9001_1_2"]  # the two labelled ones
    for _, path in shown:
        assert max(Image.open(path).size) <= 16
    assert dataset_examples(None) == []


def test_the_four_tiff_sample_is_a_copy_of_the_smallest_image(dstl_folder):
    ds = DstlDataset(dstl_folder)
    files = dstl_sample(ds)
    sizes = {i: ds.product_path(i, "3").stat().st_size for i in ds.image_ids}
    smallest = min(ds.image_ids, key=lambda i: sum(ds.product_path(i, p).stat().st_size for p in "3PMA"))
    assert [f.name for f in files] == [f"{smallest}.tif", f"{smallest}_P.tif", f"{smallest}_M.tif",
                                       f"{smallest}_A.tif"]
    assert files[0].read_bytes() == ds.product_path(smallest, "3").read_bytes()
    assert files[0].parent != ds.root and len(sizes) == 3


def test_the_shipped_rgb_sample_is_a_small_8_bit_photo():
    assert RGB_SAMPLE.is_file() and RGB_SAMPLE.stat().st_size < 200_000
    with Image.open(RGB_SAMPLE) as img:
        assert img.format == "JPEG" and img.mode == "RGB" and max(img.size) <= 512
        pixels = np.asarray(img)
    assert pixels.std() > 10  # a real picture, not a flat fill

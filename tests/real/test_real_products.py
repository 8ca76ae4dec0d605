"""The 26 real SWIR products (sixteen_band/<id>_A.tif) through the project's TIFF and scene readers,
aligned to the 3-band grid of the real size of their image (known for 2, estimated for the others)."""

import numpy as np
import pytest
import tifffile

from dstl.bands import A_BANDS, BIT_DEPTH_MAX
from dstl.dataset import DstlDataset
from dstl.real_sizes import KNOWN_THREE_BAND_SIZES
from dstl.scene import PRODUCT_SIZE_TOLERANCE, read_product_shape
from dstl.tiff import read_tiff, read_tiff_header, read_tiff_shape
from tests.real.conftest import TRAIN_IDS

A_IDS = TRAIN_IDS + ["6010_0_0"] if TRAIN_IDS else []  # 25 training images and one test image
#: The A sizes the real files have (../shared/real/README.md).
A_SIZES = {(133, 134), (134, 134), (134, 135), (134, 136), (134, 137)}


def test_there_are_26_a_products(real):
    names = sorted(p.name for p in (real / "sixteen_band").glob("*_A.tif"))
    assert names == sorted(f"{i}_A.tif" for i in A_IDS)


@pytest.mark.parametrize("image_id", A_IDS)
def test_a_product_header_pixels_and_grid(real, image_id):
    path = real / "sixteen_band" / f"{image_id}_A.tif"
    header = read_tiff_header(path)
    assert header.dtype == np.uint16 and header.shape[0] == 8
    bands, h, w = read_tiff_shape(path, bands=8)
    assert (h, w) in A_SIZES
    with tifffile.TiffFile(path) as tif:  # the real DigitalGlobe tags, planar, uncompressed
        tags = tif.pages.first.tags
        assert "DigitalGlobe" in tags["Copyright"].value
        assert tags["PlanarConfiguration"].value == 2 and tags["Compression"].value == 1
        assert tags["BitsPerSample"].value == (16,) * 8
    a = read_tiff(path, bands=8, dtype=np.uint16)
    assert a.shape == (8, h, w)
    assert a.max() <= BIT_DEPTH_MAX["A"] == 16383  # 14-bit
    # The 3-band grid of this image (real size, or estimated from the grid size) fits the A size.
    ds = DstlDataset(real)
    grid = ds.image_size(image_id)
    assert ds.size_estimated(image_id) == (image_id not in KNOWN_THREE_BAND_SIZES)
    assert read_product_shape(path, "A", grid) == (8, h, w)
    assert max(abs(h - grid[0] / 25), abs(w - grid[1] / 25)) <= PRODUCT_SIZE_TOLERANCE


def test_the_a_products_are_14_bit(real):
    peaks = [int(read_tiff(real / "sixteen_band" / f"{i}_A.tif", bands=8).max()) for i in A_IDS]
    assert max(peaks) == 16383 and sum(p > 2047 for p in peaks) == len(peaks)  # beyond 11 bits


@pytest.mark.parametrize("image_id", sorted(KNOWN_THREE_BAND_SIZES))
def test_scene_reader_resamples_a_onto_the_real_3band_grid(real, image_id):
    ds = DstlDataset(real)
    scene = ds.read_scene(image_id, bands=("A1", "A8"))
    assert scene.data.shape == (2, *KNOWN_THREE_BAND_SIZES[image_id]) and scene.data.dtype == np.float32
    raw = read_tiff(real / "sixteen_band" / f"{image_id}_A.tif", bands=8)
    # Pixel-centre aligned bilinear upsampling keeps the band's range and mean (scaled by 1/16383).
    for k, band in ((0, 0), (1, 7)):
        assert scene.data[k].min() >= raw[band].min() / 16383 - 1e-6
        assert scene.data[k].max() <= raw[band].max() / 16383 + 1e-6
        assert scene.data[k].mean() == pytest.approx(raw[band].mean() / 16383, rel=0.01)
    # The 3-band bands cannot come from a folder without three_band/.
    with pytest.raises(Exception, match="3-band file is required"):
        ds.read_scene(image_id, bands=("R",) + A_BANDS[:1])


def test_estimated_sizes_fit_every_a_product_as_dstl_scene_says(real):
    # dstl.scene's tolerance note: at most 1.48 A pixels off (6040_4_4's 134 columns for 3387 / 25).
    ds = DstlDataset(real)
    off = {}
    for i in A_IDS:
        _, h, w = read_tiff_shape(real / "sixteen_band" / f"{i}_A.tif", 8)
        H, W = ds.image_size(i)
        off[i] = max(abs(h - H / 25), abs(w - W / 25))
    worst = max(off, key=off.get)
    assert worst == "6040_4_4" and off[worst] == pytest.approx(1.48)

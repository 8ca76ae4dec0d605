import os

import numpy as np
import pytest
import tifffile

from dstl.errors import DataError
from dstl.tiff import read_tiff, read_tiff_header, read_tiff_shape, write_tiff

RNG = np.random.default_rng(7)


def noise(shape, top=2048, dtype=np.uint16):
    return RNG.integers(0, top, shape, dtype=dtype)


def cut(path, fraction=0.5):
    """Keep only the first `fraction` of the file's bytes (a download cut short)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


# ----------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("compress", [False, True])
def test_write_read_round_trip_band_first(tmp_path, compress):
    a = noise((8, 37, 41))
    write_tiff(tmp_path / "m.tif", a, compress=compress)
    b = read_tiff(tmp_path / "m.tif", bands=8, dtype=np.uint16)
    assert b.shape == (8, 37, 41) and b.dtype == np.uint16
    np.testing.assert_array_equal(a, b)
    assert read_tiff_header(tmp_path / "m.tif").axes == "SYX"  # one page, planar-separate bands


def test_masks_compress_losslessly_and_smaller(tmp_path):
    masks = np.zeros((10, 300, 200), np.uint8)
    masks[0, 10:100, 20:90] = 1
    masks[4, 150:, :] = 1
    write_tiff(tmp_path / "plain.tif", masks)
    write_tiff(tmp_path / "small.tif", masks, compress=True)
    np.testing.assert_array_equal(read_tiff(tmp_path / "small.tif", bands=10, dtype=np.uint8), masks)
    assert (tmp_path / "small.tif").stat().st_size < (tmp_path / "plain.tif").stat().st_size / 10


def test_2d_page_read_as_one_band(tmp_path):
    p = noise((33, 35))
    write_tiff(tmp_path / "p.tif", p)
    out = read_tiff(tmp_path / "p.tif", bands=1)
    assert out.shape == (1, 33, 35)
    np.testing.assert_array_equal(out[0], p)
    assert read_tiff(tmp_path / "p.tif").shape == (33, 35)  # bands=None: as stored


@pytest.mark.parametrize("stored", [(1, 33, 35), (33, 35, 1)])
def test_single_band_3d_layouts_accepted_for_a_page(tmp_path, stored):
    p = noise(stored)
    tifffile.imwrite(tmp_path / "p.tif", p, photometric="minisblack")
    out = read_tiff(tmp_path / "p.tif", bands=1)
    np.testing.assert_array_equal(out[0], p.reshape(33, 35))


def test_band_last_interleaved_file_is_returned_band_first(tmp_path):
    rgb = noise((40, 50, 3))
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")  # interleaved, axes YXS
    out = read_tiff(tmp_path / "rgb.tif", bands=3)
    assert out.shape == (3, 40, 50) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.moveaxis(rgb, -1, 0))
    assert read_tiff_shape(tmp_path / "rgb.tif", bands=3) == (3, 40, 50)


def test_one_page_per_band_file(tmp_path):
    a = noise((8, 20, 30))
    tifffile.imwrite(tmp_path / "pages.tif", a)  # tifffile's default: 8 pages, axes QYX
    assert len(tifffile.TiffFile(tmp_path / "pages.tif").pages) == 8
    np.testing.assert_array_equal(read_tiff(tmp_path / "pages.tif", bands=8), a)


def test_ambiguous_shape_decided_by_the_file_axes(tmp_path):
    # 3 x 40 x 3 could be either layout; the file's own sample axis decides.
    a = noise((3, 40, 3))
    tifffile.imwrite(tmp_path / "planar.tif", a, photometric="rgb", planarconfig="separate")
    tifffile.imwrite(tmp_path / "inter.tif", a, photometric="rgb", planarconfig="contig")
    np.testing.assert_array_equal(read_tiff(tmp_path / "planar.tif", bands=3), a)
    np.testing.assert_array_equal(read_tiff(tmp_path / "inter.tif", bands=3), np.moveaxis(a, -1, 0))


def test_header_reader_does_not_need_the_pixels(tmp_path):
    write_tiff(tmp_path / "m.tif", noise((8, 64, 64)))
    cut(tmp_path / "m.tif")
    assert read_tiff_shape(tmp_path / "m.tif", bands=8) == (8, 64, 64)
    header = read_tiff_header(tmp_path / "m.tif")
    assert header.shape == (8, 64, 64) and header.dtype == np.uint16
    with pytest.raises(DataError, match="truncated"):
        read_tiff(tmp_path / "m.tif", bands=8)


# ----------------------------------------------------------------------------- bad files

def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.tif: file not found"):
        read_tiff(tmp_path / "nope.tif", bands=3)
    with pytest.raises(DataError, match="file not found"):
        read_tiff_shape(tmp_path / "nope.tif", bands=3)


def test_directory_is_not_a_file(tmp_path):
    (tmp_path / "d.tif").mkdir()
    with pytest.raises(DataError, match="not a file"):
        read_tiff(tmp_path / "d.tif")


@pytest.mark.parametrize("content", [b"", b"hello, this is a CSV file\n1,2,3\n",
                                     np.random.default_rng(1).bytes(4096)])
def test_not_a_tiff(tmp_path, content):
    path = tmp_path / "x.tif"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"x\.tif: not a readable TIFF"):
        read_tiff(path, bands=3)


def test_header_cut_short(tmp_path):
    write_tiff(tmp_path / "m.tif", noise((8, 20, 20)))
    cut(tmp_path / "m.tif", fraction=0.004)  # 8-byte TIFF header plus a few IFD bytes
    with pytest.raises(DataError, match=r"m\.tif: (corrupt|not a readable)"):
        read_tiff(tmp_path / "m.tif", bands=8)


@pytest.mark.parametrize("compress", [False, True])
def test_real_tiff_cut_in_half(tmp_path, compress):
    write_tiff(tmp_path / "m.tif", noise((8, 120, 110)), compress=compress)
    cut(tmp_path / "m.tif")
    with pytest.raises(DataError, match=r"m\.tif: truncated TIFF"):
        read_tiff(tmp_path / "m.tif", bands=8)


def test_corrupt_compressed_pixel_data(tmp_path):
    path = tmp_path / "m.tif"
    write_tiff(path, noise((8, 120, 110)), compress=True)
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid: mid + 500] = np.random.default_rng(3).bytes(500)
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"m\.tif: corrupt TIFF pixel data"):
        read_tiff(path, bands=8)


@pytest.mark.parametrize(("stored", "bands", "problem"), [
    ((8, 20, 30), 3, "expected 3 bands"),
    ((4, 20, 30), 8, "expected 8 bands"),
    ((20, 30), 8, "expected 8 bands .* shape \\(20, 30\\)"),
    ((3, 20, 30), 1, "expected a 2-D page"),
])
def test_wrong_band_count(tmp_path, stored, bands, problem):
    write_tiff(tmp_path / "x.tif", noise(stored))
    with pytest.raises(DataError, match=r"x\.tif: " + problem):
        read_tiff(tmp_path / "x.tif", bands=bands)
    with pytest.raises(DataError, match=problem):
        read_tiff_shape(tmp_path / "x.tif", bands=bands)


def test_wrong_dtype(tmp_path):
    write_tiff(tmp_path / "f.tif", np.zeros((8, 10, 10), np.float32))
    with pytest.raises(DataError, match=r"f\.tif: expected uint16 samples, got float32"):
        read_tiff(tmp_path / "f.tif", bands=8, dtype=np.uint16)
    with pytest.raises(DataError, match="expected uint8 or uint16 samples"):
        read_tiff(tmp_path / "f.tif", bands=8, dtype=(np.uint8, np.uint16))


def test_image_size_limit_checked_before_reading(tmp_path, monkeypatch):
    write_tiff(tmp_path / "big.tif", np.zeros((3, 40, 60), np.uint8))
    cut(tmp_path / "big.tif", 0.9)  # truncated too: the size check must come first
    monkeypatch.setenv("DSTL_MAX_IMAGE_MEGAPIXELS", "0.002")  # 2000 px; the bands do not count
    for bands in (3, None):
        with pytest.raises(DataError, match=r"big\.tif: image of 40 x 60 px .* larger than the limit of "
                                            "0.002 megapixels; .*DSTL_MAX_IMAGE_MEGAPIXELS=1"):
            read_tiff(tmp_path / "big.tif", bands=bands)


def test_a_forged_size_claim_is_refused_without_allocating(tmp_path, forge_tiff_header):
    """A 400-byte file claiming 8 x 50,000 x 50,000 uint16 (40 GB): refused from the header."""
    path = forge_tiff_header(tmp_path / "forged.tif", (8, 50000, 50000))
    with pytest.raises(DataError, match="forged.tif: image of 50000 x 50000 px .* larger than the limit"):
        read_tiff(path, bands=8)


def test_bands_none_rejects_4d(tmp_path):
    tifffile.imwrite(tmp_path / "v.tif", np.zeros((2, 3, 16, 16), np.uint8), photometric="minisblack")
    with pytest.raises(DataError, match="expected a 2-D or 3-D image"):
        read_tiff(tmp_path / "v.tif")


# ----------------------------------------------------------------------------- atomic writes

def test_write_is_atomic_on_failure(tmp_path):
    dest = tmp_path / "masks.tif"
    write_tiff(dest, np.ones((10, 8, 8), np.uint8))
    before = dest.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - tifffile's own error for an unwritable dtype
        write_tiff(dest, np.empty((10, 8, 8), dtype=object))
    assert dest.read_bytes() == before  # old file intact
    assert os.listdir(tmp_path) == ["masks.tif"]  # no temporary left behind


def test_write_creates_parent_folders_and_rejects_bad_shapes(tmp_path):
    write_tiff(tmp_path / "a" / "b" / "x.tif", np.zeros((5, 5), np.uint16))
    assert (tmp_path / "a" / "b" / "x.tif").is_file()
    with pytest.raises(ValueError, match="shape"):
        write_tiff(tmp_path / "y.tif", np.zeros((2, 2, 5, 5), np.uint8))
    assert not (tmp_path / "y.tif").exists()

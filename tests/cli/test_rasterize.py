"""`python -m dstl rasterize DATA IMAGE_ID --out MASKS.tif`, run as a user runs it."""


import numpy as np
import pytest
import shapely
import tifffile

from tests.cli_runner import dstl, error_line


@pytest.fixture
def data(tmp_path, make_dstl_folder):
    # 9001_0_0 (64x72) and 9001_1_2 (67x61) are labelled; 9002_3_4 is a test image
    return make_dstl_folder(tmp_path / "data")


def test_rasterize_writes_the_pixel_centre_masks(data, tmp_path, dstl_label_polygons):
    out = tmp_path / "out" / "masks.tif"
    res = dstl("rasterize", data, "9001_1_2", "--out", out)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out)
    masks = tifffile.imread(out)
    assert masks.shape == (10, 67, 61) and masks.dtype == np.uint8
    cols, rows = np.meshgrid(np.arange(61) + 0.5, np.arange(67) + 0.5)
    for k, geom in dstl_label_polygons(67, 61).items():  # the pixel polygons behind the fixture
        expected = shapely.contains_xy(geom, cols, rows)
        assert np.array_equal(masks[k - 1], expected), k
    assert masks[0].sum() == 16 * 14 + 6 * 6
    assert masks[4].sum() == 16 * 16 - 8 * 8  # the hole is respected
    assert masks[1].sum() == 0  # MULTIPOLYGON EMPTY
    assert sorted(p.name for p in out.parent.iterdir()) == ["masks.tif"]


def test_help_explains_every_argument():
    res = dstl("rasterize", "--help")
    assert res.returncode == 0
    for word in ("DATA", "IMAGE_ID", "--out", "centre", "(10, H, W)"):
        assert word in res.stdout


@pytest.mark.parametrize("args, message", [
    (["{data}", "6120_2_2"], "unknown image id '6120_2_2'"),
    (["{data}", "9002_3_4"], "has no labels"),
    (["{tmp}/nowhere", "9001_0_0"], "not found"),
])
def test_bad_input_is_one_line_and_writes_nothing(data, tmp_path, args, message):
    out = tmp_path / "out" / "masks.tif"
    res = dstl("rasterize", *[a.format(data=data, tmp=tmp_path) for a in args], "--out", out)
    assert res.returncode == 2
    assert message in error_line(res)
    assert not out.exists()


def test_bad_out_paths(data, tmp_path):
    res = dstl("rasterize", data, "9001_0_0", "--out", tmp_path / "masks.png")
    assert res.returncode == 2 and ".tif" in error_line(res)
    res = dstl("rasterize", data, "9001_0_0", "--out", tmp_path)
    assert res.returncode == 2 and "is a folder" in error_line(res)
    assert list(tmp_path.glob("masks*")) == []


def test_malformed_labels_name_the_file_and_line(data, tmp_path):
    wkt = data / "train_wkt_v4.csv"
    lines = wkt.read_text().splitlines()
    lines[3] = '9001_0_0,3,"MULTIPOLYGON (((0 0, 1 0"'
    wkt.write_text("\n".join(lines) + "\n")
    out = tmp_path / "masks.tif"
    res = dstl("rasterize", data, "9001_0_0", "--out", out)
    assert res.returncode == 2
    msg = error_line(res)
    assert "train_wkt_v4.csv: line 4" in msg and "malformed WKT" in msg
    assert not out.exists()


def test_missing_or_corrupt_three_band_tiff(data, tmp_path):
    out = tmp_path / "masks.tif"
    tif = data / "three_band" / "9001_0_0.tif"
    tif.write_bytes(b"II*\x00garbage")
    res = dstl("rasterize", data, "9001_0_0", "--out", out)
    # (one_line=False: tifffile itself logs a warning line for this file; see the report)
    assert res.returncode == 2 and "9001_0_0.tif" in error_line(res, one_line=False)
    tif.unlink()
    res = dstl("rasterize", data, "9001_0_0", "--out", out)
    assert res.returncode == 2 and "9001_0_0.tif" in error_line(res)
    assert not out.exists()


def test_bad_grid_sizes_header(data, tmp_path):
    grid = data / "grid_sizes.csv"
    grid.write_text("ImageId,Xmax,Ymin\n" + "".join(grid.read_text().splitlines(True)[1:]))
    out = tmp_path / "masks.tif"
    res = dstl("rasterize", data, "9001_0_0", "--out", out)
    assert res.returncode == 2 and "grid_sizes.csv: line 1: header" in error_line(res)
    assert not out.exists()


@pytest.mark.parametrize("size, message", [
    ((20000, 20000), "9001_0_0.tif: image of 20000 x 20000 px (400.0 megapixels) is larger than the limit "
                     "of 64 megapixels; if you do have such an image and the memory for it (~130 bytes per "
                     "pixel for 20 bands), raise the limit with the environment variable "
                     "DSTL_MAX_IMAGE_MEGAPIXELS=400"),
    ((1, 1), "9001_0_0.tif: image of 1 x 1 px is too small (at least 32 px per side"),
])
def test_a_3band_size_outside_the_limits_is_refused_before_any_allocation(data, tmp_path, forge_tiff_header,
                                                                          size, message):
    """The header of a few hundred bytes that made rasterize allocate a (10, 20000, 20000) stack."""
    forge_tiff_header(data / "three_band" / "9001_0_0.tif", (3, *size))
    out = tmp_path / "masks.tif"
    res = dstl("rasterize", data, "9001_0_0", "--out", out)
    assert res.returncode == 2
    assert message in error_line(res)
    assert not out.exists()


def test_the_environment_variable_moves_the_limit_for_every_command(data, tmp_path, monkeypatch):
    """9001_0_0 is 64 x 72 = 4608 px: over a limit of 0.004 megapixels, under one of 0.005."""
    out = tmp_path / "masks.tif"
    monkeypatch.setenv("DSTL_MAX_IMAGE_MEGAPIXELS", "0.004")
    res = dstl("rasterize", data, "9001_0_0", "--out", out)
    assert res.returncode == 2 and "larger than the limit of 0.004 megapixels" in error_line(res)
    monkeypatch.setenv("DSTL_MAX_IMAGE_MEGAPIXELS", "0.005")
    assert dstl("rasterize", data, "9001_0_0", "--out", out).returncode == 0
    monkeypatch.setenv("DSTL_MAX_IMAGE_MEGAPIXELS", "many")
    res = dstl("rasterize", data, "9001_0_0", "--out", tmp_path / "other.tif")
    assert res.returncode == 2
    assert "DSTL_MAX_IMAGE_MEGAPIXELS='many' must be a positive number" in error_line(res)

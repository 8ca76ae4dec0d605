"""`python -m dstl polygons MASKS.tif --data DATA --image-id IMAGE_ID --out ROWS.csv` as a user runs it."""

from pathlib import Path

import numpy as np
import pytest
import tifffile
from shapely import affinity
from shapely.geometry import box

from dstl.dataset import DstlDataset
from dstl.labels import iter_wkt_rows
from dstl.rasterize import rasterize_classes, rasterize_pixels
from tests.cli_runner import dstl, error_line

H, W = 64, 72  # 9001_0_0 in conftest's default folder


@pytest.fixture
def data(tmp_path, make_dstl_folder):
    return make_dstl_folder(tmp_path / "data")


def make_masks() -> np.ndarray:
    masks = np.zeros((10, H, W), np.uint8)
    masks[0, 5:25, 10:40] = 1                        # a building
    masks[4, 30:60, 5:35] = 1                        # trees with a clearing
    masks[4, 38:50, 14:26] = 0
    masks[9] = rasterize_pixels(affinity.rotate(box(45, 40, 60, 46), 25), H, W)  # a 15x6 px car
    masks[6, 0:64, 66:72] = 1                        # a waterway along the image's right border
    return masks


def write_masks(path: Path, masks: np.ndarray) -> Path:
    tifffile.imwrite(path, masks, photometric="minisblack", planarconfig="separate")
    return path


def test_polygons_writes_ten_valid_rows_that_rasterise_back(data, tmp_path):
    masks = make_masks()
    src = write_masks(tmp_path / "masks.tif", masks)
    out = tmp_path / "out" / "rows.csv"
    res = dstl("polygons", src, "--data", data, "--image-id", "9001_0_0", "--out", out)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out)
    assert out.read_text().splitlines()[0] == "ImageId,ClassType,MultipolygonWKT"
    rows = list(iter_wkt_rows(out))
    assert [(r.image_id, r.class_id) for r in rows] == [("9001_0_0", k) for k in range(1, 11)]
    assert not any(r.repaired for r in rows)  # valid geometry as written
    assert [r.class_id for r in rows if not r.geometry.is_empty] == [1, 5, 7, 10]
    assert len(rows[4].geometry.geoms[0].interiors) == 1  # the clearing is a hole
    back = rasterize_classes({r.class_id: r.geometry for r in rows},
                             DstlDataset(data).transform("9001_0_0"))
    for k in (1, 5, 7, 10):
        inter = np.logical_and(back[k - 1], masks[k - 1]).sum()
        union = np.logical_or(back[k - 1], masks[k - 1]).sum()
        assert inter / union > 0.9, k
    assert np.array_equal(back[0], masks[0]) and np.array_equal(back[6], masks[6])
    assert sorted(p.name for p in out.parent.iterdir()) == ["rows.csv"]


def test_help_explains_every_argument():
    res = dstl("polygons", "--help")
    assert res.returncode == 0
    for word in ("MASKS.tif", "--data", "--image-id", "--out", "MULTIPOLYGON", "minimum area"):
        assert word in res.stdout


@pytest.mark.parametrize("make, message", [
    (lambda: make_masks()[:3], "expected 10 bands"),
    (lambda: make_masks()[:, :60], "masks are 60x72 px but image 9001_0_0 is 64x72 px"),
    (lambda: make_masks() * 2, "mask values must be 0 or 1"),
    (lambda: make_masks().astype(np.float32), "must be integers 0/1"),
    (lambda: make_masks()[0], "expected 10 bands"),
])
def test_bad_masks_are_one_line_errors(data, tmp_path, make, message):
    src = write_masks(tmp_path / "masks.tif", make())
    out = tmp_path / "rows.csv"
    res = dstl("polygons", src, "--data", data, "--image-id", "9001_0_0", "--out", out)
    assert res.returncode == 2
    msg = error_line(res)
    assert message in msg and "masks.tif" in msg
    assert not out.exists()


def test_missing_truncated_and_corrupt_mask_files(data, tmp_path):
    out = tmp_path / "rows.csv"
    src = tmp_path / "masks.tif"
    res = dstl("polygons", src, "--data", data, "--image-id", "9001_0_0", "--out", out)
    assert res.returncode == 2 and "masks.tif: file not found" in error_line(res)
    write_masks(src, make_masks())
    src.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    res = dstl("polygons", src, "--data", data, "--image-id", "9001_0_0", "--out", out)
    assert res.returncode == 2 and "truncated" in error_line(res)
    src.write_bytes(b"not a tiff at all")
    res = dstl("polygons", src, "--data", data, "--image-id", "9001_0_0", "--out", out)
    assert res.returncode == 2 and "masks.tif" in error_line(res)
    assert not out.exists()


def test_a_forged_mask_size_is_refused_from_the_header(data, tmp_path, forge_tiff_header):
    """A 600-byte file claiming (10, 20000, 20000) masks: refused against the image's size, unread."""
    src = forge_tiff_header(tmp_path / "masks.tif", (10, 20000, 20000), dtype=np.uint8)
    out = tmp_path / "rows.csv"
    res = dstl("polygons", src, "--data", data, "--image-id", "9001_0_0", "--out", out)
    assert res.returncode == 2
    assert "masks.tif: masks are 20000x20000 px but image 9001_0_0 is 64x72 px" in error_line(res)
    assert not out.exists()


def test_bad_arguments(data, tmp_path):
    src = write_masks(tmp_path / "masks.tif", make_masks())
    out = tmp_path / "rows.csv"
    res = dstl("polygons", src, "--data", data, "--image-id", "6120_2_2", "--out", out)
    assert res.returncode == 2 and "unknown image id '6120_2_2'" in error_line(res)
    res = dstl("polygons", src, "--data", tmp_path / "nowhere", "--image-id", "9001_0_0", "--out", out)
    assert res.returncode == 2 and "not found" in error_line(res)
    res = dstl("polygons", src, "--data", data, "--image-id", "9001_0_0", "--out", tmp_path)
    assert res.returncode == 2 and "is a folder" in error_line(res)
    res = dstl("polygons", src, "--image-id", "9001_0_0", "--out", out)
    assert res.returncode == 2 and "--data" in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()

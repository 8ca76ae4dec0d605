"""Upload validation: file types, sizes, corrupt files, the four DSTL TIFFs of one image."""

import shutil

import numpy as np
import pytest
import tifffile
from PIL import Image

from dstl.bands import ALL_BANDS, RGB_BANDS
from dstl.dataset import DstlDataset
from dstl.demo.uploads import read_upload, safe_label
from dstl.errors import DataError

BIG = 10**9


def _upload_dir(tmp_path, n=0):
    # Gradio keeps each upload in its own hashed folder, under the visitor's file name.
    d = tmp_path / "gradio" / f"hash{n:04d}"
    d.mkdir(parents=True)
    return d


def _png(tmp_path, name="scene.png", size=(40, 50), mode="RGB"):
    rng = np.random.default_rng(0)
    shape = (size[0], size[1], len(mode)) if mode != "L" else size
    path = _upload_dir(tmp_path, len(list(tmp_path.glob("gradio/*")))) / name
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def test_rgb_png_is_read_as_an_rgb_scene_named_after_the_file(tmp_path):
    path = _png(tmp_path, "my field.png")
    scene = read_upload([path], max_bytes=BIG, max_pixels=BIG)
    assert scene.bands == RGB_BANDS
    assert scene.data.shape == (3, 40, 50)
    assert scene.image_id == "my_field"
    expected = np.moveaxis(np.asarray(Image.open(path)), -1, 0) / 255
    np.testing.assert_allclose(scene.data, expected, atol=1e-6)


def test_jpeg_and_16_bit_tiff_are_accepted(tmp_path):
    jpg = _upload_dir(tmp_path, 1) / "photo.JPG"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(jpg, format="JPEG")
    assert read_upload([jpg], max_bytes=BIG, max_pixels=BIG).data.shape == (3, 40, 40)
    tif = _upload_dir(tmp_path, 2) / "scene.tiff"
    tifffile.imwrite(tif, np.full((3, 33, 35), 30000, np.uint16), photometric="rgb", planarconfig="separate")
    scene = read_upload([tif], max_bytes=BIG, max_pixels=BIG)
    np.testing.assert_allclose(scene.data, 30000 / 65535, atol=1e-6)


@pytest.mark.parametrize("name", ["notes.txt", "archive.zip", "scene.gif", "README"])
def test_wrong_file_type_is_refused_by_name(tmp_path, name):
    path = _upload_dir(tmp_path) / name
    path.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"unsupported file type") as e:
        read_upload([path], max_bytes=BIG, max_pixels=BIG)
    assert name in str(e.value)


def test_too_large_file_and_too_many_pixels_are_refused_before_decoding(tmp_path):
    path = _png(tmp_path, size=(60, 60))
    with pytest.raises(DataError, match=r"scene.png: file of .* MB is larger than this demo's limit"):
        read_upload([path], max_bytes=100, max_pixels=BIG)
    with pytest.raises(DataError, match=r"60 x 60 px .* larger than this demo's limit"):
        read_upload([path], max_bytes=BIG, max_pixels=59 * 60)


def test_corrupt_or_truncated_tiff_names_the_visitors_file_not_the_server_path(tmp_path):
    good = _upload_dir(tmp_path, 1) / "good.tif"
    tifffile.imwrite(good, np.ones((3, 64, 64), np.uint16), photometric="rgb", planarconfig="separate")
    truncated = _upload_dir(tmp_path, 2) / "cut.tif"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = _upload_dir(tmp_path, 3) / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + b"\xff" * 64)
    for path in (truncated, garbage):
        with pytest.raises(DataError) as e:
            read_upload([path], max_bytes=BIG, max_pixels=BIG)
        message = str(e.value)
        assert path.name in message
        assert str(path.parent) not in message


def test_empty_and_missing_uploads(tmp_path):
    empty = _upload_dir(tmp_path) / "empty.png"
    empty.touch()
    with pytest.raises(DataError, match="empty.png: the file is empty"):
        read_upload([empty], max_bytes=BIG, max_pixels=BIG)
    with pytest.raises(DataError, match="no file uploaded"):
        read_upload([], max_bytes=BIG, max_pixels=BIG)
    with pytest.raises(DataError, match="missing on the server"):
        read_upload([tmp_path / "gone.png"], max_bytes=BIG, max_pixels=BIG)


def _dstl_upload(tmp_path, root, image_id, names=None):
    """Copy one image's four products into separate upload folders under the given names."""
    products = {"3": root / "three_band" / f"{image_id}.tif",
                **{p: root / "sixteen_band" / f"{image_id}_{p}.tif" for p in "PMA"}}
    names = names or {p: f"{image_id}.tif" if p == "3" else f"{image_id}_{p}.tif" for p in products}
    paths = []
    for n, (p, src) in enumerate(products.items()):
        if p not in names:
            continue
        dest = _upload_dir(tmp_path, 100 + n) / names[p]
        shutil.copy(src, dest)
        paths.append(dest)
    return paths


def test_four_dstl_tiffs_give_the_same_20_band_scene_as_the_dataset(tmp_path, dstl_folder):
    paths = _dstl_upload(tmp_path, dstl_folder, "9001_1_2")
    scene = read_upload(paths[::-1], max_bytes=BIG, max_pixels=BIG)  # order does not matter
    expected = DstlDataset(dstl_folder).read_scene("9001_1_2")
    assert scene.bands == ALL_BANDS
    assert scene.image_id == "9001_1_2"
    np.testing.assert_array_equal(scene.data, expected.data)


@pytest.mark.parametrize("names, match", [
    ({"3": "a.tif", "P": "a_P.tif", "M": "a_M.tif", "A": "b_A.tif"}, "must belong to one image"),
    ({"3": "a.tif", "P": "a_P.tif", "M": "a_M.tif", "A": "a_M.tif"}, "two files for the M product"),
    ({"3": "a.tif", "P": "a_P.tif", "M": "a_M.tif", "A": "a_A.png"}, "not a DSTL product TIFF"),
])
def test_four_files_that_are_not_one_images_products_are_refused(tmp_path, dstl_folder, names, match):
    paths = _dstl_upload(tmp_path, dstl_folder, "9001_0_0", names)
    with pytest.raises(DataError, match=match):
        read_upload(paths, max_bytes=BIG, max_pixels=BIG)


@pytest.mark.parametrize(("product", "shape", "match"), [
    ("M", (8, 1, 1), "9001_0_0_M.tif: M product of 1 x 1 px does not fit the 3-band image of 64 x 72 px"),
    ("A", (8, 100, 100), "9001_0_0_A.tif: A product of 100 x 100 px does not fit"),
    ("3", (3, 20000, 20000), "9001_0_0.tif: image of 20000 x 20000 px .* larger than the limit of 64 "),
])
def test_products_outside_the_size_rules_are_refused_by_name(tmp_path, dstl_folder, forge_tiff_header,
                                                             product, shape, match):
    """Forged headers: the visitor's file name, its size and the expected one; nothing allocated."""
    paths = _dstl_upload(tmp_path, dstl_folder, "9001_0_0")
    name = "9001_0_0.tif" if product == "3" else f"9001_0_0_{product}.tif"
    forged = next(p for p in paths if p.name == name)
    forge_tiff_header(forged, shape)
    with pytest.raises(DataError, match=match) as e:
        read_upload(paths, max_bytes=BIG, max_pixels=BIG)
    assert str(tmp_path) not in str(e.value)  # the server's temporary paths stay private


def test_other_file_counts_are_refused(tmp_path, dstl_folder):
    paths = _dstl_upload(tmp_path, dstl_folder, "9001_0_0", {"3": "a.tif", "P": "a_P.tif", "M": "a_M.tif"})
    with pytest.raises(DataError, match="3 files uploaded"):
        read_upload(paths, max_bytes=BIG, max_pixels=BIG)


def test_labels_are_display_only_and_path_free():
    assert safe_label("../../etc/passwd.png") == "passwd"
    assert safe_label("<b>alert(1)<b>.png") == "b_alert_1_b"
    assert safe_label("...") == "upload"
    assert safe_label("x" * 200 + ".png") == "x" * 64

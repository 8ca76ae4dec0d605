import csv

import numpy as np
import pytest
from shapely.geometry import MultiPolygon

from dstl.bands import RGB_BANDS
from dstl.dataset import DstlDataset
from dstl.errors import DataError, UnknownImageError
from dstl.grid import GridTransform

# Test ids deliberately out of sorted order: test_ids keep sample_submission.csv's order.
SIZES = {"9001_0_0": (48, 52), "9003_1_1": (45, 42), "9002_4_4": (40, 36), "9002_0_3": (43, 47)}
LABELLED = ["9003_1_1", "9001_0_0"]


@pytest.fixture
def root(make_dstl_folder, tmp_path):
    return make_dstl_folder(tmp_path / "data", sizes=SIZES, labelled=LABELLED)


@pytest.fixture
def ds(root):
    return DstlDataset(root)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_ids(ds):
    assert ds.image_ids == sorted(SIZES)
    assert ds.train_ids == sorted(LABELLED)
    assert ds.test_ids == ["9002_4_4", "9002_0_3"]
    assert len(ds) == 4 and "4 images" in repr(ds)
    assert ds.has_labels("9001_0_0") and not ds.has_labels("9002_4_4")


@pytest.mark.parametrize("bad", ["6120_2_2", "../9001_0_0", "9001_0_0.tif", "", None, 17])
def test_unknown_id(ds, bad):
    with pytest.raises(UnknownImageError, match=r"unknown image id .* has 4 images, e\.g\. 9001_0_0"):
        ds.check_id(bad)
    with pytest.raises(UnknownImageError):
        ds.read_scene(bad)
    with pytest.raises(UnknownImageError):
        ds.product_path(bad, "3")


def test_grid_size_image_size_and_transform(ds, root):
    grid = {r[0]: (float(r[1]), float(r[2])) for r in rows(root / "grid_sizes.csv")[1:]}
    for image_id, (h, w) in SIZES.items():
        assert ds.grid_size(image_id) == grid[image_id]
        assert ds.image_size(image_id) == (h, w)
        assert ds.transform(image_id) == GridTransform(h, w, *grid[image_id])


def test_product_paths(ds, root):
    assert ds.product_path("9001_0_0", "3") == root / "three_band" / "9001_0_0.tif"
    for p in "PMA":
        assert ds.product_path("9001_0_0", p) == root / "sixteen_band" / f"9001_0_0_{p}.tif"
        assert ds.product_path("9001_0_0", p).is_file()
    with pytest.raises(ValueError, match="product must be one of"):
        ds.product_path("9001_0_0", "X")


def test_labels_all_classes_hole_and_empty(ds):
    labels = ds.labels("9001_0_0")
    assert sorted(labels) == list(range(1, 11))
    assert all(isinstance(g, MultiPolygon) and g.is_valid for g in labels.values())
    assert len(labels[1].geoms) == 2
    assert len(labels[5].geoms[0].interiors) == 1  # the ring keeps its hole
    assert all(labels[k].is_empty for k in (2, 4, 6, 7, 8, 10))
    labels[1] = None  # callers get their own dict
    assert ds.labels("9001_0_0")[1] is not None


def test_labels_of_an_unlabelled_image(ds):
    with pytest.raises(DataError, match="'9002_4_4' has no labels"):
        ds.labels("9002_4_4")
    with pytest.raises(DataError, match="no labels"):
        ds.masks("9002_4_4")


def test_masks_follow_the_pixel_centre_rule(ds, dstl_label_polygons):
    h, w = SIZES["9001_0_0"]
    masks = ds.masks("9001_0_0")
    assert masks.shape == (10, h, w) and masks.dtype == np.uint8
    want1 = np.zeros((h, w), np.uint8)
    want1[4:18, 2:18] = 1
    want1[h - 10: h - 4, w - 10: w - 4] = 1
    np.testing.assert_array_equal(masks[0], want1)
    want5 = np.zeros((h, w), np.uint8)
    want5[20:36, 20:36] = 1
    want5[24:32, 24:32] = 0
    np.testing.assert_array_equal(masks[4], want5)
    assert masks[8].sum() == 6 and masks[1].sum() == 0
    assert int(masks[2].sum()) == pytest.approx(dstl_label_polygons(h, w)[3].area, rel=0.1)


def test_masks_are_cached_and_read_only(root):
    ds = DstlDataset(root, mask_cache=1)
    first = ds.masks("9001_0_0")
    assert ds.masks("9001_0_0") is first
    with pytest.raises(ValueError):
        first[0, 0, 0] = 1
    ds.masks("9003_1_1")  # evicts the first (cache of one)
    again = ds.masks("9001_0_0")
    assert again is not first
    np.testing.assert_array_equal(again, first)


def test_read_scene_delegates(ds):
    scene = ds.read_scene("9002_0_3", RGB_BANDS)
    assert scene.image_id == "9002_0_3" and scene.data.shape == (3, 43, 47)


def test_without_optional_csvs(root):
    (root / "train_wkt_v4.csv").unlink()
    (root / "sample_submission.csv").unlink()
    ds = DstlDataset(root)
    assert ds.train_ids == [] and ds.test_ids == []
    assert not ds.has_labels("9001_0_0")


# ----------------------------------------------------------------------------- bad folders

def test_root_missing(tmp_path):
    with pytest.raises(DataError, match="dataset folder not found"):
        DstlDataset(tmp_path / "nowhere")


def test_not_a_dstl_folder(tmp_path):
    with pytest.raises(DataError, match="three_band/ is missing"):
        DstlDataset(tmp_path)


def test_grid_sizes_missing(root):
    (root / "grid_sizes.csv").unlink()
    with pytest.raises(DataError, match=r"grid_sizes\.csv: not found"):
        DstlDataset(root)


@pytest.mark.parametrize("header", ["ImageId,Xmax,Ymin", "Xmax,Ymin", ""])
def test_malformed_grid_sizes_header(root, header):
    path = root / "grid_sizes.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([header] + lines[1:]) + "\n")
    with pytest.raises(DataError, match=r"grid_sizes\.csv"):
        DstlDataset(root)


def test_grid_sizes_id_that_is_not_a_file_name(root):
    with open(root / "grid_sizes.csv", "a") as f:
        f.write("../../etc/passwd,0.009,-0.009\n")
    with pytest.raises(DataError, match="'../../etc/passwd' is not a plain file name"):
        DstlDataset(root)


def test_listed_image_with_missing_file(root):
    (root / "three_band" / "9002_0_3.tif").unlink()
    ds = DstlDataset(root)
    assert "9002_0_3" in ds.image_ids
    with pytest.raises(DataError, match=r"three_band/9002_0_3\.tif: file not found"):
        ds.read_scene("9002_0_3")
    with pytest.raises(DataError, match=r"9002_0_3\.tif: file not found"):
        ds.image_size("9002_0_3")


@pytest.mark.parametrize("name", ["train_wkt_v4.csv", "sample_submission.csv"])
def test_wkt_csv_with_wrong_header(root, name):
    path = root / name
    path.write_text("ImageId,Class,WKT\n" + "\n".join(path.read_text().splitlines()[1:]) + "\n")
    ds = DstlDataset(root)
    attr = "train_ids" if name.startswith("train") else "test_ids"
    with pytest.raises(DataError, match=f"{name}: line 1: header must be ImageId,ClassType,MultipolygonWKT"):
        getattr(ds, attr)


def test_wkt_csv_with_an_id_not_in_grid_sizes(root):
    with open(root / "train_wkt_v4.csv", "a", newline="") as f:
        csv.writer(f).writerow(["9999_9_9", 1, "MULTIPOLYGON EMPTY"])
    with pytest.raises(DataError, match=r"train_wkt_v4\.csv: image id '9999_9_9' is not in grid_sizes\.csv"):
        _ = DstlDataset(root).train_ids


def test_malformed_wkt_row_is_reported_on_the_labels_of_its_image(root):
    with open(root / "train_wkt_v4.csv", "a", newline="") as f:
        csv.writer(f).writerow(["9002_4_4", 1, "MULTIPOLYGON (((0 0, 1 1"])
    ds = DstlDataset(root)
    # Labels are parsed per image: another image's labels do not pay for (or trip on) this row.
    assert not ds.labels("9001_0_0")[1].is_empty
    with pytest.raises(DataError, match=r"train_wkt_v4\.csv: line 22: image 9002_4_4 class 1: malformed WKT"):
        ds.labels("9002_4_4")


@pytest.mark.parametrize("row, problem", [
    (["9001_0_0", 11, "MULTIPOLYGON EMPTY"], "ClassType must be an integer 1..10"),
    (["", 1, "MULTIPOLYGON EMPTY"], "empty ImageId"),
    (["9001_0_0", 1], "expected 3 cells"),
    (["9001_0_0", 3, "MULTIPOLYGON EMPTY"], "duplicate row for image 9001_0_0 class 3 "
                                            r"\(first on line \d+\)"),
])
def test_bad_wkt_row_keys_are_found_by_the_index(root, row, problem):
    with open(root / "train_wkt_v4.csv", "a", newline="") as f:
        csv.writer(f).writerow(row)
    with pytest.raises(DataError, match=rf"train_wkt_v4\.csv: line 22: {problem}"):
        _ = DstlDataset(root).train_ids


def test_wkt_rows_spanning_lines_and_a_bom(root):
    expected = {i: DstlDataset(root).labels(i) for i in LABELLED}
    path = root / "train_wkt_v4.csv"
    # A quoted field holding line breaks (legal CSV and WKT) and a byte-order mark before the header.
    text = path.read_text().replace('"MULTIPOLYGON (((', '"MULTIPOLYGON (\n\n((')
    path.write_text("\ufeff" + text, encoding="utf-8")
    ds = DstlDataset(root)
    assert ds.train_ids == sorted(LABELLED)
    for image_id in LABELLED:
        got = ds.labels(image_id)
        assert all(got[k].equals(expected[image_id][k]) for k in range(1, 11))


# ----------------------------------------------------------------------------- GeoJSON labels

def _write_geojson(root, ds):
    """train_geojson_v3/<id>/<layer>.geojson from the WKT labels: class 1 split over two building
    layers, class 5 as trees, plus a layer of no class and the Grid_ extent."""
    import json

    from shapely.geometry import mapping

    layers = {1: ["001_MM_L3_RESIDENTIAL_BUILDING", "001_MM_L2_LARGE_BUILDING"], 3: ["002_TR_L3_GOOD_ROADS"],
              5: ["006_VEG_L5_GROUP_TREES"], 9: ["003_VH_L4_LARGE_VEHICLE"]}
    for image_id in ds.train_ids:
        folder = root / "train_geojson_v3" / image_id
        folder.mkdir(parents=True)
        labels = ds.labels(image_id)
        for k, names in layers.items():
            parts = list(labels[k].geoms)
            for n, name in enumerate(names):
                feats = [{"type": "Feature", "properties": {}, "geometry": mapping(p)}
                         for p in parts[n::len(names)]]
                if feats:
                    (folder / f"{name}.geojson").write_text(
                        json.dumps({"type": "FeatureCollection", "features": feats}), newline="\r\n")
        pylon = {"type": "Feature", "properties": {}, "geometry": mapping(labels[1].geoms[0])}
        (folder / "004_UPI_L5_PYLONS.geojson").write_text(
            json.dumps({"type": "FeatureCollection", "features": [pylon]}))
        (folder / "Grid_9001.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": []}))


def test_geojson_folder_is_a_label_source(root):
    _write_geojson(root, DstlDataset(root))
    wkt = DstlDataset(root)
    assert wkt.label_source == "train_wkt_v4.csv" and "the WKT file wins" in wkt.label_note
    assert wkt.notes == [wkt.label_note]
    truth = {i: (wkt.labels(i), wkt.masks(i)) for i in LABELLED}
    (root / "train_wkt_v4.csv").rename(root / "old.csv")
    geo = DstlDataset(root)
    assert geo.label_source == "train_geojson_v3" and geo.label_note is None
    assert geo.train_ids == sorted(LABELLED) and geo.has_labels("9001_0_0")
    for image_id in LABELLED:
        a, b = geo.labels(image_id), truth[image_id][0]
        assert all(a[k].symmetric_difference(b[k]).area < 1e-15 for k in range(1, 11))
        assert np.array_equal(geo.masks(image_id), truth[image_id][1])
    with pytest.raises(DataError, match=r"train_wkt_v4\.csv: not found"):
        DstlDataset(root, labels_from="wkt")


def test_folder_without_three_band_has_estimated_sizes(root):
    import shutil

    shutil.rmtree(root / "three_band")
    ds = DstlDataset(root)  # it has labels, so it is a dataset
    assert not ds.has_three_band and "3-band sizes are estimated" in ds.size_note
    assert ds.size_estimated("9001_0_0")
    h, w = ds.image_size("9001_0_0")  # from the grid size with the real ground sampling
    assert 3300 < h < 3400 and 3300 < w < 3500
    (root / "train_wkt_v4.csv").unlink()
    with pytest.raises(DataError, match="three_band/ is missing"):
        DstlDataset(root)

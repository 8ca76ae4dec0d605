"""Tests for dstl.exports: every predict output file is readable back and written atomically."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import shapely
import tifffile
from PIL import Image
from shapely.geometry import MultiPolygon, Polygon, box, shape

from dstl import exports
from dstl.classes import class_by_id
from dstl.errors import DataError, DstlError
from dstl.grid import GridTransform

H, W = 40, 48
TRANSFORM = GridTransform(H, W, 0.009188, -0.00904)


def _pixel_polygons() -> dict[int, MultiPolygon]:
    """Class 1: two boxes; 5: a square with a hole; 10: a tiny car; others empty (pixel coords)."""
    ring = Polygon(box(20, 10, 36, 26).exterior.coords, [box(24, 14, 32, 22).exterior.coords])
    return {
        1: MultiPolygon([box(2, 4, 10, 12), box(40, 30, 46, 38)]),
        5: MultiPolygon([ring]),
        10: MultiPolygon([box(12, 30, 15, 32)]),
    }


def _grid_polygons() -> dict[int, MultiPolygon]:
    return {k: TRANSFORM.to_grid(g) for k, g in _pixel_polygons().items()}


def _masks() -> np.ndarray:
    m = np.zeros((10, H, W), np.uint8)
    m[0, 4:12, 2:10] = 1
    m[0, 30:38, 40:46] = 1
    m[4, 10:26, 20:36] = 1
    m[4, 14:22, 24:32] = 0
    m[9, 30:32, 12:15] = 1
    return m


# ------------------------------------------------------------------------------ masks


def test_masks_tiff_round_trip(tmp_path):
    m = _masks()
    path = tmp_path / "x_masks.tif"
    exports.write_masks_tiff(path, m.astype(bool))
    back = tifffile.imread(path)
    assert back.dtype == np.uint8 and back.shape == (10, H, W)
    np.testing.assert_array_equal(back, m)
    np.testing.assert_array_equal(exports.read_masks_tiff(path, shape=(H, W)), m)


def test_masks_tiff_nonzero_means_present(tmp_path):
    m = _masks() * 255
    exports.write_masks_tiff(tmp_path / "m.tif", m)
    assert tifffile.imread(tmp_path / "m.tif").max() == 1


def test_read_masks_tiff_errors(tmp_path):
    tifffile.imwrite(tmp_path / "nine.tif", np.zeros((9, 8, 8), np.uint8))
    with pytest.raises(DataError, match="nine.tif"):
        exports.read_masks_tiff(tmp_path / "nine.tif")
    tifffile.imwrite(tmp_path / "big.tif", np.full((10, 8, 8), 2, np.uint8))
    with pytest.raises(DataError, match="0 or 1"):
        exports.read_masks_tiff(tmp_path / "big.tif")
    exports.write_masks_tiff(tmp_path / "ok.tif", _masks())
    with pytest.raises(DataError, match="expected 41x48"):
        exports.read_masks_tiff(tmp_path / "ok.tif", shape=(41, 48))


def test_masks_tiff_failing_write_leaves_no_file(tmp_path, monkeypatch):
    def half_write(path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"II*\x00partial")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", half_write)
    with pytest.raises(OSError):
        exports.write_masks_tiff(tmp_path / "m.tif", _masks())
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ overlay PNG


def test_overlay_png_is_the_scene_pixel_for_pixel_with_a_legend_below(tmp_path):
    pv = np.full((H, W, 3), 90, np.uint8)
    pic = exports.overlay_picture(pv, _masks())
    assert pic.shape[1] == W and pic.shape[0] > H
    path = tmp_path / "x_overlay.png"
    exports.write_overlay_png(path, pic)
    back = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(back, pic)
    assert tuple(back[31, 13]) != (90, 90, 90)  # the car is coloured
    np.testing.assert_array_equal(back[0, 30], [90, 90, 90])  # background untouched


# ------------------------------------------------------------------------------ submission rows


def test_submission_rows_round_trip(tmp_path):
    from dstl.labels import read_wkt_csv

    path = tmp_path / "9001_0_0.csv"
    grid = _grid_polygons()
    exports.write_submission_rows(path, "9001_0_0", grid)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ImageId", "ClassType", "MultipolygonWKT"]
    assert [int(r[1]) for r in rows[1:]] == list(range(1, 11))
    assert all(r[0] == "9001_0_0" for r in rows[1:])
    assert rows[1 + 1][2] == "MULTIPOLYGON EMPTY"  # class 2
    back = read_wkt_csv(path)["9001_0_0"]
    for k, g in _pixel_polygons().items():  # 8 decimals in grid units are ~0.003 px
        assert TRANSFORM.to_pixels(back[k]).symmetric_difference(g).area < 0.1
    assert back[3].is_empty


# ------------------------------------------------------------------------------ GeoJSON


def test_geojson_has_one_valid_feature_per_polygon_in_pixels_and_grid(tmp_path):
    path = tmp_path / "9001_0_0.geojson"
    exports.write_geojson(path, "9001_0_0", _grid_polygons(), TRANSFORM)
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection" and doc["image_id"] == "9001_0_0"
    assert doc["image_size"] == {"height": H, "width": W}
    feats = doc["features"]
    assert [f["properties"]["class_id"] for f in feats] == [1, 1, 5, 10]
    pixel = _pixel_polygons()
    for f in feats:
        props = f["properties"]
        k = props["class_id"]
        assert props["class_name"] == class_by_id(k).name and props["colour"] == class_by_id(k).hex
        pix = shape(f["geometry"])
        grid = shape(props["grid_geometry"])
        assert pix.is_valid and grid.is_valid
        # the pixel geometry is one of the class's polygons, in pixel units
        assert any(pix.symmetric_difference(p).area < 1e-2 for p in pixel[k].geoms)
        assert props["area_px"] == pytest.approx(pix.area, abs=1e-3)
        # both geometries describe the same polygon
        assert TRANSFORM.to_pixels(grid).symmetric_difference(pix).area < 1e-2
    ring = shape(feats[2]["geometry"])
    assert len(ring.interiors) == 1 and ring.area == pytest.approx(16 * 16 - 8 * 8, abs=1e-2)
    # a y-down pixel frame: the car's rows 30..32 in pixels; grid y is negative
    car = shape(feats[3]["geometry"]).bounds
    assert car == pytest.approx((12, 30, 15, 32), abs=1e-3)
    assert shape(feats[3]["properties"]["grid_geometry"]).bounds[3] < 0


def test_geojson_reader_round_trips(tmp_path):
    path = tmp_path / "x.geojson"
    grid = _grid_polygons()
    exports.write_geojson(path, "x", grid, TRANSFORM)
    back = exports.read_geojson(path)
    assert back.image_id == "x" and set(back.pixel) == set(range(1, 11))
    for k in range(1, 11):
        want_pix = _pixel_polygons().get(k, MultiPolygon())
        want_grid = grid.get(k, MultiPolygon())
        assert back.pixel[k].symmetric_difference(want_pix).area < 1e-2
        assert back.grid[k].symmetric_difference(want_grid).area <= 1e-6 * max(want_grid.area, 1e-12)
        assert len(back.pixel[k].geoms) == len(want_pix.geoms)


def test_geojson_of_nothing_is_an_empty_collection(tmp_path):
    exports.write_geojson(tmp_path / "e.geojson", "e", {}, TRANSFORM)
    assert json.loads((tmp_path / "e.geojson").read_text())["features"] == []
    assert all(g.is_empty for g in exports.read_geojson(tmp_path / "e.geojson").grid.values())


def test_read_geojson_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        exports.read_geojson(tmp_path / "missing.geojson")
    (tmp_path / "bad.geojson").write_text("{not json")
    with pytest.raises(DataError, match="bad.geojson"):
        exports.read_geojson(tmp_path / "bad.geojson")
    (tmp_path / "pt.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]},
         "properties": {"class_id": 1, "grid_geometry": {"type": "Point", "coordinates": [0, 0]}}}]}))
    with pytest.raises(DataError, match="feature 0"):
        exports.read_geojson(tmp_path / "pt.geojson")


def test_geojson_failing_write_leaves_no_file(tmp_path, monkeypatch):
    real_write = Path.write_text

    def half_write(self, text, *args, **kwargs):
        real_write(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", half_write)
    with pytest.raises(OSError):
        exports.write_geojson(tmp_path / "x.geojson", "x", _grid_polygons(), TRANSFORM)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ metrics


def test_image_metrics_hand_computed(tmp_path):
    true = np.zeros((10, 10, 10), np.uint8)
    pred = np.zeros_like(true)
    true[0, :4] = 1  # 40 px
    pred[0, 2:6] = 1  # 40 px, 20 overlap -> IoU 20/60, Dice 40/80
    pred[2, 0, 0] = 1  # road predicted, none true -> IoU 0, Dice 0
    tp = {1: box(0, -4, 10, 0), 3: MultiPolygon()}
    pp = {1: box(0, -6, 10, -2), 3: box(0, -1, 1, 0)}
    m = exports.image_metrics("9001_0_0", pred, true, pp, tp)
    c1, c3, c7 = m["per_class"]["1"], m["per_class"]["3"], m["per_class"]["7"]
    assert c1["iou"] == pytest.approx(1 / 3) and c1["dice"] == pytest.approx(0.5)
    assert c1["kaggle_jaccard"] == pytest.approx(20 / 60)
    assert c1["pred_pixels"] == 40 and c1["true_pixels"] == 40 and c1["class_name"] == "Buildings"
    assert c3["iou"] == 0 and c3["dice"] == 0 and c3["kaggle_jaccard"] == 0
    assert c7 == {"class_name": "Waterway", "iou": None, "dice": None, "kaggle_jaccard": None,
                  "pred_pixels": 0, "true_pixels": 0}
    assert m["mean"]["iou"] == pytest.approx((1 / 3 + 0) / 2)
    assert m["mean"]["kaggle_jaccard"] == pytest.approx((1 / 3 + 0) / 2)

    path = tmp_path / "9001_0_0_metrics.json"
    exports.write_metrics_json(path, m)
    text = path.read_text()
    assert "NaN" not in text and '"iou": null' in text
    assert json.loads(text) == exports.read_metrics_json(path) == json.loads(json.dumps(m))


def test_image_metrics_without_polygons_has_null_kaggle():
    m = exports.image_metrics("x", _masks(), _masks())
    assert m["per_class"]["1"]["iou"] == 1.0 and m["per_class"]["1"]["kaggle_jaccard"] is None
    assert m["mean"]["kaggle_jaccard"] is None and m["mean"]["iou"] == 1.0


def test_metrics_json_strict_and_atomic(tmp_path):
    exports.write_metrics_json(tmp_path / "n.json", {"a": float("nan"), "b": np.float32(0.5),
                                                     "c": np.int64(3)})
    assert json.loads((tmp_path / "n.json").read_text()) == {"a": None, "b": 0.5, "c": 3}
    with pytest.raises(TypeError):
        exports.write_metrics_json(tmp_path / "bad.json", {"a": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.json"]
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(DataError, match="JSON object"):
        exports.read_metrics_json(tmp_path / "list.json")


# ------------------------------------------------------------------------------ all files


def test_write_prediction_files(tmp_path):
    m = _masks()
    metrics = exports.image_metrics("9001_0_0", m, m, _grid_polygons(), _grid_polygons())
    pv = np.full((H, W, 3), 90, np.uint8)
    out = tmp_path / "out"
    written = exports.write_prediction_files(out, "9001_0_0", m, _grid_polygons(), TRANSFORM,
                                             preview=pv, metrics=metrics)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["9001_0_0_masks.tif", "9001_0_0_overlay.png", "9001_0_0.csv", "9001_0_0.geojson",
         "9001_0_0_metrics.json"])
    assert set(written) == {"masks", "overlay", "csv", "geojson", "metrics"}
    assert exports.read_metrics_json(written["metrics"])["mean"]["iou"] == 1.0
    assert Image.open(written["overlay"]).size[0] == W

    bare = exports.write_prediction_files(tmp_path / "bare", "t", m, {}, TRANSFORM)
    assert set(bare) == {"masks", "csv", "geojson"}


@pytest.mark.parametrize("bad", ["../evil", "a/b", "", ".hidden", "x y"])
def test_unsafe_image_ids_are_refused(tmp_path, bad):
    with pytest.raises(DstlError, match="cannot name an output file"):
        exports.write_prediction_files(tmp_path, bad, _masks(), {}, TRANSFORM)
    assert list(tmp_path.iterdir()) == []


def test_masks_must_match_the_image(tmp_path):
    with pytest.raises(ValueError, match="40x48"):
        exports.write_prediction_files(tmp_path, "x", np.zeros((10, 5, 5), np.uint8), {}, TRANSFORM)
    assert shapely.is_valid(box(0, 0, 1, 1))

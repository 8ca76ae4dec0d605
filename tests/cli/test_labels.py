"""`python -m dstl labels DATA [--to-wkt OUT.csv] [--from {wkt,geojson}]`, run as a user runs it.
(The real train_geojson_v3 layers: tests/real/test_real_labels.py.)"""

import csv
import json

import pytest
from shapely.geometry import mapping

from dstl.dataset import DstlDataset
from dstl.labels import read_wkt_csv
from tests.cli_runner import dstl, error_line


@pytest.fixture
def data(tmp_path, make_dstl_folder):
    root = make_dstl_folder(tmp_path / "data")  # 9001_0_0 and 9001_1_2 labelled
    ds = DstlDataset(root)
    for image_id in ds.train_ids:  # the same labels as GeoJSON layers
        folder = root / "train_geojson_v3" / image_id
        folder.mkdir(parents=True)
        labels = ds.labels(image_id)
        for name, k in (("001_MM_L3_RESIDENTIAL_BUILDING", 1), ("002_TR_L3_GOOD_ROADS", 3),
                        ("006_VEG_L5_GROUP_TREES", 5), ("003_VH_L4_LARGE_VEHICLE", 9)):
            feats = [{"type": "Feature", "properties": {}, "geometry": mapping(p)} for p in labels[k].geoms]
            doc = {"type": "FeatureCollection", "features": feats}
            (folder / f"{name}.geojson").write_text(json.dumps(doc))
    return root


def test_to_wkt_from_the_geojson_folder_equals_the_wkt_file(data, tmp_path):
    out = tmp_path / "out" / "train_wkt_v4.csv"
    res = dstl("labels", data, "--to-wkt", out, "--from", "geojson")
    assert res.returncode == 0, res.stderr
    assert "from " + str(data / "train_geojson_v3") in res.stdout and "wrote" in res.stdout
    got, want = read_wkt_csv(out), read_wkt_csv(data / "train_wkt_v4.csv")
    assert list(got) == sorted(want)
    for image_id in want:
        for k in range(1, 11):
            g, w = got[image_id][k], want[image_id][k]
            assert g.symmetric_difference(w).area <= 1e-8 * w.length  # 8 decimals written
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ImageId", "ClassType", "MultipolygonWKT"] and len(rows) == 21


def test_summary_says_the_source_and_that_the_wkt_wins(data):
    res = dstl("labels", data)
    assert res.returncode == 0, res.stderr
    assert "note: labels from train_wkt_v4.csv; train_geojson_v3/ is also in" in res.stderr
    assert "labels of 2 image(s) from" in res.stdout and "Buildings" in res.stdout


def test_bad_input_is_one_line(data, tmp_path):
    res = dstl("labels", data, "--to-wkt", data / "train_wkt_v4.csv")
    assert res.returncode == 2 and "is the label file being read" in error_line(res)
    res = dstl("labels", tmp_path / "nowhere")
    assert res.returncode == 2 and "dataset folder not found" in error_line(res)
    (data / "train_geojson_v3" / "9001_0_0" / "001_MM_L3_RESIDENTIAL_BUILDING.geojson").write_text("{bad")
    out = tmp_path / "x.csv"
    res = dstl("labels", data, "--from", "geojson", "--to-wkt", out)
    assert res.returncode == 2 and "malformed GeoJSON" in error_line(res)
    assert not out.exists() and list(tmp_path.glob(".x.csv*")) == []

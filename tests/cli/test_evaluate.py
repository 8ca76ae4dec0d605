"""`python -m dstl evaluate DATA SUBMISSION.csv [--json]` as a user runs it."""

import json

import pytest
from shapely import affinity

from dstl.labels import read_wkt_csv, write_wkt_csv
from tests.cli_runner import dstl, error_line

HEADER = "ImageId,ClassType,MultipolygonWKT\n"


@pytest.fixture
def data(tmp_path, make_dstl_folder):
    # 9001_0_0 and 9001_1_2 are labelled (classes 1, 3, 5, 9 non-empty); 9002_3_4 is a test image
    return make_dstl_folder(tmp_path / "data")


def test_the_labels_themselves_score_one(data):
    res = dstl("evaluate", data, data / "train_wkt_v4.csv", "--json")
    assert res.returncode == 0, res.stderr
    scores = json.loads(res.stdout)
    assert list(scores) == ["per_class", "mean"]
    assert list(scores["per_class"]) == [str(k) for k in range(1, 11)]
    expected = {"1": 1.0, "3": 1.0, "5": 1.0, "9": 1.0}
    assert scores["per_class"] == {str(k): expected.get(str(k)) for k in range(1, 11)}  # null: empty
    assert scores["mean"] == 1.0


def test_hand_computed_submission(data, tmp_path):
    truth = read_wkt_csv(data / "train_wkt_v4.csv")
    a, b = truth["9001_0_0"], truth["9001_1_2"]
    # class 1: image a exact, image b missing; class 5: image a shifted right by half its width;
    # class 3 missing everywhere; plus rows for the unscored test image
    shifted = affinity.translate(a[5], xoff=(a[5].bounds[2] - a[5].bounds[0]) / 2)
    rows = [("9001_0_0", 1, a[1]), ("9001_0_0", 5, shifted), ("9002_3_4", 1, a[1])]
    sub = tmp_path / "sub.csv"
    write_wkt_csv(sub, rows)
    res = dstl("evaluate", data, sub, "--json")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)["per_class"]
    # Σ intersection / Σ union over both labelled images
    j1 = a[1].area / (a[1].area + b[1].area)
    inter5 = shifted.intersection(a[5]).area
    j5 = inter5 / (shifted.area + a[5].area - inter5 + b[5].area)
    assert got["1"] == pytest.approx(j1, rel=1e-5)
    assert got["5"] == pytest.approx(j5, rel=1e-5)
    assert got["3"] == 0.0 and got["9"] == 0.0 and got["2"] is None
    assert json.loads(res.stdout)["mean"] == pytest.approx((j1 + j5) / 4, rel=1e-5)
    assert "1 of 2 labelled image(s) have no rows" in res.stderr


def test_readable_table_without_json(data):
    res = dstl("evaluate", data, data / "sample_submission.csv")
    assert res.returncode == 0, res.stderr
    assert "Buildings" in res.stdout and "Vehicle Small" in res.stdout
    assert "mean" in res.stdout and "0.0000" in res.stdout  # test-image rows only: nothing scored right
    assert "2 of 2 labelled image(s) have no rows" in res.stderr


def test_help_explains_every_argument():
    res = dstl("evaluate", "--help")
    assert res.returncode == 0
    for word in ("DATA", "SUBMISSION.csv", "--json", "Jaccard", "null"):
        assert word in res.stdout


@pytest.mark.parametrize("body, message", [
    ("9001_0_0,1,MULTIPOLYGON EMPTY\n6120_2_2,1,MULTIPOLYGON EMPTY\n",
     "sub.csv: line 3: image id '6120_2_2' is not an image of the dataset"),
    ("9001_0_0,1,MULTIPOLYGON EMPTY\n9001_0_0,1,MULTIPOLYGON EMPTY\n",
     "sub.csv: line 3: duplicate row for image 9001_0_0 class 1"),
    ("9001_0_0,12,MULTIPOLYGON EMPTY\n", "sub.csv: line 2: ClassType must be an integer 1..10"),
    ('9001_0_0,1,"MULTIPOLYGON (((0 0, 1 0"\n', "sub.csv: line 2: image 9001_0_0 class 1: malformed WKT"),
    ('9002_3_4,1,"POLYGON ((0 0, 1 0"\n', "sub.csv: line 2: image 9002_3_4 class 1: malformed WKT"),
    ("9001_0_0,1\n", "sub.csv: line 2: expected 3 cells"),
])
def test_bad_submission_rows_name_the_row(data, tmp_path, body, message):
    sub = tmp_path / "sub.csv"
    sub.write_text(HEADER + body)
    res = dstl("evaluate", data, sub, "--json")
    assert res.returncode == 2 and res.stdout == ""
    assert message in error_line(res)


def test_bad_files(data, tmp_path):
    sub = tmp_path / "sub.csv"
    sub.write_text("ImageId,ClassType,WKT\n")
    res = dstl("evaluate", data, sub)
    assert res.returncode == 2 and "sub.csv: line 1: header must be" in error_line(res)
    res = dstl("evaluate", data, tmp_path / "missing.csv")
    assert res.returncode == 2 and "missing.csv: WKT CSV file not found" in error_line(res)
    (data / "train_wkt_v4.csv").unlink()
    res = dstl("evaluate", data, data / "sample_submission.csv")
    assert res.returncode == 2 and "no labelled images" in error_line(res)

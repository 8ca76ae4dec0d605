"""`python -m dstl submit DATA --out SUBMISSION.csv` as a user calls it, in one process and
under a real `torchrun --nproc_per_node=2` (gloo on CPU)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import shapely
from shapely.geometry import MultiPolygon, box

from dstl.classes import CLASS_IDS
from dstl.cli import main
from dstl.cli.submit import merge_partials, partial_path
from dstl.errors import DataError, DstlError
from dstl.labels import WKT_HEADER, write_wkt_csv
from tests.cli_runner import assert_error_on_its_own_line, dstl, python_env

ROOT = Path(__file__).resolve().parents[2]
#: 3-band sizes: two labelled images, then four test images (sample_submission.csv in this order).
SIZES = {"9001_0_0": (64, 72), "9001_1_2": (67, 61), "9003_4_1": (40, 90), "9002_3_4": (50, 45),
         "9004_2_2": (33, 35), "9005_0_3": (48, 40)}
LABELLED = ["9001_0_0", "9001_1_2"]
TEST_IDS = ["9003_4_1", "9002_3_4", "9004_2_2", "9005_0_3"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory, save_tiny_unet):
    return save_tiny_unet(tmp_path_factory.mktemp("weights") / "unet20")


@pytest.fixture
def data(tmp_path, make_dstl_folder):
    return make_dstl_folder(tmp_path / "data", sizes=SIZES, labelled=LABELLED)


def submit(data, out, weights, *extra) -> int:
    return main(["submit", str(data), "--out", str(out), "--weights", str(weights), "--precision", "fp32",
                 "--device", "cpu", *extra])


def read_rows(path) -> list[list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == WKT_HEADER
    return rows[1:]


def sample_ids(data) -> list[str]:
    return list(dict.fromkeys(r[0] for r in read_rows(data / "sample_submission.csv")))


def check_submission(path, ids) -> list[list[str]]:
    """A valid Kaggle submission for `ids`: 10 rows per image in class order, valid MultiPolygons."""
    rows = read_rows(path)
    assert [(r[0], int(r[1])) for r in rows] == [(i, k) for i in ids for k in CLASS_IDS]
    for image_id, _, wkt in rows:
        geom = shapely.from_wkt(wkt)
        assert isinstance(geom, MultiPolygon) and geom.is_valid, (image_id, wkt[:80])
    return rows


def test_submission_for_all_test_ids(data, weights, tmp_path, capsys):
    out = tmp_path / "subs" / "submission.csv"
    assert submit(data, out, weights) == 0
    assert sample_ids(data) == TEST_IDS
    rows = check_submission(out, TEST_IDS)  # sample_submission.csv's ids and order
    by_class = {k: [r[2] for r in rows if int(r[1]) == k] for k in CLASS_IDS}
    assert all(w == "MULTIPOLYGON EMPTY" for w in by_class[2])  # the tiny model never predicts class 2
    assert all(w != "MULTIPOLYGON EMPTY" for w in by_class[1])  # ...and always class 1
    assert [p.name for p in out.parent.iterdir()] == ["submission.csv"]  # no partial/temporary files
    stdout = capsys.readouterr().out
    assert "UNet (20 bands)" in stdout and f"wrote {out}: 4 image(s) x 10 rows" in stdout


def test_rows_equal_predicts_csv_and_evaluate_reads_them(data, weights, tmp_path, capsys):
    out = tmp_path / "sub.csv"
    ids = ["9001_1_2", "9004_2_2", "9001_0_0", "9004_2_2"]  # labelled ones too; a duplicate
    assert submit(data, out, weights, "--ids", *ids) == 0
    rows = check_submission(out, ["9001_1_2", "9004_2_2", "9001_0_0"])  # the order given, once each
    assert main(["predict", str(data), "9004_2_2", "--out", str(tmp_path / "pred"), "--weights", str(weights),
                 "--precision", "fp32", "--device", "cpu"]) == 0
    assert read_rows(tmp_path / "pred" / "9004_2_2.csv") == [r for r in rows if r[0] == "9004_2_2"]
    capsys.readouterr()
    assert main(["evaluate", str(data), str(out), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["per_class"]["2"] is None and 0 < scores["per_class"]["1"] < 1


@pytest.mark.parametrize("case, message", [
    ("unknown id", "unknown image id '6120_2_2'"),
    ("no sample submission", "no sample_submission.csv"),
    ("missing product", "9005_0_3_P.tif: file not found"),
    ("missing weights", "not a dstl weights folder"),
    ("out is a folder", "is a folder"),
    ("bad thresholds", "--thresholds"),
    ("A larger than the image", "9005_0_3_A.tif: A product of 100 x 100 px does not fit the 3-band image"),
    ("header claims 20000 x 20000 px", "9005_0_3.tif: image of 20000 x 20000 px (400.0 megapixels) is "
                                       "larger than the limit of 64 megapixels"),
])
def test_bad_input_is_one_line_and_writes_nothing(data, weights, tmp_path, capsys, forge_tiff_header, case,
                                                  message):
    out = tmp_path / "out" / "submission.csv"
    extra: list[str] = []
    if case == "unknown id":
        extra = ["--ids", "9001_0_0", "6120_2_2"]
    elif case == "no sample submission":
        (data / "sample_submission.csv").unlink()
    elif case == "missing product":
        (data / "sixteen_band" / "9005_0_3_P.tif").unlink()  # the last test image
    elif case == "missing weights":
        weights = tmp_path / "empty"
        weights.mkdir()
    elif case == "out is a folder":
        out.mkdir(parents=True)
    elif case == "bad thresholds":
        extra = ["--thresholds", "1,2"]
    elif case == "A larger than the image":
        forge_tiff_header(data / "sixteen_band" / "9005_0_3_A.tif", (8, 100, 100))
    elif case == "header claims 20000 x 20000 px":
        forge_tiff_header(data / "three_band" / "9005_0_3.tif", (3, 20000, 20000))
    assert submit(data, out, weights, *extra) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], captured.err
    if case == "out is a folder":
        assert list(out.iterdir()) == []
    else:
        assert not out.parent.exists()


def test_failure_midway_leaves_no_file(data, weights, tmp_path):
    path = data / "sixteen_band" / "9004_2_2_A.tif"  # the third of four test images
    path.write_bytes(path.read_bytes()[:-40])  # header intact: found only when the pixels are read
    out = tmp_path / "out" / "submission.csv"
    out.parent.mkdir()
    assert submit(data, out, weights) == 2
    assert list(out.parent.iterdir()) == []  # no submission, no temporary file


def test_merge_partials(tmp_path):
    ids = [f"9{i:03d}_0_0" for i in range(5)]
    rows = [(i, k, box(0, -n * 1e-4 - 1e-4, 1e-4, -n * 1e-4) if k == 1 else None)
            for n, i in enumerate(ids) for k in CLASS_IDS]
    single = tmp_path / "single.csv"
    write_wkt_csv(single, rows)
    out = tmp_path / "merged.csv"
    parts = [partial_path(out, r, 2) for r in range(2)]
    assert parts[1].name == ".merged.csv.rank1-of-2.partial.csv"
    for r, part in enumerate(parts):
        write_wkt_csv(part, [row for row in rows if ids.index(row[0]) % 2 == r])
    merge_partials(out, ids, parts)
    assert out.read_bytes() == single.read_bytes()

    write_wkt_csv(parts[1], [row for row in rows if ids.index(row[0]) == 1])  # rank 1 lost an image
    with pytest.raises(DataError, match="expected the row of image 9003_0_0 class 1"):
        merge_partials(tmp_path / "bad.csv", ids, parts)
    parts[0].unlink()
    with pytest.raises(DstlError, match="partial file not found"):
        merge_partials(tmp_path / "bad.csv", ids, parts)
    # more ranks than images: a rank with no images writes only the header
    write_wkt_csv(parts[0], rows[:10])
    write_wkt_csv(parts[1], [])
    merge_partials(out, ids[:1], parts)
    assert out.read_text().splitlines() == single.read_text().splitlines()[:11]
    write_wkt_csv(parts[1], rows[10:20])
    with pytest.raises(DataError, match="more rows than its share"):
        merge_partials(tmp_path / "bad.csv", ids[:1], parts)
    assert not (tmp_path / "bad.csv").exists()


def torchrun(nproc: int, *args, cwd=ROOT) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("torchrun")
    launcher = [str(exe)] if exe.is_file() else [sys.executable, "-m", "torch.distributed.run"]
    env = python_env(OMP_NUM_THREADS="1")
    return subprocess.run(launcher + ["--standalone", f"--nproc_per_node={nproc}", "-m", "dstl", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_torchrun_two_ranks_give_the_same_file(data, weights, tmp_path):
    one = tmp_path / "one" / "submission.csv"
    assert submit(data, one, weights) == 0
    two = tmp_path / "two" / "submission.csv"
    common = ["--weights", str(weights), "--precision", "fp32", "--device", "cpu"]
    proc = torchrun(2, "submit", str(data), "--out", str(two), *common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert two.read_bytes() == one.read_bytes()
    assert [p.name for p in two.parent.iterdir()] == ["submission.csv"]  # partial files removed
    assert "4 image(s) over 2 ranks" in proc.stdout

    # a failure on one rank (rank 1 has the 2nd and 4th test images) -> no file anywhere
    path = data / "sixteen_band" / "9005_0_3_A.tif"
    path.write_bytes(path.read_bytes()[:-40])
    bad = tmp_path / "bad" / "submission.csv"
    bad.parent.mkdir()
    proc = torchrun(2, "submit", str(data), "--out", str(bad), *common)
    assert proc.returncode != 0
    assert "error: rank 1 failed while segmenting its images: " in proc.stderr
    assert "9005_0_3_A.tif: truncated TIFF" in proc.stderr
    assert list(bad.parent.iterdir()) == []


def test_an_error_midway_starts_its_own_line(data, weights, tmp_path):
    """The command as a user runs it, failing on the third image while its bars are drawn."""
    path = data / "sixteen_band" / "9004_2_2_A.tif"
    path.write_bytes(path.read_bytes()[:-40])
    out = tmp_path / "out" / "submission.csv"
    res = dstl("submit", data, "--out", out, "--weights", weights, "--precision", "fp32", "--device", "cpu")
    assert res.returncode == 2 and "images:  50%" in res.stderr, res.stderr
    assert "9004_2_2_A.tif: truncated TIFF" in assert_error_on_its_own_line(res.stderr)
    assert not out.exists()

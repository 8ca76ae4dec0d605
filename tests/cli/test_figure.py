"""`python -m dstl figure DATA IMAGE_ID --out FIG.png` as a user calls it."""

import argparse
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dstl.classes import class_by_id
from dstl.cli import main
from dstl.cli.figure import parse_classes
from tests.cli_runner import assert_error_on_its_own_line


@pytest.fixture
def data(tmp_path, make_dstl_folder):
    # 9001_0_0 and 9001_1_2 are labelled, 9002_3_4 is a test image (conftest's defaults)
    return make_dstl_folder(tmp_path / "data")


def _near(img: np.ndarray, colour, tol=3) -> int:
    return int(np.all(np.abs(img[..., :3].astype(int) - colour) <= tol, axis=2).sum())


def test_figure_of_a_labelled_image(data, tmp_path, capsys):
    out = tmp_path / "figs" / "fig.png"
    rc = main(["figure", str(data), "9001_0_0", "--out", str(out), "--classes", "buildings",
               "--opacity", "1"])
    assert rc == 0
    assert capsys.readouterr().out.strip() == str(out)
    img = np.asarray(Image.open(out))
    assert img.shape[1] > 1000 and img.shape[0] > 300
    assert _near(img, class_by_id(1).colour) > 100  # opaque buildings in the label panel
    assert _near(img, class_by_id(5).colour) < 100  # trees not overlaid (only in no legend)
    assert [p.name for p in out.parent.iterdir()] == ["fig.png"]  # no temp files left


def test_figure_options_and_formats(data, tmp_path):
    out = tmp_path / "fig.pdf"
    assert main(["figure", str(data), "9001_1_2", "--out", str(out), "--classes", "1", "3,trees",
                 "--outline", "--size", "200"]) == 0
    assert out.read_bytes().startswith(b"%PDF")


def test_figure_of_an_unlabelled_image_says_so(data, tmp_path, capsys):
    out = tmp_path / "test.png"
    assert main(["figure", str(data), "9002_3_4", "--out", str(out)]) == 0
    assert "no labels" in capsys.readouterr().err
    assert Image.open(out).size[0] > 1000


@pytest.mark.parametrize("args, message", [
    (["{data}", "6120_2_2"], "unknown image id"),
    (["{tmp}/nowhere", "9001_0_0"], "not found"),
    (["{data}", "9001_0_0", "--classes", ","], "no class"),
])
def test_bad_input_is_one_line_and_writes_nothing(data, tmp_path, capsys, args, message):
    out = tmp_path / "out" / "fig.png"
    argv = [a.format(data=data, tmp=tmp_path) for a in args]
    rc = main(["figure", *argv[:2], "--out", str(out), *argv[2:]])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not out.exists()


def test_unsupported_output_type(data, tmp_path, capsys):
    rc = main(["figure", str(data), "9001_0_0", "--out", str(tmp_path / "fig.gif")])
    assert rc == 2 and ".gif" in capsys.readouterr().err
    assert list(tmp_path.glob("fig*")) == []


def test_missing_product_file(data, tmp_path, capsys):
    (data / "sixteen_band" / "9001_0_0_M.tif").unlink()
    out = tmp_path / "fig.png"
    assert main(["figure", str(data), "9001_0_0", "--out", str(out)]) == 2
    assert "9001_0_0_M.tif" in capsys.readouterr().err
    assert not out.exists()


def test_a_product_that_does_not_fit_the_grid(data, tmp_path, capsys, forge_tiff_header):
    forge_tiff_header(data / "sixteen_band" / "9001_0_0_M.tif", (8, 1, 1))
    out = tmp_path / "fig.png"
    assert main(["figure", str(data), "9001_0_0", "--out", str(out)]) == 2
    line = assert_error_on_its_own_line(capsys.readouterr().err)
    assert "9001_0_0_M.tif: M product of 1 x 1 px does not fit the 3-band image of 64 x 72" in line
    assert not out.exists()


@pytest.mark.parametrize("option", [["--opacity", "1.5"], ["--opacity", "x"], ["--classes", "11"],
                                    ["--classes", "vehicle"], ["--size", "10"]])
def test_bad_option_values_exit_2(data, tmp_path, capsys, option):
    with pytest.raises(SystemExit) as e:
        main(["figure", str(data), "9001_0_0", "--out", str(tmp_path / "f.png"), *option])
    assert e.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_parse_classes():
    assert parse_classes("1,3,10") == [1, 3, 10]
    assert parse_classes("Buildings, road") == [1, 3]
    assert parse_classes("vehicle s") == [10]
    assert parse_classes("misc") == [2]
    with pytest.raises(argparse.ArgumentTypeError, match="ambiguous"):
        parse_classes("vehicle")
    with pytest.raises(argparse.ArgumentTypeError, match="unknown"):
        parse_classes("boats")


def test_help_explains_every_argument():
    res = subprocess.run([sys.executable, "-m", "dstl", "figure", "--help"], capture_output=True,
                         text=True, check=True)
    for word in ("DATA", "IMAGE_ID", "--out", "--classes", "--opacity", "--outline", "--size"):
        assert word in res.stdout
    assert "false colour" in res.stdout.lower()

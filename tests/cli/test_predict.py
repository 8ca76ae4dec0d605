"""`python -m dstl predict DATA IMAGE_ID ... --out DIR` as a user calls it."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from PIL import Image

from dstl import onnx_runner
from dstl.bands import RGB_BANDS
from dstl.classes import CLASS_IDS, NUM_CLASSES
from dstl.cli import main
from dstl.cli.predict import parse_thresholds
from dstl.dataset import DstlDataset
from dstl.errors import DstlError
from dstl.exports import read_geojson, read_masks_tiff, read_metrics_json
from dstl.labels import iter_wkt_rows
from tests.cli_runner import assert_error_on_its_own_line, dstl

LABELLED, TEST = "9001_0_0", "9002_3_4"  # conftest's default ids: 9001_* labelled, 9002_3_4 a test image
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def weights(tmp_path_factory, save_tiny_unet):
    return save_tiny_unet(tmp_path_factory.mktemp("weights") / "unet20")


@pytest.fixture
def data(tmp_path, make_dstl_folder):
    return make_dstl_folder(tmp_path / "data")


def predict(data, ids, out, weights, *extra) -> int:
    return main(["predict", str(data), *ids, "--out", str(out), "--weights", str(weights),
                 "--precision", "fp32", "--device", "cpu", *extra])


def test_predict_writes_every_output(data, weights, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(data, [LABELLED, TEST], out, weights) == 0
    stdout = capsys.readouterr().out
    names = {f"{LABELLED}_masks.tif", f"{LABELLED}_overlay.png", f"{LABELLED}.csv", f"{LABELLED}.geojson",
             f"{LABELLED}_metrics.json",  # labelled: metrics too
             f"{TEST}_masks.tif", f"{TEST}_overlay.png", f"{TEST}.csv", f"{TEST}.geojson"}
    assert {p.name for p in out.iterdir()} == names  # nothing else: no temporary files left

    ds = DstlDataset(data)
    for image_id in (LABELLED, TEST):
        h, w = ds.image_size(image_id)
        masks = read_masks_tiff(out / f"{image_id}_masks.tif", shape=(h, w))
        assert masks.shape == (NUM_CLASSES, h, w) and masks.dtype == np.uint8
        assert masks[0].all() and not masks[1].any()  # the tiny model's always/never classes

        rows = list(iter_wkt_rows(out / f"{image_id}.csv"))
        assert [(r.image_id, r.class_id) for r in rows] == [(image_id, k) for k in CLASS_IDS]
        assert not any(r.repaired for r in rows)  # written valid
        csv_polys = {r.class_id: r.geometry for r in rows}
        assert csv_polys[2].is_empty and not csv_polys[1].is_empty

        geo = read_geojson(out / f"{image_id}.geojson")
        assert geo.image_id == image_id
        for k in CLASS_IDS:
            assert geo.grid[k].is_valid and geo.pixel[k].is_valid
            # the same polygons as the CSV, up to the formats' rounding (1e-8 and 1e-9 grid units)
            diff = shapely.symmetric_difference(geo.grid[k], csv_polys[k]).area
            assert diff <= csv_polys[k].length * 1e-8 + 1e-15, k
            # pixel geometry = grid geometry through the image's transform, up to the snapping of
            # pixel coordinates to 10^-PIXEL_DECIMALS (each vertex moves <= 0.0007 px)
            expected = ds.transform(image_id).to_pixels(geo.grid[k])
            assert abs(geo.pixel[k].area - expected.area) <= expected.length * 1e-3 + 1e-9, k
        assert geo.pixel[1].area == pytest.approx(h * w, rel=1e-3)

        overlay = Image.open(out / f"{image_id}_overlay.png")
        assert overlay.mode == "RGB" and overlay.size[0] == w and overlay.size[1] > h  # legend below

    metrics = read_metrics_json(out / f"{LABELLED}_metrics.json")
    assert metrics["image_id"] == LABELLED
    assert set(metrics["per_class"]) == {str(k) for k in CLASS_IDS}
    assert metrics["per_class"]["2"]["iou"] is None
    true_px = int(ds.masks(LABELLED)[0].sum())
    h, w = ds.image_size(LABELLED)
    assert metrics["per_class"]["1"]["iou"] == pytest.approx(true_px / (h * w))
    assert 0 <= metrics["mean"]["kaggle_jaccard"] <= 1

    # the summary: model line, one block per image, metrics table for the labelled one
    assert "UNet (20 bands)" in stdout
    assert f"{LABELLED}: 64 x 72 px" in stdout and f"{TEST}: 50 x 45 px" in stdout
    assert "Kaggle Jaccard" in stdout and "Vehicle Small" in stdout
    assert stdout.count("mean IoU") == 1
    assert "2 image(s) written" in stdout


def test_outputs_match_the_pipeline_and_are_replaced(data, weights, tmp_path):
    from dstl.engine import Predictor
    from dstl.models import load_model
    from dstl.pipeline import segment_image

    out = tmp_path / "out"
    out.mkdir()
    stale = out / f"{TEST}_masks.tif"
    stale.write_bytes(b"old")
    assert predict(data, [TEST], out, weights, "--batch-size", "1", "--overlap", "8") == 0
    predictor = Predictor(load_model(str(weights)), precision="fp32", device="cpu", overlap=8)
    expected = segment_image(DstlDataset(data), TEST, predictor).masks
    np.testing.assert_array_equal(read_masks_tiff(stale), expected)


def test_thresholds_and_tta(data, weights, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(data, [TEST], out, weights, "--thresholds", "misc=0,3=0", "--tta") == 0
    assert "TTA x8" in capsys.readouterr().out
    masks = read_masks_tiff(out / f"{TEST}_masks.tif")
    assert masks[1].all() and masks[2].all()  # threshold 0: everywhere
    rows = {r.class_id: r.geometry for r in iter_wkt_rows(out / f"{TEST}.csv")}
    assert not rows[2].is_empty


def test_rgb_model_on_a_dataset_without_sixteen_band(data, tmp_path, capsys, save_tiny_unet):
    shutil.rmtree(data / "sixteen_band")
    rgb = save_tiny_unet(tmp_path / "rgb", RGB_BANDS, trained=False)
    out = tmp_path / "out"
    assert predict(data, [LABELLED], out, rgb) == 0
    captured = capsys.readouterr()
    assert "UNet (3 bands)" in captured.out
    assert "UNTRAINED" in captured.err  # said plainly, once
    assert (out / f"{LABELLED}_metrics.json").is_file()


def _corrupt_m_file(data):
    (data / "sixteen_band" / f"{TEST}_M.tif").unlink()


@pytest.mark.parametrize("case, message", [
    ("unknown id", "unknown image id '6120_2_2'"),
    ("missing product", f"{TEST}_M.tif: file not found"),
    ("missing weights", "nowhere"),
    ("weights folder without config", "not a dstl weights folder"),
    ("weights config with a band X9", "broken/config.json: unknown band 'X9' in bands"),
    ("out is a file", "is a file; give a folder"),
    ("bad thresholds", "--thresholds: 'abc' is not a number"),
    ("threshold out of range", "threshold of class 5 is 1.5, must lie in [0, 1]"),
    ("wrong threshold count", "3 numbers given"),
    ("unknown class", "unknown class 'lava'"),
    ("bad batch size", "--batch-size must be >= 1"),
    ("bad device", "not a device"),
    ("not a dataset", "dataset folder not found"),
    ("M of 8 x 1 x 1", f"{TEST}_M.tif: M product of 1 x 1 px does not fit the 3-band image of 50 x 45 px: "
                       "expected about 12.5 x 11.2 px"),
    ("A larger than the image", f"{TEST}_A.tif: A product of 60 x 60 px does not fit"),
    ("header claims 20000 x 20000 px", f"{TEST}.tif: image of 20000 x 20000 px (400.0 megapixels) is larger "
                                       "than the limit of 64 megapixels"),
    ("1 x 1 px image", f"{TEST}.tif: image of 1 x 1 px is too small"),
])
def test_bad_input_is_one_line_and_writes_nothing(data, weights, tmp_path, capsys, forge_tiff_header, case,
                                                  message):
    out = tmp_path / "out"
    ids = [LABELLED, TEST]
    extra: list[str] = []
    if case == "unknown id":
        ids = [LABELLED, "6120_2_2"]
    elif case == "missing product":
        _corrupt_m_file(data)
    elif case == "missing weights":
        weights = tmp_path / "nowhere"
    elif case == "weights folder without config":
        weights = tmp_path / "empty"
        weights.mkdir()
    elif case == "weights config with a band X9":
        broken = tmp_path / "broken"
        shutil.copytree(weights, broken)
        config = json.loads((broken / "config.json").read_text())
        config["bands"][-1] = config["normalization"]["bands"][-1] = "X9"
        (broken / "config.json").write_text(json.dumps(config))
        weights = broken
    elif case == "out is a file":
        out.write_text("x")
    elif case == "bad thresholds":
        extra = ["--thresholds", "abc"]
    elif case == "threshold out of range":
        extra = ["--thresholds", "trees=1.5"]
    elif case == "wrong threshold count":
        extra = ["--thresholds", "0.1,0.2,0.3"]
    elif case == "unknown class":
        extra = ["--thresholds", "lava=0.3"]
    elif case == "bad batch size":
        extra = ["--batch-size", "0"]
    elif case == "bad device":
        extra = ["--device", "gpu please"]
    elif case == "not a dataset":
        data = tmp_path / "no-data"
    elif case == "M of 8 x 1 x 1":
        forge_tiff_header(data / "sixteen_band" / f"{TEST}_M.tif", (8, 1, 1))
    elif case == "A larger than the image":
        forge_tiff_header(data / "sixteen_band" / f"{TEST}_A.tif", (8, 60, 60))
    elif case == "header claims 20000 x 20000 px":
        forge_tiff_header(data / "three_band" / f"{TEST}.tif", (3, 20000, 20000))
    elif case == "1 x 1 px image":
        forge_tiff_header(data / "three_band" / f"{TEST}.tif", (3, 1, 1))
    assert predict(data, ids, out, weights, *extra) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], captured.err
    assert captured.out == ""
    if case == "out is a file":
        assert out.read_text() == "x"
    else:
        assert not out.exists()  # nothing written, not even the folder


def test_a_corrupt_image_midway_keeps_earlier_outputs_whole(data, weights, tmp_path):
    """Pixel corruption is found only when the image is read: earlier images' outputs stay
    complete and the failed image leaves no file, partial or temporary."""
    path = data / "sixteen_band" / f"{TEST}_A.tif"
    path.write_bytes(path.read_bytes()[:-40])  # header intact, pixel data truncated
    out = tmp_path / "out"
    assert predict(data, [LABELLED, TEST], out, weights) == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{LABELLED}_masks.tif", f"{LABELLED}_overlay.png", f"{LABELLED}.csv", f"{LABELLED}.geojson",
         f"{LABELLED}_metrics.json"])


def test_parse_thresholds():
    assert parse_thresholds(None) is None
    assert parse_thresholds("0.4") == 0.4
    assert parse_thresholds(",".join(["0.5"] * 10)) == [0.5] * 10
    assert parse_thresholds("5=0.3, crops=0.6,Vehicle Small=0.1") == {5: 0.3, 6: 0.6, 10: 0.1}
    for bad in ("", "1=0.2,0.3", "1,2=0.3", "buildings,trees=0.4"):
        with pytest.raises(DstlError):
            parse_thresholds(bad)


def test_entry_point_error_has_no_traceback(data, weights, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "dstl", "predict", str(data), LABELLED, "nope",
                           "--out", str(out), "--weights", str(weights)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown image id 'nope'") and len(proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr and not out.exists()


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out", "--weights", "--tta", "--thresholds", "--batch-size", "--precision", "--backend",
                   "--device", "--overlap", "IMAGE_ID", "owner/name[@revision]"):
        assert option in text


def test_an_error_midway_starts_its_own_line(data, weights, tmp_path):
    """The command as a user runs it, failing on its second image while the images bar is drawn."""
    path = data / "sixteen_band" / f"{TEST}_A.tif"
    path.write_bytes(path.read_bytes()[:-40])
    res = dstl("predict", data, LABELLED, TEST, "--out", tmp_path / "out", "--weights", weights,
               "--precision", "fp32", "--device", "cpu")
    assert res.returncode == 2 and "images:  50%" in res.stderr, res.stderr
    assert f"{TEST}_A.tif: truncated TIFF" in assert_error_on_its_own_line(res.stderr)


@pytest.mark.skipif(not onnx_runner.available(),
                    reason=f"ONNX Runtime is not installed: {onnx_runner.INSTALL_HINT}")
def test_backend_onnxruntime_writes_the_masks_pytorch_writes(data, weights, tmp_path, capsys):
    import tifffile

    assert predict(data, [LABELLED], tmp_path / "torch", weights) == 0
    assert predict(data, [LABELLED], tmp_path / "ort", weights, "--backend", "onnxruntime") == 0
    stdout = capsys.readouterr().out
    assert "backend onnxruntime" in stdout and "fp32 through ONNX Runtime" in stdout
    a = tifffile.imread(tmp_path / "torch" / f"{LABELLED}_masks.tif")
    b = tifffile.imread(tmp_path / "ort" / f"{LABELLED}_masks.tif")
    assert (a == b).mean() > 0.999  # fp32 either way; only rounding at a threshold may differ


def test_backend_that_cannot_run_the_precision_is_a_one_line_error(data, weights, tmp_path, capsys):
    assert main(["predict", str(data), LABELLED, "--out", str(tmp_path / "out"), "--weights", str(weights),
                 "--precision", "int8", "--backend", "onnxruntime"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: backend onnxruntime runs fp32 on the CPU only, not int8")
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()

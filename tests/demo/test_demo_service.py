"""Segmenting dataset images and uploads through the real engine, the result cache, downloads."""

import csv
import json
import shutil
import threading

import numpy as np
import pytest
from PIL import Image

from dstl.bands import RGB_BANDS
from dstl.classes import CLASSES
from dstl.dataset import DstlDataset
from dstl.demo.registry import ModelRegistry
from dstl.demo.service import DemoService, Limits, ResultGoneError
from dstl.demo.views import View, format_seconds
from dstl.engine import Predictor
from dstl.errors import BandMismatchError, DataError, UnknownImageError
from dstl.exports import read_geojson, read_masks_tiff


@pytest.fixture
def service(tiny_weights, dstl_folder):
    registry = ModelRegistry([str(tiny_weights["m20"]), str(tiny_weights["rgb"])])
    return DemoService(registry, DstlDataset(dstl_folder), limits=Limits(max_bytes=10**7, max_pixels=10**6))


def _photo(tmp_path, name="field.png", size=(50, 60)):
    folder = tmp_path / "upload"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / name)
    return folder / name


def test_image_menu_marks_labelled_images_and_lists_them_first(service):
    assert service.image_choices() == [("9001_0_0  ✓ labelled", "9001_0_0"),
                                       ("9001_1_2  ✓ labelled", "9001_1_2"),
                                       ("9002_3_4  · no labels", "9002_3_4")]


def test_segmenting_a_labelled_image_gives_the_engines_probabilities_and_scores(service, tiny_weights):
    progress = []
    seg = service.segment_image("9001_0_0", "m20", progress=lambda f, d: progress.append((f, d)))
    result = seg.result
    assert seg.note is None
    assert (result.image_id, result.origin, result.model_key) == ("9001_0_0", "dataset", "m20")
    assert (result.height, result.width) == (64, 72)
    # The same probabilities as the engine gives directly (quantised to 1/255).
    scene = DstlDataset(service.dataset.root).read_scene("9001_0_0")
    direct = Predictor(service.registry.load("m20")).predict(scene).probs
    assert np.abs(result.probs.astype(np.float32) / 255 - direct).max() <= 0.5 / 255 + 1e-6
    assert result.has_truth and result.truth_polys is not None
    summary = service.summary(result)
    assert summary["has_ground_truth"] and summary["metrics"]["mean"]["iou"] is not None
    assert summary["metrics"]["per_class"]["Buildings"]["jaccard"] is not None
    assert list(summary["coverage"]) == [c.name for c in CLASSES]
    json.dumps(summary)  # JSON-ready
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and 0 < fractions[-1] < 1
    assert any("tile" in d for _, d in progress)


def test_unlabelled_image_has_no_metrics(service):
    summary = service.summary(service.segment_image("9002_3_4", "rgb").result)
    assert summary["has_ground_truth"] is False and summary["metrics"] is None
    assert summary["bands"] == list(RGB_BANDS)


@pytest.mark.parametrize("image_id, match", [
    ("6120_2_2", "unknown image id '6120_2_2'"),
    ("../sixteen_band/9001_0_0_P", "unknown image id"),
    ("", "no image id given"),
])
def test_unknown_ids_are_refused_without_touching_files(service, image_id, match):
    with pytest.raises(UnknownImageError, match=match):
        service.segment_image(image_id, "m20")


def test_rgb_upload_switches_to_the_rgb_model_or_explains(service, tmp_path):
    photo = _photo(tmp_path)
    seg = service.segment_upload([photo], "m20", allow_switch=True)
    assert seg.result.model_key == "rgb" and "used **rgb** instead" in seg.note
    assert seg.result.origin == "upload" and seg.result.image_id == "field" and not seg.result.has_truth
    with pytest.raises(BandMismatchError, match="model m20 needs all 20 bands"):
        service.segment_upload([photo], "m20", allow_switch=False)
    assert service.segment_upload([photo], "", allow_switch=False).result.model_key == "rgb"


def test_upload_limits_apply(service, tmp_path):
    photo = _photo(tmp_path, size=(1100, 1000))
    with pytest.raises(DataError, match="megapixels"):
        service.segment_upload([photo], "rgb")


def test_results_are_cached_and_computed_once_for_concurrent_requests(service, monkeypatch):
    runs = []
    real_run = service._run

    def counting_run(*args, **kwargs):
        runs.append(args[0].image_id)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(service, "_run", counting_run)
    got = []
    threads = [threading.Thread(target=lambda: got.append(service.segment_image("9001_1_2", "m20").result))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runs == ["9001_1_2"]
    assert len(got) == 4 and all(r is got[0] for r in got)
    service.segment_image("9001_1_2", "rgb")  # another model: another result
    assert runs == ["9001_1_2", "9001_1_2"]


def test_upload_cache_key_is_the_content(service, tmp_path, monkeypatch):
    a = _photo(tmp_path, "a.png")
    b = tmp_path / "other" / "a.png"
    b.parent.mkdir()
    shutil.copy(a, b)
    first = service.segment_upload([a], "rgb").result
    assert service.segment_upload([b], "rgb").result is first
    Image.fromarray(np.zeros((50, 60, 3), np.uint8)).save(b)
    assert service.segment_upload([b], "rgb").result is not first


def test_pages_hold_tokens_and_a_reused_result_says_so_truthfully(service):
    first = service.segment_image("9001_0_0", "m20")
    assert not first.reused and service.stored(first.token).result is first.result
    again = service.segment_image("9001_0_0", "m20")
    assert again.reused and again.token == first.token and again.request_seconds < first.request_seconds
    assert first.timing().startswith("segmented in")
    text = again.timing()
    assert "a kept result was reused (it was segmented in" in text and ("ago" in text or "just now" in text)
    assert again.request_seconds < 1 and text.startswith(format_seconds(again.request_seconds) + ":")
    summary = service.summary(again.result, segmented=again)
    assert summary["reused"] is True and summary["request_seconds"] < summary["seconds"] + 1e-9


def test_a_result_that_is_gone_is_a_clear_error(tiny_weights, dstl_folder):
    registry = ModelRegistry([str(tiny_weights["m20"])])
    service = DemoService(registry, DstlDataset(dstl_folder), cache_bytes=0)  # keeps the newest only
    a = service.segment_image("9001_0_0", "m20")
    b = service.segment_image("9001_1_2", "m20")
    assert service.stored(b.token).result is b.result
    with pytest.raises(ResultGoneError, match="no longer kept on the server .*segment the image again"):
        service.stored(a.token)
    # Without reuse every request runs the model.
    assert not service.segment_image("9001_1_2", "m20").reused


def test_a_pinned_result_outlives_the_memory_bound(tiny_weights, dstl_folder):
    registry = ModelRegistry([str(tiny_weights["m20"])])
    service = DemoService(registry, DstlDataset(dstl_folder), cache_bytes=0)
    pinned = service.segment_image("9001_0_0", None, pin=True)
    for image_id in ("9001_1_2", "9002_3_4"):
        service.segment_image(image_id, "m20")
    assert service.stored(pinned.token).result is pinned.result


def test_an_8_bit_photo_is_matched_to_the_models_statistics_and_the_page_is_told(service, tmp_path):
    photo = _photo(tmp_path, "bright.png")
    result = service.segment_upload([photo], "rgb").result
    assert result.radiometry.startswith("8-bit image") and "standard deviations" in result.radiometry
    # The preview is the photo itself.
    np.testing.assert_array_equal(result.preview, np.asarray(Image.open(photo)))
    # And the model saw the matched bands: the same probabilities as the engine on them.
    from dstl.demo.radiometry import match_bands
    from dstl.scene import read_image

    loaded = service.registry.load("rgb")
    matched, _ = match_bands(read_image(photo), loaded.config.normalization)
    direct = Predictor(loaded).predict(matched).probs
    assert np.abs(result.probs.astype(np.float32) / 255 - direct).max() <= 0.5 / 255 + 1e-6
    assert service.summary(result)["input_adjustment"] == result.radiometry


def test_a_16_bit_image_is_used_as_counts_and_flagged_when_far_off(service, tmp_path, monkeypatch):
    import tifffile

    from dstl.normalization import BandStats

    # DSTL-like statistics (the tiny test model's are the identity): 11-bit RGB is dark.
    monkeypatch.setattr(service.registry.load("rgb").config, "normalization",
                        BandStats(RGB_BANDS, (0.12, 0.13, 0.09), (0.066, 0.041, 0.037)))

    folder = tmp_path / "t16"
    folder.mkdir()
    tifffile.imwrite(folder / "bright.tif", np.full((3, 40, 40), 60000, np.uint16), photometric="rgb",
                     planarconfig="separate")
    result = service.segment_upload([folder / "bright.tif"], "rgb").result
    assert result.radiometry.startswith("16-bit image used as sensor counts") and "poor" in result.radiometry


def test_a_second_model_on_the_same_image(service, tmp_path):
    seg = service.segment_image("9001_0_0", "m20")
    other = service.segment_with(seg.token, "rgb")
    assert other.result.model_key == "rgb" and other.result.image_id == "9001_0_0"
    photo = _photo(tmp_path, "p.png")
    up = service.segment_upload([photo], "rgb")
    assert service.segment_with(up.token, "rgb", [photo]).token == up.token  # same files: reused
    with pytest.raises(DataError, match="the upload box no longer holds p"):
        service.segment_with(up.token, "rgb", [_photo(tmp_path, "q.png", size=(40, 40))])
    with pytest.raises(BandMismatchError):
        service.segment_with(up.token, "m20", [photo])


def test_downloads_of_the_current_view_are_complete_and_readable(service):
    result = service.segment_image("9001_0_0", "m20").result
    view = View((1, 5), 0.4, (0.3,) * 10)
    paths = service.export(result, view)
    assert [p.name for p in paths] == ["9001_0_0_masks.tif", "9001_0_0.csv", "9001_0_0.geojson",
                                       "9001_0_0_overlay.png", "9001_0_0_metrics.json"]
    assert len({p.parent for p in paths}) == 1
    # Every file holds the shown classes (1 and 5) only, at the view's thresholds.
    masks = read_masks_tiff(paths[0], (64, 72))
    expected = result.masks(view.thresholds)
    expected[[k - 1 for k in range(1, 11) if k not in (1, 5)]] = 0
    np.testing.assert_array_equal(masks, expected)
    with open(paths[1], newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ImageId", "ClassType", "MultipolygonWKT"] and len(rows) == 11
    assert all(r[2] == "MULTIPOLYGON EMPTY" for r in rows[1:] if r[1] not in ("1", "5"))
    geo = read_geojson(paths[2])
    assert geo.image_id == "9001_0_0"
    assert all(geo.grid[k].is_empty for k in range(1, 11) if k not in (1, 5))
    overlay = np.asarray(Image.open(paths[3]))
    assert overlay.shape[1] == 72 and overlay.shape[0] > 64  # full resolution, legend below
    metrics = json.loads(paths[4].read_text())
    assert list(metrics["thresholds"]) == ["Buildings", "Trees"] and metrics["thresholds"]["Buildings"] == 0.3
    assert list(metrics["metrics"]["per_class"]) == ["Buildings", "Trees"]
    assert set(metrics["metrics"]["mean_over"]) <= {1, 5} and metrics["metrics"]["mean"]["iou"] is not None
    # The view's definition is written into every file that can hold it.
    import tifffile

    with tifffile.TiffFile(paths[0]) as tif:
        assert json.loads(tif.pages.first.description)["view"]["classes_shown"] == [1, 5]
    assert json.loads(paths[2].read_text())["view"]["classes_shown"] == [1, 5]
    assert json.loads(Image.open(paths[3]).text["dstl:view"])["classes_shown"] == [1, 5]
    assert metrics["view"]["classes_shown"] == [1, 5]
    assert "hidden class is empty" in metrics["view"]["definition"]
    # An upload: no metrics file; a fresh folder per export.
    photo_paths = service.export(service.segment_upload([_photo_in(service)], "rgb").result, view)
    assert [p.suffix for p in photo_paths] == [".tif", ".csv", ".geojson", ".png"]
    assert photo_paths[0].parent != paths[0].parent


def _photo_in(service):
    folder = service.export_folders.root / "upload"
    folder.mkdir(exist_ok=True)
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(folder / "flat.png")
    return folder / "flat.png"


def test_api_overlay_is_the_full_resolution_picture_with_legend(service):
    result = service.segment_image("9001_1_2", "m20").result
    path = service.api_overlay(result)
    assert path.name == "9001_1_2_overlay.png"
    picture = np.asarray(Image.open(path))
    assert picture.dtype == np.uint8 and picture.shape[1] == 61 and picture.shape[0] > 67


def test_export_folders_keep_only_the_newest(service):
    folders = service.export_folders
    folders.keep = 2
    made = [folders.new() for _ in range(4)]
    assert [f.exists() for f in made] == [False, False, True, True]


def test_warm_up_measures_every_served_model_once(service):
    from dstl.engine import Predictor

    done = service.warm_up()
    assert set(done) == set(service.registry.keys)
    assert all(what == "measured" for what in done.values()), done
    for key in done:  # the profile is kept: a visitor's run finds it without measuring
        predictor = service._predictor(key, lambda *a: None)
        assert isinstance(predictor, Predictor) and predictor.speed_profile(measure=False) is not None

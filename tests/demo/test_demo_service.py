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
from dstl.demo.service import DemoService, Limits, ResultCache
from dstl.demo.views import View
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


def test_cache_is_bounded_by_memory():
    class R:
        def __init__(self, n):
            self.nbytes = n

    cache = ResultCache(max_bytes=250)
    for k in range(4):
        cache.put((k,), R(100))
    assert len(cache) == 2 and (3,) in cache and (2,) in cache
    cache.get((2,))
    cache.put((4,), R(100))
    assert (2,) in cache and (3,) not in cache
    cache.put((5,), R(1000))  # larger than the budget: kept alone
    assert len(cache) == 1


def test_downloads_of_the_current_view_are_complete_and_readable(service):
    result = service.segment_image("9001_0_0", "m20").result
    view = View((1, 5), 0.4, (0.3,) * 10)
    paths = service.export(result, view)
    assert [p.name for p in paths] == ["9001_0_0_masks.tif", "9001_0_0.csv", "9001_0_0.geojson",
                                       "9001_0_0_overlay.png", "9001_0_0_metrics.json"]
    assert len({p.parent for p in paths}) == 1
    masks = read_masks_tiff(paths[0], (64, 72))
    np.testing.assert_array_equal(masks, result.masks(view.thresholds))
    with open(paths[1], newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ImageId", "ClassType", "MultipolygonWKT"] and len(rows) == 11
    assert read_geojson(paths[2]).image_id == "9001_0_0"
    overlay = np.asarray(Image.open(paths[3]))
    assert overlay.shape[1] == 72 and overlay.shape[0] > 64  # full resolution, legend below
    metrics = json.loads(paths[4].read_text())
    assert metrics["thresholds"]["Buildings"] == 0.3 and metrics["metrics"]["mean"]["iou"] is not None
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

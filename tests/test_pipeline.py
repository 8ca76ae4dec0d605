"""dstl.pipeline: one dataset image -> masks, grid polygons, metrics; input checks before work."""

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, box

from dstl.bands import ALL_BANDS, RGB_BANDS
from dstl.classes import CLASS_IDS, NUM_CLASSES
from dstl.dataset import DstlDataset
from dstl.engine import Predictor
from dstl.errors import BandMismatchError, DataError, UnknownImageError
from dstl.models import load_model
from dstl.pipeline import ImageResult, check_image, check_images, products_for_bands, segment_image

LABELLED, TEST = "9001_0_0", "9002_3_4"  # conftest's default ids: 9001_* labelled, 9002_3_4 a test image


@pytest.fixture
def data(tmp_path, make_dstl_folder):
    return make_dstl_folder(tmp_path / "data")  # a few kB: cheap to write per test


@pytest.fixture(scope="module")
def weights(tmp_path_factory, save_tiny_unet):
    return save_tiny_unet(tmp_path_factory.mktemp("weights") / "unet20")


@pytest.fixture(scope="module")
def predictor(weights):
    return Predictor(load_model(str(weights)), precision="fp32", device="cpu")


@pytest.fixture(scope="module")
def rgb_predictor(tmp_path_factory, save_tiny_unet):
    folder = save_tiny_unet(tmp_path_factory.mktemp("weights") / "unet3", RGB_BANDS)
    return Predictor(load_model(str(folder)), precision="fp32", device="cpu")


def test_products_for_bands():
    assert products_for_bands(RGB_BANDS) == ("3",)
    assert products_for_bands(ALL_BANDS) == ("3", "P", "M", "A")
    assert products_for_bands(("M7", "R", "A1")) == ("3", "M", "A")
    with pytest.raises(BandMismatchError, match="NIR9"):
        products_for_bands(("R", "NIR9"))


def test_check_images_looks_up_every_id_before_opening_files(data, tmp_path, make_dstl_folder):
    ds = DstlDataset(make_dstl_folder(tmp_path / "d"))
    (ds.root / "sixteen_band" / f"{TEST}_M.tif").unlink()
    with pytest.raises(UnknownImageError, match="6120_2_2"):
        check_images(ds, [TEST, "6120_2_2"], ALL_BANDS)  # the unknown id wins over the missing file
    needs_m = f"{TEST}_M.tif: file not found .needed for band.s. M1,M2,.*M8 of the model"
    with pytest.raises(DataError, match=needs_m):
        check_images(ds, [LABELLED, TEST], ALL_BANDS)
    # an RGB model needs only the 3-band file; duplicates are dropped, order kept
    assert check_images(ds, [TEST, LABELLED, TEST], RGB_BANDS) == [TEST, LABELLED]
    assert check_image(DstlDataset(data), TEST, ALL_BANDS) == TEST


def test_check_image_reads_headers(tmp_path, make_dstl_folder):
    ds = DstlDataset(make_dstl_folder(tmp_path / "d"))
    (ds.root / "sixteen_band" / f"{TEST}_A.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(DataError, match=f"{TEST}_A.tif"):
        check_image(ds, TEST, ALL_BANDS)
    assert check_image(ds, TEST, ("R", "P", "M8")) == TEST  # A is not needed


def test_segment_labelled_image(data, predictor):
    ds = DstlDataset(data)
    result = segment_image(ds, LABELLED, predictor)
    assert isinstance(result, ImageResult)
    h, w = ds.image_size(LABELLED)
    assert (result.height, result.width) == (h, w)
    assert result.masks.shape == (NUM_CLASSES, h, w) and result.masks.dtype == np.uint8
    assert set(np.unique(result.masks)) <= {0, 1}

    # the masks are the engine's own, on the model's bands of the scene
    direct = predictor.predict(ds.read_scene(LABELLED, ALL_BANDS))
    np.testing.assert_array_equal(result.masks, direct.masks())
    np.testing.assert_array_equal(result.prediction.probs, direct.probs)
    assert result.masks[0].all() and not result.masks[1].any()
    varying = [k for k in range(2, NUM_CLASSES) if 0 < result.masks[k].mean() < 1]
    assert varying, "the tiny model should give non-trivial masks"

    # polygons: every class, valid MultiPolygons in grid coordinates inside the image
    t = result.transform
    assert set(result.polygons) == set(CLASS_IDS)
    frame = t.to_grid(box(0, 0, w, h)).buffer(1e-9)  # the image in grid coordinates
    for k, geom in result.polygons.items():
        assert isinstance(geom, MultiPolygon) and geom.is_valid, k
        assert frame.contains(geom) or geom.is_empty, k
    assert result.polygons[2].is_empty
    full = t.to_pixels(result.polygons[1])
    assert full.area == pytest.approx(h * w, rel=1e-3)  # class 1 covers the whole image

    assert result.preview.shape == (h, w, 3) and result.preview.dtype == np.uint8
    m = result.metrics
    assert m["image_id"] == LABELLED and set(m["per_class"]) == {str(k) for k in CLASS_IDS}
    true_px = int(ds.masks(LABELLED)[0].sum())
    assert m["per_class"]["1"]["iou"] == pytest.approx(true_px / (h * w))  # class 1 predicted everywhere
    assert m["per_class"]["2"]["iou"] is None  # absent from prediction and truth
    assert set(result.seconds) == {"read", "infer", "polygons", "metrics"}
    assert result.coverage()[1] == 1.0 and result.coverage()[2] == 0.0


def test_segment_test_image_options(data, predictor):
    ds = DstlDataset(data)
    ticks = []
    result = segment_image(ds, TEST, predictor, thresholds={2: 0.0, 3: 0.0}, preview=False,
                           progress=lambda done, total: ticks.append((done, total)))
    assert result.metrics is None and result.preview is None  # no labels; no preview asked for
    # threshold 0 puts every pixel in classes 2 and 3; the others keep the model's thresholds
    assert result.masks[1].all() and result.masks[2].all()
    plain = segment_image(ds, TEST, predictor, preview=False)
    assert not plain.masks[1].any() and not plain.masks[2].all()
    np.testing.assert_array_equal(result.masks[3:], plain.masks[3:])
    assert not result.polygons[2].is_empty and plain.polygons[2].is_empty
    assert ticks[0][0] == 0 and ticks[-1][0] == ticks[-1][1] > 0
    # metrics=False skips the scoring of a labelled image
    assert segment_image(ds, LABELLED, predictor, preview=False, metrics=False).metrics is None


def test_segment_with_tta_and_loaded_model(data, predictor, weights):
    ds = DstlDataset(data)
    plain = segment_image(ds, TEST, predictor, preview=False)
    tta = segment_image(ds, TEST, predictor, tta=True, preview=False)
    assert tta.prediction.info["tta"] and not plain.prediction.info["tta"]
    # a random model is not invariant under flips/rotations
    assert not np.array_equal(tta.prediction.probs, plain.prediction.probs)
    # a LoadedModel works too (a Predictor is made for the call)
    loaded = segment_image(ds, TEST, load_model(str(weights)), preview=False)
    assert loaded.masks.shape == plain.masks.shape


def test_rgb_model_reads_only_the_three_band_file(tmp_path, make_dstl_folder, rgb_predictor, predictor):
    ds = DstlDataset(make_dstl_folder(tmp_path / "d"))
    for f in (ds.root / "sixteen_band").iterdir():
        f.unlink()
    result = segment_image(ds, LABELLED, rgb_predictor)
    assert result.prediction.bands == RGB_BANDS and result.metrics is not None
    with pytest.raises(DataError, match=f"{LABELLED}_P.tif: file not found"):
        segment_image(ds, LABELLED, predictor)


def test_polygons_follow_the_masks(data, predictor):
    """The grid polygons, mapped back to pixels, cover about the predicted pixels of each class."""
    ds = DstlDataset(data)
    result = segment_image(ds, LABELLED, predictor, preview=False, metrics=False)
    for k in CLASS_IDS:
        px = result.transform.to_pixels(result.polygons[k])
        mask_area = float(result.masks[k - 1].sum())
        if px.is_empty:
            continue
        assert shapely.is_valid(px)
        # small components below the class's minimum area are dropped, smoothing moves edges
        assert px.area <= mask_area * 1.1 + 5, k


def test_two_stages_give_the_overlay_first_and_then_what_segment_image_gives(data, predictor):
    from dstl.exports import overlay_picture
    from dstl.pipeline import finish_image, infer_image

    ds = DstlDataset(data)
    first = infer_image(ds, LABELLED, predictor)
    assert not first.finished and first.polygons is None and first.metrics is None
    assert set(first.seconds) == {"read", "infer"}
    np.testing.assert_array_equal(first.overlay(), overlay_picture(first.preview, first.masks))
    assert finish_image(first, ds) is first and first.finished
    whole = segment_image(ds, LABELLED, predictor)
    np.testing.assert_array_equal(first.masks, whole.masks)
    assert {k: g.wkt for k, g in first.polygons.items()} == {k: g.wkt for k, g in whole.polygons.items()}
    assert first.metrics == whole.metrics
    assert set(first.seconds) == {"read", "infer", "polygons", "metrics"}
    polygons = first.polygons
    assert finish_image(first, ds).polygons is polygons  # finishing twice does nothing
    with pytest.raises(ValueError, match="no preview"):
        infer_image(ds, TEST, predictor, preview=False).overlay()

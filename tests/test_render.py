"""Tests for dstl.render: stretch, false colour, overlay, legend, panels, comparison, figures, PNG."""

import io
import math

import numpy as np
import pytest
from PIL import Image

from dstl import render
from dstl.bands import ALL_BANDS, RGB_BANDS
from dstl.classes import CLASSES, class_by_id
from dstl.errors import BandMismatchError, DstlError
from dstl.scene import Scene


def _scene(h=40, w=48, bands=ALL_BANDS, seed=0) -> Scene:
    rng = np.random.default_rng(seed)
    return Scene("9001_0_0", rng.uniform(0.1, 0.4, (len(bands), h, w)).astype(np.float32), bands)


def _masks(h=40, w=48) -> np.ndarray:
    """Crops over the top half, a road across it, a small vehicle on the road, a building."""
    m = np.zeros((10, h, w), np.uint8)
    m[5, : h // 2] = 1  # crops
    m[2, 18:24] = 1  # road, overlaps the crops' last rows
    m[9, 20:22, 10:14] = 1  # small vehicle on the road
    m[0, 30:36, 30:40] = 1  # building
    return m


def _preview(h=40, w=48, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------ stretch


def test_rgb_preview_of_scene_and_array_shapes_and_dtype():
    sc = _scene()
    pv = render.rgb_preview(sc)
    assert pv.dtype == np.uint8 and pv.shape == (40, 48, 3)
    # same picture from the (H, W, 3) array of the RGB bands
    np.testing.assert_array_equal(render.rgb_preview(sc.rgb()), pv)
    assert pv.min() == 0 and pv.max() == 255  # the 2-98 % stretch uses the full range


def test_rgb_preview_uses_the_rgb_bands_in_order():
    h, w = 20, 30
    data = np.zeros((3, h, w), np.float32)
    data[0, :, :10] = 1.0  # red on the left third
    data[1, :, 10:20] = 1.0  # green in the middle
    data[2, :, 20:] = 1.0  # blue on the right
    pv = render.rgb_preview(Scene("x", data, RGB_BANDS), percentiles=(0, 100))
    assert tuple(pv[5, 5]) == (255, 0, 0)
    assert tuple(pv[5, 15]) == (0, 255, 0)
    assert tuple(pv[5, 25]) == (0, 0, 255)


def test_stretch_is_robust_to_outliers():
    rng = np.random.default_rng(3)
    img = rng.uniform(0.2, 0.4, (200, 210, 3)).astype(np.float32)
    spoiled = img.copy()
    spoiled[::40, ::40] = 1.0  # saturated pixels (0.1 % of the image)
    spoiled[5::40, 5::40] = 0.0  # dead pixels
    a = render.rgb_preview(img)
    b = render.rgb_preview(spoiled)
    ok = np.ones(img.shape[:2], bool)
    ok[::40, ::40] = False
    ok[5::40, 5::40] = False
    assert np.abs(a[ok].astype(int) - b[ok].astype(int)).max() <= 2
    # the data's own range fills the output, instead of being squeezed by the outliers
    assert np.percentile(b[ok], 1) < 10 and np.percentile(b[ok], 99) > 245
    # a plain min-max stretch would be squeezed into a quarter of the range
    squeezed = render.rgb_preview(spoiled, percentiles=(0, 100))
    assert np.percentile(squeezed[ok], 99) < 110


def test_stretch_handles_constant_and_non_finite_bands():
    flat = np.full((30, 30, 3), 0.5, np.float32)
    pv = render.rgb_preview(flat)  # constant: falls back to the 0..1 range
    assert pv.dtype == np.uint8 and np.all(pv == 128)
    nan = np.random.default_rng(0).uniform(0, 1, (30, 30, 3)).astype(np.float32)
    nan[0, 0] = np.nan
    pv = render.rgb_preview(nan)
    assert pv[0, 0].tolist() == [0, 0, 0]
    ints = np.full((10, 10, 3), 7, np.uint8)
    assert render.rgb_preview(ints).max() <= 7  # integer constant: dtype range 0..255


def test_gamma_brightens_mid_tones():
    ramp = np.tile(np.linspace(0, 1, 101, dtype=np.float32), (5, 1))
    img = np.stack([ramp] * 3, axis=-1)
    lin = render.rgb_preview(img, percentiles=(0, 100))
    bright = render.rgb_preview(img, percentiles=(0, 100), gamma=2.0)
    assert bright[0, 50, 0] > lin[0, 50, 0] + 40
    assert bright[0, 0, 0] == lin[0, 0, 0] == 0 and bright[0, 100, 0] == lin[0, 100, 0] == 255
    assert abs(int(bright[0, 25, 0]) - round(255 * 0.25 ** 0.5)) <= 1


def test_bad_stretch_arguments():
    with pytest.raises(ValueError):
        render.rgb_preview(np.zeros((4, 4, 3)), percentiles=(50, 10))
    with pytest.raises(ValueError):
        render.rgb_preview(np.zeros((4, 4)))
    with pytest.raises(ValueError):
        render.rgb_preview(np.zeros((4, 4, 3)), gamma=0)


def test_preview_max_side_reduces_by_an_integer_factor():
    sc = _scene(101, 57)
    pv = render.rgb_preview(sc, max_side=50)  # factor 3 -> ceil(101/3) x ceil(57/3)
    assert pv.shape == (34, 19, 3)
    assert render.display_factor(3350, 3400, 1600) == 3
    assert render.display_factor(100, 100, None) == 1


def test_false_colour_uses_nir_red_green():
    sc = _scene(20, 30)
    data = sc.data.copy()
    nir, red, green = (ALL_BANDS.index(b) for b in render.FALSE_COLOUR_BANDS)
    data[nir] = 0.1
    data[nir, :, :10] = 0.9  # NIR-bright on the left (vegetation)
    data[red] = 0.1
    data[green] = 0.1
    data[red, 0, 0] = data[green, 0, 0] = 0.5  # not constant: the stretch maps 0.1 to 0
    fc = render.false_colour(Scene("x", data, ALL_BANDS), percentiles=(0, 100))
    assert fc.shape == (20, 30, 3) and fc.dtype == np.uint8
    assert tuple(fc[5, 2]) == (255, 0, 0) and tuple(fc[5, 25]) == (0, 0, 0)


def test_false_colour_of_rgb_only_scene_is_a_clear_error():
    with pytest.raises(BandMismatchError, match="M7.*R, G, B"):
        render.false_colour(_scene(bands=RGB_BANDS))
    assert issubclass(BandMismatchError, DstlError)


# ------------------------------------------------------------------------------ overlay


def test_pack_masks_sets_one_bit_per_class():
    m = _masks()
    packed = render.pack_masks(m)
    assert packed.dtype == np.uint16 and packed.shape == m.shape[1:]
    for k in range(10):
        np.testing.assert_array_equal((packed >> k) & 1, m[k])
    np.testing.assert_array_equal(render.pack_masks(m.astype(bool)), packed)
    with pytest.raises(ValueError, match="masks must be"):
        render.pack_masks(m[:9])


def test_opacity_zero_leaves_the_preview_unchanged():
    pv = _preview()
    out = render.overlay(pv, _masks(), opacity=0.0)
    np.testing.assert_array_equal(out, pv)
    assert out is not pv


def test_overlay_blends_class_colours_at_the_given_opacity():
    pv = _preview()
    m = _masks()
    out = render.overlay(pv, m, opacity=0.25)
    r, c = 32, 35  # building only
    expect = np.rint(pv[r, c] * 0.75 + np.array(class_by_id(1).colour) * 0.25)
    np.testing.assert_array_equal(out[r, c], expect)
    full = render.overlay(pv, m, opacity=1.0)
    assert tuple(full[r, c]) == class_by_id(1).colour
    none = m.sum(axis=0) == 0
    np.testing.assert_array_equal(out[none], pv[none])  # background untouched


def test_toggling_a_class_changes_exactly_its_visible_pixels():
    pv = _preview()
    m = _masks()
    renderer = render.OverlayRenderer(pv, m)
    all_on = renderer.render(opacity=0.6)
    for k in (1, 3, 6, 10):
        shown = [c.id for c in CLASSES if c.id != k]
        off = renderer.render(shown, opacity=0.6)
        changed = np.any(off != all_on, axis=2)
        # class k's pixels where no class drawn after it covers them
        later = [c for c in render.DRAW_ORDER[render.DRAW_ORDER.index(k) + 1:]]
        covered = m[[c - 1 for c in later]].any(axis=0) if later else np.zeros(m.shape[1:], bool)
        visible = (m[k - 1] == 1) & ~covered
        assert changed.any()
        assert not changed[~visible].any(), f"class {k}: pixels outside it changed"
        # nearly every visible pixel changes (a blend can round to the same value by chance)
        assert changed[visible].mean() > 0.95


def test_vehicles_are_drawn_on_top_of_roads_and_crops():
    pv = _preview()
    out = render.overlay(pv, _masks(), opacity=1.0)
    assert tuple(out[21, 11]) == class_by_id(10).colour  # vehicle on road
    assert tuple(out[19, 30]) == class_by_id(3).colour  # road over crops
    assert tuple(out[5, 5]) == class_by_id(6).colour
    assert render.DRAW_ORDER[-2:] == (9, 10) and sorted(render.DRAW_ORDER) == list(range(1, 11))


def test_outline_draws_opaque_borders_only_on_region_edges():
    pv = _preview()
    m = _masks()
    out = render.overlay(pv, m, classes=[1], opacity=0.0, outline=True)
    colour = class_by_id(1).colour
    assert tuple(out[30, 35]) == colour and tuple(out[33, 30]) == colour  # border pixels
    np.testing.assert_array_equal(out[33, 35], pv[33, 35])  # interior untouched at opacity 0
    changed = np.any(out != pv, axis=2)
    assert not changed[m[0] == 0].any()


def test_renderer_at_display_size_keeps_tiny_objects():
    h, w = 300, 320
    m = np.zeros((10, h, w), np.uint8)
    m[9, 151, 77] = 1  # a one-pixel vehicle
    pv = np.full((h, w, 3), 100, np.uint8)
    renderer = render.OverlayRenderer(pv, m, max_side=100)
    assert renderer.factor == 4 and renderer.shape == (75, 80)
    out = renderer.render(opacity=1.0)
    assert out.shape == (75, 80, 3)
    assert tuple(out[151 // 4, 77 // 4]) == class_by_id(10).colour
    assert np.count_nonzero(np.any(out != 100, axis=2)) == 1


def test_overlay_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="preview"):
        render.overlay(_preview(40, 48), _masks(30, 48))
    with pytest.raises(ValueError, match="uint8"):
        render.overlay(_preview().astype(np.float32), _masks())
    with pytest.raises(ValueError, match="opacity"):
        render.overlay(_preview(), _masks(), opacity=1.5)
    with pytest.raises(ValueError):
        render.overlay(_preview(), _masks(), classes=[11])


def test_class_coverage():
    cov = render.class_coverage(_masks())
    assert cov[10] == pytest.approx(8 / (40 * 48))
    assert cov[7] == 0 and set(cov) == set(range(1, 11))


# ------------------------------------------------------------------------------ legend, panels


def _has_colour(img: np.ndarray, colour) -> bool:
    return bool(np.all(img == np.array(colour, np.uint8), axis=2).any())


def test_legend_has_a_swatch_and_text_per_class():
    strip = render.legend()
    assert strip.dtype == np.uint8 and strip.ndim == 3
    for c in CLASSES:
        assert _has_colour(strip, c.colour), c.name
    dark = np.all(strip < 60, axis=2).sum()
    assert dark > 500  # text was drawn
    few = render.legend([1, 10], width=600)
    assert few.shape[1] == 600
    assert _has_colour(few, class_by_id(1).colour) and not _has_colour(few, class_by_id(5).colour)
    assert few.shape[0] < strip.shape[0]  # two entries side by side: one row


def test_with_legend_keeps_the_picture_on_top():
    pv = _preview(60, 400)
    out = render.with_legend(pv, coverage=render.class_coverage(_masks(60, 400)))
    assert out.shape[1] == 400 and out.shape[0] > 60
    np.testing.assert_array_equal(out[:60], pv)


def test_mask_panels_grid():
    m = _masks()
    grid = render.mask_panels(m, columns=5, panel_side=48)
    assert grid.dtype == np.uint8
    assert grid.shape[1] > 5 * 48 and grid.shape[0] > 2 * 40
    for c in CLASSES:
        assert _has_colour(grid, c.colour)  # title swatch per class
    one = render.mask_panels(m, classes=[10], panel_side=48, coverage=False)
    # the mask is the black area; inside its bounding box, white pixels are the vehicle's 8
    black = np.all(one == 0, axis=2)
    rows, cols = np.flatnonzero(black.any(axis=1)), np.flatnonzero(black.any(axis=0))
    box = one[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    assert box.shape[:2] == (40, 48)
    assert np.all(box == 255, axis=2).sum() == 8


def test_error_map_categories():
    h, w = 10, 10
    pred = np.zeros((10, h, w), np.uint8)
    true = np.zeros((10, h, w), np.uint8)
    pred[0, 0:2] = 1  # TP rows 0-1 (true too)
    true[0, 0:2] = 1
    pred[0, 2] = 1  # FP row 2
    true[0, 3] = 1  # FN row 3
    pred[2, 4] = 1  # road predicted...
    true[3, 4] = 1  # ...on a track: wrong class row 4
    pv = np.full((h, w, 3), 128, np.uint8)
    err = render.error_map(pred, true, pv, opacity=1.0)
    cols = render.ERROR_COLOURS
    assert tuple(err[0, 0]) == cols["true positive"]
    assert tuple(err[2, 0]) == cols["false positive"]
    assert tuple(err[3, 0]) == cols["false negative"]
    assert tuple(err[4, 0]) == cols["wrong class"]
    assert tuple(err[8, 0]) == (117, 117, 117)  # dimmed grey background
    only_road = render.error_map(pred, true, pv, classes=[3], opacity=1.0)
    assert tuple(only_road[4, 0]) == cols["false positive"]


def _contains(img: np.ndarray, block: np.ndarray) -> bool:
    h, w = block.shape[:2]
    for y, x in zip(*np.nonzero(np.all(img == block[0, 0], axis=2)), strict=True):
        if np.array_equal(img[y:y + h, x:x + w], block):
            return True
    return False


def test_compare_puts_prediction_truth_and_errors_side_by_side():
    pv = _preview()
    m = _masks()
    pred = m.copy()
    pred[0] = 0  # building missed
    img = render.compare(pred, m, pv, opacity=1.0, panel_side=None)
    assert img.dtype == np.uint8 and img.shape[1] >= 3 * 48
    assert _contains(img, render.overlay(pv, pred, opacity=1.0))
    assert _contains(img, render.overlay(pv, m, opacity=1.0))
    assert _contains(img, render.error_map(pred, m, pv))
    no_err = render.compare(pred, m, pv, errors=False, panel_side=None)
    assert no_err.shape[1] < img.shape[1]


# ------------------------------------------------------------------------------ figures, PNG


def test_scene_figure_has_three_panels_and_a_legend():
    sc = _scene()
    fig = render.scene_figure(sc, _masks(), title="9001_0_0")
    assert len(fig.axes) == 3
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("RGB") and titles[1].startswith("False colour")
    assert titles[2].startswith("Labels")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(labels) == 10 and labels[0].startswith("1 Buildings")
    png = render.figure_bytes(fig)
    assert Image.open(io.BytesIO(png)).size[0] > 600


def test_scene_figure_without_labels_or_infrared():
    fig = render.scene_figure(_scene(bands=RGB_BANDS), None, classes=[1])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("no near-infrared" in t for t in texts)
    assert any("no labels" in t for t in texts)
    assert not fig.legends


def test_png_bytes_round_trip_and_atomic_save(tmp_path):
    pv = _preview()
    back = np.asarray(Image.open(io.BytesIO(render.png_bytes(pv))))
    np.testing.assert_array_equal(back, pv)
    path = tmp_path / "a.png"
    render.save_png(path, pv)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), pv)
    with pytest.raises(ValueError):
        render.save_png(tmp_path / "bad.png", pv.astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_save_figure_failing_leaves_no_file(tmp_path, monkeypatch):
    fig = render.scene_figure(_scene(), _masks())

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(render, "figure_bytes", broken)
    with pytest.raises(RuntimeError):
        render.save_figure(tmp_path / "f.png", fig)
    assert list(tmp_path.iterdir()) == []


def test_reduce_helpers():
    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_allclose(render.reduce_image(img, 2), [[2.5, 4.5], [10.5, 12.5]])
    odd = np.ones((5, 5, 3), np.uint8) * 10
    assert render.reduce_image(odd, 2).shape == (3, 3, 3)
    m = np.zeros((10, 5, 5), np.uint8)
    m[3, 4, 4] = 1
    r = render.reduce_masks(m, 2)
    assert r.shape == (10, 3, 3) and r[3, 2, 2] == 1 and r.sum() == 1
    assert math.ceil(5 / 2) == 3

"""`python -m dstl synth OUT --layouts DATA`: real-layout scenes on the real label layers of ../shared/real.

Two real images at reduced size (scale 0.1, ~335 px): the labels written are the source polygons,
all four products come at their resolutions and bit depths, the ids cannot be mistaken for real
ones, the folder says what it is, and the same seed gives the same files.
"""

from pathlib import Path

import numpy as np
import pytest
import shapely

from dstl.dataset import DstlDataset
from dstl.geojson_labels import read_geojson_labels
from dstl.labels import read_grid_sizes, read_wkt_csv
from dstl.synthetic.real_layout import as_written, load_real_source, make_real_layout_image, window_labels
from dstl.synthetic.writer import is_synthetic_dataset
from dstl.tiff import read_tiff
from tests.cli_runner import dstl, error_line

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "real"
pytestmark = pytest.mark.skipif(not (REAL / "train_geojson_v3").is_dir(),
                                reason=f"the real DSTL label layers are not at {REAL} (../shared/real)")

#: A village with the river (waterway) and an image with a river, ponds and boats.
IDS = ("6100_2_2", "6070_2_3")
SCALE = 0.1


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("rl") / "real-layouts"
    res = dstl("synth", out, "--layouts", REAL, "--ids", *IDS, "--scale", SCALE, "--seed", 5)
    assert res.returncode == 0, res.stderr
    assert "wrote 2 real-layout scenes" in res.stdout
    return out


def test_labels_are_the_source_polygons(scenes):
    written = read_wkt_csv(scenes / "train_wkt_v4.csv")
    assert set(written) == {f"synth_rl_{i}" for i in IDS}
    for real_id in IDS:
        source = read_geojson_labels(REAL / "train_geojson_v3" / real_id)
        got = written[f"synth_rl_{real_id}"]
        assert set(got) == set(range(1, 11))
        for cls, geom in source.items():
            # Exactly the source as the WKT's 8 decimals write it (same vertices; polygon and ring
            # order aside) ...
            expected = shapely.normalize(as_written(geom))
            assert shapely.normalize(got[cls]).equals_exact(expected, 0), (real_id, cls)
            # ... which is the source to within 1e-8 grid units (~0.004 px). (Snapping to 8 decimals
            # may split a polygon where it pinches to a point: counts can differ by one or two.)
            assert abs(len(got[cls].geoms) - len(geom.geoms)) <= 2
            if not geom.is_empty:
                diff = shapely.symmetric_difference(got[cls], geom).area
                assert diff <= 1e-8 * geom.length, (real_id, cls, diff)  # a 1e-8 band along the outline


def test_grid_sizes_are_the_real_ones_and_sizes_follow_them(scenes):
    real_grid = read_grid_sizes(REAL / "grid_sizes.csv")
    ds = DstlDataset(scenes)
    for real_id in IDS:
        sid = f"synth_rl_{real_id}"
        assert ds.grid_size(sid) == real_grid[real_id]
        src = load_real_source(REAL, real_id, real_grid)
        assert ds.image_size(sid) == (round(src.height * SCALE), round(src.width * SCALE))


def test_all_four_products_at_their_resolutions_and_bit_depths(scenes):
    ds = DstlDataset(scenes)
    for real_id in IDS:
        sid = f"synth_rl_{real_id}"
        h, w = ds.image_size(sid)
        rgb = read_tiff(ds.product_path(sid, "3"))
        p = read_tiff(ds.product_path(sid, "P"))
        m = read_tiff(ds.product_path(sid, "M"))
        a = read_tiff(ds.product_path(sid, "A"))
        assert rgb.shape == (3, h, w) and p.shape == (h, w)
        assert m.shape == (8, round(h / 4), round(w / 4))
        src = load_real_source(REAL, real_id)
        assert a.shape == (8, round(h * src.a_size[0] / src.height), round(w * src.a_size[1] / src.width))
        for arr in (rgb, p, m, a):
            assert arr.dtype == np.uint16
        assert max(rgb.max(), p.max(), m.max()) <= 2047   # 11-bit
        assert 2047 < a.max() <= 16383                     # 14-bit: the SWIR uses the range above 11 bits
        scene = ds.read_scene(sid)                         # the 20 bands align on the 3-band grid
        assert scene.data.shape[0] == 20 and scene.data.shape[1:] == (h, w)


def test_ids_cannot_be_mistaken_for_real_ones_and_the_folder_says_what_it_is(scenes):
    ds = DstlDataset(scenes)
    real_ids = set(read_grid_sizes(REAL / "grid_sizes.csv"))
    assert all(i.startswith("synth_rl_") and i not in real_ids for i in ds.image_ids)
    assert is_synthetic_dataset(scenes)
    readme = (scenes / "README.md").read_text()
    assert "NOT real imagery" in readme and "do not" in readme and "6100_2_2" in readme
    assert ds.test_ids == []


def test_pixels_follow_the_labels(scenes):
    """Trees bright in NIR (M7) and dark in red (M5), water dark in NIR: the labels drive the pixels."""
    ds = DstlDataset(scenes)
    sid = "synth_rl_6070_2_3"  # a wide river: water pixels are not mixed with its banks at M's 12 m here
    scene = ds.read_scene(sid)
    masks = ds.masks(sid)
    bands = list(scene.bands)
    nir, red = scene.data[bands.index("M7")], scene.data[bands.index("M5")]
    trees, water = masks[4].astype(bool), masks[6].astype(bool)
    assert trees.sum() > 100 and water.sum() > 100
    assert (nir[trees] / np.maximum(red[trees], 1e-6)).mean() > 3
    assert nir[water].mean() < 0.5 * nir[trees].mean()


def test_same_seed_same_scene_other_seed_other_pixels():
    src = load_real_source(REAL, "6070_2_3")
    a = make_real_layout_image(src, 3, scale=0.05)
    b = make_real_layout_image(src, 3, scale=0.05)
    c = make_real_layout_image(src, 4, scale=0.05)
    for k in ("3", "P", "M", "A"):
        assert np.array_equal(a.products[k], b.products[k])
    assert not np.array_equal(a.products["3"], c.products["3"])
    assert all(a.labels[k].equals(c.labels[k]) for k in range(1, 11))  # labels never depend on the seed


def test_a_window_holds_the_real_labels_clipped_to_it():
    src = load_real_source(REAL, "6100_2_2")
    window = (1600, 1200, 256, 320)
    image = make_real_layout_image(src, 0, window=window)
    assert image.products["3"].shape == (3, 256, 320)
    assert image.image_id == "synth_rl_6100_2_2"
    # The window's pixels map to the same ground as the full image's: compare masks pixel for pixel.
    from dstl.grid import GridTransform
    from dstl.rasterize import rasterize_classes

    full = rasterize_classes(src.labels, GridTransform(src.height, src.width, src.xmax, src.ymin))
    crop = full[:, 1600:1856, 1200:1520]
    agree = (image.masks == crop).mean()
    assert agree > 0.999, agree
    labels, xmax, ymin = window_labels(src, window)
    assert xmax < src.xmax / 5 and ymin > src.ymin / 5


def test_windowed_cli_ids_and_bad_input(tmp_path):
    out = tmp_path / "w"
    res = dstl("synth", out, "--layouts", REAL, "--ids", "6070_2_3", "--window", "0,0,200,240")
    assert res.returncode == 0, res.stderr
    assert DstlDataset(out).image_ids == ["synth_rl_6070_2_3_r0_c0"]
    assert "--size" in error_line(dstl("synth", tmp_path / "a", "--layouts", REAL, "--size", "64"))
    assert "6999_9_9" in error_line(dstl("synth", tmp_path / "b", "--layouts", REAL, "--ids", "6999_9_9"))
    assert "train_geojson_v3" in error_line(dstl("synth", tmp_path / "c", "--layouts", tmp_path))
    assert "--window" in error_line(dstl("synth", tmp_path / "d", "--layouts", REAL, "--window", "1,2"))
    assert "not inside" in error_line(dstl("synth", tmp_path / "e", "--layouts", REAL, "--ids", "6070_2_3",
                                           "--window", "3300,0,200,200"))
    assert "--scale" in error_line(dstl("synth", tmp_path / "f", "--layouts", REAL, "--scale", "2"))
    assert "--layouts" in error_line(dstl("synth", tmp_path / "g", "--window", "0,0,64,64"))
    assert not any((tmp_path / n).exists() for n in "abcdefg")


def test_real_a_option_uses_the_real_product_and_says_so(tmp_path):
    out = tmp_path / "ra"
    res = dstl("synth", out, "--layouts", REAL, "--ids", "6070_2_3", "--real-a")
    assert res.returncode == 0, res.stderr
    ds = DstlDataset(out)
    got = read_tiff(ds.product_path("synth_rl_6070_2_3", "A"))
    assert np.array_equal(got, read_tiff(REAL / "sixteen_band" / "6070_2_3_A.tif"))
    assert "REAL" in (out / "README.md").read_text()
    res = dstl("synth", tmp_path / "x", "--layouts", REAL, "--real-a", "--scale", "0.5")
    assert "--real-a" in error_line(res)

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from dstl.bands import A_BANDS, ALL_BANDS, M_BANDS, RGB_BANDS
from dstl.dataset import DstlDataset
from dstl.errors import BandMismatchError, DataError
from dstl.limits import MAX_MEGAPIXELS_ENV, MIN_SIDE
from dstl.real_sizes import KNOWN_THREE_BAND_SIZES
from dstl.scene import (
    PRODUCT_SIZE_TOLERANCE,
    read_grid,
    read_image,
    read_product_shape,
    read_scene,
    read_scene_files,
    resample_bilinear,
)
from dstl.tiff import write_tiff

ID = "9001_0_0"


def expected_ramp(n_in: int, n_out: int, a: float, k: float) -> np.ndarray:
    """Values a + k * x of a ramp over n_in samples, read at the n_out pixel centres of the grid."""
    x = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    return a + k * x


# ----------------------------------------------------------------------------- resampling

@pytest.mark.parametrize(("src", "dst"), [((13, 17), (50, 45)), ((3, 4), (67, 61)), ((46, 69), (45, 70)),
                                          ((40, 40), (40, 40)), ((64, 72), (16, 19)), ((9, 30), (9, 41))])
def test_resample_matches_torch_bilinear_align_corners_false(src, dst):
    band = np.random.default_rng(0).integers(0, 2048, src).astype(np.uint16)
    ours = resample_bilinear(band, dst, scale=1 / 2047)
    ref = torch.nn.functional.interpolate(torch.from_numpy(band.astype(np.float64))[None, None], size=dst,
                                          mode="bilinear", align_corners=False)[0, 0].numpy() / 2047
    assert ours.dtype == np.float32 and ours.shape == dst
    np.testing.assert_allclose(ours, ref, atol=2e-6)


def test_resample_writes_into_out():
    out = np.full((10, 12), -1, np.float32)
    res = resample_bilinear(np.ones((3, 3), np.uint16), (10, 12), scale=0.5, out=out)
    assert res is out
    np.testing.assert_array_equal(out, 0.5)


# ----------------------------------------------------------------------------- DSTL scenes

def test_full_scene_shape_band_order_and_scaling(make_dstl_folder, tmp_path):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (45, 53)}))
    scene = ds.read_scene(ID)
    assert scene.bands == ALL_BANDS and scene.is_full
    assert scene.data.shape == (20, 45, 53) and scene.data.dtype == np.float32
    assert 0 <= scene.data.min() and scene.data.max() <= 1
    raw3 = tifffile.imread(ds.product_path(ID, "3"))
    rawp = tifffile.imread(ds.product_path(ID, "P"))
    np.testing.assert_allclose(scene.data[:3], raw3 / 2047, rtol=1e-6)  # same grid: no resampling
    np.testing.assert_allclose(scene.data[3], rawp / 2047, rtol=1e-6)
    assert scene.image_id == ID
    same = read_scene(ds, ID)  # the dataset method and the function are one implementation
    np.testing.assert_array_equal(same.data, scene.data)


def test_products_of_different_sizes_are_aligned_on_the_3band_grid(make_dstl_folder, tmp_path):
    """A ramp in x (M) and in y (A) comes out as the matching ramp on the 3-band grid."""
    sizes = {ID: {"3": (45, 70), "P": (46, 69), "M": (12, 17), "A": (3, 4)}}
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes=sizes))
    m = np.broadcast_to(100 + 20 * np.arange(17, dtype=np.uint16), (8, 12, 17))
    a = np.broadcast_to((1000 + 4000 * np.arange(3, dtype=np.uint16))[:, None], (8, 3, 4))
    p = np.full((46, 69), 1234, np.uint16)
    write_tiff(ds.product_path(ID, "M"), np.ascontiguousarray(m))
    write_tiff(ds.product_path(ID, "A"), np.ascontiguousarray(a))
    write_tiff(ds.product_path(ID, "P"), p)
    scene = ds.read_scene(ID)
    assert (scene.height, scene.width) == (45, 70)
    want_x = expected_ramp(17, 70, 100, 20) / 2047
    want_y = expected_ramp(3, 45, 1000, 4000) / 16383
    for k in range(4, 12):
        np.testing.assert_allclose(scene.data[k], np.broadcast_to(want_x, (45, 70)), atol=1e-6)
    for k in range(12, 20):
        np.testing.assert_allclose(scene.data[k], np.broadcast_to(want_y[:, None], (45, 70)), atol=1e-6)
    # Inside the clamped borders the ramp is linear with slope 20 * 17 / 70 counts per output pixel.
    np.testing.assert_allclose(np.diff(scene.data[4, 0, 3:-3]) * 2047, 20 * 17 / 70, rtol=1e-4)
    np.testing.assert_allclose(scene.data[3], 1234 / 2047, rtol=1e-6)  # a constant stays constant


def test_bit_depth_scaling_and_clipping(make_dstl_folder, tmp_path):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (40, 40)}))
    three = np.zeros((3, 40, 40), np.uint16)
    three[0], three[1], three[2] = 2047, 1023, 4000  # 4000: above the 11-bit range -> clipped
    write_tiff(ds.product_path(ID, "3"), three)
    a_shape = tifffile.imread(ds.product_path(ID, "A")).shape
    write_tiff(ds.product_path(ID, "A"), np.full(a_shape, 2047, np.uint16))
    scene = ds.read_scene(ID, ("R", "G", "B", "A1"))
    np.testing.assert_allclose(scene.data[0], 1.0)
    np.testing.assert_allclose(scene.data[1], 1023 / 2047, rtol=1e-6)
    np.testing.assert_allclose(scene.data[2], 1.0)
    np.testing.assert_allclose(scene.data[3], 2047 / 16383, rtol=1e-6)  # A is 14-bit


def test_subset_bands_in_requested_order_read_only_needed_products(make_dstl_folder, tmp_path):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (48, 44)}))
    full = ds.read_scene(ID)
    bands = ("M7", "R", "A2", "G")
    sub = ds.read_scene(ID, bands)
    assert sub.bands == bands and sub.data.shape == (4, 48, 44)
    np.testing.assert_array_equal(sub.data, full.select(bands).data)
    ds.product_path(ID, "P").unlink()
    ds.product_path(ID, "A").unlink()
    rgb = ds.read_scene(ID, RGB_BANDS + M_BANDS)  # P and A are not needed
    assert rgb.data.shape == (11, 48, 44)
    with pytest.raises(DataError, match=r"sixteen_band/9001_0_0_P\.tif: file not found"):
        ds.read_scene(ID)


@pytest.mark.parametrize("bands", [("R", "NIR"), ()])
def test_unknown_or_no_bands(make_dstl_folder, tmp_path, bands):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (40, 40)}))
    with pytest.raises(BandMismatchError, match="unknown band names \\['NIR'\\]" if bands else "no bands"):
        ds.read_scene(ID, bands)


# ----------------------------------------------------------------------------- bad DSTL inputs

@pytest.mark.parametrize("product", ["3", "P", "M", "A"])
def test_missing_product_file_is_named(make_dstl_folder, tmp_path, product):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (40, 40)}))
    path = ds.product_path(ID, product)
    path.unlink()
    with pytest.raises(DataError, match=f"{path.name}: file not found"):
        ds.read_scene(ID)


@pytest.mark.parametrize("damage", ["truncated", "random bytes"])
@pytest.mark.parametrize("product", ["3", "M"])
def test_corrupt_or_truncated_product(make_dstl_folder, tmp_path, damage, product):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (64, 64)}))
    path = ds.product_path(ID, product)
    data = path.read_bytes()
    junk = np.random.default_rng(0).bytes(3000)
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else junk)
    with pytest.raises(DataError, match=f"{path.name}: (truncated|not a readable TIFF)"):
        ds.read_scene(ID)


@pytest.mark.parametrize(("product", "array", "problem"), [
    ("M", np.zeros((4, 10, 10), np.uint16), "expected 8 bands"),
    ("A", np.zeros((3, 2, 2), np.uint16), "expected 8 bands"),
    ("3", np.zeros((8, 40, 40), np.uint16), "expected 3 bands"),
    ("P", np.zeros((3, 40, 40), np.uint16), "expected a 2-D page"),
    ("M", np.zeros((8, 10, 10), np.uint8), "expected uint16 samples, got uint8"),
])
def test_wrong_band_count_or_dtype(make_dstl_folder, tmp_path, product, array, problem):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (40, 40)}))
    write_tiff(ds.product_path(ID, product), array)
    with pytest.raises(DataError, match=problem):
        ds.read_scene(ID)


def test_band_last_products_are_accepted(make_dstl_folder, tmp_path):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (40, 42)}))
    before = ds.read_scene(ID)
    m = tifffile.imread(ds.product_path(ID, "M"))
    tifffile.imwrite(ds.product_path(ID, "M"), np.moveaxis(m, 0, -1), photometric="minisblack",
                     planarconfig="contig")  # (h, w, 8) interleaved, as some GeoTIFF tools write
    np.testing.assert_array_equal(ds.read_scene(ID).data, before.data)


def test_scene_too_small(make_dstl_folder, tmp_path):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (40, 40)}))
    write_tiff(ds.product_path(ID, "3"), np.zeros((3, 20, 40), np.uint16))
    with pytest.raises(DataError, match=f"20 x 40 px is too small \\(at least {MIN_SIDE} px per side"):
        ds.read_scene(ID)


def test_read_scene_files_needs_the_3band_file(tmp_path):
    with pytest.raises(DataError, match="3-band file is required"):
        read_scene_files({"M": tmp_path / "x_M.tif"}, M_BANDS)


def test_read_scene_files_reports_missing_product_argument(make_dstl_folder, tmp_path):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (40, 40)}))
    with pytest.raises(DataError, match="no file given for product\\(s\\) \\['A'\\]"):
        read_scene_files({"3": ds.product_path(ID, "3")}, RGB_BANDS + A_BANDS)


# ----------------------------------------------------------------------------- sizes: limits and products

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"


def test_read_grid_applies_the_image_size_limits(tmp_path, monkeypatch, forge_tiff_header):
    assert read_grid(forge_tiff_header(tmp_path / "ok.tif", (3, 3349, 3396))) == (3349, 3396)
    with pytest.raises(DataError, match="tiny.tif: image of 1 x 1 px is too small"):
        read_grid(forge_tiff_header(tmp_path / "tiny.tif", (3, 1, 1)))
    with pytest.raises(DataError, match="huge.tif: image of 20000 x 20000 px .*_MEGAPIXELS=400"):
        read_grid(forge_tiff_header(tmp_path / "huge.tif", (3, 20000, 20000)))
    monkeypatch.setenv(MAX_MEGAPIXELS_ENV, "400")  # what the message says to do
    assert read_grid(tmp_path / "huge.tif") == (20000, 20000)


@pytest.mark.parametrize("size", [(20000, 20000), (1, 1), (31, 500)])
def test_dataset_refuses_a_grid_outside_the_limits_from_the_header(make_dstl_folder, tmp_path,
                                                                    forge_tiff_header, size):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (40, 40)}))
    forge_tiff_header(ds.product_path(ID, "3"), (3, *size))
    problem = "too small" if min(size) < MIN_SIDE else "larger than the limit"
    message = f"three_band/{ID}.tif: image of {size[0]} x {size[1]} px .*{problem}"
    for call in (ds.image_size, ds.transform, ds.read_scene):
        with pytest.raises(DataError, match=message):
            call(ID)


@pytest.mark.parametrize(("product", "shape", "expected"), [
    ("M", (8, 1, 1), "about 16 x 16 px, 1/4 of it"),           # an M of 8 x 1 x 1
    ("A", (8, 80, 80), "about 2.6 x 2.6 px, 1/25 of it"),     # an A larger than the 3-band image
    ("A", (8, 16, 16), "about 2.6 x 2.6 px, 1/25 of it"),     # an M saved as the A product
    ("P", (61, 64), "64 x 64 px, its size"),                 # 3 rows short
    ("M", (8, 16, 32), "about 16 x 16 px, 1/4 of it"),        # the M of a wider crop
    ("M", (8, 50000, 50000), "about 16 x 16 px, 1/4 of it"),  # a forged claim: refused, not allocated
])
def test_a_product_that_does_not_fit_the_grid_is_named_with_both_sizes(make_dstl_folder, tmp_path,
                                                                         forge_tiff_header, product, shape,
                                                                         expected):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (64, 64)}))
    path = forge_tiff_header(ds.product_path(ID, product), shape)
    h, w = shape[-2:]
    message = (f"sixteen_band/{ID}_{product}.tif: {product} product of {h} x {w} px does not fit the 3-band "
               f"image of 64 x 64 px: expected {expected} \\(give or take 2 px per side\\)$")
    with pytest.raises(DataError, match=message):
        ds.read_scene(ID)
    with pytest.raises(DataError, match=message):
        read_product_shape(path, product, (64, 64))
    ds.read_scene(ID, RGB_BANDS)  # a product the bands do not need is not looked at


@pytest.mark.parametrize(("product", "ratio"), [("P", 1), ("M", 4), ("A", 25)])
def test_the_tolerance_is_two_product_pixels_per_side(tmp_path, forge_tiff_header, product, ratio):
    grid = (100 * ratio // 4 * 4, 200 * ratio // 4 * 4)  # sides divisible by the ratio: exact expectations
    eh, ew = grid[0] // ratio, grid[1] // ratio
    bands = () if product == "P" else (8,)
    for dh, dw in [(0, 0), (2, 0), (-2, 2), (0, -2)]:
        path = forge_tiff_header(tmp_path / f"ok{dh}{dw}.tif", (*bands, eh + dh, ew + dw))
        assert read_product_shape(path, product, grid)[1:] == (eh + dh, ew + dw)
    for dh, dw in [(3, 0), (0, -3)]:
        path = forge_tiff_header(tmp_path / f"bad{dh}{dw}.tif", (*bands, eh + dh, ew + dw))
        with pytest.raises(DataError, match="does not fit the 3-band image"):
            read_product_shape(path, product, grid)
    assert PRODUCT_SIZE_TOLERANCE == 2


def test_real_product_sizes_fit(tmp_path, forge_tiff_header):
    """The real sizes of 6010_1_2 and 6120_2_2 (shared/real/README.md), as headers: all accepted."""
    real = {"6010_1_2": {"P": (3348, 3396), "M": (837, 849), "A": (134, 136)},
            "6120_2_2": {"P": (3348, 3403), "M": (837, 851), "A": (134, 137)}}
    for image_id, sizes in real.items():
        sizes["3"] = KNOWN_THREE_BAND_SIZES[image_id]
        files = {p: forge_tiff_header(tmp_path / f"{image_id}_{p}.tif", ((3,) if p == "3" else () if p == "P"
                                                                        else (8,)) + sizes[p])
                 for p in sizes}
        assert read_grid(files["3"]) == sizes["3"]
        for p in ("P", "M", "A"):
            assert read_product_shape(files[p], p, sizes["3"])[1:] == sizes[p]


def _real_three_band_sizes() -> dict[str, tuple[int, int]]:
    """3-band (H, W) of every real image, from its grid size: the pixel pitch in grid units is the same
    for every image (6120_2_2: 3403 px over Xmax 0.009188, 3348 over -Ymin 0.00904; 6010_1_2 agrees to
    1e-5), so H = -Ymin / pitch, W = Xmax / pitch, to within a pixel."""
    px_per_unit = 3403 / 0.009188
    sizes = {}
    with open(REAL / "grid_sizes.csv") as f:
        for row in list(csv.reader(f))[1:]:
            sizes[row[0]] = (round(-float(row[2]) * px_per_unit), round(float(row[1]) * px_per_unit))
    assert all(sizes[i] == known for i, known in KNOWN_THREE_BAND_SIZES.items())
    return sizes


def test_every_real_a_product_fits_its_3band_grid():
    """The 26 real SWIR products in ../shared/real (read from the files) against their images'
    3-band sizes: all within the tolerance, the worst (6040_4_4) 1.48 px off."""
    files = sorted((REAL / "sixteen_band").glob("*_A.tif"))
    if not files:
        pytest.skip(f"the real A products are not in {REAL / 'sixteen_band'} (../shared beside the clone)")
    grids = _real_three_band_sizes()
    worst = 0.0
    for path in files:
        grid = grids[path.name[:-len("_A.tif")]]
        _, h, w = read_product_shape(path, "A", grid)
        worst = max(worst, abs(h - grid[0] / 25), abs(w - grid[1] / 25))
        # The same file as the product of an image a scene's width away is refused.
        with pytest.raises(DataError, match="does not fit"):
            read_product_shape(path, "A", (grid[0], grid[1] * 2))
    assert len(files) == 26 and 1.0 < worst <= PRODUCT_SIZE_TOLERANCE


def test_every_size_the_synthetic_writer_makes_fits():
    """`dstl synth` product sizes (M ~ H/4, A ~ H/25, each +-1 px) over its whole size range."""
    from dstl.synthetic.render import sample_product_geometry
    from dstl.synthetic.writer import MAX_SIDE, MIN_SIDE

    rng = np.random.default_rng(0)
    for side in list(range(MIN_SIDE, 200)) + [255, 256, 512, 1000, 1024, 3348, 3403, MAX_SIDE]:
        for _ in range(20):
            g = sample_product_geometry(rng, side, side + 7)
            for size, ratio in ((g.m_size, 4), (g.a_size, 25)):
                off = max(abs(size[0] - g.height / ratio), abs(size[1] - g.width / ratio))
                assert off <= PRODUCT_SIZE_TOLERANCE, (side, size, ratio)


# ----------------------------------------------------------------------------- plain images

def rgb8(h=40, w=50):
    return np.random.default_rng(2).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_png_rgb(tmp_path):
    a = rgb8()
    Image.fromarray(a).save(tmp_path / "photo.png")
    scene = read_image(tmp_path / "photo.png")
    assert scene.bands == RGB_BANDS and scene.is_rgb_only and scene.image_id == "photo"
    np.testing.assert_allclose(scene.rgb(), a / 255, rtol=1e-6)


def test_png_rgba_drops_alpha(tmp_path):
    a = np.dstack([rgb8(), np.full((40, 50), 7, np.uint8)])
    Image.fromarray(a, "RGBA").save(tmp_path / "x.png")
    np.testing.assert_allclose(read_image(tmp_path / "x.png").rgb(), a[..., :3] / 255, rtol=1e-6)


@pytest.mark.parametrize("mode", ["L", "LA"])
def test_gray_is_replicated(tmp_path, mode):
    g = rgb8()[..., 0]
    img = Image.fromarray(g, "L") if mode == "L" else Image.fromarray(np.dstack([g, g // 2]), "LA")
    img.save(tmp_path / "g.png")
    scene = read_image(tmp_path / "g.png")
    for k in range(3):
        np.testing.assert_allclose(scene.data[k], g / 255, rtol=1e-6)


def test_palette_png_goes_through_its_palette(tmp_path):
    a = rgb8()
    img = Image.fromarray(a).quantize(colors=16)
    img.save(tmp_path / "p.png")
    want = np.asarray(img.convert("RGB")) / 255
    np.testing.assert_allclose(read_image(tmp_path / "p.png").rgb(), want, rtol=1e-6)


def test_jpeg(tmp_path):
    a = np.zeros((64, 64, 3), np.uint8)
    a[..., 0], a[..., 1], a[..., 2] = 200, 100, 30
    Image.fromarray(a).save(tmp_path / "x.jpg", quality=95)
    rgb = read_image(tmp_path / "x.jpg").rgb()
    np.testing.assert_allclose(rgb.mean(axis=(0, 1)), [200 / 255, 100 / 255, 30 / 255], atol=0.02)


def test_png_16bit_gray(tmp_path):
    g = np.random.default_rng(4).integers(0, 65536, (40, 40), dtype=np.uint16)
    g[0, 0] = 65535
    Image.fromarray(g).save(tmp_path / "g16.png")
    np.testing.assert_allclose(read_image(tmp_path / "g16.png").data[1], g / 65535, rtol=1e-6)


@pytest.mark.parametrize(("top", "scale"), [(65536, 65535), (2048, 2047)])
@pytest.mark.parametrize("layout", ["interleaved", "planar"])
def test_tiff_16bit_scaling_rule(tmp_path, top, scale, layout):
    a = np.random.default_rng(5).integers(0, top, (40, 48, 3), dtype=np.uint16)
    a[0, 0, 0] = top - 1  # the maximum decides: <= 2047 is 11-bit DSTL data
    if layout == "planar":
        tifffile.imwrite(tmp_path / "x.tif", np.moveaxis(a, -1, 0), photometric="rgb",
                         planarconfig="separate")
    else:
        tifffile.imwrite(tmp_path / "x.tif", a, photometric="rgb")
    np.testing.assert_allclose(read_image(tmp_path / "x.tif").rgb(), a / scale, rtol=1e-6)


def test_tiff_8bit_and_rgba_and_gray(tmp_path):
    a = rgb8()
    tifffile.imwrite(tmp_path / "rgba.tif", np.dstack([a, a[..., :1]]), photometric="rgb", extrasamples=[2])
    np.testing.assert_allclose(read_image(tmp_path / "rgba.tif").rgb(), a / 255, rtol=1e-6)
    tifffile.imwrite(tmp_path / "gray.tif", a[..., 1])
    np.testing.assert_allclose(read_image(tmp_path / "gray.tif").data[2], a[..., 1] / 255, rtol=1e-6)


def test_the_dstl_three_band_file_reads_as_an_rgb_image(make_dstl_folder, tmp_path):
    ds = DstlDataset(make_dstl_folder(tmp_path, sizes={ID: (40, 44)}))
    img = read_image(ds.product_path(ID, "3"))
    np.testing.assert_allclose(img.data, ds.read_scene(ID, RGB_BANDS).data, rtol=1e-6)


@pytest.mark.parametrize(("h", "w", "problem"), [(20, 50, "too small \\(at least 32"),
                                                 (40, 51, "larger than the limit of 0.002 megapixels")])
@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_image_size_limits(tmp_path, monkeypatch, h, w, problem, fmt):
    monkeypatch.setenv(MAX_MEGAPIXELS_ENV, "0.002")  # 2000 px
    path = tmp_path / f"x.{fmt}"
    Image.fromarray(np.zeros((h, w), np.uint8)).save(path)
    with pytest.raises(DataError, match=f"{h} x {w} px (\\(0.0 megapixels\\) )?is {problem}"):
        read_image(path)


def test_a_forged_header_is_refused_before_any_pixel_is_read(tmp_path, forge_tiff_header):
    """A file of a few hundred bytes claiming 20,000 x 20,000 px (1.2 GB of RGB) never gets an allocation."""
    path = forge_tiff_header(tmp_path / "huge.tif", (3, 20000, 20000))
    assert path.stat().st_size < 2000
    with pytest.raises(DataError, match="huge.tif: image of 20000 x 20000 px .* is larger than the limit of "
                                        "64 megapixels; .*DSTL_MAX_IMAGE_MEGAPIXELS=400"):
        read_image(path)


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("notes.png", b"just some text\n", "not a readable PNG, JPEG or TIFF"),
    ("x.tif", b"II*\x00garbage", "not a readable TIFF|corrupt"),
])
def test_not_an_image(tmp_path, name, content, problem):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=problem):
        read_image(tmp_path / name)


def test_truncated_png_and_missing_file(tmp_path):
    Image.fromarray(rgb8(200, 200)).save(tmp_path / "x.png")
    data = (tmp_path / "x.png").read_bytes()
    (tmp_path / "x.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"x\.png: not a readable"):
        read_image(tmp_path / "x.png")
    with pytest.raises(DataError, match="file not found"):
        read_image(tmp_path / "none.png")


@pytest.mark.parametrize(("array", "problem"), [
    (np.zeros((40, 40, 3), np.float32), "expected uint8 or uint16 samples, got float32"),
    (np.zeros((6, 40, 40), np.uint16), "expected a gray, RGB or RGBA image"),
])
def test_unsupported_tiffs(tmp_path, array, problem):
    tifffile.imwrite(tmp_path / "x.tif", array, photometric="minisblack" if array.shape[0] == 6 else "rgb",
                     **({"planarconfig": "separate"} if array.shape[0] == 6 else {}))
    with pytest.raises(DataError, match=problem):
        read_image(tmp_path / "x.tif")


def test_palette_tiff_goes_through_its_colour_map(tmp_path):
    lut8 = np.random.default_rng(6).integers(0, 256, (3, 256), dtype=np.uint16)
    idx = np.random.default_rng(7).integers(0, 256, (40, 40), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "pal.tif", idx, photometric="palette", colormap=lut8 * 257)
    want = np.moveaxis(lut8[:, idx], 0, -1) / 255
    np.testing.assert_allclose(read_image(tmp_path / "pal.tif").rgb(), want, rtol=1e-6)

"""The synthetic dataset on disk: exact DSTL layout, determinism, read-back, atomic writing."""

import csv
import re

import numpy as np
import pytest
import tifffile

from dstl.dataset import DstlDataset
from dstl.errors import DstlError
from dstl.labels import read_grid_sizes, read_wkt_csv
from dstl.synthetic import generate_dataset, image_id, is_synthetic_dataset, make_image
from dstl.synthetic import writer as writer_mod
from dstl.synthetic.writer import image_seed


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_folder_holds_exactly_the_dstl_entries(small_dataset):
    root, summary = small_dataset
    assert sorted(p.name for p in root.iterdir()) == sorted(
        ["three_band", "sixteen_band", "grid_sizes.csv", "train_wkt_v4.csv", "sample_submission.csv"])
    ids = summary.train_ids + summary.test_ids
    assert sorted(p.name for p in (root / "three_band").iterdir()) == sorted(f"{i}.tif" for i in ids)
    assert sorted(p.name for p in (root / "sixteen_band").iterdir()) == sorted(
        f"{i}_{p}.tif" for i in ids for p in "PMA")


def test_ids_look_real_but_cannot_be_mistaken_for_real_ones(small_dataset, small_config):
    _, summary = small_dataset
    cfg = small_config
    assert summary.train_ids == [image_id(k) for k in range(cfg["n_train"])]
    assert summary.test_ids == [image_id(k, test=True) for k in range(cfg["n_test"])]
    for i in summary.train_ids + summary.test_ids:
        m = re.fullmatch(r"synth_(\d{4})_([0-4])_([0-4])", i)
        assert m, i
        assert not 6010 <= int(m.group(1)) <= 6180
    assert len(set(summary.train_ids + summary.test_ids)) == cfg["n_train"] + cfg["n_test"]
    assert image_id(26) == "synth_9101_0_1"


def test_grid_sizes_header_has_empty_first_cell_and_real_like_values(small_dataset):
    root, summary = small_dataset
    text = (root / "grid_sizes.csv").read_text()
    assert text.splitlines()[0] == ",Xmax,Ymin"
    sizes = read_grid_sizes(root / "grid_sizes.csv")
    assert list(sizes) == summary.train_ids + summary.test_ids
    for xmax, ymin in sizes.values():
        assert 0.0089 < xmax < 0.0093
        assert -0.0092 < ymin < -0.0089
    assert len({v for v in sizes.values()}) == len(sizes)  # varied per image


def test_products_have_dstl_shapes_dtypes_and_bit_depths(small_dataset, small_config):
    root, summary = small_dataset
    cfg = small_config
    sizes = set()
    for i in summary.train_ids + summary.test_ids:
        rgb = tifffile.imread(root / "three_band" / f"{i}.tif")
        assert rgb.dtype == np.uint16 and rgb.ndim == 3 and rgb.shape[0] == 3
        _, H, W = rgb.shape
        sizes.add((H, W))
        assert (H, W) == summary.image_sizes[i]
        assert abs(H - cfg["size"][0]) <= 2 and abs(W - cfg["size"][1]) <= 2
        p = tifffile.imread(root / "sixteen_band" / f"{i}_P.tif")
        m = tifffile.imread(root / "sixteen_band" / f"{i}_M.tif")
        a = tifffile.imread(root / "sixteen_band" / f"{i}_A.tif")
        assert p.shape == (H, W) and p.dtype == np.uint16
        assert m.dtype == a.dtype == np.uint16
        assert m.shape[0] == 8 and abs(m.shape[1] - H / 4) <= 1.5 and abs(m.shape[2] - W / 4) <= 1.5
        assert a.shape[0] == 8 and abs(a.shape[1] - H / 25) <= 1.5 and abs(a.shape[2] - W / 25) <= 1.5
        # 11-bit products stay within 0..2047; A uses its 14-bit range.
        assert rgb.max() <= 2047 and p.max() <= 2047 and m.max() <= 2047
        assert a.max() <= 16383 and a.max() > 2047
        assert rgb.min() < rgb.max() and m.std() > 0
    assert len(sizes) > 1  # per-image size jitter


def test_wkt_files_have_ten_rows_per_image_and_empty_rows(small_dataset):
    root, summary = small_dataset
    rows = _rows(root / "train_wkt_v4.csv")
    assert rows[0] == ["ImageId", "ClassType", "MultipolygonWKT"]
    body = rows[1:]
    assert [(r[0], r[1]) for r in body] == [(i, str(c)) for i in summary.train_ids for c in range(1, 11)]
    assert any(r[2] == "MULTIPOLYGON EMPTY" for r in body)
    assert any(r[2].startswith("MULTIPOLYGON (((") for r in body)
    numbers = re.findall(r"-?\d+\.(\d+)", " ".join(r[2] for r in body))
    assert numbers and max(len(n) for n in numbers) <= 8
    sub = _rows(root / "sample_submission.csv")
    assert sub[0] == ["ImageId", "ClassType", "MultipolygonWKT"]
    assert [(r[0], r[1]) for r in sub[1:]] == [(i, str(c)) for i in summary.test_ids for c in range(1, 11)]
    assert all(r[2] == "MULTIPOLYGON EMPTY" for r in sub[1:])


def test_reads_back_through_dstl_dataset_with_labels_matching_the_rendered_masks(small_dataset, small_config):
    root, summary = small_dataset
    cfg = small_config
    ds = DstlDataset(root)
    assert list(ds.train_ids) == summary.train_ids
    assert list(ds.test_ids) == summary.test_ids
    i = summary.train_ids[0]
    scene = ds.read_scene(i)
    H, W = summary.image_sizes[i]
    assert scene.data.shape == (20, H, W) and scene.data.dtype == np.float32
    assert 0.0 <= scene.data.min() and scene.data.max() <= 1.0
    # The masks a reader rasterises from train_wkt_v4.csv are exactly the ones the pixels were
    # rendered from (regenerate image 0 in memory from its seed).
    again = make_image(np.random.default_rng(image_seed(cfg["seed"], 0)), i, cfg["size"])
    assert np.array_equal(ds.masks(i), again.masks)
    labels = read_wkt_csv(root / "train_wkt_v4.csv")[i]
    assert all(labels[c].equals(again.labels[c]) or (labels[c].is_empty and again.labels[c].is_empty)
               for c in range(1, 11))
    assert summary.class_fraction[6] + summary.class_fraction[5] > 0  # vegetation somewhere


def test_same_seed_gives_byte_identical_files_and_prefix_stability(tmp_path):
    kw = {"size": (300, 112), "seed": 3}  # > 2 bands of rows: rendered by several threads
    a = generate_dataset(tmp_path / "a", 2, 1, **kw).root
    b = generate_dataset(tmp_path / "b", 2, 1, **kw).root
    c = generate_dataset(tmp_path / "c", 1, 0, **kw).root
    d = generate_dataset(tmp_path / "d", 2, 1, size=(300, 112), seed=4).root
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 3 * 4 + 3
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    # A smaller dataset from the same seed starts with the same image.
    first = f"three_band/{image_id(0)}.tif"
    assert (a / first).read_bytes() == (c / first).read_bytes()
    assert (a / first).read_bytes() != (d / first).read_bytes()


def test_refuses_a_folder_that_is_not_a_synthetic_dataset(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(DstlError, match="not empty"):
        generate_dataset(tmp_path, 1, 0, size=(64, 64))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(DstlError, match="not a folder"):
        generate_dataset(tmp_path / "file", 1, 0, size=(64, 64))


def test_replaces_a_synthetic_dataset_only_when_asked(tmp_path):
    root = tmp_path / "ds"
    generate_dataset(root, 1, 1, size=(64, 70), seed=1)
    assert is_synthetic_dataset(root)
    before = (root / "three_band" / f"{image_id(0)}.tif").read_bytes()
    with pytest.raises(DstlError, match="already holds a synthetic dataset"):
        generate_dataset(root, 2, 0, size=(64, 70), seed=2)
    assert (root / "three_band" / f"{image_id(0)}.tif").read_bytes() == before
    summary = generate_dataset(root, 2, 0, size=(64, 70), seed=2, overwrite=True)
    assert list(read_grid_sizes(root / "grid_sizes.csv")) == summary.train_ids
    assert not (root / "three_band" / f"{image_id(0, test=True)}.tif").exists()
    assert (root / "three_band" / f"{image_id(0)}.tif").read_bytes() != before
    assert not (root / ".partial").exists()


def test_an_interrupted_run_leaves_no_half_dataset(tmp_path, monkeypatch):
    real = writer_mod.make_image
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(writer_mod, "make_image", flaky)
    root = tmp_path / "ds"
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(root, 2, 1, size=(64, 64))
    assert list(root.iterdir()) == []
    monkeypatch.setattr(writer_mod, "make_image", real)
    (root / ".partial").mkdir()  # a stale leftover is cleaned up by the next run
    generate_dataset(root, 1, 0, size=(64, 64))
    assert not (root / ".partial").exists() and (root / "grid_sizes.csv").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"n_train": -1}, "training images"),
    ({"n_test": 10**6}, "test images"),
    ({"n_train": 0, "n_test": 0}, "at least one"),
    ({"size": (63, 100)}, "outside"),
    ({"size": (100, 9000)}, "outside"),
    # 8192 x 8192 jitters up to 8208 x 8208 = 67.4 megapixels: every reader would refuse such images.
    ({"size": (8192, 8192)}, "image size 8192x8192: image of 8208 x 8208 px .* larger than the limit of 64 "
                             "megapixels; .*DSTL_MAX_IMAGE_MEGAPIXELS=68"),
    ({"seed": -5}, "seed"),
])
def test_rejects_bad_arguments(tmp_path, kwargs, match):
    args = {"n_train": 1, "n_test": 0, "size": (64, 64), "seed": 0, **kwargs}
    with pytest.raises(DstlError, match=match):
        generate_dataset(tmp_path / "ds", **args)
    assert not (tmp_path / "ds").exists()

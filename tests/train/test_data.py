"""dstl/train/data.py: the split by image, the in-memory training set, crops and augmentation."""

import numpy as np
import pytest
import torch

from dstl.engine import dihedral, dihedral_inverse
from dstl.errors import DataError
from dstl.train.data import STORE_SCALE, TrainSet, class_fractions, split_ids, split_score

BANDS = ("R", "G", "B")


def _images(seed=0, sizes=((70, 80), (64, 90), (96, 72))):
    rng = np.random.default_rng(seed)
    images = [rng.random((3, h, w), dtype=np.float32) for h, w in sizes]
    masks = []
    for h, w in sizes:
        m = np.zeros((10, h, w), dtype=np.uint8)
        m[0, : h // 2, : w // 3] = 1                          # an asymmetric block: reveals any flip
        m[4] = rng.random((h, w)) < 0.4                       # noise: reveals any misalignment
        m[9, h - 5: h - 3, 7:9] = 1                           # a tiny "vehicle" near the bottom
        masks.append(m)
    return images, masks


def _trainset(crop=32, rare_prob=0.5, rare=(10,), seed=0, **kw):
    images, masks = _images(seed)
    ts = TrainSet.from_arrays([f"i{k}" for k in range(len(images))], images, masks, BANDS, crop,
                              rare_classes=list(rare), rare_prob=rare_prob, **kw)
    return ts, images, masks


# ------------------------------------------------------------------------------------- the split

def _counts(ids, table):
    return {i: np.asarray(table[i], dtype=float) for i in ids}


def test_split_is_by_image_reproducible_and_disjoint():
    ids = [f"60{k:02d}_1_1" for k in range(25)]
    rng = np.random.default_rng(1)
    counts = _counts(ids, {i: rng.integers(0, 1000, 10) for i in ids})
    train, val = split_ids(ids, counts, 0.2, seed=3)
    assert sorted(train + val) == sorted(ids) and not set(train) & set(val)
    assert len(val) == 5
    assert (train, val) == split_ids(list(reversed(ids)), counts, 0.2, seed=3)  # order-independent


def test_split_balances_class_composition():
    # Four images: two contain only class 1, two only class 7. A balanced 2/2 split puts one of
    # each kind on both sides; any other split leaves a class out of validation or training.
    table = {"a": [100] + [0] * 9, "b": [100] + [0] * 9, "c": [0] * 6 + [100] + [0] * 3,
             "d": [0] * 6 + [100] + [0] * 3}
    for seed in range(5):
        train, val = split_ids(list(table), _counts(table, table), 0.5, seed=seed)
        assert {table[i][0] > 0 for i in val} == {True, False}, (seed, val)
        assert {table[i][0] > 0 for i in train} == {True, False}


def test_split_score_prefers_balanced_splits():
    even = split_score(np.array([10.0, 10.0]), np.array([40.0, 40.0]))
    skewed = split_score(np.array([20.0, 0.0]), np.array([30.0, 50.0]))
    assert even < skewed


def test_split_needs_two_images_and_keeps_one_on_each_side():
    with pytest.raises(DataError, match="at least 2 labelled images"):
        split_ids(["a"], {"a": np.ones(10)}, 0.2, 0)
    table = {"a": np.ones(10), "b": np.ones(10)}
    train, val = split_ids(["a", "b"], table, 0.9, 0)
    assert len(train) == 1 and len(val) == 1


def test_class_fractions_counts_pixels_per_class():
    m = np.zeros((10, 4, 5), dtype=np.uint8)
    m[2, :2] = 1
    assert class_fractions(m).tolist() == [0, 0, 10] + [0] * 7


# --------------------------------------------------------------------------------- crops and D4

def test_crops_are_the_engine_dihedral_of_the_plain_crop_for_image_and_masks_together():
    ts, _, _ = _trainset()
    batch = ts.sample(96, torch.Generator().manual_seed(0))
    assert batch.x.shape == (96, 3, 32, 32) and batch.y.shape == (96, 10, 32, 32)
    assert batch.x.is_contiguous(memory_format=torch.channels_last)
    assert set(batch.transform.tolist()) == set(range(8))
    for k in range(96):
        x, y = ts.plain_crop(int(batch.image[k]), int(batch.top[k]), int(batch.left[k]))
        t = int(batch.transform[k])
        assert torch.allclose(batch.x[k], dihedral(x, t), atol=1e-6)
        assert torch.equal(batch.y[k], dihedral(y, t))


def test_the_8_transforms_are_distinct_and_invertible():
    ts, _, _ = _trainset()
    n = torch.zeros(8, dtype=torch.long)
    pos = torch.full((8,), 3, dtype=torch.long)
    x, y = ts.crops(n, pos, pos, torch.arange(8))
    flat_x = {tuple(x[t].flatten().tolist()) for t in range(8)}
    flat_y = {tuple(y[t].flatten().tolist()) for t in range(8)}
    assert len(flat_x) == 8 and len(flat_y) == 8
    for t in range(8):
        assert torch.allclose(dihedral_inverse(x[t], t), x[0], atol=1e-6)
        assert torch.equal(dihedral_inverse(y[t], t), y[0])


def test_crops_stay_inside_their_image():
    ts, images, _ = _trainset(crop=64, rare_prob=0.7)
    b = ts.sample(500, torch.Generator().manual_seed(1))
    h = torch.tensor([im.shape[1] for im in images])[b.image]
    w = torch.tensor([im.shape[2] for im in images])[b.image]
    assert (b.top >= 0).all() and (b.left >= 0).all()
    assert (b.top + 64 <= h).all() and (b.left + 64 <= w).all()


def test_rare_class_oversampling():
    def share_with_vehicle(prob):
        ts, _, _ = _trainset(crop=32, rare_prob=prob)
        b = ts.sample(400, torch.Generator().manual_seed(2))
        return (b.y[:, 9].flatten(1).amax(1) > 0).float().mean().item()

    assert share_with_vehicle(1.0) == 1.0      # every crop contains the centre pixel it was drawn at
    assert share_with_vehicle(0.0) < 0.35      # uniform crops rarely see the 2x2 vehicles
    ts, _, _ = _trainset(rare=(2, 10))
    assert ts.rare_present == [10]              # a rare class with no pixels is not sampled from


def test_crops_pick_images_by_area_or_uniformly():
    sizes = ((40, 40), (400, 400))  # areas 1 : 100
    images, masks = _images(sizes=sizes)

    def share_of_small(sample_by):
        ts = TrainSet.from_arrays(["small", "big"], images, masks, BANDS, 32, sample_by=sample_by)
        image, *_ = ts.sample_positions(4000, torch.Generator().manual_seed(3))
        return (image == 0).double().mean().item()

    assert share_of_small("area") < 0.03                 # ~1 %: the big image takes nearly all crops
    assert 0.45 < share_of_small("image") < 0.55         # each image half of them
    # the rare-class half: the big image holds 100x the vehicle pixels of the small one
    big_vehicles = [m.copy() for m in masks]
    big_vehicles[1][9, 100:300, 100:300] = 1

    def rare_share_of_small(sample_by):
        ts = TrainSet.from_arrays(["small", "big"], images, big_vehicles, BANDS, 32, rare_classes=[10],
                                  rare_prob=1.0, sample_by=sample_by)
        image, *_ = ts.sample_positions(4000, torch.Generator().manual_seed(4))
        return (image == 0).double().mean().item()

    assert rare_share_of_small("area") < 0.01
    assert 0.45 < rare_share_of_small("image") < 0.55
    with pytest.raises(ValueError, match="sample_by must be 'area' or 'image'"):
        TrainSet.from_arrays(["small", "big"], images, masks, BANDS, 32, sample_by="pixels")


def test_storage_normalisation_and_statistics():
    ts, images, _ = _trainset(store_dtype="int16")
    assert ts.images.dtype == torch.int16
    all_pix = np.concatenate([im.reshape(3, -1) for im in images], axis=1)
    assert np.allclose(ts.stats.mean, all_pix.mean(axis=1), atol=0.01)
    assert np.allclose(ts.stats.std, all_pix.std(axis=1), atol=0.01)
    x, _ = ts.plain_crop(1, 5, 9)
    mean, std = np.reshape(ts.stats.mean, (3, 1, 1)), np.reshape(ts.stats.std, (3, 1, 1))
    ref = (images[1][:, 5:37, 9:41] - mean) / std
    assert np.allclose(x.numpy(), ref, atol=1.0 / STORE_SCALE / min(ts.stats.std) + 1e-6)
    ts32, _, _ = _trainset(store_dtype="float32", stats=ts.stats)
    x32, _ = ts32.plain_crop(1, 5, 9)
    assert np.allclose(x32.numpy(), ref, atol=1e-5)


def test_sampling_is_reproducible_from_the_generator_seed():
    ts, _, _ = _trainset()
    a = ts.sample(16, torch.Generator().manual_seed(5))
    b = ts.sample(16, torch.Generator().manual_seed(5))
    c = ts.sample(16, torch.Generator().manual_seed(6))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.top, c.top)


def test_image_smaller_than_the_crop_is_a_clear_error():
    images, masks = _images(sizes=((40, 80),))
    with pytest.raises(DataError, match="smaller than the training crop 64"):
        TrainSet.from_arrays(["tiny"], images, masks, BANDS, 64)


def test_class_frequency_counts_the_images_own_pixels_not_the_padding():
    ts, _, masks = _trainset()
    total = sum(m.shape[1] * m.shape[2] for m in masks)
    expected = sum(m.reshape(10, -1).sum(axis=1) for m in masks) / total
    assert np.allclose(ts.class_frequency, expected)
    assert ts.class_frequency[1] == 0 and 0.3 < ts.class_frequency[4] < 0.5

"""dstl.splits: the 5 held-out real images, recomputed from the real labels; never trained on."""

import json
from pathlib import Path

import numpy as np
import pytest

from dstl.errors import DstlError
from dstl.splits import (
    REAL_HOLDOUT_IDS,
    check_not_held_out,
    choose_holdout,
    class_table,
    held_out,
    is_held_out,
    real_id,
    real_split,
    without_held_out,
)

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real"
needs_real = pytest.mark.skipif(not (REAL / "train_geojson_v3").is_dir(),
                                reason=f"the real DSTL labels are not at {REAL} (../shared/real)")


def _cls_stats():
    """(ids, area, count) of the 25 training images from cls-stats.json (the real train_wkt_v4.csv)."""
    stats = json.loads((REAL / "cls-stats.json").read_text())
    ids = sorted(stats)
    area = np.array([[stats[i][str(c)]["area"] for c in range(10)] for i in ids])
    count = np.array([[stats[i][str(c)]["number"] for c in range(10)] for i in ids])
    return ids, area, count


@needs_real
def test_holdout_recomputed_from_the_real_wkt_labels():
    ids, area, count = _cls_stats()
    assert len(ids) == 25
    assert choose_holdout(ids, area, count) == REAL_HOLDOUT_IDS


@needs_real
@pytest.mark.slow
def test_holdout_recomputed_from_the_real_geojson_layers():
    ids, area, count = class_table(REAL)
    assert choose_holdout(ids, area, count) == REAL_HOLDOUT_IDS


@needs_real
def test_every_class_on_both_sides_waterway_and_standing_water_included():
    ids, area, count = _cls_stats()
    held = np.isin(ids, REAL_HOLDOUT_IDS)
    assert held.sum() == 5
    for c in range(10):  # classes 1..10, waterway (7) and standing water (8) among them
        assert count[held, c].sum() > 0 and count[~held, c].sum() > 0, c + 1
    # The held-out share of each class's area is near 5/25 (no class left almost unseen).
    share = area[held].sum(0) / area.sum(0)
    assert ((share > 0.1) & (share < 0.35)).all(), share.round(3)


def test_deterministic_whatever_the_input_order():
    rng = np.random.default_rng(0)
    ids = [f"60{i:02d}_1_1" for i in range(12)]
    count = rng.integers(0, 5, (12, 10))
    area = rng.random((12, 10)) * (count > 0)
    first = choose_holdout(ids, area, count, k=3)
    perm = rng.permutation(12)
    assert choose_holdout([ids[i] for i in perm], area[perm], count[perm], k=3) == first
    assert first == tuple(sorted(first))


def test_a_class_in_one_image_only_is_ignored_one_in_two_images_is_split():
    ids = ["a", "b", "c", "d"]
    count = np.zeros((4, 10), dtype=int)
    count[:, 4] = 1            # trees everywhere
    count[0, 6] = count[1, 6] = 1  # waterway in a and b only: one each side
    count[2, 0] = 1            # buildings in c only: cannot be on both sides, ignored
    assert choose_holdout(ids, count.astype(float), count, k=1) in (("a",), ("b",))
    count[2, 7] = count[3, 7] = 1  # standing water in c and d only: with k=1 no choice splits both
    with pytest.raises(DstlError, match="both sides"):
        choose_holdout(ids, count.astype(float), count, k=1)


def test_held_out_ids_never_reach_training_or_validation():
    all_ids = list(_ALL_REAL)
    scenes = [f"synth_rl_{i}" for i in all_ids] + [f"synth_rl_{i}_r0_c640" for i in all_ids]
    for ids in (all_ids, scenes):
        train = without_held_out(ids)
        assert len(train) == len(ids) - 5 * (len(ids) // 25)
        assert not set(map(real_id, train)) & set(REAL_HOLDOUT_IDS)
        assert set(map(real_id, held_out(ids))) == set(REAL_HOLDOUT_IDS)
        check_not_held_out(train)
        with pytest.raises(DstlError, match="held-out"):
            check_not_held_out(train[:3] + [ids[all_ids.index("6100_2_2")]], "validation")
    assert is_held_out("synth_rl_6100_2_2_r1024_c0") and not is_held_out("synth_9100_0_0")
    assert real_id("synth_rl_6040_1_3") == "6040_1_3" and real_id("6040_1_3") == "6040_1_3"


_ALL_REAL = ("6010_1_2", "6010_4_2", "6010_4_4", "6040_1_0", "6040_1_3", "6040_2_2", "6040_4_4", "6060_2_3",
             "6070_2_3", "6090_2_0", "6100_1_3", "6100_2_2", "6100_2_3", "6110_1_2", "6110_3_1", "6110_4_0",
             "6120_2_0", "6120_2_2", "6140_1_2", "6140_3_1", "6150_2_3", "6160_2_1", "6170_0_4", "6170_2_4",
             "6170_4_1")


@needs_real
def test_real_split_of_the_real_folder_and_refusal_elsewhere(tmp_path):
    held, rest = real_split(REAL)
    assert sorted(held) == sorted(REAL_HOLDOUT_IDS) and len(rest) == 20
    assert sorted(held + rest) == sorted(_ALL_REAL)
    (tmp_path / "train_geojson_v3" / "6100_2_2").mkdir(parents=True)
    with pytest.raises(DstlError, match="held-out"):
        real_split(tmp_path)


@needs_real
def test_synth_split_writes_only_that_side(tmp_path):
    from dstl.dataset import DstlDataset
    from tests.cli_runner import dstl, error_line

    out = tmp_path / "held"
    res = dstl("synth", out, "--layouts", REAL, "--split", "holdout", "--ids", "6100_2_2", "6070_2_3",
               "--scale", "0.03")
    assert res.returncode == 0, res.stderr
    assert DstlDataset(out).image_ids == ["synth_rl_6100_2_2"]
    msg = error_line(dstl("synth", tmp_path / "x", "--layouts", REAL, "--split", "rest", "--ids", "6100_2_2"))
    assert "--split rest" in msg

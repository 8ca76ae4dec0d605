"""dstl/train/checkpoint.py: atomic writes, corrupt/missing files, RNG state round trip."""

import random

import numpy as np
import pytest
import torch

from dstl.train import checkpoint as ckpt


def _state(v: float) -> dict:
    return {"model": {"w": torch.full((3, 3), v)}, "epoch": int(v), "history": [{"epoch": 1, "x": None}]}


def test_round_trip(tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    ckpt.save_checkpoint(path, _state(2.0))
    state = ckpt.load_checkpoint(path)
    assert torch.equal(state["model"]["w"], torch.full((3, 3), 2.0))
    assert state["epoch"] == 2 and state["history"] == [{"epoch": 1, "x": None}]


def test_a_failure_during_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    ckpt.save_checkpoint(path, _state(1.0))
    before = path.read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):  # writes part of the file, then the process "dies"
        real_save(obj, f, *args, **kwargs)
        with open(f, "r+b") as fh:
            fh.truncate(100)
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(path, _state(5.0))
    assert path.read_bytes() == before
    assert ckpt.load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporary left behind


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint at .* without --resume"):
        ckpt.load_checkpoint(tmp_path / "none.pt")
    good = tmp_path / "good.pt"
    ckpt.save_checkpoint(good, _state(1.0))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ckpt.CheckpointError, match="unreadable"):
        ckpt.load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(ckpt.CheckpointError, match="not a version-1"):
        ckpt.load_checkpoint(other)


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.random(), np.random.normal(), torch.rand(2)  # move the streams (and numpy's gauss cache)
    ckpt.save_checkpoint(tmp_path / "c.pt", {"rng": [ckpt.get_rng_state()]})
    expected = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3).tolist())
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    ckpt.set_rng_state(ckpt.load_checkpoint(tmp_path / "c.pt")["rng"][0])
    assert (random.random(), np.random.normal(), np.random.rand(), torch.rand(3).tolist()) == expected

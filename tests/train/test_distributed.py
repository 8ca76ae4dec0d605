"""dstl/train/distributed.py: sharding, fingerprints, real `torchrun --nproc_per_node=2` (gloo) training."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dstl.models import load_model
from dstl.train import distributed as ddp
from tests.cli_runner import python_env

REPO = Path(__file__).resolve().parents[2]
WORKER = """
import os, sys
from pathlib import Path
from dstl.train.train import main
result = main(sys.argv[1:])
# The test's own record of what each rank holds (the training script itself writes only on rank 0).
Path(os.environ["FINGERPRINT_DIR"], "rank" + os.environ["RANK"] + ".txt").write_text(result["fingerprint"])
"""


def test_single_process_defaults(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = ddp.init_distributed("cpu")
    assert (info.rank, info.world_size, info.is_main, info.distributed) == (0, 1, True, False)
    assert ddp.broadcast_object({"a": 1}, info) == {"a": 1}
    assert ddp.all_gather_object(3, info) == [3]


def test_shards_partition_the_global_batch():
    batch = torch.arange(12)
    shards = [ddp.shard(batch, ddp.DistInfo(rank=r, world_size=3)) for r in range(3)]
    assert sorted(torch.cat(shards).tolist()) == list(range(12))
    assert shards[1].tolist() == [1, 4, 7, 10]


def test_fingerprint_sees_every_bit():
    m = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    fp = ddp.parameter_fingerprint(m)
    assert fp == ddp.parameter_fingerprint(m)
    with torch.no_grad():
        m[0].weight[0, 0, 0, 0] = torch.nextafter(m[0].weight[0, 0, 0, 0], torch.tensor(1.0))
    assert ddp.parameter_fingerprint(m) != fp
    m[1].num_batches_tracked += 1  # buffers count too
    assert len({fp, ddp.parameter_fingerprint(m)}) == 2


def test_bad_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(Exception, match="WORLD_SIZE='two' is not an integer"):
        ddp.init_distributed("cpu")


@pytest.mark.slow
def test_torchrun_two_cpu_processes_hold_identical_parameters(make_dstl_folder, tmp_path):
    data = make_dstl_folder(tmp_path / "data", sizes={"9001_0_0": (96, 100), "9001_1_2": (97, 90),
                                                      "9002_3_4": (100, 96)})
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    out = tmp_path / "w"
    env = python_env(OMP_NUM_THREADS="1", FINGERPRINT_DIR=str(tmp_path))
    args = ["--data", str(data), "--out", str(out), "--checkpoint", str(tmp_path / "c.pt"),
            "--model", "unet", "--set", "model_args.base_width=4", "--crop-size", "64",
            "--set", "tile_size=64",
            "--batch-size", "4", "--steps-per-epoch", "3", "--epochs", "2", "--seed", "1"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    r = subprocess.run([*torchrun, str(worker), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    prints = [(tmp_path / f"rank{k}.txt").read_text() for k in range(2)]
    assert prints[0] == prints[1]  # DDP: both ranks apply the same averaged update, bit for bit
    loaded = load_model(str(out))  # rank 0 wrote one complete weights folder
    assert loaded.config.training["command"].startswith("torchrun --nproc_per_node=2 train/train.py")
    assert "2 x " in loaded.config.training["hardware"]
    with open(out / "metrics.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]

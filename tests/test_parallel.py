"""dstl.parallel: sharding, torchrun's environment, and failure propagation across real ranks."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from dstl.errors import DataError, DstlError
from dstl.parallel import Group, RankFailed, distributed, env_ranks, shard_ids
from tests.cli_runner import python_env

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def no_torchrun_env(monkeypatch):
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("n, world", [(0, 1), (1, 3), (7, 1), (7, 2), (7, 3), (10, 4), (3, 5)])
def test_shards_are_round_robin_disjoint_and_complete(n, world):
    ids = [f"id{i}" for i in range(n)]
    shards = [shard_ids(ids, r, world) for r in range(world)]
    assert sorted(sum(shards, [])) == sorted(ids)  # every id exactly once
    for r, shard in enumerate(shards):
        assert shard == [ids[i] for i in range(r, n, world)]  # round robin, order kept
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_shard_rejects_bad_rank_or_world():
    for rank, world in [(2, 2), (-1, 2), (0, 0), (0, True), (1.0, 2)]:
        with pytest.raises(ValueError):
            shard_ids(["a", "b"], rank, world)


def test_env_ranks_from_torchrun_variables(no_torchrun_env):
    assert env_ranks() == (0, 1, 0)
    no_torchrun_env.setenv("WORLD_SIZE", "4")
    no_torchrun_env.setenv("RANK", "3")
    no_torchrun_env.setenv("LOCAL_RANK", "1")
    assert env_ranks() == (3, 4, 1)


@pytest.mark.parametrize("env, message", [
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not an integer"),
    ({"WORLD_SIZE": "0"}, "must be >= 1"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 is not below WORLD_SIZE=2"),
    ({"WORLD_SIZE": "2", "RANK": "-1"}, "must be >= 0"),
])
def test_malformed_environment_is_a_clear_error(no_torchrun_env, env, message):
    for k, v in env.items():
        no_torchrun_env.setenv(k, v)
    with pytest.raises(DstlError, match=message):
        env_ranks()


def test_single_process_needs_no_process_group(no_torchrun_env):
    with distributed() as group:
        assert group == Group(0, 1, 0)
        assert group.is_main and not group.distributed
        assert group.gather("x") == ["x"]
        group.barrier()
        with pytest.raises(DataError, match="boom"), group.together("working"):
            raise DataError("boom")  # a plain block: the error is the block's own
    assert not torch.distributed.is_initialized()


def test_group_without_torchrun_master_is_a_clear_error(no_torchrun_env):
    no_torchrun_env.setenv("WORLD_SIZE", "2")
    no_torchrun_env.setenv("RANK", "1")
    with pytest.raises(DstlError, match="start the command with torchrun"), distributed():
        pass


def test_device_choice():
    g = Group(rank=1, world_size=2, local_rank=1)
    assert g.device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        assert g.device("auto") == torch.device("cuda", 1 % torch.cuda.device_count())
    else:
        assert g.device("auto") == torch.device("cpu")
        assert g.device(None) == torch.device("cpu")
        with pytest.raises(DstlError, match="no CUDA GPU"):
            g.device("cuda")
        with pytest.raises(DstlError, match="no CUDA GPU"):
            g.device("cuda:0")
    with pytest.raises(DstlError, match="not a device"):
        g.device("gpu please")
    with pytest.raises(DstlError, match="only cpu and cuda"):
        g.device("meta")


WORKER = textwrap.dedent("""
    import json, os, sys
    from dstl.errors import DataError
    from dstl.parallel import RankFailed, distributed, shard_ids

    out = sys.argv[1]
    report = {}
    with distributed() as group:
        report["group"] = [group.rank, group.world_size, group.local_rank]
        report["env_rank"] = int(os.environ["RANK"])
        report["shard"] = shard_ids(list("abcde"), group.rank, group.world_size)
        with group.together("gathering"):
            report["gathered"] = group.gather(report["shard"])
        try:
            with group.together("working"):
                if group.rank == 1:
                    raise DataError("rank one's input is bad")
                report["after_block"] = True  # rank 0 finished its block...
        except RankFailed as e:                 # ...but learns that rank 1 failed
            report["error"] = ["RankFailed", e.rank, str(e)]
        except DataError as e:
            report["error"] = ["DataError", str(e)]
        group.barrier()
    with open(os.path.join(out, f"rank{report['group'][0]}.json"), "w") as f:
        json.dump(report, f)
""")


def torchrun_command(nproc: int) -> list[str]:
    """The real torchrun launcher of this environment, on a free local port."""
    exe = Path(sys.executable).with_name("torchrun")
    launcher = [str(exe)] if exe.is_file() else [sys.executable, "-m", "torch.distributed.run"]
    return launcher + ["--standalone", f"--nproc_per_node={nproc}"]


@pytest.mark.slow  # two fresh Python processes importing torch: ~20 s on a busy 2-core machine
def test_real_torchrun_ranks_share_failures(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = python_env(OMP_NUM_THREADS="1")
    proc = subprocess.run(torchrun_command(2) + [str(script), str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["group"] == [0, 2, 0] and r1["group"] == [1, 2, 1]
    assert r0["shard"] == ["a", "c", "e"] and r1["shard"] == ["b", "d"]
    assert r0["gathered"] == r1["gathered"] == [["a", "c", "e"], ["b", "d"]]
    assert r0["after_block"] is True
    assert r0["error"] == ["RankFailed", 1, "rank 1 failed while working: rank one's input is bad"]
    assert r1["error"] == ["DataError", "rank one's input is bad"]


def test_rank_failed_is_a_one_line_user_error():
    e = RankFailed(3, "segmenting", "data/three_band/x.tif: file not found")
    assert isinstance(e, DstlError)
    assert (e.rank, e.message) == (3, "data/three_band/x.tif: file not found")
    assert str(e) == "rank 3 failed while segmenting: data/three_band/x.tif: file not found"

"""Splitting independent per-image work across processes started by torchrun.

`torchrun --standalone --nproc_per_node=N -m dstl submit ...` starts N copies of the command with
RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR/MASTER_PORT) in the environment. Each copy:

    with distributed() as group:                  # joins the process group (no-op without torchrun)
        with group.together("checking the input"):
            ...                                   # every rank validates the same input
        mine = shard_ids(ids, group.rank, group.world_size)
        with group.together("segmenting"):
            ...                                   # each rank works on its share
        ...                                       # rank 0 (group.is_main) merges

`together` is the synchronisation point: every rank enters and leaves it, and if the block
raised on ANY rank it raises on EVERY rank (the rank's own exception where it had one,
`RankFailed` naming the failed rank and its error elsewhere), so no rank waits forever on a
peer that gave up and no rank goes on with a half-done job. A rank that dies outright (killed,
out of memory) breaks the connection; the others' collective then fails too, and torchrun stops
the whole job.

Only tiny Python objects (status messages) go through the process group, so the backend is
always gloo: it runs on CPU and works as well when the ranks drive CUDA GPUs (each rank uses the
GPU `device()` picks from LOCAL_RANK). Bulk results travel through files (one folder shared by
all ranks; on several machines it must be a shared file system).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from dstl.errors import DstlError

__all__ = ["Group", "RankFailed", "distributed", "env_ranks", "shard_ids"]

#: How long a collective waits for the slowest rank. Ranks meet after doing their whole share of
#: the work, which on a CPU can take hours for a full test set; a rank that dies is noticed at
#: once through its closed connection, so a long timeout costs nothing in the failure case.
DEFAULT_TIMEOUT = datetime.timedelta(hours=12)


class RankFailed(DstlError):
    """Another rank of the process group failed; `rank` and `message` say which and why."""

    def __init__(self, rank: int, what: str, message: str):
        self.rank = rank
        self.message = message
        super().__init__(f"rank {rank} failed while {what}: {message}")


def shard_ids(ids: Sequence, rank: int, world_size: int) -> list:
    """The share of `ids` that rank `rank` of `world_size` works on: items rank, rank + W, ...

    Round robin keeps the shares' sizes within one of each other and, for ids sorted by
    region, mixes regions so that no rank gets all the large scenes. The shares are disjoint
    and together hold every item once; a rank beyond the number of items gets [].
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be an integer >= 1, got {world_size!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an integer in [0, {world_size}), got {rank!r}")
    return list(ids)[rank::world_size]


def _env_int(name: str, default: int, minimum: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise DstlError(f"environment variable {name}={value!r} is not an integer "
                        "(it is set by torchrun)") from None
    if n < minimum:
        raise DstlError(f"environment variable {name}={value!r} must be >= {minimum}")
    return n


def env_ranks() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) without it.

    Raises DstlError if the variables are malformed or inconsistent (RANK >= WORLD_SIZE).
    """
    world = _env_int("WORLD_SIZE", 1, 1)
    rank = _env_int("RANK", 0, 0)
    local_rank = _env_int("LOCAL_RANK", 0, 0)
    if rank >= world:
        raise DstlError(f"RANK={rank} is not below WORLD_SIZE={world}")
    return rank, world, local_rank


@dataclass(frozen=True)
class Group:
    """This process's place among the ranks (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on rank 0, the rank that writes shared results and reports errors."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def device(self, requested: str | None = "auto") -> torch.device:
        """The torch device this rank computes on.

        "auto" (or None): GPU LOCAL_RANK (modulo the number of GPUs, so ranks may share one)
        if CUDA is available, else the CPU. "cuda": the same GPU choice, DstlError without
        CUDA. "cpu", "cuda:K" and other torch device strings are taken as given.
        """
        text = (requested or "auto").strip().lower()
        if text in ("auto", "cuda"):
            if torch.cuda.is_available():
                return torch.device("cuda", self.local_rank % torch.cuda.device_count())
            if text == "cuda":
                raise DstlError("--device cuda: no CUDA GPU is visible to torch")
            return torch.device("cpu")
        try:
            dev = torch.device(text)
        except (RuntimeError, ValueError):
            raise DstlError(f"--device {requested!r}: not a device (use auto, cpu, cuda or cuda:N)") from None
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise DstlError(f"--device {requested}: no CUDA GPU is visible to torch")
            if dev.index is not None and dev.index >= torch.cuda.device_count():
                raise DstlError(f"--device {requested}: only {torch.cuda.device_count()} GPU(s) visible")
        elif dev.type != "cpu":
            raise DstlError(f"--device {requested!r}: only cpu and cuda devices are supported")
        return dev

    def gather(self, obj) -> list:
        """[obj of rank 0, obj of rank 1, ...] on every rank (small picklable objects)."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        """Wait until every rank got here."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    @contextlib.contextmanager
    def together(self, what: str) -> Iterator[None]:
        """Run a block on every rank; if it raised anywhere, raise everywhere (module docstring).

        `what` ("segmenting", ...) names the step in `RankFailed` messages. On the failed rank
        its own exception propagates unchanged. Elsewhere `RankFailed` names the lowest failed
        rank whose error is a `DstlError` (bad input) if there is one, else the lowest failed
        rank. In a single process this is a plain block.
        """
        if not self.distributed:
            yield
            return
        error: Exception | None = None
        try:
            yield
        except Exception as e:  # noqa: BLE001 - shared with the peers, then re-raised below
            error = e
        status = None if error is None else (isinstance(error, DstlError), _describe(error))
        statuses = self.gather(status)
        if error is not None:
            raise error
        failed = [(r, s) for r, s in enumerate(statuses) if s is not None]
        if failed:
            failed.sort(key=lambda f: (not f[1][0], f[0]))
            rank, (_, message) = failed[0]
            raise RankFailed(rank, what, message)


def _describe(error: Exception) -> str:
    if isinstance(error, DstlError):
        return str(error)
    return f"{type(error).__name__}: {error}"


@contextlib.contextmanager
def distributed(timeout: datetime.timedelta = DEFAULT_TIMEOUT) -> Iterator[Group]:
    """Join torchrun's process group (gloo) for the block and leave it afterwards.

    Without torchrun's environment (or with WORLD_SIZE=1) no group is made and the block runs
    as rank 0 of 1. Raises DstlError if the environment is malformed or the group cannot be
    formed (e.g. MASTER_ADDR/MASTER_PORT missing: start the command with torchrun).
    """
    rank, world, local_rank = env_ranks()
    if world == 1:
        yield Group()
        return
    import torch.distributed as dist

    if dist.is_initialized():  # someone else (e.g. a caller's script) owns the group
        if dist.get_world_size() != world or dist.get_rank() != rank:
            raise DstlError("a torch.distributed process group with other ranks is already running")
        yield Group(rank, world, local_rank)
        return
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timeout)
    except (RuntimeError, ValueError, KeyError, OSError) as e:
        raise DstlError(f"cannot join the process group of rank {rank} of {world} (start the command "
                        f"with torchrun, which sets MASTER_ADDR and MASTER_PORT): "
                        f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    try:
        yield Group(rank, world, local_rank)
    finally:
        dist.destroy_process_group()

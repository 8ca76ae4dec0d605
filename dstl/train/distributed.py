"""Several processes (GPUs or machines) with torchrun and DistributedDataParallel.

`torchrun --nproc_per_node=N train/train.py ...` starts N copies of the script with RANK,
WORLD_SIZE, LOCAL_RANK (and MASTER_ADDR/PORT) in the environment; `init_distributed` reads them
and joins the process group: NCCL when the processes drive CUDA GPUs, gloo otherwise (CPU).
Without those variables it is a plain single-process run.

Work split: every rank draws the same GLOBAL batch of crop positions from an identically
seeded generator and takes its own interleaved shard (`shard`), the in-memory equivalent of
DistributedSampler; DDP averages gradients, so every rank applies the same update and holds the
same parameters (checked at the end with `assert_same_parameters`). Only rank 0 writes files.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import torch
import torch.distributed as dist

from dstl.models.hub import tensor_digest, unwrap_module
from dstl.parallel import Group, env_ranks


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: rank among world_size processes, local_rank on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group if WORLD_SIZE > 1 and pick this process's device.

    `device` is "auto" (CUDA if available), "cuda" or "cpu"; torchrun's variables and the device
    choice (GPU LOCAL_RANK with CUDA) are read exactly as `dstl.parallel` reads them for the CLI.
    NCCL is the backend for CUDA, gloo for CPU.
    """
    rank, world, local_rank = env_ranks()
    dev = Group(rank, world, local_rank).device(device)
    use_cuda = dev.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(dev)
    if world <= 1:
        return DistInfo(device=dev)
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        # Validation runs on rank 0 while the others wait at a barrier: allow it time.
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=60),
                                **({"device_id": dev} if use_cuda else {}))
    return DistInfo(rank, world, local_rank, dev, backend)


def shard(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's share of a global batch: rows rank, rank + W, rank + 2W, ..."""
    if not info.distributed:
        return x
    return x[info.rank::info.world_size]


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def broadcast_object(obj, info: DistInfo):
    """Rank 0's `obj` on every rank (picklable objects only)."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(obj, info: DistInfo) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts them at the start of each forward pass, so the last forward of an epoch leaves
    each rank with running statistics updated from its own shard; this makes them equal again
    before validation and checkpointing, exactly as the next forward would.
    """
    if not info.distributed:
        return
    for buf in module.buffers():
        dist.broadcast(buf.data, src=0)


def parameter_fingerprint(module: torch.nn.Module) -> str:
    """A hash of every parameter and buffer, bit for bit (equal iff identical): the weights files'
    own digest (`dstl.models.hub.tensor_digest`) of the module's state dict."""
    return tensor_digest(unwrap_module(module).state_dict())


def assert_same_parameters(module: torch.nn.Module, info: DistInfo) -> str:
    """Check that all ranks hold bit-identical weights; return the fingerprint."""
    fp = parameter_fingerprint(module)
    prints = all_gather_object(fp, info)
    if len(set(prints)) != 1:
        raise RuntimeError(f"ranks disagree on the model parameters: {prints}")
    return fp


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()

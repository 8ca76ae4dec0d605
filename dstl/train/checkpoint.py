"""Training checkpoints: atomic writes and exact resume.

A checkpoint is one `torch.save` file holding everything that decides the rest of a run: model,
optimiser and scheduler state, the epoch and global step reached, the best weights so far, the
metrics history, the config and split it was made with, and the random number generator states
(Python, NumPy, torch CPU, CUDA) of every process. It is written at the end of each epoch via
`dstl.atomic.atomic_path`: a run killed while writing leaves the previous checkpoint intact,
never a truncated file. Loading uses `torch.load(weights_only=True)`: no pickled code runs.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from dstl.atomic import atomic_path
from dstl.errors import DstlError

#: Bump when the layout of the checkpoint dict changes.
CHECKPOINT_VERSION = 1


class CheckpointError(DstlError):
    """A checkpoint is missing, unreadable, or from a run that cannot be resumed by this one."""


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write `state` to `path` atomically (temporary file beside it, then rename)."""
    state = {"checkpoint_version": CHECKPOINT_VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by `save_checkpoint`; CheckpointError if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path} to resume from (run once without --resume)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for truncated/corrupt files
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not a version-{CHECKPOINT_VERSION} dstl training "
                              "checkpoint")
    return state


# ---------------------------------------------------------------------------------------------
# Random number generator states, in a form torch.load(weights_only=True) accepts.

def get_rng_state() -> dict:
    """The Python, NumPy, torch and (if present) CUDA RNG states of this process."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": _to_lists(random.getstate()),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore states captured by `get_rng_state`."""
    random.setstate(_to_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state({
        "bit_generator": n["bit_generator"],
        "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
        "has_gauss": n["has_gauss"], "gauss": n["gauss"],
    })
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:  # a different number of visible GPUs: restore what matches
            for i, s in enumerate(cuda[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(s, i)


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, tuple) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x

"""Where the demo's model runs: the CPU, a GPU of the machine, or a Hugging Face ZeroGPU slice.

- CPU or a dedicated GPU (a GPU Space, a workstation): one `dstl.engine.Predictor` per model, made
  on first use with the engine's device choice (CUDA if present). Nothing touches CUDA at import.
- ZeroGPU Spaces (the `spaces` package is installed and ``SPACES_ZERO_GPU`` is set by the Space):
  a GPU is lent to one function call at a time. `predict_on_zero_gpu` is that function, wrapped
  with ``spaces.GPU`` at import (ZeroGPU needs its GPU functions declared before launch); inside
  it the model is moved to CUDA and run, and the probabilities come back on the CPU. Its tile
  progress is not reported (the call runs in ZeroGPU's worker process).

Without the `spaces` package the wrapper is the plain function, so this module is safe to import
anywhere. The app does not depend on `spaces`; a ZeroGPU Space installs it (README, "Space").
"""

import os

__all__ = ["ZERO_GPU_SECONDS", "on_zero_gpu", "predict_on_zero_gpu"]

#: Longest GPU lease one segmentation asks ZeroGPU for (a full 20-band scene takes a few seconds).
ZERO_GPU_SECONDS = 60

try:  # the `spaces` package exists on Hugging Face Spaces only
    import spaces as _spaces
except ImportError:  # pragma: no cover - depends on the environment
    _spaces = None


def on_zero_gpu() -> bool:
    """True on a ZeroGPU Space (the `spaces` package is importable and SPACES_ZERO_GPU is set)."""
    return _spaces is not None and os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")


def _gpu(duration: int):
    if _spaces is None:
        return lambda fn: fn
    return _spaces.GPU(duration=duration)


@_gpu(ZERO_GPU_SECONDS)
def predict_on_zero_gpu(loaded_model, scene, predictor_args: dict):
    """Run `loaded_model` (a `dstl.models.LoadedModel`) on `scene` on CUDA; (probs, info) on the CPU."""
    from dstl.engine import Predictor

    prediction = Predictor(loaded_model, device="cuda", **predictor_args).predict(scene)
    return prediction.probs, prediction.info

"""ONNX Runtime as an optional fp32 backend of the engine's forward pass (CPU).

Optional: `pip install 'dstl-segmentation[onnx]'` (the `onnxruntime` and `onnx` packages; `onnx`
is what PyTorch's exporter writes the graph with). Without them `available()` is False and the
engine simply never offers this backend.

Why: on CPUs without VNNI (AVX2-only AMD EPYC), ONNX Runtime's fp32 kernels ran one 448 px tile of
the bundled 20-band UNet 1.69x faster than PyTorch's fp32 and 1.20x faster than its best int8,
with identical masks; on an AVX-512 VNNI Xeon it was 0.94x PyTorch's fp32 (BENCHMARKS.md, "Other
runtimes on this CPU"). Whether it wins on a given CPU is measured, not assumed: `dstl.autotune`
times it next to PyTorch's precisions and "auto" picks it only where it is the cheapest.

`OnnxRunner(module, in_channels).get()` returns a callable with the module's float contract: float32
(N, C, h, w) -> float32 (N, 10, h, w) logits, any N and any h, w the module accepts (the graph
has dynamic batch, height and width). It exports a BatchNorm-folded copy of the module (the same
arithmetic as `dstl.runners.FloatRunner`) once, in memory, opens one InferenceSession on it, and
does both again whenever the module's weights change. The session is safe to call from several
threads at once.
"""

from __future__ import annotations

import importlib.util
import io
import threading
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from dstl.errors import DstlError
from dstl.runners import fold_batchnorm, weights_fingerprint

__all__ = ["available", "require", "OnnxRunner", "INSTALL_HINT", "OPSET"]

#: What to install for this backend (the package's optional extra).
INSTALL_HINT = "pip install 'dstl-segmentation[onnx]' (onnxruntime and onnx)"

#: The ONNX opset the graph is exported with.
OPSET = 17


def available() -> bool:
    """True if onnxruntime and onnx can be imported (checked without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def require() -> None:
    """DstlError naming what to install if the backend is not available."""
    if not available():
        raise DstlError(f"the onnxruntime backend needs two optional packages: {INSTALL_HINT}")


def export_bytes(module: nn.Module, in_channels: int) -> bytes:
    """The ONNX graph (bytes) of `module` (float32, eval mode, on the CPU) with dynamic batch,
    height and width. Traced with PyTorch's TorchScript exporter on a (1, in_channels, 64, 64)
    input: the models' input checks are Python conditions, which tracing records as constants;
    the engine only ever passes inputs that pass them."""
    x = torch.zeros(1, in_channels, 64, 64)
    dims = {0: "n", 2: "h", 3: "w"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # the deprecation notice of the TorchScript exporter and the tracer's notes on those
        # input checks: neither is the user's concern (dynamo=True would need onnxscript)
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), buf, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": dims, "logits": dims}, opset_version=OPSET, dynamo=False)
    return buf.getvalue()


def open_session(graph: bytes, threads: int):
    """An ONNX Runtime CPU session on `graph` with `threads` intra-op threads and all graph
    optimisations. Its worker threads do not spin between calls: on a 2-core server, threads
    busy-waiting after a forward pass slow down whatever runs next (another visitor's image)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its informational lines are not for users
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """A module's fp32 forward pass through ONNX Runtime (see the module docstring).

    Args:
        module: the model (any nn.Module with the engine's contract); not modified.
        in_channels: its number of input bands.
        threads: ONNX Runtime's intra-op threads; default torch.get_num_threads() at build time,
            so that this backend and PyTorch's compete on equal terms.
    """

    def __init__(self, module: nn.Module, in_channels: int, threads: int | None = None):
        self.module = module
        self.in_channels = int(in_channels)
        self.threads = threads
        self._run: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._fingerprint: tuple | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """True if the session exists for the module's current weights (no build on `get`)."""
        return self._run is not None and self._fingerprint == weights_fingerprint(self.module)

    def get(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The forward callable, exporting and opening a session first if needed."""
        require()
        with self._lock:
            fingerprint = weights_fingerprint(self.module)
            if self._run is None or fingerprint != self._fingerprint:
                self._run = None  # free the old session first
                folded = fold_batchnorm(self.module).cpu().float()
                session = open_session(export_bytes(folded, self.in_channels),
                                       self.threads or torch.get_num_threads())
                del folded

                def run(x: torch.Tensor) -> torch.Tensor:
                    batch = np.ascontiguousarray(x.detach().cpu().float().numpy())  # NCHW, not channels_last
                    (logits,) = session.run(None, {"x": batch})
                    return torch.from_numpy(logits)

                self._run, self._fingerprint = run, fingerprint
            return self._run

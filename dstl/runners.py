"""How a model's forward pass runs on the CPU at each precision, and what the CPU offers.

The inference engine (`dstl.engine`) runs a model through one of these runners:

- float (fp32, and bf16 under autocast): `FloatRunner` keeps a copy of the module with every
  BatchNorm2d that follows a Conv2d inside a plain nn.Sequential folded into that convolution
  (`fold_batchnorm`), in channels_last memory format. The same arithmetic up to rounding, one
  pass over the activations less per block: 6-8 % faster per tile on the bundled UNet.
- int8 (CPU only): `Int8Model`, post-training static quantisation through one of PyTorch's
  quantised engines (`int8_engines`). Which engine's kernels are fastest depends on the CPU and
  on what the process may use of it (see `int8_engines`), so the engine measures them
  (`dstl.autotune`).

CPU facts come from /proc/cpuinfo (`cpu_flags`) and from what PyTorch's libraries were told to
use: `ATEN_CPU_CAPABILITY`, `ONEDNN_MAX_CPU_ISA` and `FBGEMM_ENABLE_INSTRUCTIONS` cap the
instruction sets of ATen, oneDNN and FBGEMM below what the CPU has (this is how an AVX2-only CPU
is imitated on a newer one), so flags alone do not say what will run fast.
"""

from __future__ import annotations

import copy
import functools
import os
import warnings

import torch
from torch import nn

# --------------------------------------------------------------------------------------------
# What the CPU offers


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """True if the CPU computes bf16 natively (AMX or AVX512-BF16); otherwise oneDNN emulates it."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def cpu_has_vnni() -> bool:
    """True if the CPU has int8 dot-product instructions (AVX512-VNNI / AVX-VNNI)."""
    return bool({"avx512_vnni", "avx_vnni"} & cpu_flags())



def cpu_has_avx512_vnni() -> bool:
    """True if the CPU has AVX512-VNNI: what PyTorch's "x86" engine and FBGEMM look for."""
    return "avx512_vnni" in cpu_flags()


def cpu_capability() -> str:
    """ATen's kernel level in this process ("AVX512", "AVX2", "DEFAULT"; ATEN_CPU_CAPABILITY caps it)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # noqa: BLE001 - older or non-x86 builds
        return "unknown"


def isa_caps() -> dict[str, str]:
    """The instruction-set caps this process runs under (empty values: no cap)."""
    return {name: os.environ.get(name, "") for name in
            ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "FBGEMM_ENABLE_INSTRUCTIONS")}


def fbgemm_uses_vnni() -> bool:
    """True if FBGEMM runs its AVX512-VNNI kernels here: the CPU has them and
    FBGEMM_ENABLE_INSTRUCTIONS does not cap FBGEMM below them ("AVX512_E1" is VNNI)."""
    cap = os.environ.get("FBGEMM_ENABLE_INSTRUCTIONS", "").strip().upper()
    return cpu_has_avx512_vnni() and cap in ("", "AVX512_E1", "AVX512_E1_256")


# --------------------------------------------------------------------------------------------
# Float runner (fp32 and bf16)


def _plain_sequential(m: nn.Module) -> bool:
    """An nn.Sequential (or subclass) that runs its children in order and does nothing else."""
    return isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward


def weights_fingerprint(module: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced or modified in place.

    Not a content hash (that is `dstl.models.hub.tensor_digest`): this runs on every prediction,
    where hashing the bytes costs ~28 ms for the bundled 7.8 M-parameter UNet and ~97 ms for the
    31 M default on one AVX2 core, against ~0.6 ms for these (id, version) pairs."""
    return tuple((id(t), t._version) for t in (*module.parameters(), *module.buffers()))


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of `module` in eval mode in which every BatchNorm2d (with running statistics) that
    directly follows a Conv2d inside a plain nn.Sequential is folded into that convolution's
    weight and bias and replaced by nn.Identity. The module itself is not touched."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(module).eval()
    for seq in [m for m in model.modules() if _plain_sequential(m)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = seq._modules[a], seq._modules[b]
            if (type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and bn.running_mean is not None
                    and bn.num_features == conv.out_channels):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
    return model


class FloatRunner:
    """The float forward pass of a module with its BatchNorms folded (`fold_batchnorm`), in
    channels_last memory format, on the module's device. The folded copy (the module's size
    once more) is made on first use and again whenever the module's weights change."""

    def __init__(self, module: nn.Module):
        self.module = module
        self._folded: nn.Module | None = None
        self._fingerprint: tuple | None = None

    def get(self) -> nn.Module:
        fingerprint = weights_fingerprint(self.module)
        if self._folded is None or fingerprint != self._fingerprint:
            self._folded = None  # free the old copy first
            self._folded = fold_batchnorm(self.module).to(memory_format=torch.channels_last)
            self._fingerprint = fingerprint
        return self._folded


# --------------------------------------------------------------------------------------------
# int8 (CPU)

#: PyTorch's quantised CPU engines that the engine measures: the two kernel libraries.
INT8_ENGINES = ("onednn", "fbgemm")


def int8_engines() -> tuple[str, ...]:
    """The quantised engines worth measuring here: oneDNN and FBGEMM where this PyTorch build has
    them. PyTorch's default "x86" engine picks one of the two per convolution (oneDNN on CPUs
    with AVX512-VNNI, read from the hardware whatever the ISA caps say; FBGEMM elsewhere), so it
    is measured only when neither is available on its own."""
    supported = set(torch.backends.quantized.supported_engines)
    engines = tuple(e for e in INT8_ENGINES if e in supported)
    return engines or tuple(e for e in ("x86",) if e in supported)


def int8_reduce_range(engine: str) -> bool:
    """Whether activations must use 7 bits instead of 8 with this engine here: FBGEMM's kernels
    without VNNI multiply-add pairs of uint8 x int8 products into int16, which overflows with
    full-range activations. oneDNN compensates for that itself."""
    if engine == "onednn":
        return False
    if engine == "x86":  # oneDNN on AVX512-VNNI hardware, FBGEMM elsewhere
        return not cpu_has_avx512_vnni()
    return not fbgemm_uses_vnni()


class quantized_engine:
    """Context manager: `torch.backends.quantized.engine` set to `engine`, restored on exit."""

    def __init__(self, engine: str):
        self.engine = engine

    def __enter__(self):
        self.previous = torch.backends.quantized.engine
        torch.backends.quantized.engine = self.engine
        return self

    def __exit__(self, *exc):
        torch.backends.quantized.engine = self.previous
        return False



def _conv_groups(seq: nn.Sequential) -> list[list[str]]:
    """Runs (Conv2d, BatchNorm2d[, ReLU]) and (Conv2d, ReLU) among a Sequential's children."""
    names, kids = list(seq._modules), list(seq._modules.values())
    groups, i = [], 0
    while i < len(kids):
        g = [names[i]]
        if type(kids[i]) is nn.Conv2d and i + 1 < len(kids):
            if type(kids[i + 1]) is nn.BatchNorm2d:
                g.append(names[i + 1])
                if i + 2 < len(kids) and type(kids[i + 2]) is nn.ReLU:
                    g.append(names[i + 2])
            elif type(kids[i + 1]) is nn.ReLU:
                g.append(names[i + 1])
        if len(g) > 1:
            groups.append(g)
        i += len(g)
    return groups


def _aminmax(t: torch.Tensor) -> tuple[float, float]:
    """Min and max of a tensor; channels_last 4-D tensors are read in memory order (~8x faster)."""
    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        t = t.permute(0, 2, 3, 1)
    mn, mx = torch.aminmax(t.detach())
    return float(mn), float(mx)


class Int8Model:
    """A statically int8-quantised version of a module (one of PyTorch's quantised CPU engines,
    `engine`: "x86" by default) whose activation ranges are calibrated for each scene.

    Works on any module whose convolutions are submodules, whatever its forward code does
    (eager-mode quantisation, no tracing): inside every nn.Sequential, Conv2d-BatchNorm2d-ReLU
    runs are fused (BatchNorm folded into the conv); a Sequential made only of convolutions,
    ReLUs, max-pools and identities runs entirely in int8 between one quantise and one
    dequantise; any other Conv2d runs in int8 on its own; everything else (transposed
    convolutions, pooling, concatenation, residual additions, stray BatchNorms) stays float32.
    Transposed convolutions stay float because the quantised ConvTranspose2d of torch 2.13 gives
    wrong results on every CPU engine (errors larger than its outputs; seen here).
    Weights: per-output-channel symmetric int8; activations: uint8 with min/max ranges (7-bit
    where the engine's kernels would overflow with 8, see `int8_reduce_range`). The weights are
    packed for `engine` when the model is built, so it runs that engine's kernels; `__call__`
    runs it with `torch.backends.quantized.engine` set to `engine` as well.

    The quantised model (packed int8 weights, ~1/4 of the float size) is built once. For each
    scene, `calibrate(batch)` runs the ORIGINAL float module on the calibration tiles, one at a
    time, with hooks that record the min/max at every point the quantised model quantises (a
    unit's input, each fused conv group's output), and writes the resulting scales and zero
    points into the quantised model. The first build takes its ranges the same way, so the
    output is a function of the weights and the calibration tiles alone.
    """

    def __init__(self, module: nn.Module, engine: str = "x86"):
        if engine not in torch.backends.quantized.supported_engines:
            raise ValueError(f"quantised engine {engine!r} is not supported by this PyTorch build "
                             f"({', '.join(torch.backends.quantized.supported_engines)})")
        self.module = module
        self.engine = engine
        self.reduce_range = int8_reduce_range(engine)
        self.fingerprint = weights_fingerprint(module)
        self.quantized: nn.Module | None = None
        # observer owner in the quantised model -> ("in" | "out", path of the original module)
        self.points: dict[str, tuple[str, str]] = {}
        #: mean |int8 - float| probability on the last calibration tiles (set by `calibrate`)
        self.deviation: float | None = None

    def _build(self) -> None:
        """Fuse, wrap and convert a copy of the module; record its observation points."""
        from torch.ao.nn.intrinsic import ConvReLU2d
        from torch.ao.quantization import (
            MinMaxObserver,
            PerChannelMinMaxObserver,
            QConfig,
            QuantWrapper,
            convert,
            fuse_modules,
            prepare,
        )

        act = MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=self.reduce_range)
        qconfig = QConfig(activation=act, weight=PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
        convs = (nn.Conv2d, ConvReLU2d)
        passthrough = (nn.Identity, nn.ReLU, nn.MaxPool2d)

        # The holder ("0." in every path) lets a bare conv or Sequential be wrapped like a child.
        # Weight observers are ~8x slower on channels_last weights: quantise from contiguous ones.
        model = nn.Sequential(copy.deepcopy(self.module).eval()).to(memory_format=torch.contiguous_format)
        last_of = {}  # fused module's path -> path of the last module of its group (its output)
        for path, seq in [(n, m) for n, m in model.named_modules() if _plain_sequential(m)]:
            groups = _conv_groups(seq)
            if groups:
                fuse_modules(seq, groups, inplace=True)
                for g in groups:
                    last_of[f"{path}.{g[0]}" if path else g[0]] = f"{path}.{g[-1]}" if path else g[-1]

        def original(path: str) -> str:
            return path[2:] if path.startswith("0.") else ""

        points = {}

        def wrap(parent: nn.Module, prefix: str) -> None:
            for name, child in list(parent.named_children()):
                path = f"{prefix}.{name}" if prefix else name
                kids = list(child.named_children())
                whole = (_plain_sequential(child) and any(isinstance(c, convs) for _, c in kids)
                         and all(type(c) in passthrough or isinstance(c, convs) for _, c in kids))
                if whole or isinstance(child, convs):
                    wrapper = QuantWrapper(child)
                    wrapper.qconfig = qconfig
                    setattr(parent, name, wrapper)
                    points[f"{path}.quant"] = ("in", original(path))
                    for k, _ in (kids if whole else [("", child)]):
                        inner = f"{path}.{k}" if k else path
                        points[f"{path}.module.{k}" if k else f"{path}.module"] = (
                            "out", original(last_of.get(inner, inner)))
                else:
                    wrap(child, path)

        wrap(model, "")
        if not points:  # nothing to quantise: the float module is the int8 model
            self.quantized = self.module
            return
        prepare(model.eval(), inplace=True)
        # Keep the points that really carry an observer (e.g. not a max-pool inside a unit). The
        # observers have seen nothing: convert gives placeholder qparams, set by `calibrate`.
        self.points = {n: pt for n, pt in points.items()
                       if hasattr(model.get_submodule(n), "activation_post_process")}
        # The float remainder (transposed convs) runs on channels_last activations like the rest.
        self.quantized = convert(model, inplace=True).eval().to(memory_format=torch.channels_last)

    def _observe(self, calib: torch.Tensor) -> tuple[dict[str, tuple[float, float]], list[torch.Tensor]]:
        """Min/max at every observation point of the original module over `calib`'s tiles, and
        the module's float outputs (logits, one (1, classes, h, w) tensor per tile)."""
        seen: dict[tuple[str, str], tuple[float, float]] = {}

        def record(key, t):
            mn, mx = _aminmax(t)
            old = seen.get(key)
            seen[key] = (mn, mx) if old is None else (min(old[0], mn), max(old[1], mx))

        hooks = []
        try:
            for kind, path in set(self.points.values()):
                m = self.module.get_submodule(path)
                if kind == "in":
                    hooks.append(m.register_forward_pre_hook(
                        lambda mod, args, key=(kind, path): record(key, args[0])))
                else:
                    hooks.append(m.register_forward_hook(
                        lambda mod, args, out, key=(kind, path): record(key, out)))
            with torch.inference_mode():
                outputs = [self.module(calib[i:i + 1].contiguous(memory_format=torch.channels_last))
                           for i in range(calib.shape[0])]  # one tile at a time; the outputs
                # are kept for `_deviation` (16 base tiles of 256 px: 10 x 256 x 256 float32 each, 42 MB)
        finally:
            for h in hooks:
                h.remove()
        return {name: seen[pt] for name, pt in self.points.items()}, outputs

    def _deviation(self, calib: torch.Tensor, reference: list[torch.Tensor]) -> float:
        """Mean absolute difference between the quantised and the float model's sigmoid
        probabilities over every class and pixel of the calibration tiles."""
        total, count = 0.0, 0
        with torch.inference_mode(), quantized_engine(self.engine):
            for i, ref in enumerate(reference):
                out = self.quantized(calib[i:i + 1].contiguous(memory_format=torch.channels_last))
                total += float((torch.sigmoid(out.float()) - torch.sigmoid(ref.float())).abs().sum())
                count += ref.numel()
        return total / max(count, 1)

    def calibrate(self, calib: torch.Tensor) -> nn.Module:
        """The quantised model with activation ranges observed on the float tiles `calib`.

        Also sets `deviation`: how far the calibrated int8 model's probabilities are from the
        float model's on those same tiles (mean absolute difference, probability units; one
        extra int8 pass over the calibration tiles). Some weights quantise far worse than
        others (see the engine's INT8_MAX_DEVIATION), and this is how a caller can tell.
        """
        with warnings.catch_warnings():
            # torch.ao.quantization announces its own deprecation on every call; it is still
            # the CPU int8 path of the pinned torch (requirements.txt).
            warnings.simplefilter("ignore")
            from torch.ao.quantization import MinMaxObserver

            if self.quantized is None:
                with quantized_engine(self.engine):  # weights are packed for this engine
                    self._build()
            ranges, reference = self._observe(calib)
            for name, (mn, mx) in ranges.items():
                obs = MinMaxObserver(dtype=torch.quint8, reduce_range=self.reduce_range)
                obs(torch.tensor([mn, mx]))
                scale, zero_point = obs.calculate_qparams()
                target = self.quantized.get_submodule(name)
                if isinstance(getattr(target, "scale", None), torch.Tensor):  # Quantize (input)
                    target.scale = scale.detach().to(target.scale.dtype).reshape(target.scale.shape)
                    target.zero_point = (zero_point.detach().to(target.zero_point.dtype)
                                         .reshape(target.zero_point.shape))
                elif hasattr(target, "scale"):  # quantised conv: output qparams
                    target.scale, target.zero_point = float(scale), int(zero_point)
                else:
                    raise RuntimeError(f"int8: no place for the qparams observed at {name!r}")
            self.deviation = self._deviation(calib, reference)
        return self.quantized


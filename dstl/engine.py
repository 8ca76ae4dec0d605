"""Tiled inference: a scene of any size -> per-class probability maps and masks on its own grid.

This is the one inference API of the project; the CLI, the app, the benchmarks and training
validation all call it.

    predictor = Predictor(load_model("weights/unet20"))      # device and precision chosen once
    pred = predictor.predict(scene, progress=cb)              # -> Prediction
    pred.probs            # float32 (10, H, W) in [0, 1], class k at index k-1
    pred.masks()          # uint8 (10, H, W), 0/1, from the config's per-class thresholds
    pred.masks({5: 0.3})  # other thresholds, no rerun of the model

How a scene is processed:

- Bands: the model's band list must be a subset of the scene's bands; a superset scene (20 bands
  for an RGB model) has its bands selected per tile, a scene that lacks bands raises
  `BandMismatchError` (`choose_model` picks the right model among several).
- Tiles: square windows of T pixels (a multiple of 32) on a regular grid with `overlap` pixels
  between neighbours, the grid centred on the scene so that at least `overlap // 2` pixels of
  context lie beyond each edge. T is the model's `tile_size` or larger, up to `max_tile_size`
  (default twice `tile_size`): the T whose grid computes the fewest pixels for this scene
  (`fit_tile`). A convolution costs the same per pixel at any of these sizes (measured: within
  ~10 % from 192 to 512 px), so fewer computed pixels is less time: a 512 x 512 image takes four
  320 px tiles (0.41 M pixels computed) instead of nine 256 px tiles (0.59 M), a full
  3350 x 3400 scene 81 tiles of 448 px instead of 324 of 256 (16.3 M pixels instead of 21.2 M).
  Batches hold about `batch_size` base tiles' worth of pixels. Pixels outside the scene are read by
  reflection (numpy's "reflect" mode, repeated for scenes smaller than a tile), so a 100x100
  crop is simply one reflected tile.
- Blending: each tile's probabilities are weighted by a separable flat-top window (1 in the
  middle, a sin^2 ramp over `overlap` pixels at each side, never 0) and accumulated; the sum is
  divided by the exact sum of the weights, which for a separable window on a product grid is the
  outer product of two 1-D sums. A model that gives the same value everywhere gives exactly that
  value everywhere: there are no seams.
- Streaming: tiles are cut (a view, or a reflected copy of one tile at the edges), normalised
  and batched one batch at a time, row by row; the scene is never copied, normalised or padded
  as a whole. The only full-size buffer the engine allocates is the (10, H, W) float32
  accumulator, which becomes the returned probability map: 40 bytes per pixel, ~0.46 GB for a
  full 3350x3400 scene (whose 20 float32 bands take ~0.9 GB themselves).
- Test-time augmentation (`tta=True`): each batch is run under the 8 flips/rotations of the
  square (the dihedral group D4); each output is mapped back by the inverse transform and the
  8 probability maps are averaged.
- Precision: "fp32"; "bf16" (autocast; pays on CUDA and on CPUs with native bf16, i.e. AMX or
  AVX512-BF16; elsewhere oneDNN emulates it and it is 3-15x *slower* than fp32); "int8" (CPU
  only: post-training static quantisation, per-channel weights, activation ranges calibrated on
  a fixed sample of the scene's own tiles, so the result is a function of the model and the
  scene alone; `dstl.runners.Int8Model`); or "auto": bf16 on CUDA, and on a CPU the precision
  that is cheapest for the run by *measurement* (`speed_profile`, `dstl.autotune`): the first
  "auto" run times one tile's forward pass at fp32, bf16 and int8 (through oneDNN and FBGEMM,
  whichever is faster here) and picks per run, counting int8's one-off build and per-scene
  calibration, so a small image never waits for int8's setup. Where the optional ONNX Runtime
  is installed (`dstl.onnx_runner`), "auto" also times fp32 through it and runs through it when
  that is the cheapest (`info["backend"]`); `backend="onnxruntime"` asks for it outright. An
  "auto" run keeps int8 only if,
  on the scene's calibration tiles, its probabilities stay within INT8_MAX_DEVIATION of fp32's;
  otherwise it goes on in float and the predictor stops offering int8 for those weights.
  Float runs use a copy of the
  module with BatchNorm folded into the convolutions (`dstl.runners.FloatRunner`); everything
  runs in channels_last memory format. The folded copy and the int8 model are built on first
  use and kept by the Predictor. `bench/bench_inference.py` measures all of this against fp32.
- Progress and cancellation: `progress(done, total)` (tiles) is called with (0, total) before
  the first batch and after every batch; a `threading.Event` passed as `cancel` stops the run
  with `Cancelled` between batches, and an exception raised by `progress` stops it too. Either
  way the module is left exactly as it was (train/eval mode restored) and nothing partial is
  returned.

Model contract: the module maps normalised float (N, C, h, w), h and w multiples of 32, to
(N, 10, h, w) logits; the engine applies the sigmoid. Normalisation is `(x - mean) / std` per
band with the statistics from the weights' config (see `dstl.normalization`).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from dstl import autotune, limits, onnx_runner, runners
from dstl.classes import NUM_CLASSES
from dstl.errors import BandMismatchError, DstlError, WeightsError
from dstl.normalization import BandStats
from dstl.onnx_runner import OnnxRunner
from dstl.runners import (  # noqa: F401 - re-exported: part of the engine's API
    FloatRunner,
    Int8Model,
    cpu_flags,
    cpu_has_native_bf16,
    cpu_has_vnni,
    weights_fingerprint,
)
from dstl.scene import Scene

PRECISIONS = ("auto", "fp32", "bf16", "int8")

#: Who runs the forward pass: "torch" (PyTorch, every precision), "onnxruntime" (fp32 through ONNX
#: Runtime on the CPU, optional package: `dstl.onnx_runner`), or "auto": PyTorch for an explicit
#: precision, and under precision "auto" ONNX Runtime too where it is installed and measured cheaper.
BACKENDS = ("auto", "torch", "onnxruntime")

#: What each "auto" candidate of `dstl.autotune` runs as: (precision, backend).
CANDIDATES = {"fp32": ("fp32", "torch"), "bf16": ("bf16", "torch"), "int8": ("int8", "torch"),
              "onnxruntime": ("fp32", "onnxruntime")}

#: Base-size tiles (`tile_size`, cut at the centres of the scene's tiles, spread evenly over it)
#: used to calibrate int8 activation ranges. Measured with the
#: bundled 20-band UNet on 8 held-out synthetic 1024 px scenes (bench/bundled_weights.py
#: --precision int8): mean Kaggle Jaccard 0.381 with 4 tiles, 0.404 with 16, 0.405 with 36, fp32
#: 0.403. Too few tiles miss the extremes of the activations, which int8 then clips.
INT8_CALIBRATION_TILES = 16

#: Largest mean absolute probability difference between int8 and fp32, measured on the scene's
#: own calibration tiles after calibrating (`Int8Model.deviation`), that an "auto" run accepts
#: int8 with; above it the run goes on in float (`Prediction.info["int8_rejected"]`) and this
#: predictor does not try int8 again for these weights. Why: weights differ in how well they
#: quantise. On a full-size held-out real-layout scene (synth_rl_6110_1_2) the stage-2 RGB UNet's
#: int8 probabilities are 0.003 from fp32 on average (pixel IoU within 0.02 per class), while the
#: stage-3 candidate trained on real-layout scenes was 0.034 away, with crops' IoU 0.11 -> 0.32
#: and trees' 0.13 -> 0.08: int8 changed the answer, not just the speed.
INT8_MAX_DEVIATION = 0.01

ProgressFn = Callable[[int, int], None]


class Cancelled(Exception):
    """Inference was stopped through the `cancel` event before it finished."""


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Prediction:
    """The engine's result for one scene.

    Attributes:
        image_id: the scene's id.
        probs: float32 (10, H, W) per-class probabilities in [0, 1] on the scene's grid; class k
            at index k-1.
        thresholds: the per-class thresholds `masks()` uses by default (from the weights' config
            unless overridden).
        bands: the bands the model was given, in its channel order.
        info: how it was computed: device, precision (the one actually used), backend ("torch"
            or "onnxruntime"), tta, tile_size, overlap, batch_size, tiles, seconds (wall time of
            the whole call), setup_seconds (int8 calibration, folding BatchNorm or exporting to
            ONNX on first use), input_seconds (cutting and
            normalising tiles), model_seconds (forward passes, sigmoid and blending weights,
            transfers included), blend_seconds (accumulating tiles and dividing by the weights),
            tiles_per_second (tile passes, TTA counted) and, whenever int8 was calibrated,
            int8_engine and int8_deviation (mean |int8 - fp32| probability on the calibration
            tiles), plus int8_rejected True when "auto" then ran in float instead.
    """

    image_id: str
    probs: np.ndarray
    thresholds: tuple[float, ...]
    bands: tuple[str, ...]
    info: dict = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.probs.shape[1])

    @property
    def width(self) -> int:
        return int(self.probs.shape[2])

    def masks(self, thresholds=None) -> np.ndarray:
        """uint8 (10, H, W) 0/1 masks: pixel in class k iff probs[k-1] >= threshold of class k.

        `thresholds` overrides `self.thresholds` as in `resolve_thresholds`: None, one float for
        every class, 10 floats, or a {class_id: threshold} mapping for some classes.
        """
        t = resolve_thresholds(self.thresholds, thresholds)
        out = np.empty(self.probs.shape, dtype=np.uint8)
        for k in range(out.shape[0]):
            np.greater_equal(self.probs[k], t[k], out=out[k], casting="unsafe")
        return out


def resolve_thresholds(base: Sequence[float], override=None) -> tuple[float, ...]:
    """Per-class thresholds: `base` with `override` applied.

    `override` is None (use `base`), a number (every class), a sequence of one number per class,
    or a mapping {class_id (1..10): threshold} that replaces only those classes. Every threshold
    must lie in [0, 1]; anything else raises DstlError naming the bad value.
    """
    t = [float(v) for v in base]
    if override is None:
        pass
    elif isinstance(override, int | float | np.floating | np.integer):
        t = [float(override)] * len(t)
    elif isinstance(override, Mapping):
        for cid, v in override.items():
            if not isinstance(cid, int | np.integer) or not 1 <= int(cid) <= len(t):
                raise DstlError(f"threshold given for unknown class {cid!r}: classes are 1..{len(t)}")
            t[int(cid) - 1] = float(v)
    else:
        vals = [float(v) for v in override]
        if len(vals) != len(t):
            raise DstlError(f"{len(vals)} thresholds given, expected one per class ({len(t)})")
        t = vals
    for i, v in enumerate(t):
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise DstlError(f"threshold of class {i + 1} is {v}, must lie in [0, 1]")
    return tuple(t)


# --------------------------------------------------------------------------------------------
# Bands


def _fmt_bands(bands: Sequence[str]) -> str:
    return ",".join(bands)


def band_indices(scene_bands: Sequence[str], needed: Sequence[str], image_id: str = "scene") -> list[int]:
    """Indices into `scene_bands` of each band in `needed`; BandMismatchError if any is missing."""
    scene_bands = tuple(scene_bands)
    missing = [b for b in needed if b not in scene_bands]
    if missing:
        raise BandMismatchError(
            f"the model needs {len(needed)} bands ({_fmt_bands(needed)}) but scene {image_id} has "
            f"{len(scene_bands)} ({_fmt_bands(scene_bands)}), missing {_fmt_bands(missing)}: use a model "
            f"for the scene's bands or give the full scene")
    return [scene_bands.index(b) for b in needed]


def model_bands(model) -> tuple[str, ...]:
    """The input bands of a LoadedModel, a ModelConfig, a Predictor or anything with `.bands`."""
    for obj in (model, getattr(model, "config", None)):
        if obj is not None and getattr(obj, "bands", None) is not None:
            return tuple(obj.bands)
    raise TypeError(f"cannot tell the input bands of {type(model).__name__}")


def choose_model(scene_bands: Sequence[str], candidates: Iterable, image_id: str = "scene"):
    """The candidate model that fits a scene's bands best.

    Among the candidates whose bands are all present in the scene, the one that uses the most
    bands wins (a 20-band model over an RGB one for a full scene); ties go to the earlier
    candidate. Candidates are LoadedModels, Predictors or anything `model_bands` understands.
    Raises BandMismatchError, listing what each candidate needs, if none fits.
    """
    scene_bands = tuple(scene_bands)
    candidates = list(candidates)
    best, best_n = None, -1
    for c in candidates:
        bands = model_bands(c)
        if all(b in scene_bands for b in bands) and len(bands) > best_n:
            best, best_n = c, len(bands)
    if best is None:
        needs = "; ".join(f"{getattr(c, 'source', f'model {i + 1}')} needs {_fmt_bands(model_bands(c))}"
                          for i, c in enumerate(candidates)) or "no models given"
        raise BandMismatchError(f"no model fits scene {image_id} with bands {_fmt_bands(scene_bands)} "
                                f"({needs})")
    return best


# --------------------------------------------------------------------------------------------
# Tiling geometry


def _axis_origins(n: int, tile: int, overlap: int) -> tuple[int, ...]:
    """Tile origins along one axis of length n: stride tile-overlap, centred, >= overlap//2 margin."""
    stride = tile - overlap
    need = n + 2 * (overlap // 2)
    count = 1 if need <= tile else math.ceil((need - tile) / stride) + 1
    span = (count - 1) * stride + tile
    start = -((span - n) // 2)
    return tuple(start + i * stride for i in range(count))


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """1-D float32 tile weights: 1 in the middle, a sin^2 ramp over `overlap` px at each end (> 0)."""
    w = np.ones(tile, dtype=np.float64)
    if overlap > 0:
        ramp = np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / overlap) ** 2
        w[:overlap] = ramp
        w[tile - overlap:] = np.minimum(w[tile - overlap:], ramp[::-1])
    return w.astype(np.float32)


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of a scene lie.

    `ys` and `xs` are tile origins in scene pixel coordinates (may be negative or reach past
    the edge: those pixels are read by reflection); tiles are visited row by row.
    """

    height: int
    width: int
    tile: int
    overlap: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @classmethod
    def for_scene(cls, height: int, width: int, tile: int, overlap: int) -> TilePlan:
        return cls(height, width, tile, overlap, _axis_origins(height, tile, overlap),
                   _axis_origins(width, tile, overlap))

    @property
    def n_tiles(self) -> int:
        return len(self.ys) * len(self.xs)

    def origins(self) -> list[tuple[int, int]]:
        return [(y, x) for y in self.ys for x in self.xs]

    def window(self) -> np.ndarray:
        return blend_window(self.tile, self.overlap)

    def weight_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-row and per-column sums of the 1-D window over all tiles (float64, > 0)."""
        w = self.window().astype(np.float64)
        return _axis_sums(self.height, self.ys, w), _axis_sums(self.width, self.xs, w)


def fit_tile(height: int, width: int, tile: int, max_tile: int, overlap: int) -> int:
    """The tile size T in tile, tile + 32, ..., max_tile whose `TilePlan` computes the fewest
    pixels (tiles x T^2) for a height x width scene; the smallest such T on a tie."""
    best, best_px = tile, None
    for t in range(tile, max(tile, max_tile) + 1, 32):
        plan = TilePlan.for_scene(height, width, t, overlap)
        px = plan.n_tiles * t * t
        if best_px is None or px < best_px:
            best, best_px = t, px
    return best


def _axis_sums(n: int, origins: Sequence[int], w: np.ndarray) -> np.ndarray:
    s = np.zeros(n, dtype=np.float64)
    for o in origins:
        a, b = max(o, 0), min(o + len(w), n)
        s[a:b] += w[a - o:b - o]
    return s


def reflect_indices(idx: np.ndarray, n: int) -> np.ndarray:
    """Map integer positions onto 0..n-1 by mirror reflection without repeating the edge
    (numpy.pad mode "reflect", applied as often as needed)."""
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    i = np.mod(idx, period)
    return np.where(i >= n, period - i, i)


def _axis_index(o: int, tile: int, n: int):
    """A slice when the window [o, o+tile) lies inside [0, n), else reflected indices."""
    if o >= 0 and o + tile <= n:
        return slice(o, o + tile)
    return reflect_indices(np.arange(o, o + tile), n)


# --------------------------------------------------------------------------------------------
# Dihedral group (test-time augmentation)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 flips/rotations (k in 0..7) of the last two (square) dims:
    a horizontal flip if k >= 4, then a rotation by (k % 4) * 90 degrees."""
    if k >= 4:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k % 4, dims=(-2, -1)) if k % 4 else x


def dihedral_inverse(x: torch.Tensor, k: int) -> torch.Tensor:
    """Undo `dihedral(., k)`."""
    if k % 4:
        x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x


# --------------------------------------------------------------------------------------------
# Device


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _sensible_threads() -> None:
    """Never run more intra-op threads than CPUs this process may use (containers, taskset)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = os.cpu_count() or 1
    if torch.get_num_threads() > allowed:
        torch.set_num_threads(allowed)


# --------------------------------------------------------------------------------------------
# The predictor


class Predictor:
    """Runs one model over scenes. Create once per model; `predict` as often as needed.

    Args:
        model: a `dstl.models.LoadedModel` (module + config: bands, normalisation, thresholds,
            tile size) or a bare `nn.Module` (then `bands` is required). The module is moved to
            the device and to channels_last memory format once, here; `predict` puts it in eval
            mode for the call and restores its previous mode afterwards.
        bands, normalization, thresholds, tile_size: override (or, for a bare module, supply)
            the config's values. normalization defaults to identity, thresholds to 0.5,
            tile_size to 224.
        overlap: pixels shared by neighbouring tiles (default tile_size // 4).
        max_tile_size: largest tile the engine may use to cover a scene with fewer computed
            pixels (default 2 * tile_size; equal to tile_size for a fixed tile size).
        batch_size: base-size tiles per forward pass (default 4 on CPU, 16 on CUDA); larger
            tiles come in batches of about the same number of pixels (`batch_for`).
        tta: average over the 8 flips/rotations by default in `predict`.
        precision: "auto", "fp32", "bf16" or "int8" (see the module docstring).
        backend: "auto", "torch" or "onnxruntime" (`BACKENDS`); "onnxruntime" runs fp32 on the CPU
            only and needs the optional packages (DstlError naming them otherwise).
        device: "cpu", "cuda", a torch.device, or None for CUDA if available else CPU.
        max_pixels: largest scene accepted, in pixels (DstlError beyond; the accumulators need
            40 bytes per pixel); default the image size limit of `dstl.limits.max_pixels()`.
    """

    def __init__(self, model, *, bands: Sequence[str] | None = None, normalization: BandStats | None = None,
                 thresholds=None, tile_size: int | None = None, overlap: int | None = None,
                 max_tile_size: int | None = None,
                 batch_size: int | None = None, tta: bool = False, precision: str = "auto",
                 device: str | torch.device | None = None, max_pixels: int | None = None,
                 backend: str = "auto"):
        config = getattr(model, "config", None)
        module = model.module if hasattr(model, "module") and config is not None else model
        if not isinstance(module, nn.Module):
            raise TypeError(f"model must be a LoadedModel or an nn.Module, got {type(model).__name__}")
        self.source = getattr(model, "source", None)
        self.config = config
        if bands is None:
            if config is None:
                raise TypeError("bands are required with a bare nn.Module")
            bands = config.bands
        self.bands = tuple(bands)
        if normalization is None:
            normalization = config.normalization if config is not None else BandStats.identity(self.bands)
        if tuple(normalization.bands) != self.bands:
            raise WeightsError(f"normalisation statistics are for bands {_fmt_bands(normalization.bands)}, "
                               f"the model takes {_fmt_bands(self.bands)}")
        self.normalization = normalization
        base = config.thresholds if config is not None else (0.5,) * NUM_CLASSES
        self.thresholds = resolve_thresholds(base, thresholds)
        self.tile_size = int(tile_size or (config.tile_size if config is not None else 224))
        if self.tile_size <= 0 or self.tile_size % 32:
            raise DstlError(f"tile size must be a positive multiple of 32, got {self.tile_size}")
        self.overlap = self.tile_size // 4 if overlap is None else int(overlap)
        if not 0 <= self.overlap < self.tile_size:
            raise DstlError(f"overlap must lie in [0, tile size {self.tile_size}), got {self.overlap}")
        self.max_tile_size = 2 * self.tile_size if max_tile_size is None else int(max_tile_size)
        if self.max_tile_size < self.tile_size or self.max_tile_size % 32:
            raise DstlError(f"max tile size must be a multiple of 32 and at least the tile size "
                            f"{self.tile_size}, got {self.max_tile_size}")
        if precision not in PRECISIONS:
            raise DstlError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = torch.device(device) if device is not None else default_device()
        if precision == "int8" and self.device.type != "cpu":
            raise DstlError("precision int8 runs on the CPU only; use bf16 or fp32 on CUDA")
        self.precision = precision
        if backend not in BACKENDS:
            raise DstlError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend == "onnxruntime":
            if self.device.type != "cpu" or precision not in ("auto", "fp32"):
                raise DstlError(f"backend onnxruntime runs fp32 on the CPU only, not {precision} on "
                                f"{self.device.type}: choose precision fp32 (or auto) and device cpu")
            onnx_runner.require()
        self.backend = backend
        # On a CPU, batches larger than 4 tiles do not run faster per tile, but each tile of the
        # default UNet holds ~50-80 MB of activations.
        self.batch_size = int(batch_size or (16 if self.device.type == "cuda" else 4))
        if self.batch_size < 1:
            raise DstlError(f"batch size must be >= 1, got {self.batch_size}")
        self.tta = bool(tta)
        # The shared image size limit unless the caller chose one (then the environment cannot raise it).
        self._limit_hint = max_pixels is None
        self.max_pixels = limits.max_pixels() if max_pixels is None else int(max_pixels)
        _sensible_threads()
        self.module = module.to(self.device).to(memory_format=torch.channels_last)
        self._float = FloatRunner(self.module)  # BatchNorm-folded copy, made on first use
        self._float_lock = threading.Lock()
        self._int8: Int8Model | None = None  # built on first int8 use, rebuilt if the weights change
        # weights fingerprint whose int8 model deviated too far (INT8_MAX_DEVIATION) in an "auto" run
        self._int8_rejected: str | None = None
        self._int8_lock = threading.Lock()
        self._onnx = OnnxRunner(self.module, len(self.bands))  # exported on first use
        self._profile: autotune.SpeedProfile | None = None
        self._mean = np.asarray(self.normalization.mean, dtype=np.float32).reshape(-1, 1, 1)
        self._inv_std = (1.0 / np.asarray(self.normalization.std, dtype=np.float64)).astype(np.float32)
        self._inv_std = self._inv_std.reshape(-1, 1, 1)

    # -- decisions ---------------------------------------------------------------------------

    def plan(self, height: int, width: int) -> TilePlan:
        """The tiles for a height x width scene (tile size chosen by `fit_tile`)."""
        tile = fit_tile(height, width, self.tile_size, self.max_tile_size, self.overlap)
        return TilePlan.for_scene(height, width, tile, self.overlap)

    def batch_for(self, tile: int) -> int:
        """Tiles per forward pass at tile size `tile`: about `batch_size` base tiles' pixels."""
        return max(1, (self.batch_size * self.tile_size ** 2) // (tile * tile))

    def resolve_precision(self, tile_passes: int, calibration_tiles: int | None = None) -> str:
        """The precision a run of `tile_passes` forwards of base-size tiles will use (the first
        of `resolve_run`)."""
        return self.resolve_run(tile_passes, calibration_tiles)[0]

    def resolve_run(self, tile_passes: int, calibration_tiles: int | None = None) -> tuple[str, str]:
        """(precision, backend) of a run of `tile_passes` forwards of base-size tiles
        (`tile_size`): resolves "auto"; int8 would first calibrate on `calibration_tiles` base
        tiles (default: INT8_CALIBRATION_TILES, or fewer for a smaller run).

        backend "onnxruntime" is always ("fp32", "onnxruntime"). Otherwise an explicit precision
        runs through PyTorch; "auto" is bf16 on a CUDA device that supports it (else fp32), and on
        a CPU the candidate with the lowest measured cost for that many tile passes
        (`speed_profile`, `dstl.autotune.choose_precision`; ONNX Runtime among them where it is
        installed and the backend is "auto"). The first "auto" run of at least
        `autotune.PROBE_MIN_PASSES` passes measures; a shorter one before any measurement in the
        process runs PyTorch's fp32 rather than pay for a probe it cannot earn back.
        """
        if self.backend == "onnxruntime":
            return "fp32", "onnxruntime"
        if self.precision != "auto":
            return self.precision, "torch"
        if self.device.type == "cuda":
            return ("bf16" if torch.cuda.is_bf16_supported() else "fp32"), "torch"
        if self.device.type != "cpu":
            return "fp32", "torch"
        if (self._profile is None and tile_passes < autotune.PROBE_MIN_PASSES
                and autotune.cached_only(self._profile_key()) is None):
            return "fp32", "torch"  # not worth a probe by itself (see autotune.PROBE_MIN_PASSES)
        int8 = self._int8
        ready = (int8 is not None and int8.quantized is not None
                 and int8.engine == self.speed_profile().int8_engine
                 and int8.fingerprint == weights_fingerprint(self.module))
        if calibration_tiles is None:
            calibration_tiles = min(INT8_CALIBRATION_TILES, tile_passes)
        allow_int8 = self._int8_rejected != weights_fingerprint(self.module)
        candidate = autotune.choose_precision(self.speed_profile(), tile_passes,
                                              calibration_tiles=calibration_tiles, int8_ready=ready,
                                              onnx_ready=self._onnx.ready, allow_int8=allow_int8)
        return CANDIDATES[candidate]

    def speed_profile(self, measure: bool = True) -> autotune.SpeedProfile | None:
        """Measured seconds per tile forward at each precision on this machine (CPU only);
        with `measure` False, the profile only if it was measured already (else None).

        Measured once per process for this model architecture, tile size, bands, threads and
        CPU (see `dstl.autotune`; ~1-4 s on a 2-core CPU for the bundled UNets) and reused by every
        predictor that shares them. A server can call this at start-up so that no visitor waits
        for it. The int8 model built while measuring is kept for later int8 runs.
        """
        if self._profile is None:
            if not measure:
                return autotune.cached_only(self._profile_key())
            self._profile = autotune.cached_profile(self._profile_key(), self._measure_speeds)
        return self._profile

    def _profile_key(self) -> tuple:
        shapes = tuple((n, tuple(p.shape)) for n, p in self.module.state_dict().items())
        return (type(self.module).__qualname__, shapes, len(self.bands), self.tile_size, str(self.device),
                torch.get_num_threads(), runners.cpu_capability(), tuple(sorted(runners.isa_caps().items())),
                runners.cpu_flags(), self._offers_onnx())

    def _offers_onnx(self) -> bool:
        """Whether the probe measures ONNX Runtime: on the CPU, precision and backend "auto" (an
        explicit precision never runs through it, so its session would only cost memory: ~4 bytes
        per parameter), package installed."""
        return (self.device.type == "cpu" and self.backend == "auto" and self.precision == "auto"
                and onnx_runner.available())

    def _measure_speeds(self) -> autotune.SpeedProfile:
        """Time one tile's forward pass at fp32, bf16 and int8 (every quantised engine worth it)
        through PyTorch, and at fp32 through ONNX Runtime where it is offered."""
        t0 = time.perf_counter()
        x = torch.randn(1, len(self.bands), self.tile_size, self.tile_size, generator=torch.Generator()
                        .manual_seed(0)).to(self.device).contiguous(memory_format=torch.channels_last)
        was_training = self.module.training
        self.module.eval()
        int8_models: dict[str, Int8Model] = {}

        def float_builder(precision):
            def build():
                runner = self._float_runner()
                return lambda: self._forward(runner, x, precision)
            return build

        def int8_builder(engine):
            def build():
                model = Int8Model(self.module, engine)
                quantized = model.calibrate(x)
                int8_models[engine] = model

                def run():
                    with runners.quantized_engine(engine):
                        quantized(x)
                return run
            return build

        builders = {"fp32": float_builder("fp32"), "bf16": float_builder("bf16")}
        if not self._bf16_passes_screen(x[:, :, :128, :128]):
            del builders["bf16"]
        if self.device.type == "cpu":
            builders.update({f"int8-{e}": int8_builder(e) for e in runners.int8_engines()})
        if self._offers_onnx():
            def onnx_build():
                runner = self._onnx.get()  # kept by the predictor for later runs
                return lambda: self._forward(runner, x, "fp32")
            builders["onnxruntime"] = onnx_build
        try:
            with torch.inference_mode():
                details = autotune.measure_speeds(builders)
        finally:
            self.module.train(was_training)
        seconds = {name: d["seconds"] for name, d in details.items()
                   if "seconds" in d and not d.get("given_up")}
        tile_seconds = {p: seconds[p] for p in ("fp32", "bf16", "onnxruntime") if p in seconds}
        int8 = {name[5:]: s for name, s in seconds.items() if name.startswith("int8-")}
        engine = min(int8, key=int8.get) if int8 else None
        build = 0.0
        if engine is not None:
            tile_seconds["int8"] = int8[engine]
            build = details[f"int8-{engine}"]["build"]
            if engine in int8_models:
                with self._int8_lock:
                    self._int8 = int8_models[engine]  # keep the built model for later int8 runs
        onnx_build = details.get("onnxruntime", {}).get("build", 0.0)
        return autotune.SpeedProfile(tile_seconds, int8_engine=engine, int8_build_seconds=build,
                                     onnx_build_seconds=onnx_build, probe_seconds=time.perf_counter() - t0,
                                     details=details)

    def _bf16_passes_screen(self, small: torch.Tensor) -> bool:
        """False if bf16 is clearly slower than fp32 on a small input: emulated bf16 (no AMX /
        AVX512-BF16) is 3-15x slower on full tiles, and one forward of a full tile of it costs
        seconds; on a small input fixed costs narrow the gap, hence the lower bar."""
        runner = self._float_runner()
        builders = {p: (lambda p=p: lambda: self._forward(runner, small, p)) for p in ("fp32", "bf16")}
        with torch.inference_mode():
            screen = autotune.measure_speeds(builders, rounds=2, give_up=autotune.SCREEN_GIVE_UP)
        bf16, fp32 = screen.get("bf16", {}), screen.get("fp32", {})
        return ("seconds" in bf16 and "seconds" in fp32 and not bf16.get("given_up")
                and bf16["seconds"] <= autotune.SCREEN_GIVE_UP * fp32["seconds"])

    def _float_runner(self) -> nn.Module:
        with self._float_lock:
            return self._float.get()

    def _int8_engine(self) -> str:
        """The quantised engine of int8 runs: the fastest measured one if this predictor has
        measured (or shares a measurement), else PyTorch's default x86 engine."""
        profile = self._profile or autotune.cached_only(self._profile_key())
        if profile is not None and profile.int8_engine:
            return profile.int8_engine
        return "x86" if "x86" in torch.backends.quantized.supported_engines else runners.int8_engines()[0]

    # -- the run -----------------------------------------------------------------------------

    def predict(self, scene: Scene, *, thresholds=None, tta: bool | None = None,
                progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> Prediction:
        """Probabilities and thresholds for `scene` (see the module docstring for the method).

        Raises BandMismatchError if the scene lacks a band the model needs, DstlError for an
        empty or too large scene or bad thresholds, Cancelled if `cancel` is set during the run.
        """
        t_start = time.perf_counter()
        thr = resolve_thresholds(self.thresholds, thresholds)
        tta = self.tta if tta is None else bool(tta)
        idx = band_indices(scene.bands, self.bands, scene.image_id)
        h, w = scene.height, scene.width
        if h < 1 or w < 1:
            raise DstlError(f"scene {scene.image_id} is empty ({h}x{w} pixels)")
        if h * w > self.max_pixels:
            raise DstlError(f"scene {scene.image_id} is {h}x{w} = {h * w / 1e6:.0f} M pixels, more than the "
                            f"limit of {self.max_pixels / 1e6:g} M; crop it first"
                            + (f" ({limits.raise_hint(h * w)})" if self._limit_hint else ""))
        plan = self.plan(h, w)
        n_aug = 8 if tta else 1
        # tile passes in base-tile units: the measured per-tile costs are for base tiles
        passes = math.ceil(plan.n_tiles * n_aug * (plan.tile / self.tile_size) ** 2)
        n_calib = min(INT8_CALIBRATION_TILES, plan.n_tiles)
        precision, backend = self.resolve_run(passes, n_calib)
        if precision == "int8" and self.device.type != "cpu":
            raise DstlError("precision int8 runs on the CPU only")

        # The band selection stays a per-tile operation: a contiguous run of scene bands is a
        # slice (a view), anything else a fancy index applied to each tile only.
        if idx == list(range(idx[0], idx[0] + len(idx))):
            bsel = slice(idx[0], idx[0] + len(idx))
        else:
            bsel = np.asarray(idx)
        data = scene.data
        was_training = self.module.training
        self.module.eval()
        int8_info: dict = {}
        try:
            t_setup = time.perf_counter()
            if precision == "int8":
                # One int8 run at a time per predictor: the quantised model's activation
                # scales are set for the scene being processed.
                with self._int8_lock:
                    engine = self._int8_engine()
                    # base-size crops at the centres of tiles spread over the scene: activation
                    # ranges are per pixel, and larger tiles would only make calibrating slower
                    origins, c = plan.origins(), (plan.tile - self.tile_size) // 2
                    pick = np.unique(np.linspace(0, len(origins) - 1, n_calib).round()).astype(int)
                    calib = np.stack([self._tile(data, bsel, origins[i][0] + c, origins[i][1] + c,
                                                 self.tile_size) for i in pick])
                    if (self._int8 is None or self._int8.engine != engine
                            or self._int8.fingerprint != weights_fingerprint(self.module)):
                        self._int8 = None  # free the old copies first
                        self._int8 = Int8Model(self.module, engine)
                    runner = self._int8.calibrate(torch.from_numpy(calib))
                    int8_info["int8_engine"] = engine
                    int8_info["int8_deviation"] = self._int8.deviation
                    if self.precision == "auto" and self._int8.deviation > INT8_MAX_DEVIATION:
                        # int8 would change the answer for these weights: go on in float
                        self._int8_rejected = self._int8.fingerprint
                        int8_info["int8_rejected"] = True
                        precision, backend = self.resolve_run(passes, n_calib)
                    else:
                        setup_seconds = time.perf_counter() - t_setup
                        with runners.quantized_engine(engine):
                            probs, timings = self._run(data, bsel, plan, runner, precision, tta, progress,
                                                       cancel)
            if precision != "int8":
                runner = self._onnx.get() if backend == "onnxruntime" else self._float_runner()
                setup_seconds = time.perf_counter() - t_setup
                probs, timings = self._run(data, bsel, plan, runner, precision, tta, progress, cancel)
        finally:
            self.module.train(was_training)
        seconds = time.perf_counter() - t_start
        info = {
            "device": str(self.device), "precision": precision, "backend": backend, "tta": tta,
            "tile_size": plan.tile,
            "overlap": self.overlap, "batch_size": self.batch_for(plan.tile), "tiles": plan.n_tiles,
            "seconds": seconds, "setup_seconds": setup_seconds, **timings,
            **int8_info,
            "tiles_per_second": plan.n_tiles * n_aug / max(seconds, 1e-9),
        }
        return Prediction(scene.image_id, probs, thr, self.bands, info)

    def _tile(self, data: np.ndarray, bsel, y: int, x: int, t: int,
              out: np.ndarray | None = None) -> np.ndarray:
        """The normalised (C, t, t) float32 tile at origin (y, x), reflected beyond the edges
        (written into `out` if given)."""
        h, w = data.shape[1], data.shape[2]
        ry, rx = _axis_index(y, t, h), _axis_index(x, t, w)
        if isinstance(ry, slice) and isinstance(rx, slice):
            tile = data[bsel, ry, rx]
        else:
            ry = np.arange(ry.start, ry.stop) if isinstance(ry, slice) else ry
            rx = np.arange(rx.start, rx.stop) if isinstance(rx, slice) else rx
            b = np.arange(data.shape[0])[bsel]
            tile = data[np.ix_(b, ry, rx)]
        out = np.subtract(tile, self._mean, out=out, dtype=np.float32)
        out *= self._inv_std
        return out

    def _forward(self, runner: nn.Module, x: torch.Tensor, precision: str) -> torch.Tensor:
        """Sigmoid probabilities (float32) of one batch."""
        if precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                logits = runner(x)
        else:
            logits = runner(x)
        return torch.sigmoid(logits.float())

    def _run(self, data, bsel, plan: TilePlan, runner, precision, tta, progress,
             cancel) -> tuple[np.ndarray, dict[str, float]]:
        """The normalised probability map and where the time went: "input_seconds" (cutting,
        reflecting and normalising tiles), "model_seconds" (forward passes, sigmoid, window
        weights, transfers) and "blend_seconds" (accumulating tiles, dividing by the weights)."""
        h, w, t = plan.height, plan.width, plan.tile
        clock = time.perf_counter
        input_s = model_s = blend_s = 0.0
        win = torch.from_numpy(np.outer(plan.window(), plan.window())).to(self.device)
        acc = np.zeros((NUM_CLASSES, h, w), dtype=np.float32)  # becomes the result
        origins = plan.origins()
        total = len(origins)
        n_in = len(self.bands)
        batch_size = self.batch_for(t)
        buf = np.empty((min(batch_size, total), n_in, t, t), dtype=np.float32)
        non_blocking = self.device.type == "cuda"
        if progress is not None:
            progress(0, total)
        with torch.inference_mode():
            for start in range(0, total, batch_size):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("inference cancelled")
                t0 = clock()
                batch = origins[start:start + batch_size]
                for i, (y, x) in enumerate(batch):
                    self._tile(data, bsel, y, x, t, out=buf[i])
                t1 = clock()
                xb = torch.from_numpy(buf[:len(batch)]).to(self.device, non_blocking=non_blocking)
                xb = xb.contiguous(memory_format=torch.channels_last)
                p = None
                for k in range(8 if tta else 1):
                    xk = dihedral(xb, k).contiguous(memory_format=torch.channels_last) if k else xb
                    pk = self._forward(runner, xk, precision)
                    if pk.shape != xk.shape[:1] + (NUM_CLASSES,) + xk.shape[2:]:
                        raise WeightsError(f"the model returned shape {tuple(pk.shape)} for input "
                                           f"{tuple(xk.shape)}, expected {(len(batch), NUM_CLASSES, t, t)}")
                    pk = dihedral_inverse(pk, k)
                    p = pk if p is None else p.add_(pk)
                p = p.mul_(win / 8 if tta else win).contiguous().cpu().numpy()
                t2 = clock()
                for i, (y, x) in enumerate(batch):
                    ya, yb, xa, xb_ = max(y, 0), min(y + t, h), max(x, 0), min(x + t, w)
                    acc[:, ya:yb, xa:xb_] += p[i, :, ya - y:yb - y, xa - x:xb_ - x]
                input_s, model_s, blend_s = input_s + t1 - t0, model_s + t2 - t1, blend_s + clock() - t2
                if progress is not None:
                    progress(min(start + batch_size, total), total)
        # Divide by the exact weight sum, a row band at a time (no full-size temporary).
        t0 = clock()
        sy, sx = plan.weight_sums()
        inv_y, inv_x = (1.0 / sy).astype(np.float32), (1.0 / sx).astype(np.float32)
        for r in range(0, h, 256):
            band = acc[:, r:r + 256]
            band *= inv_y[r:r + 256, None]
            band *= inv_x
            np.clip(band, 0.0, 1.0, out=band)
        blend_s += clock() - t0
        return acc, {"input_seconds": input_s, "model_seconds": model_s, "blend_seconds": blend_s}


# --------------------------------------------------------------------------------------------
# One-call helpers


def predict(scene: Scene, model, *, thresholds=None, tta: bool | None = None,
            progress: ProgressFn | None = None, cancel: threading.Event | None = None,
            **predictor_args) -> Prediction:
    """`Predictor(model, **predictor_args).predict(scene, ...)`; `model` may also be a Predictor."""
    p = model if isinstance(model, Predictor) else Predictor(model, **predictor_args)
    return p.predict(scene, thresholds=thresholds, tta=tta, progress=progress, cancel=cancel)


def predict_scene(scene: Scene, model, **kwargs) -> np.ndarray:
    """Per-class probabilities, float32 (10, H, W) in [0, 1]; arguments as `predict`."""
    return predict(scene, model, **kwargs).probs

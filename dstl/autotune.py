"""What `precision="auto"` picks on a CPU: the precision that runs fastest here, measured.

CPU flags do not say it. bf16 is 2x faster than fp32 where the CPU has AMX, but oneDNN emulates it
3-15x *slower* on CPUs without native bf16 (AVX512-VNNI Xeons, AVX2-only EPYCs). int8 is 1.5-3x
faster than fp32 with VNNI or AMX, and its gain without them depends on which kernel library
(FBGEMM, oneDNN) runs it and on the instruction sets the process may use (ISA caps such as
ONEDNN_MAX_CPU_ISA, see `dstl.runners`). So the engine times one forward pass of each candidate on
a tile of the predictor's own size, once per process and setting, and decides per run from the
measured costs (`choose_precision`):

    cost(fp32) = passes * t_fp32             cost(bf16) = passes * t_bf16
    cost(int8) = build + calibration + passes * t_int8    (build: 0 once the int8 model exists;
                                                          calibration: its tiles at ~t_fp32 each)
    cost(onnxruntime) = build + passes * t_onnxruntime    (fp32 through ONNX Runtime, where the
                                                          optional package is installed; build:
                                                          the export and session, 0 once made)

Another candidate than PyTorch's fp32 is chosen only when it is at least `MIN_GAIN` cheaper (a
lower precision costs a little agreement with fp32, and the probe's timings are noisy on a loaded
machine).

The probe (`measure_speeds`) takes ~1-4 s on a 2-core CPU for the bundled UNets: a warm-up and
`rounds` interleaved timed forwards of one tile per candidate, the minimum kept (the least
disturbed by other load). bf16 is first screened on a 128 px input, where an emulated bf16 shows
itself for a quarter of the price (`SCREEN_GIVE_UP`). A run of fewer than `PROBE_MIN_PASSES` tiles
does not start the probe by itself (fp32 then, unless the process has measured already). A
candidate whose warm-up or first timed forward is over `GIVE_UP` times slower than fp32's is not
timed again. Results are cached per process (`cached_profile`) by what they depend on: the model's
architecture (parameter shapes), tile size, bands, device, threads and the CPU and its ISA caps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["SpeedProfile", "measure_speeds", "choose_precision", "run_costs", "cached_profile",
           "cached_only", "clear_cache", "MIN_GAIN", "GIVE_UP", "PROBE_MIN_PASSES"]

#: A precision other than fp32 must be at least this much cheaper (fraction of fp32's cost).
MIN_GAIN = 0.10

#: Candidates whose first timed forward is this many times slower than fp32's are dropped.
GIVE_UP = 3.0

#: bf16 is screened on a 128 px input first and dropped if it is this many times slower than fp32
#: there (emulated bf16 is 2-3x slower already at that size, native bf16 about as fast as fp32).
SCREEN_GIVE_UP = 1.5

#: Calibrating int8 runs the float module with hooks on each calibration tile: ~this many fp32 tiles.
CALIBRATION_OVERHEAD = 1.2

#: A run shorter than this many base-tile passes does not trigger the probe (it runs fp32, or what
#: an earlier probe in the process found): the probe costs ~20-40 tile forwards (builds, warm-ups,
#: timed rounds of every candidate), which a short one-off run would never earn back. A server
#: measures once at start-up (`Predictor.speed_profile()`) and every image benefits.
PROBE_MIN_PASSES = 100


@dataclass(frozen=True)
class SpeedProfile:
    """Measured forward-pass times on this machine.

    Attributes:
        tile_seconds: candidate -> seconds per tile forward (the minimum over the timed
            rounds): the precisions "fp32", "bf16", "int8" through PyTorch and "onnxruntime"
            (fp32 through ONNX Runtime, `dstl.onnx_runner`); one that was not measured or was
            given up is absent.
        int8_engine: the quantised engine ("x86", "onednn", "fbgemm") of the fastest int8 runner.
        int8_build_seconds: time to build (quantise and pack) that int8 model once.
        onnx_build_seconds: time to export the model and open its ONNX Runtime session once.
        probe_seconds: what the measurement itself cost.
        details: every candidate's timings, for reports: name -> {"build", "warmup", "runs"}.
    """

    tile_seconds: Mapping[str, float]
    int8_engine: str | None = None
    int8_build_seconds: float = 0.0
    onnx_build_seconds: float = 0.0
    probe_seconds: float = 0.0
    details: Mapping[str, dict] = field(default_factory=dict)


Runner = Callable[[], None]
#: name -> a builder returning the zero-argument callable that runs one forward pass.
Builders = Mapping[str, Callable[[], Runner]]


def measure_speeds(builders: Builders, *, reference: str = "fp32", rounds: int = 3,
                   clock: Callable[[], float] = time.perf_counter,
                   give_up: float = GIVE_UP) -> dict[str, dict]:
    """Time each candidate's forward pass, interleaved.

    Each builder is called once (its time is "build"), its runner once untimed as a warm-up
    (oneDNN creates its kernels on first use; "warmup"), then `rounds` rounds run every remaining
    runner once each, in order ("runs"). `reference` (built first) sets the bar: a candidate whose
    warm-up or first timed run takes over `give_up` times the reference's is not run again
    ("given_up"). A builder that raises drops its candidate (reported as "error").

    Returns name -> {"build": s, "warmup": s, "runs": [s, ...], "seconds": min of runs} ("seconds"
    is absent for a candidate that failed).
    """
    order = [reference] + [n for n in builders if n != reference]
    runners: dict[str, Runner] = {}
    out: dict[str, dict] = {}
    for name in order:
        t0 = clock()
        try:
            run = builders[name]()
            t1 = clock()
            run()
            t2 = clock()
        except Exception as e:  # noqa: BLE001 - a candidate that cannot run here is simply not chosen
            out[name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        out[name] = {"build": t1 - t0, "warmup": t2 - t1, "runs": []}
        if name != reference and reference in runners and t2 - t1 > give_up * out[reference]["warmup"]:
            out[name]["given_up"] = True  # e.g. emulated bf16: 5-15x slower, not worth timing
            continue
        runners[name] = run
    for r in range(max(rounds, 1)):
        for name in list(runners):
            t0 = clock()
            runners[name]()
            out[name]["runs"].append(clock() - t0)
        if r == 0 and reference in runners:
            bar = give_up * out[reference]["runs"][0]
            for name in [n for n in runners if n != reference and out[n]["runs"][0] > bar]:
                del runners[name]
                out[name]["given_up"] = True
    for d in out.values():
        if d.get("runs"):
            d["seconds"] = min(d["runs"])
    return out


def run_costs(profile: SpeedProfile, tile_passes: int, *, calibration_tiles: int,
              int8_ready: bool, onnx_ready: bool = False) -> dict[str, float]:
    """Estimated seconds of a run of `tile_passes` tile forwards with each measured candidate."""
    t = profile.tile_seconds
    costs = {p: tile_passes * s for p, s in t.items()}
    if "int8" in t:
        setup = 0.0 if int8_ready else profile.int8_build_seconds
        setup += calibration_tiles * t.get("fp32", t["int8"]) * CALIBRATION_OVERHEAD
        costs["int8"] += setup
    if "onnxruntime" in t and not onnx_ready:
        costs["onnxruntime"] += profile.onnx_build_seconds
    return costs


def choose_precision(profile: SpeedProfile, tile_passes: int, *, calibration_tiles: int,
                     int8_ready: bool = False, onnx_ready: bool = False, min_gain: float = MIN_GAIN,
                     allow_int8: bool = True) -> str:
    """The cheapest candidate for the run by `run_costs` ("fp32", "bf16", "int8" or
    "onnxruntime"); fp32 unless another saves `min_gain`. `allow_int8` False leaves int8 out
    (weights whose int8 output was found too far from fp32)."""
    costs = run_costs(profile, tile_passes, calibration_tiles=calibration_tiles, int8_ready=int8_ready,
                      onnx_ready=onnx_ready)
    if not allow_int8:
        costs.pop("int8", None)
    if "fp32" not in costs:
        return "fp32"
    best = min(costs, key=lambda p: (costs[p], p != "fp32"))
    return best if costs[best] <= (1.0 - min_gain) * costs["fp32"] else "fp32"


_cache: dict[tuple, SpeedProfile] = {}
_cache_lock = threading.Lock()


def cached_profile(key: tuple, measure: Callable[[], SpeedProfile]) -> SpeedProfile:
    """The profile stored under `key`, measured by `measure()` the first time (one measurement
    at a time per process: two probes at once would disturb each other's timings)."""
    with _cache_lock:
        profile = _cache.get(key)
        if profile is None:
            profile = _cache[key] = measure()
        return profile


def cached_only(key: tuple) -> SpeedProfile | None:
    """The profile stored under `key`, or None (never measures)."""
    with _cache_lock:
        return _cache.get(key)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()

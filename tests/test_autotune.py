"""Tests of dstl.autotune: the probe's bookkeeping (with a fake clock) and the cost model.
No wall-clock timing is asserted anywhere."""

import pytest

from dstl import autotune
from dstl.autotune import SpeedProfile, choose_precision, measure_speeds, run_costs


class FakeClock:
    """A clock that only moves when a fake runner 'runs' (by its cost)."""

    def __init__(self):
        self.now = 0.0
        self.log = []

    def __call__(self):
        return self.now

    def runner(self, name, seconds, warmup=None):
        """A builder (costing 0.5 s) whose runner advances the clock by `seconds` per call
        (`warmup` on the first call)."""
        calls = []

        def build():
            self.now += 0.5

            def run():
                self.now += warmup if (warmup is not None and not calls) else seconds
                calls.append(1)
                self.log.append(name)
            return run
        return build


def test_measure_speeds_interleaves_rounds_and_keeps_the_minimum():
    clock = FakeClock()
    builders = {"bf16": clock.runner("bf16", 0.5), "fp32": clock.runner("fp32", 1.0, warmup=3.0)}
    out = measure_speeds(builders, clock=clock, rounds=3)
    assert clock.log == ["fp32", "bf16"] + ["fp32", "bf16"] * 3  # reference first, then rounds
    assert out["fp32"] == {"build": 0.5, "warmup": 3.0, "runs": [1.0] * 3, "seconds": 1.0}
    assert out["bf16"]["seconds"] == 0.5 and out["bf16"]["warmup"] == 0.5


def test_measure_speeds_gives_up_on_hopeless_candidates_and_survives_broken_ones():
    clock = FakeClock()

    def broken():
        raise RuntimeError("no kernels for this here")

    builders = {"fp32": clock.runner("fp32", 1.0),
                "slow-warmup": clock.runner("slow-warmup", 1.0, warmup=10.0),
                "slow": clock.runner("slow", 5.0, warmup=1.0),
                "broken": broken,
                "fast": clock.runner("fast", 0.2)}
    out = measure_speeds(builders, clock=clock, rounds=3, give_up=3.0)
    assert out["slow-warmup"]["given_up"] and out["slow-warmup"]["runs"] == []
    assert out["slow"]["given_up"] and out["slow"]["runs"] == [5.0]  # timed once, then dropped
    assert "RuntimeError" in out["broken"]["error"] and "seconds" not in out["broken"]
    assert out["fast"]["runs"] == pytest.approx([0.2] * 3)
    assert clock.log.count("slow") == 2 and clock.log.count("slow-warmup") == 1


def test_int8_pays_only_when_its_setup_is_amortised():
    profile = SpeedProfile({"fp32": 1.0, "int8": 0.5}, "onednn", int8_build_seconds=4.0)
    costs = run_costs(profile, 10, calibration_tiles=4, int8_ready=False)
    assert costs["fp32"] == 10.0
    assert costs["int8"] == pytest.approx(4.0 + 4 * 1.0 * autotune.CALIBRATION_OVERHEAD + 5.0)
    assert choose_precision(profile, 10, calibration_tiles=4) == "fp32"
    assert choose_precision(profile, 100, calibration_tiles=4) == "int8"
    # once built, only the calibration is left to pay
    ready = run_costs(profile, 10, calibration_tiles=4, int8_ready=True)["int8"]
    assert ready == pytest.approx(costs["int8"] - 4.0)


def test_onnx_runtime_pays_its_export_once():
    profile = SpeedProfile({"fp32": 1.0, "onnxruntime": 0.6}, onnx_build_seconds=5.0)
    costs = run_costs(profile, 10, calibration_tiles=0, int8_ready=False)
    assert costs["onnxruntime"] == pytest.approx(5.0 + 6.0)
    assert choose_precision(profile, 10, calibration_tiles=0) == "fp32"
    assert choose_precision(profile, 10, calibration_tiles=0, onnx_ready=True) == "onnxruntime"
    assert choose_precision(profile, 100, calibration_tiles=0) == "onnxruntime"
    # like a lower precision, it must save MIN_GAIN over PyTorch's fp32
    close = SpeedProfile({"fp32": 1.0, "onnxruntime": 0.95})
    assert choose_precision(close, 100, calibration_tiles=0, onnx_ready=True) == "fp32"


def test_lower_precisions_must_save_enough_to_be_chosen():
    assert choose_precision(SpeedProfile({"fp32": 1.0, "bf16": 0.95}), 100, calibration_tiles=0) == "fp32"
    assert choose_precision(SpeedProfile({"fp32": 1.0, "bf16": 0.85}), 100, calibration_tiles=0) == "bf16"
    both = SpeedProfile({"fp32": 1.0, "bf16": 0.5, "int8": 0.3}, "fbgemm")
    assert choose_precision(both, 1, calibration_tiles=16) == "bf16"
    assert choose_precision(both, 10_000, calibration_tiles=16) == "int8"
    assert choose_precision(SpeedProfile({"bf16": 0.1}), 100, calibration_tiles=0) == "fp32"  # no reference


def test_profiles_are_measured_once_per_key():
    autotune.clear_cache()
    made = []

    def measure():
        made.append(1)
        return SpeedProfile({"fp32": float(len(made))})

    try:
        a = autotune.cached_profile(("k", 1), measure)
        assert autotune.cached_profile(("k", 1), measure) is a and len(made) == 1
        assert autotune.cached_only(("k", 2)) is None
        assert autotune.cached_profile(("k", 2), measure).tile_seconds["fp32"] == 2.0
    finally:
        autotune.clear_cache()

"""Tests of dstl.engine: stitching, padding, TTA, thresholds, bands, precision, progress,
cancellation and bounded memory. Tiny models defined here; small tiles keep every test fast."""

import threading
import tracemalloc

import numpy as np
import pytest
import torch
from torch import nn

from dstl import autotune, engine, onnx_runner, runners
from dstl.bands import ALL_BANDS, RGB_BANDS
from dstl.classes import NUM_CLASSES
from dstl.engine import (
    Cancelled,
    Prediction,
    Predictor,
    TilePlan,
    band_indices,
    blend_window,
    choose_model,
    dihedral,
    dihedral_inverse,
    predict,
    predict_scene,
    reflect_indices,
    resolve_thresholds,
)
from dstl.errors import BandMismatchError, DstlError, WeightsError
from dstl.models import LoadedModel, ModelConfig
from dstl.normalization import BandStats
from dstl.scene import Scene


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


class PickChannels(nn.Module):
    """Logits = the first 10 input channels (cycled if fewer): a pointwise, exactly stitchable model."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.idx = [k % in_channels for k in range(NUM_CLASSES)]
        self.dummy = nn.Parameter(torch.zeros(()))  # gives the module a device/dtype

    def forward(self, x):
        return x[:, self.idx] + self.dummy


class Constant(nn.Module):
    """Logits = a fixed value per class, whatever the input."""

    def __init__(self, values):
        super().__init__()
        self.values = nn.Parameter(torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        n, _, h, w = x.shape
        return self.values.expand(n, -1, h, w) + 0 * x[:, :1]


class PositionDependent(nn.Module):
    """Not equivariant under flips/rotations: logits depend on the pixel's place in the tile."""

    def forward(self, x):
        n, _, h, w = x.shape
        rows = torch.linspace(-1, 1, h).view(1, 1, h, 1)
        cols = torch.linspace(-2, 2, w).view(1, 1, 1, w)
        base = x[:, :1] + rows + 0.5 * cols * torch.arange(1, NUM_CLASSES + 1).view(1, -1, 1, 1)
        return base


def small_convnet(in_channels: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, NUM_CLASSES, 1),
    )
    with torch.no_grad():
        for m in net.modules():  # non-trivial BatchNorm statistics, so folding them is tested
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
        net[-1].weight.mul_(4.0)  # confident enough outputs that masks mean something
    return net.eval()


def random_scene(h, w, bands=ALL_BANDS, seed=0, image_id="t"):
    rng = np.random.default_rng(seed)
    return Scene(image_id, rng.random((len(bands), h, w), dtype=np.float32), tuple(bands))


def smooth_scene(h, w, bands=ALL_BANDS, seed=0):
    """Spatially correlated values (as in real imagery) so that convnets give structured output."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((len(bands), h // 8 + 2, w // 8 + 2), dtype=np.float32)
    data = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)[:, :h, :w]
    data = 0.7 * data + 0.3 * rng.random(data.shape, dtype=np.float32)
    return Scene("s", np.ascontiguousarray(data), tuple(bands))


STATS20 = BandStats(ALL_BANDS, tuple(0.1 + 0.01 * i for i in range(20)),
                    tuple(0.5 + 0.05 * i for i in range(20)))


def expected_pointwise(scene, stats, bands):
    idx = [scene.bands.index(b) for b in bands]
    x = stats.normalize(scene.data[idx])
    return sigmoid(x[[k % len(bands) for k in range(NUM_CLASSES)]])


# ---------------------------------------------------------------------------------------------
# Stitching and padding


@pytest.mark.parametrize("size", [(1, 1), (7, 300), (100, 100), (65, 97), (200, 333)])
def test_pointwise_model_is_reproduced_exactly_across_tiles(size):
    scene = random_scene(*size, seed=sum(size))
    p = Predictor(PickChannels(20), bands=ALL_BANDS, normalization=STATS20, tile_size=64, overlap=20,
                  batch_size=3, precision="fp32")
    pred = p.predict(scene)
    assert pred.probs.shape == (NUM_CLASSES, *size) and pred.probs.dtype == np.float32
    np.testing.assert_allclose(pred.probs, expected_pointwise(scene, STATS20, ALL_BANDS), rtol=0, atol=2e-6)


def test_constant_model_gives_a_seamless_constant_map():
    values = np.linspace(-3, 3, NUM_CLASSES)
    scene = random_scene(190, 250)
    pred = predict(scene, Constant(values), bands=ALL_BANDS, tile_size=64, overlap=24, max_tile_size=64,
                   precision="fp32")
    want = sigmoid(values).astype(np.float32)[:, None, None]
    np.testing.assert_allclose(pred.probs, np.broadcast_to(want, pred.probs.shape), rtol=0, atol=1e-6)
    assert pred.info["tiles"] > 9  # several tiles in both directions, so borders were crossed


def test_tile_plan_covers_every_pixel_with_margin_and_centred():
    for n in (1, 31, 64, 65, 100, 241, 3400):
        for tile, overlap in ((64, 0), (64, 16), (224, 56), (96, 95)):
            plan = TilePlan.for_scene(n, n, tile, overlap)
            ys = np.array(plan.ys)
            assert np.all(np.diff(ys) == tile - overlap)
            assert ys[0] <= -(overlap // 2) and ys[-1] + tile >= n + overlap // 2
            assert abs((ys[-1] + tile - n) - (-ys[0])) <= 1  # centred
            sy, _ = plan.weight_sums()
            assert sy.shape == (n,) and np.all(sy > 0)


def test_tiles_grow_to_compute_fewer_pixels():
    # a 512 x 512 image: four 320 px tiles (409,600 px) instead of nine 256 px ones (589,824 px)
    assert engine.fit_tile(512, 512, 256, 512, 64) == 320
    assert engine.fit_tile(512, 512, 256, 256, 64) == 256  # fixed tile size
    for h, w in [(1, 1), (100, 700), (512, 512), (3350, 3400), (1800, 2400)]:
        t = engine.fit_tile(h, w, 256, 512, 64)
        assert 256 <= t <= 512 and t % 32 == 0
        px = TilePlan.for_scene(h, w, t, 64).n_tiles * t * t
        assert all(px <= TilePlan.for_scene(h, w, u, 64).n_tiles * u * u for u in range(256, 513, 32))
    p = Predictor(PickChannels(3), bands=RGB_BANDS, tile_size=256, batch_size=4, precision="fp32")
    assert p.plan(512, 512).tile == 320 and p.plan(512, 512).n_tiles == 4
    assert p.batch_for(256) == 4 and p.batch_for(320) == 2 and p.batch_for(512) == 1
    scene = random_scene(512, 512, bands=RGB_BANDS)
    pred = p.predict(scene)
    assert (pred.info["tile_size"], pred.info["tiles"], pred.info["batch_size"]) == (320, 4, 2)
    want = expected_pointwise(scene, BandStats.identity(RGB_BANDS), RGB_BANDS)
    np.testing.assert_allclose(pred.probs, want, atol=2e-6)
    with pytest.raises(DstlError, match="max tile size"):
        Predictor(PickChannels(3), bands=RGB_BANDS, tile_size=256, max_tile_size=224)


def test_blend_window_is_positive_flat_topped_and_a_partition_of_unity():
    w = blend_window(64, 16)
    assert np.all(w > 0) and np.all(w[16:48] == 1)
    np.testing.assert_allclose(w[:16] + w[48:], 1.0, atol=1e-6)  # neighbours' ramps sum to 1
    assert np.all(blend_window(32, 0) == 1)


def test_reflect_indices_match_numpy_pad_even_for_pads_larger_than_the_scene():
    for n in range(1, 8):
        a = np.arange(n)
        for pad in (0, 1, n, 3 * n + 2, 30):
            want = np.pad(a, pad, mode="reflect") if n > 1 else np.zeros(n + 2 * pad, dtype=int)
            got = reflect_indices(np.arange(-pad, n + pad), n)
            np.testing.assert_array_equal(got, want)


def test_small_scene_is_padded_by_reflection_not_zeros():
    # A model that sees the whole (reflected) tile: logits = tile mean. With reflection the value
    # differs from the zero-padded one, and stays the same for every pixel of a one-tile scene.
    class TileMean(nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2, 3), keepdim=True).expand(-1, NUM_CLASSES, *x.shape[2:])

    scene = random_scene(10, 13, bands=RGB_BANDS)
    pred = predict(scene, TileMean(), bands=RGB_BANDS, tile_size=32, overlap=0, precision="fp32")
    rows = reflect_indices(np.arange(32) - 11, 10)
    cols = reflect_indices(np.arange(32) - 9, 13)
    want = sigmoid(scene.data[:, rows][:, :, cols].mean())
    np.testing.assert_allclose(pred.probs, want, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Test-time augmentation


def np_dihedral(a, k):
    if k >= 4:
        a = a[..., ::-1]
    return np.rot90(a, k % 4, axes=(-2, -1))


def test_dihedral_transforms_are_distinct_match_numpy_and_invert():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)
    seen = set()
    for k in range(8):
        y = dihedral(x, k)
        np.testing.assert_array_equal(y.numpy(), np_dihedral(x.numpy(), k))
        np.testing.assert_array_equal(dihedral_inverse(y, k).numpy(), x.numpy())
        seen.add(y[0, 0].numpy().tobytes())
    assert len(seen) == 8


def test_tta_of_a_non_equivariant_model_is_the_de_augmented_average():
    scene = random_scene(64, 64, bands=RGB_BANDS)
    pred = predict(scene, PositionDependent(), bands=RGB_BANDS, tile_size=64, overlap=0, tta=True,
                   precision="fp32")
    x = scene.data[None]  # identity normalisation, one tile = the scene
    model = PositionDependent()
    outs = []
    for k in range(8):
        y = model(torch.from_numpy(np.ascontiguousarray(np_dihedral(x, k)))).numpy()
        yk = sigmoid(y)
        for _ in range(4 - k % 4 if k % 4 else 0):  # inverse rotation = rotate the rest of the way
            yk = np.rot90(yk, 1, axes=(-2, -1))
        outs.append(yk[..., ::-1] if k >= 4 else yk)
    want = np.mean(outs, axis=0)[0]
    np.testing.assert_allclose(pred.probs, want, atol=1e-6)
    plain = predict(scene, model, bands=RGB_BANDS, tile_size=64, overlap=0, precision="fp32").probs
    assert np.abs(plain - pred.probs).max() > 0.05  # the model is really not equivariant


def test_tta_of_a_pointwise_model_equals_no_tta_across_tiles():
    scene = random_scene(90, 150)
    p = Predictor(PickChannels(20), bands=ALL_BANDS, normalization=STATS20, tile_size=32, overlap=8,
                  precision="fp32")
    np.testing.assert_allclose(p.predict(scene, tta=True).probs, p.predict(scene).probs, atol=2e-6)


# ---------------------------------------------------------------------------------------------
# Thresholds


def loaded(module, bands, thresholds=(0.5,) * NUM_CLASSES, tile_size=32):
    cfg = ModelConfig(architecture="test", model_args={}, bands=tuple(bands),
                      normalization=BandStats.identity(tuple(bands)), thresholds=thresholds,
                      tile_size=tile_size)
    return LoadedModel(module=module, config=cfg, source="test model")


def test_thresholds_from_config_and_overrides():
    cfg_t = tuple(np.linspace(0.1, 0.9, NUM_CLASSES))
    values = np.full(NUM_CLASSES, 0.0)  # every probability is 0.5 (to float rounding)
    model = loaded(Constant(values), RGB_BANDS, thresholds=cfg_t)
    scene = random_scene(20, 30, bands=RGB_BANDS)
    pred = Predictor(model, precision="fp32").predict(scene)
    assert pred.thresholds == cfg_t
    np.testing.assert_array_equal(pred.masks()[:, 0, 0], (0.5 >= np.array(cfg_t)).astype(np.uint8))
    assert pred.masks().dtype == np.uint8 and pred.masks().shape == (NUM_CLASSES, 20, 30)
    # override at call time: one number, a full list, a partial {class_id: t}
    assert pred.masks(0.51).sum() == 0 and pred.masks(0.49).min() == 1
    assert np.all(pred.masks({10: 0.2})[9] == 1) and np.all(pred.masks({10: 0.2})[:5] == 1)
    assert Predictor(model, thresholds={1: 0.7}, precision="fp32").predict(scene).thresholds[0] == 0.7
    assert Predictor(model, precision="fp32").predict(scene, thresholds=[0.3] * 10).thresholds == (0.3,) * 10


@pytest.mark.parametrize("bad", [1.5, -0.1, [0.5] * 9, {11: 0.5}, {0: 0.5}, float("nan")])
def test_bad_thresholds_are_clear_errors(bad):
    with pytest.raises(DstlError, match="threshold"):
        resolve_thresholds((0.5,) * NUM_CLASSES, bad)


# ---------------------------------------------------------------------------------------------
# Bands


def test_rgb_scene_with_a_20_band_model_is_a_one_line_band_error():
    scene = random_scene(40, 40, bands=RGB_BANDS, image_id="upload")
    with pytest.raises(BandMismatchError) as e:
        predict(scene, PickChannels(20), bands=ALL_BANDS)
    msg = str(e.value)
    assert "\n" not in msg and "upload" in msg and "missing" in msg and "M1" in msg


def test_superset_scene_selects_the_model_bands_in_model_order():
    scene = random_scene(50, 70)
    for bands in (RGB_BANDS, ("M7", "R", "A1"), ("A8",)):
        pred = predict(scene, PickChannels(len(bands)), bands=bands, tile_size=32, precision="fp32")
        np.testing.assert_allclose(pred.probs, expected_pointwise(scene, BandStats.identity(bands), bands),
                                   atol=2e-6)
        assert pred.bands == bands


def test_choose_model_picks_the_richest_model_that_fits():
    rgb = loaded(PickChannels(3), RGB_BANDS)
    full = loaded(PickChannels(20), ALL_BANDS)
    assert choose_model(ALL_BANDS, [rgb, full]) is full
    assert choose_model(RGB_BANDS, [full, rgb]) is rgb
    with pytest.raises(BandMismatchError, match="no model fits"):
        choose_model(("R", "G"), [full, rgb])
    assert band_indices(ALL_BANDS, ("B", "P")) == [2, 3]


# ---------------------------------------------------------------------------------------------
# Precision


def test_bf16_agrees_with_fp32_on_a_random_convnet():
    scene = smooth_scene(96, 128, bands=RGB_BANDS)
    net = small_convnet(3)
    a = predict(scene, net, bands=RGB_BANDS, tile_size=64, precision="fp32")
    b = predict(scene, net, bands=RGB_BANDS, tile_size=64, precision="bf16")
    assert b.info["precision"] == "bf16"
    assert np.abs(a.probs - b.probs).max() < 0.03
    assert (a.masks() == b.masks()).mean() > 0.99


def test_int8_agrees_with_fp32_and_leaves_the_model_untouched():
    scene = smooth_scene(96, 128, bands=RGB_BANDS)
    net = small_convnet(3).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    a = predict(scene, net, bands=RGB_BANDS, tile_size=64, precision="fp32")
    b = predict(scene, net, bands=RGB_BANDS, tile_size=64, precision="int8")
    assert b.info["precision"] == "int8"
    assert np.abs(a.probs - b.probs).mean() < 0.01
    assert (a.masks() == b.masks()).mean() > 0.98
    assert net.training  # mode restored
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k  # no folding or observers leaked into the module
    assert all(type(m) in (nn.Sequential, nn.Conv2d, nn.BatchNorm2d, nn.ReLU) for m in net.modules())


def test_int8_result_depends_only_on_the_model_and_the_scene():
    # The quantised model is built once per predictor and re-calibrated per scene: a scene's
    # result must not depend on what the predictor saw before, and new weights must be noticed.
    a, b = smooth_scene(96, 128, bands=RGB_BANDS, seed=1), smooth_scene(80, 100, bands=RGB_BANDS, seed=2)
    b.data[:] *= 1.7  # other activation ranges
    net = small_convnet(3)
    used = Predictor(net, bands=RGB_BANDS, tile_size=64, precision="int8")
    used.predict(a)
    fresh = Predictor(small_convnet(3), bands=RGB_BANDS, tile_size=64, precision="int8")
    np.testing.assert_array_equal(used.predict(b).probs, fresh.predict(b).probs)
    with torch.no_grad():
        net[-1].bias.add_(1.0)  # weights changed in place: the int8 copy must be rebuilt
    fp32 = predict(b, net, bands=RGB_BANDS, tile_size=64, precision="fp32").probs
    assert np.abs(used.predict(b).probs - fp32).mean() < 0.01


def fake_measurement(seconds: dict[str, float], build: float = 1.0):
    """A stand-in for `autotune.measure_speeds` that reports fixed per-tile times (and still
    builds nothing), with a counter of how often it was asked."""
    calls = []

    def measure(builders, **kwargs):
        calls.append(sorted(builders))
        out = {}
        for name in builders:
            key = "int8" if name.startswith("int8-") else name
            if key in seconds:
                s = seconds[key] * (1.0 if name in ("fp32", "bf16", "int8-onednn") else 1.5)
                out[name] = {"build": build, "warmup": s, "runs": [s, s], "seconds": s}
        return out

    measure.calls = calls
    return measure


@pytest.mark.parametrize("seconds, few, many", [
    ({"fp32": 1.0, "bf16": 0.5, "int8": 0.4}, "bf16", "int8"),   # AMX: bf16 at once, int8 pays later
    ({"fp32": 1.0, "bf16": 4.0, "int8": 0.5}, "fp32", "int8"),   # VNNI without native bf16
    ({"fp32": 1.0, "int8": 0.95}, "fp32", "fp32"),               # int8 barely faster: not worth it
    ({"fp32": 1.0}, "fp32", "fp32"),                             # only fp32 could be measured
])
def test_auto_precision_follows_the_measured_speeds_and_the_amount_of_work(monkeypatch, seconds, few, many):
    autotune.clear_cache()
    fake = fake_measurement(seconds)
    monkeypatch.setattr(autotune, "measure_speeds", fake)
    p = Predictor(small_convnet(3), bands=RGB_BANDS, tile_size=32, device="cpu")
    assert p.resolve_precision(1) == "fp32" and not fake.calls  # too small a run to pay for a probe
    assert p.speed_profile(measure=False) is None and not fake.calls
    assert p.resolve_precision(10_000) == many and fake.calls    # a large one measures
    assert p.resolve_precision(1) == few                         # and later small runs use it
    assert p.speed_profile().tile_seconds == {k: v for k, v in seconds.items() if k != "bf16" or v <= 1.5}
    if "int8" in seconds:
        assert p.speed_profile().int8_engine == "onednn"  # the faster engine of the fake timings
    # measured once per process for this architecture and tile size, not per predictor
    probes = len(fake.calls)
    other = Predictor(small_convnet(3, seed=5), bands=RGB_BANDS, tile_size=32, device="cpu")
    assert other.resolve_precision(1) == few and len(fake.calls) == probes
    Predictor(small_convnet(3), bands=RGB_BANDS, tile_size=64, device="cpu").speed_profile()
    assert len(fake.calls) > probes
    # an explicit precision never measures
    probes = len(fake.calls)
    assert Predictor(PickChannels(3), bands=RGB_BANDS, precision="fp32").resolve_precision(10_000) == "fp32"
    assert len(fake.calls) == probes
    autotune.clear_cache()


def test_auto_measures_for_real_and_keeps_the_int8_model_it_built():
    # No timing is asserted: only that the probe ran every candidate it could and that its
    # decision is one of them.
    autotune.clear_cache()
    scene = smooth_scene(96, 128, bands=RGB_BANDS)
    p = Predictor(small_convnet(3), bands=RGB_BANDS, tile_size=64, device="cpu")
    assert p.resolve_precision(1) == "fp32" and autotune.cached_only(p._profile_key()) is None  # no probe
    profile = p.speed_profile()
    assert profile.tile_seconds["fp32"] > 0
    assert set(profile.tile_seconds) <= {"fp32", "bf16", "int8", "onnxruntime"}
    # every candidate was tried (bf16 may have been screened out on a small input first), ONNX
    # Runtime exactly where it is installed
    onnx = {"onnxruntime"} if onnx_runner.available() else set()
    assert {"fp32"} | {f"int8-{e}" for e in runners.int8_engines()} | onnx <= set(profile.details)
    assert set(profile.details) <= {"fp32", "bf16"} | {f"int8-{e}" for e in runners.int8_engines()} | onnx
    if "int8" in profile.tile_seconds:
        assert p._int8 is not None and p._int8.engine == profile.int8_engine
    pred = p.predict(scene)
    chosen = "onnxruntime" if pred.info["backend"] == "onnxruntime" else pred.info["precision"]
    assert chosen in profile.tile_seconds
    fp32 = predict(scene, small_convnet(3), bands=RGB_BANDS, tile_size=64, precision="fp32")
    assert (pred.masks() == fp32.masks()).mean() > 0.98
    autotune.clear_cache()


def test_auto_drops_int8_for_weights_it_would_change(monkeypatch):
    # int8 is the measured fastest, but these weights' int8 output is far from fp32 on the
    # calibration tiles: "auto" must answer in float, say so, and not calibrate int8 again.
    from tests.test_runners import outlier_convnet

    autotune.clear_cache()
    monkeypatch.setattr(autotune, "measure_speeds", fake_measurement({"fp32": 1.0, "int8": 0.1}, build=0.0))
    monkeypatch.setattr(runners, "int8_engines", lambda: ["x86"])
    scene = smooth_scene(256, 256, bands=RGB_BANDS)
    net = outlier_convnet()
    p = Predictor(net, bands=RGB_BANDS, tile_size=32, device="cpu")
    assert p.resolve_precision(10_000) == "int8"
    first = p.predict(scene)
    assert first.info["int8_rejected"] is True and first.info["precision"] == "fp32"
    assert first.info["int8_deviation"] > engine.INT8_MAX_DEVIATION
    fp32 = predict(scene, net, bands=RGB_BANDS, tile_size=32, precision="fp32")
    np.testing.assert_array_equal(first.probs, fp32.probs)
    assert p.resolve_precision(10_000) == "fp32"
    second = p.predict(scene)
    assert second.info["precision"] == "fp32" and "int8_deviation" not in second.info
    # an explicit int8 is honoured, with its deviation reported
    forced = Predictor(net, bands=RGB_BANDS, tile_size=32, precision="int8").predict(scene)
    assert forced.info["precision"] == "int8" and forced.info["int8_deviation"] > engine.INT8_MAX_DEVIATION
    # weights that quantise well keep int8 under "auto"
    good = Predictor(small_convnet(3), bands=RGB_BANDS, tile_size=32, device="cpu").predict(scene)
    assert good.info["precision"] == "int8" and good.info["int8_deviation"] < engine.INT8_MAX_DEVIATION
    assert "int8_rejected" not in good.info
    autotune.clear_cache()


def test_bad_options_are_clear_errors():
    with pytest.raises(DstlError, match="precision"):
        Predictor(PickChannels(3), bands=RGB_BANDS, precision="fp16")
    with pytest.raises(DstlError, match="multiple of 32"):
        Predictor(PickChannels(3), bands=RGB_BANDS, tile_size=100)
    with pytest.raises(DstlError, match="overlap"):
        Predictor(PickChannels(3), bands=RGB_BANDS, tile_size=32, overlap=32)


# ---------------------------------------------------------------------------------------------
# Progress, cancellation, errors


def test_progress_reports_tiles_per_batch():
    calls = []
    p = Predictor(PickChannels(3), bands=RGB_BANDS, tile_size=32, overlap=8, batch_size=4, precision="fp32")
    pred = p.predict(random_scene(70, 100, bands=RGB_BANDS), progress=lambda d, t: calls.append((d, t)))
    total = p.plan(70, 100).n_tiles
    assert pred.info["tiles"] == total and total > 8
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert len(calls) == 1 + -(-total // 4)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_cancellation_leaves_the_predictor_usable():
    net = small_convnet(3).train()
    p = Predictor(net, bands=RGB_BANDS, tile_size=32, overlap=8, batch_size=2, precision="fp32")
    scene = smooth_scene(64, 96, bands=RGB_BANDS)
    cancel = threading.Event()

    def stop_after_first_batch(done, total):
        if done > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        p.predict(scene, progress=stop_after_first_batch, cancel=cancel)
    assert net.training

    class Stop(Exception):
        pass

    def raising(done, total):
        if done >= 4:
            raise Stop

    with pytest.raises(Stop):
        p.predict(scene, progress=raising)
    assert net.training
    again = p.predict(scene).probs
    fresh = Predictor(small_convnet(3), bands=RGB_BANDS, tile_size=32, overlap=8, precision="fp32")
    np.testing.assert_allclose(again, fresh.predict(scene).probs, atol=1e-5)


def test_a_wrong_output_shape_is_a_weights_error():
    with pytest.raises(WeightsError, match="shape"):
        predict(random_scene(32, 32, bands=RGB_BANDS), nn.Conv2d(3, 4, 1), bands=RGB_BANDS, tile_size=32)


def test_empty_and_too_large_scenes_are_refused():
    with pytest.raises(DstlError, match="empty"):
        predict(Scene("e", np.zeros((3, 0, 5), np.float32), RGB_BANDS), PickChannels(3), bands=RGB_BANDS)
    with pytest.raises(DstlError, match="limit"):
        predict(random_scene(100, 100, bands=RGB_BANDS), PickChannels(3), bands=RGB_BANDS, max_pixels=5000)


def test_loaded_model_config_drives_bands_normalisation_and_tiles():
    stats = BandStats(RGB_BANDS, (0.2, 0.3, 0.4), (0.5, 0.25, 2.0))
    cfg = ModelConfig(architecture="test", model_args={}, bands=RGB_BANDS, normalization=stats, tile_size=64)
    model = LoadedModel(module=PickChannels(3), config=cfg, source="x")
    scene = random_scene(70, 90)
    pred = Predictor(model, precision="fp32").predict(scene)
    assert pred.info["tile_size"] == 64 and pred.info["overlap"] == 16
    np.testing.assert_allclose(pred.probs, expected_pointwise(scene, stats, RGB_BANDS), atol=2e-6)
    assert isinstance(pred, Prediction)
    np.testing.assert_array_equal(predict_scene(scene, model, precision="fp32"), pred.probs)


# ---------------------------------------------------------------------------------------------
# Memory


def test_streaming_never_copies_the_scene():
    # 20 bands x 640 x 960 float32 = 49 MB of scene, 7.4 MB for any 3 of its bands; the result is
    # 24.6 MB. numpy's peak beyond the result stays within one batch's buffers (~3 MB here): a
    # normalised, padded or band-selected copy of the scene would exceed it.
    h, w = 640, 960
    scene = random_scene(h, w)
    scene.data.flags.writeable = False  # the engine must not write into the scene either
    result_bytes = NUM_CLASSES * h * w * 4
    for bands in (ALL_BANDS, ("A1", "R", "M3")):
        p = Predictor(PickChannels(len(bands)), bands=bands, tile_size=128, overlap=32, batch_size=1,
                      max_tile_size=128, precision="fp32")
        tracemalloc.start()
        try:
            p.predict(scene)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < result_bytes + 5_000_000, (bands, peak - result_bytes)


needs_onnx = pytest.mark.skipif(not onnx_runner.available(),
                                reason=f"ONNX Runtime is not installed: {onnx_runner.INSTALL_HINT}")


@needs_onnx
def test_auto_runs_through_onnx_runtime_where_it_is_measured_cheapest(monkeypatch):
    autotune.clear_cache()
    fake = fake_measurement({"fp32": 1.0, "int8": 0.8, "onnxruntime": 0.5}, build=0.0)
    monkeypatch.setattr(autotune, "measure_speeds", fake)
    scene = smooth_scene(96, 128, bands=RGB_BANDS)
    net = small_convnet(3)
    p = Predictor(net, bands=RGB_BANDS, tile_size=64, device="cpu")
    assert p.resolve_run(10_000) == ("fp32", "onnxruntime")
    assert "onnxruntime" in fake.calls[-1]
    pred = p.predict(scene)
    assert pred.info["precision"] == "fp32" and pred.info["backend"] == "onnxruntime"
    reference = predict(scene, net, bands=RGB_BANDS, tile_size=64, precision="fp32")
    assert reference.info["backend"] == "torch"
    np.testing.assert_allclose(pred.probs, reference.probs, atol=1e-5)
    # an explicit precision or backend "torch" is PyTorch, and "torch" does not even measure it
    explicit = Predictor(net, bands=RGB_BANDS, tile_size=64, precision="fp32")
    assert explicit.resolve_run(10_000) == ("fp32", "torch")
    torch_only = Predictor(net, bands=RGB_BANDS, tile_size=64, backend="torch")
    assert torch_only.resolve_run(10_000) == ("int8", "torch") and "onnxruntime" not in fake.calls[-1]
    autotune.clear_cache()


@needs_onnx
def test_backend_onnxruntime_asked_for_outright_matches_pytorch_fp32():
    scene = smooth_scene(130, 90, bands=RGB_BANDS)
    net = small_convnet(3)
    pred = predict(scene, net, bands=RGB_BANDS, tile_size=64, backend="onnxruntime", tta=True)
    assert pred.info["backend"] == "onnxruntime" and pred.info["precision"] == "fp32"
    reference = predict(scene, net, bands=RGB_BANDS, tile_size=64, precision="fp32", tta=True)
    np.testing.assert_allclose(pred.probs, reference.probs, atol=1e-5)


def test_backend_choices_are_checked_with_one_line_errors(monkeypatch):
    net = small_convnet(3)
    with pytest.raises(DstlError, match="backend must be one of auto, torch, onnxruntime, got 'tensorrt'"):
        Predictor(net, bands=RGB_BANDS, backend="tensorrt")
    with pytest.raises(DstlError, match="backend onnxruntime runs fp32 on the CPU only, not int8"):
        Predictor(net, bands=RGB_BANDS, backend="onnxruntime", precision="int8")
    monkeypatch.setattr(onnx_runner, "available", lambda: False)
    with pytest.raises(DstlError, match=r"pip install 'dstl-segmentation\[onnx\]'"):
        Predictor(net, bands=RGB_BANDS, backend="onnxruntime")
    # only precision "auto" may pick it; without the package, "auto" simply does not offer it
    assert not Predictor(net, bands=RGB_BANDS, precision="fp32")._offers_onnx()
    assert not Predictor(net, bands=RGB_BANDS)._offers_onnx()

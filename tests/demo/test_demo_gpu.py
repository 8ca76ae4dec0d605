"""Where the model runs: the `spaces` package's GPU decorator on ZeroGPU Spaces, a no-op elsewhere."""

import importlib
import sys
import types

import numpy as np

from dstl.dataset import DstlDataset
from dstl.demo import gpu
from dstl.demo.registry import ModelRegistry
from dstl.demo.service import DemoService


def test_without_the_spaces_package_nothing_is_wrapped(monkeypatch):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    if gpu._spaces is None:
        assert not gpu.on_zero_gpu()
        assert gpu.predict_on_zero_gpu.__module__ == "dstl.demo.gpu"  # the plain function


def test_with_the_spaces_package_the_gpu_function_is_declared_at_import(monkeypatch):
    declared = []

    def GPU(duration):  # noqa: N802 - the spaces package's name
        def wrap(fn):
            declared.append((fn.__name__, duration))
            return fn
        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=GPU))
    try:
        module = importlib.reload(gpu)
        assert declared == [("predict_on_zero_gpu", gpu.ZERO_GPU_SECONDS)]
        monkeypatch.setenv("SPACES_ZERO_GPU", "true")
        assert module.on_zero_gpu()
        monkeypatch.setenv("SPACES_ZERO_GPU", "")
        assert not module.on_zero_gpu()
    finally:
        monkeypatch.delitem(sys.modules, "spaces")
        importlib.reload(gpu)


def test_on_zero_gpu_requests_go_through_the_gpu_function_and_predictors_stay_on_the_cpu(
        tiny_weights, dstl_folder, monkeypatch):
    calls = []

    def fake_gpu_call(loaded, scene, predictor_args):
        # Stands in for the CUDA run: the same computation on the CPU, recorded.
        from dstl.engine import Predictor

        calls.append((loaded.config.bands == tuple(scene.bands[:len(loaded.config.bands)]), scene.image_id))
        prediction = Predictor(loaded, device="cpu", **predictor_args).predict(scene)
        return prediction.probs, prediction.info

    monkeypatch.setattr(gpu, "on_zero_gpu", lambda: True)
    monkeypatch.setattr(gpu, "predict_on_zero_gpu", fake_gpu_call)
    service = DemoService(ModelRegistry([str(tiny_weights["m20"])]), DstlDataset(dstl_folder))
    result = service.segment_image("9001_0_0", "m20").result
    assert [c[1] for c in calls] == ["9001_0_0"]
    assert result.probs.shape == (10, 64, 72) and result.probs.dtype == np.uint8
    assert service._predictors == {}  # no CPU predictor was needed for the request
    assert str(service._predictor("m20", lambda f, d: None).device) == "cpu"

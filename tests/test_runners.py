"""Tests of dstl.runners: BatchNorm folding, the float runner's cache, int8 engines and their
activation ranges."""

import numpy as np
import pytest
import torch
from torch import nn

from dstl import runners
from dstl.runners import FloatRunner, Int8Model, fold_batchnorm, int8_engines, int8_reduce_range


def convnet(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
        nn.BatchNorm2d(8),  # not after a conv in its Sequential: stays
        nn.Conv2d(8, 10, 1),
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.3, 3.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def test_folding_batchnorm_keeps_the_output_and_leaves_the_module_alone():
    net = convnet().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    folded = fold_batchnorm(net)
    x = torch.randn(2, 3, 32, 32)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-4, atol=1e-5)
    kinds = [type(m).__name__ for m in folded[0]]
    assert kinds == ["Conv2d", "Identity", "ReLU", "Conv2d", "Identity", "ReLU"]
    assert isinstance(folded[1], nn.BatchNorm2d)
    assert folded[0][0].bias is not None
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 3


def test_float_runner_refolds_when_the_weights_change():
    net = convnet()
    runner = FloatRunner(net)
    first = runner.get()
    assert runner.get() is first
    assert first[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        net[0][1].running_mean.add_(1.0)  # in place, as an optimiser or BN update would
    second = runner.get()
    assert second is not first
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(second(x), net(x), rtol=1e-4, atol=1e-5)


def test_int8_engines_are_supported_kernel_libraries():
    engines = int8_engines()
    assert engines and set(engines) <= set(torch.backends.quantized.supported_engines)
    assert set(engines) <= {"onednn", "fbgemm", "x86"}


@pytest.mark.parametrize("flags, env, fbgemm, x86", [
    ({"avx2"}, "", True, True),                      # AVX2 only (e.g. AMD EPYC Zen 2/3)
    ({"avx2", "avx_vnni"}, "", True, True),           # AVX-VNNI is not what FBGEMM uses
    ({"avx512f", "avx512_vnni"}, "", False, False),
    ({"avx512f", "avx512_vnni"}, "AVX2", True, False),  # FBGEMM capped below VNNI; x86 uses oneDNN
])
def test_activation_range_is_reduced_where_the_kernels_would_overflow(monkeypatch, flags, env, fbgemm, x86):
    monkeypatch.setattr(runners, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setenv("FBGEMM_ENABLE_INSTRUCTIONS", env)
    assert int8_reduce_range("fbgemm") is fbgemm
    assert int8_reduce_range("x86") is x86
    assert int8_reduce_range("onednn") is False


@pytest.mark.parametrize("engine", int8_engines())
def test_int8_model_agrees_with_float_on_every_engine(engine):
    net = convnet()
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    model = Int8Model(net, engine)
    quantized = model.calibrate(x)
    with torch.no_grad(), runners.quantized_engine(engine):
        q = quantized(x)
        f = net(x)
    err = (q - f).abs().mean().item() / f.abs().mean().item()
    assert err < 0.05, err
    assert np.isfinite(q.numpy()).all()


def test_an_unsupported_engine_is_a_clear_error():
    with pytest.raises(ValueError, match="not supported"):
        Int8Model(convnet(), "no-such-engine")


def outlier_convnet(seed=0):
    """A net that per-tensor int8 cannot represent: one channel of the first conv's output is
    ~1e4 times the others, so quantising that activation rounds the useful channels to zero,
    and the head reads only those."""
    torch.manual_seed(seed)
    first, head = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 10, 1)
    with torch.no_grad():
        first.weight[0].mul_(1e4)
        first.bias[0] = 1e4
        head.weight[:, 0] = 0.0
        head.weight.mul_(4.0)
    return nn.Sequential(nn.Sequential(first, nn.ReLU()), head).eval()


@pytest.mark.parametrize("engine", int8_engines())
def test_calibration_measures_how_far_int8_is_from_float(engine):
    x = torch.randn(4, 3, 32, 32)
    good = Int8Model(convnet(), engine)
    good.calibrate(x)
    bad = Int8Model(outlier_convnet(), engine)
    bad.calibrate(x)
    with torch.no_grad():  # the measure is the mean |sigmoid(int8) - sigmoid(float)|
        with runners.quantized_engine(engine):
            q = torch.sigmoid(bad.quantized(x.contiguous(memory_format=torch.channels_last)))
        f = torch.sigmoid(bad.module(x))
    assert bad.deviation == pytest.approx((q - f).abs().mean().item(), rel=1e-4)
    assert good.deviation < 0.01 < bad.deviation

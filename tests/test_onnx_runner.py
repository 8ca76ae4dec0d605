"""dstl.onnx_runner: the fp32 forward pass through ONNX Runtime equals PyTorch's, at any batch and
size the models take, for both architectures, and follows the module's weights."""

import numpy as np
import pytest
import torch

from dstl import onnx_runner
from dstl.models import Res50UNet, UNet
from dstl.onnx_runner import OnnxRunner
from dstl.runners import FloatRunner

pytestmark = pytest.mark.skipif(not onnx_runner.available(),
                                reason=f"ONNX Runtime is not installed: {onnx_runner.INSTALL_HINT}")


def trained_looking(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """`module` in eval mode with non-trivial BatchNorm statistics (so that folding matters)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return module.eval()


@pytest.mark.parametrize("make, bands", [
    (lambda: UNet(in_channels=3, base_width=8), 3),
    (lambda: Res50UNet(in_channels=20, decoder_widths=(64, 32, 16, 8)), 20),
])
def test_logits_equal_pytorch_fp32_at_other_batches_and_sizes(make, bands):
    torch.manual_seed(0)
    module = trained_looking(make())
    run = OnnxRunner(module, bands).get()
    for shape in ((1, bands, 64, 64), (3, bands, 96, 160)):
        x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            expected = FloatRunner(module).get()(x)
        got = run(x)
        assert got.dtype == torch.float32 and got.shape == (shape[0], 10, *shape[2:])
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)


def test_new_weights_are_exported_again():
    module = trained_looking(UNet(in_channels=3, base_width=8))
    runner = OnnxRunner(module, 3, threads=1)
    assert not runner.ready
    x = torch.randn(1, 3, 64, 64)
    before = runner.get()(x)
    assert runner.ready and runner.get() is runner.get()  # kept while the weights stay
    with torch.no_grad():
        module.head.bias.add_(1.0)
    assert not runner.ready
    after = runner.get()(x)
    with torch.inference_mode():
        np.testing.assert_allclose(after.numpy(), module(x).numpy(), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(before, after)

"""DropBlock (Ghiasi et al. 2018, "DropBlock: A regularization method for convolutional networks").

Where dropout zeroes single activations -- which neighbouring activations of a feature map largely
make up for -- DropBlock zeroes contiguous ``block_size`` x ``block_size`` squares, per sample and
channel, and rescales the kept activations so the expected sum is unchanged. In eval mode (or with
``p == 0``) it is the identity. Written here because the project does not depend on timm; the defaults
(p = 0.1 there, 0.2 in Res50UNet; block size 7) and the per-channel masks follow timm's
``DropBlock2d``, the rest the paper:

- block centres are drawn only where the whole block fits (the paper's valid region), with
  probability ``gamma = p * H * W / (b**2 * (H - b + 1) * (W - b + 1))``, so that about a fraction
  `p` of the map is dropped (a little less where blocks overlap);
- ``b = min(block_size, H, W)``: on maps smaller than the block (layer4 of a 128 px crop is 8 x 8)
  the block shrinks to the map;
- kept activations are scaled by (number of activations) / (number kept), over the whole batch.
"""

import torch
import torch.nn.functional as F
from torch import nn


class DropBlock2d(nn.Module):
    """Zero random ``block_size`` x ``block_size`` squares of each (N, C, H, W) feature map in training.

    Args:
        p: the fraction of each map to drop, in [0, 1).
        block_size: side of the dropped squares in pixels (timm's default 7).
    """

    def __init__(self, p: float = 0.2, block_size: int = 7):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p < 1.0:
            raise ValueError(f"DropBlock p must be a number in [0, 1), got {p!r}")
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"DropBlock block_size must be an integer >= 1, got {block_size!r}")
        self.p = float(p)
        self.block_size = block_size

    def extra_repr(self) -> str:
        return f"p={self.p}, block_size={self.block_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        n, c, h, w = x.shape
        b = min(self.block_size, h, w)
        gamma = self.p * h * w / (b * b * (h - b + 1) * (w - b + 1))
        seeds = torch.empty((n, c, h - b + 1, w - b + 1), dtype=x.dtype, device=x.device).bernoulli_(gamma)
        # A seed at (i, j) drops rows i .. i+b-1 and columns j .. j+b-1: a max-pool of the seeds, padded
        # by b-1 on every side, has exactly H x W outputs.
        dropped = F.max_pool2d(F.pad(seeds, (b - 1, b - 1, b - 1, b - 1)), b, stride=1)
        keep = 1.0 - dropped
        scale = keep.numel() / keep.sum(dtype=torch.float32).clamp_min(1.0)
        return x * keep * scale

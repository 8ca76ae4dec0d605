"""UNet: the original project's 5-down / 5-up segmentation network.

Shape: (N, in_channels, H, W) normalised bands -> (N, num_classes, H, W) logits, for any H and W that
are multiples of 32 (five 2x2 max-pools; a 224x224 tile reaches the bottleneck as 7x7). Convs are
padded 3x3 (no cropping), each block is (3x3 conv, BatchNorm, ReLU) x2, upsampling is a 2x2 stride-2
transposed conv followed by concatenation with the encoder's skip (`dstl.models.decoder`), and a 1x1
conv gives one logit map per class. Apply a sigmoid at inference; train on the logits with a
numerically stable loss.

Widths: base_width * (1, 2, 4, 8, 16) in the encoder and base_width * 32 at the bottleneck -- the
defaults (32 .. 512, 1024) are the original's: 31,105,706 parameters for 20 bands -> 10 classes
(31,100,810 for RGB). Dropout layers have no parameters: both placements below have the same count
and the same state-dict keys.

Dropout (p = `dropout`, the original's 0.2), two placements (``dropout_placement``):

- ``"original"`` (default, DESIGN.md section 3): channel dropout (`nn.Dropout2d`, whole feature maps
  zeroed) as the last layer of each of the five encoder blocks -- so the skips carry it, and so does
  the pooled input of the next level -- none in the bottleneck nor in decoder blocks 5..2, and one as
  the last layer of the full-resolution decoder block, just before the head.
- ``"deep"`` (what this project used before, and what the bundled weights in weights/ were trained
  with): element-wise `nn.Dropout` on the pooled input of encoder levels 3-5 and of the bottleneck,
  on the bottleneck's output, and after the deepest decoder block; the full-resolution levels and
  the skips carry none. bench/dropout_placement.py compares the two (BENCHMARKS.md).

Dropout is inactive in eval mode, so the placement does not change inference.
"""

import torch
from torch import nn

from dstl.errors import BandMismatchError, DstlError
from dstl.models.decoder import ConvBlock, build_decoder, decode
from dstl.models.mixin import HubMixin

DEPTH = 5
#: The accepted values of ``dropout_placement`` (see the module docstring).
DROPOUT_PLACEMENTS: tuple[str, ...] = ("original", "deep")


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_dropout(value, name: str = "dropout") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def check_input(x: torch.Tensor, in_channels: int, multiple: int, name: str) -> None:
    """Raise a clear error unless `x` is (N, in_channels, H, W) with H, W multiples of `multiple`."""
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise BandMismatchError(f"{name} expects input (N, {in_channels}, H, W), got {tuple(x.shape)}")
    if x.shape[2] % multiple or x.shape[3] % multiple or x.shape[2] == 0 or x.shape[3] == 0:
        raise DstlError(f"{name} needs height and width that are positive multiples of {multiple}, "
                        f"got {x.shape[2]}x{x.shape[3]}")


class UNet(HubMixin, nn.Module, architecture="unet"):
    """The 5-level UNet of DESIGN.md section 3 (see the module docstring for the exact layout).

    Args (JSON-serialisable; saved as ``model_args`` in config.json):
        in_channels: input bands (20 for full DSTL scenes, 3 for RGB-only).
        num_classes: output logit maps (10 DSTL classes).
        base_width: channels of the first level; level k has base_width * 2**k, the bottleneck * 32.
        dropout: dropout probability (0 disables it).
        dropout_placement: ``"original"`` (default: `nn.Dropout2d` at the end of every encoder block
            and of the full-resolution decoder block) or ``"deep"`` (element-wise `nn.Dropout` around
            the bottleneck; the bundled weights' layout). See the module docstring.
    """

    #: Height and width of every input must be a multiple of this.
    size_multiple = 2 ** DEPTH

    def __init__(self, in_channels: int = 20, num_classes: int = 10, base_width: int = 32,
                 dropout: float = 0.2, dropout_placement: str = "original"):
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels)
        self.num_classes = _check_int("num_classes", num_classes)
        _check_int("base_width", base_width)
        dropout = _check_dropout(dropout)
        if dropout_placement not in DROPOUT_PLACEMENTS:
            raise ValueError(f"dropout_placement must be one of {', '.join(map(repr, DROPOUT_PLACEMENTS))}, "
                             f"got {dropout_placement!r}")
        self.model_args = {"in_channels": in_channels, "num_classes": num_classes, "base_width": base_width,
                           "dropout": dropout, "dropout_placement": dropout_placement}
        widths = [base_width * 2 ** k for k in range(DEPTH + 1)]  # 32 64 128 256 512 | 1024
        original = dropout_placement == "original"

        def drop2d() -> nn.Module | None:  # "original": channel dropout
            return nn.Dropout2d(dropout) if dropout > 0 and original else None

        def drop() -> nn.Module | None:  # "deep": element-wise dropout
            return nn.Dropout(dropout) if dropout > 0 and not original else None

        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths[:DEPTH]:
            self.down.append(ConvBlock(cin, w, drop2d()))  # "original": Dropout2d last, so the skip has it
            cin = w
        self.pool = nn.MaxPool2d(2)
        # "deep": dropout on the pooled input of levels 3, 4, 5 and of the bottleneck (index = level
        # pooled from), and after the bottleneck's block.
        self.down_dropout = nn.ModuleList((drop() if k >= 1 else None) or nn.Identity() for k in range(DEPTH))
        self.bottleneck = ConvBlock(widths[DEPTH - 1], widths[DEPTH], drop())
        # Decoder steps, deepest first: "deep" drops after the deepest, "original" after the full-resolution
        # one.
        step_dropout = [drop(), None, None, None, drop2d()]
        self.up, self.dec = build_decoder(widths, widths[-2::-1], step_dropout)
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        if self.head.weight.is_meta:
            return  # built for loading (meta device): nothing to initialise, and normal_ on meta is slow
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # The head starts small so that initial probabilities are near 0.5 rather than saturated.
        nn.init.normal_(self.head.weight, std=1e-3)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder features, shallow to deep: five skips (base_width * 2**k channels at H / 2**k)
        and the bottleneck's output (base_width * 32 channels at H / 32)."""
        features = []
        h = x
        for block, drop in zip(self.down, self.down_dropout, strict=True):
            h = block(h)
            features.append(h)
            h = drop(self.pool(h))
        features.append(self.bottleneck(h))
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, num_classes, H, W) logits; H, W multiples of 32."""
        check_input(x, self.in_channels, self.size_multiple, "UNet")
        return self.head(decode(self.encode(x), self.up, self.dec))

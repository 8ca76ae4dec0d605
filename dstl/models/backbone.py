"""The ResNet50 backbone of Res50UNet, in pure PyTorch, and loading pretrained ResNet50 weights into it.

Key layout. Modules are named exactly as in torchvision's and timm's ResNet50 (``conv1``, ``bn1``,
``layer1`` .. ``layer4``, each a sequence of `Bottleneck` blocks with ``conv1 bn1 conv2 bn2 conv3 bn3``
and ``downsample.0`` / ``downsample.1`` on the first block of a stage), so a standard ResNet50 state
dict -- ImageNet (torchvision/timm) or the Sentinel-2 ResNet50 weights that torchgeo publishes (13
bands) -- maps onto our stages key for key. The stride of a stage sits on the 3x3 conv of its first
block ("ResNet v1.5", as in torchvision and timm).

Adapting the input layer. Res50UNet replaces the pretrained stem (7x7 stride-2 conv ``conv1`` + ``bn1``
+ ReLU) by a `ResidualStem` at full resolution: two 3x3 convs (``stem.conv1/bn1``, ``stem.conv2/bn2``)
plus a 1x1 projection on the shortcut (``stem.shortcut.0/1``). A 7x7 filter cannot be loaded 1:1 into
either, so `load_pretrained_backbone` initialises the stem from the pretrained ``conv1`` as follows:

1. Channels by wavelength. For each of our bands (centre wavelengths from `dstl.bands.WAVELENGTH_NM`)
   take the pretrained input channel with the nearest centre wavelength (`PRETRAINED_WAVELENGTHS`:
   ImageNet RGB = R 660, G 545, B 480 nm in torchvision order; Sentinel-2 B01..B12 incl. B8A). When
   n of our bands map to the same pretrained channel, each gets that channel's weights divided by n,
   so a spectrally flat input (every band equal) gives exactly the pretrained response of the
   channels used: activations keep their magnitude. Pretrained channels no band maps to are dropped
   (listed in the report).
2. ``stem.shortcut.0`` (1x1) <- the spatial sum of each adapted 7x7 filter: its response to a locally
   constant input (the filter's DC gain). ``stem.shortcut.1`` <- ``bn1`` (affine and running stats).
3. ``stem.conv1`` (3x3) <- the centre 3x3 of each adapted 7x7 filter, rescaled per filter to the
   7x7 filter's L2 norm (same response magnitude to white noise). ``stem.conv2`` / ``stem.bn1`` keep
   their fresh initialisation.
4. ``stem.bn2.weight`` is set to zero, so the residual branch starts switched off and the stem's
   initial output is ReLU(bn1(DC response of the pretrained filters)) -- features with the statistics
   ``layer1`` was trained on. Training then grows the spatial detail of the 3x3 branch.

Input scaling differs between sources (ImageNet expects standardised RGB, the torchgeo SSL4EO
Sentinel-2 weights reflectance / 10000); our inputs are standardised per band (`BandStats`). The copied
running statistics are therefore a starting point that training re-estimates, not a calibrated model.

Freezing. `freeze_backbone` / `unfreeze_backbone` switch ``requires_grad`` of whole stages and keep the
BatchNorm layers of frozen stages in eval mode (their statistics frozen too, also across
``model.train()``); `apply_unfreeze_schedule` implements staged unfreezing (deepest stages first).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from dstl.bands import ALL_BANDS, RGB_BANDS, WAVELENGTH_NM
from dstl.errors import WeightsError
from dstl.errors import one_line as _one_line
from dstl.errors import short_list as _list

#: Blocks per stage of ResNet50 and the stage widths (the bottleneck's inner width; outputs are 4x).
RESNET50_BLOCKS: tuple[int, ...] = (3, 4, 6, 3)
RESNET50_PLANES: tuple[int, ...] = (64, 128, 256, 512)
#: The pretrained stages, shallow to deep.
BACKBONE_STAGES: tuple[str, ...] = ("layer1", "layer2", "layer3", "layer4")

#: Centre wavelengths (nm) of the input channels of known pretrained ResNet50s, in channel order.
PRETRAINED_WAVELENGTHS: dict[str, tuple[float, ...]] = {
    # torchvision / timm ImageNet weights: R, G, B.
    "imagenet-rgb": (660.0, 545.0, 480.0),
    # torchgeo Sentinel-2 weights (13 bands, L1C order B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B10 B11
    # B12), Sentinel-2A centre wavelengths. B10 (1375 nm, cirrus) and B09 (945 nm, water vapour) are
    # atmospheric bands; nearest-wavelength matching still uses them when they are the closest.
    "sentinel2-13": (442.7, 492.4, 559.8, 664.6, 704.1, 740.5, 782.8, 832.8, 864.7, 945.1,
                     1373.5, 1613.7, 2202.4),
}
_PRESET_BY_CHANNELS = {3: "imagenet-rgb", 13: "sentinel2-13"}

# Prefixes that wrap a bare ResNet state dict in common checkpoints (DDP, Lightning, torchgeo/timm).
_WRAPPER_PREFIXES = ("module.", "model.", "backbone.", "encoder.", "net.")


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class Bottleneck(nn.Module):
    """ResNet bottleneck block (1x1 reduce, 3x3 with the stride, 1x1 expand x4), torchvision names.

    ``dropout`` > 0 adds a Dropout after the 3x3 conv's ReLU (inside the block, before the expanding
    1x1); it has no parameters, so state-dict keys are unchanged.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.dropout(self.relu(self.bn2(self.conv2(out))))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def make_stage(inplanes: int, planes: int, blocks: int, stride: int, dropout: float = 0.0) -> nn.Sequential:
    """One ResNet stage: `blocks` bottlenecks, the first with the stride and a 1x1 projection shortcut."""
    downsample = None
    if stride != 1 or inplanes != planes * Bottleneck.expansion:
        downsample = nn.Sequential(_conv1x1(inplanes, planes * Bottleneck.expansion, stride),
                                   nn.BatchNorm2d(planes * Bottleneck.expansion))
    layers = [Bottleneck(inplanes, planes, stride, downsample, dropout)]
    layers += [Bottleneck(planes * Bottleneck.expansion, planes, dropout=dropout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def make_resnet50_stages(stage_dropout: Sequence[float] = (0.0, 0.0, 0.0, 0.0)) -> dict[str, nn.Sequential]:
    """The four ResNet50 stages (``layer1``..``layer4``, 64 -> 256 -> 512 -> 1024 -> 2048 channels)."""
    stages, inplanes = {}, 64
    for i, (planes, blocks) in enumerate(zip(RESNET50_PLANES, RESNET50_BLOCKS, strict=True)):
        stages[f"layer{i + 1}"] = make_stage(inplanes, planes, blocks, 1 if i == 0 else 2, stage_dropout[i])
        inplanes = planes * Bottleneck.expansion
    return stages


def _init_weights(module: nn.Module) -> None:
    """Kaiming-normal convs, unit BatchNorm; skipped on the meta device (shapes only, for loading)."""
    if next(module.parameters()).is_meta:
        return
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class StageFreezing:
    """Mixin for modules with ``layer1``..``layer4``: frozen stages keep their BatchNorm in eval mode."""

    frozen_stages: frozenset[str] = frozenset()

    def train(self, mode: bool = True):
        super().train(mode)  # type: ignore[misc]
        for name in self.frozen_stages:
            getattr(self, name).eval()
        return self


class ResNet50(StageFreezing, nn.Module):
    """The standard ResNet50 (torchvision layout: conv1 7x7/2, bn1, max-pool, layer1..4, optional fc).

    Used as the reference for key layout and parameter count (23,508,032 without ``fc`` for 3 input
    channels; 25,557,032 with the 1000-class ``fc``) and to read or write torchvision-layout
    checkpoints. `forward` returns the ``layer4`` features (N, 2048, H/32, W/32), or logits with ``fc``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        for name, stage in make_resnet50_stages().items():
            self.add_module(name, stage)
        self.fc = nn.Linear(2048, num_classes) if num_classes else None
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.fc is None:
            return x
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class ResidualStem(nn.Module):
    """Full-resolution replacement of ResNet's 7x7 stem: (3x3 conv, BN, ReLU, 3x3 conv, BN) + shortcut.

    The shortcut is a 1x1 conv + BN projecting the input bands to `width` channels (as in the ResNet
    paper's projection shortcuts); output = ReLU(residual + shortcut), shape (N, width, H, W).
    """

    def __init__(self, in_channels: int, width: int = 64):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.shortcut = nn.Sequential(_conv1x1(in_channels, width), nn.BatchNorm2d(width))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


# ----------------------------------------------------------------------------------------------
# Reading pretrained state dicts


def _unwrap(state: object, where: str) -> dict[str, torch.Tensor]:
    """Return the bare ResNet state dict inside a checkpoint (nested dicts and key prefixes removed)."""
    for _ in range(3):  # {"state_dict": {...}} / {"model": {...}} checkpoints, at most a few levels deep
        if isinstance(state, Mapping) and not any(isinstance(v, torch.Tensor) for v in state.values()):
            inner = next((state[k] for k in ("state_dict", "model", "model_state_dict", "teacher", "student")
                          if isinstance(state.get(k), Mapping)), None)
            if inner is None:
                break
            state = inner
    if not isinstance(state, Mapping) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{where}: holds no tensors -- not a ResNet50 state dict")
    sd = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    for _ in range(2):  # e.g. "module.backbone.layer1..." (DDP around a wrapper)
        if any(k.startswith(("conv1.", "layer1.")) for k in sd):
            break
        prefix = next((p for p in _WRAPPER_PREFIXES
                       if any(k.startswith((p + "conv1.", p + "layer1.")) for k in sd)), None)
        if prefix is None:
            break
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    return sd


def read_state_dict(source: str | os.PathLike,
                    filename: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """Read a ResNet50 state dict; return it (bare torchvision keys) and a description of its origin.

    `source` is a local file (``.safetensors``, read with safetensors; ``.pth``/``.pt``/``.bin``/``.ckpt``,
    read with ``torch.load(weights_only=True)``, which refuses arbitrary pickled code), or a Hub repo id
    ``owner/name[@revision]`` from which `filename` (default ``model.safetensors``) is fetched through
    the Hugging Face cache (see `dstl.models.hub.hub_download`).
    """
    text = str(source)
    path = Path(text).expanduser()
    if not path.exists():
        from dstl.models.hub import hub_download, parse_repo_id  # lazy: hub imports this module's users

        parsed = parse_repo_id(text)
        if parsed is None:
            raise WeightsError(f"backbone weights {text!r}: no such file, and not a Hub repo id "
                               "(owner/name[@revision])")
        repo_id, revision = parsed
        path = hub_download(repo_id, filename or "model.safetensors", revision)
        where = f"Hub {repo_id}@{revision or 'main'}/{path.name}"
    else:
        if path.is_dir():
            if filename is None:
                raise WeightsError(f"backbone weights {text}: is a folder; pass the file or filename=")
            path = path / filename
        where = str(path)
    try:
        if path.suffix == ".safetensors":
            import safetensors.torch

            state: object = safetensors.torch.load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"backbone weights {where}: file not found") from None
    except Exception as e:  # any parser failure (pickle, zip, safetensors) means an unreadable file
        raise WeightsError(f"backbone weights {where}: unreadable ({_one_line(e)})") from None
    return _unwrap(state, where), where


# ----------------------------------------------------------------------------------------------
# Adapting the first convolution


def default_bands(in_channels: int) -> tuple[str, ...]:
    """The band list a model with `in_channels` inputs is assumed to take: 20 -> ALL_BANDS, 3 -> RGB."""
    if in_channels == len(ALL_BANDS):
        return ALL_BANDS
    if in_channels == len(RGB_BANDS):
        return RGB_BANDS
    raise WeightsError(f"cannot guess the band names of a {in_channels}-channel model; pass bands=")


def match_channels(bands: Sequence[str], source_wavelengths: Sequence[float]) -> list[int]:
    """For each band, the index of the source channel with the nearest centre wavelength (ties: first)."""
    out = []
    for b in bands:
        if b not in WAVELENGTH_NM:
            raise WeightsError(f"band {b!r} has no known wavelength (known: {', '.join(WAVELENGTH_NM)})")
        w = WAVELENGTH_NM[b]
        out.append(min(range(len(source_wavelengths)), key=lambda j: (abs(source_wavelengths[j] - w), j)))
    return out


def adapt_input_weight(weight: torch.Tensor, source_wavelengths: Sequence[float],
                       bands: Sequence[str]) -> tuple[torch.Tensor, list[int]]:
    """Map a (out, C_src, k, k) first-conv weight onto `bands` by nearest wavelength.

    Band i gets source channel j = nearest(i), divided by the number of bands sharing j, so for a
    spectrally flat input the output equals the source conv's response over the channels used.
    Returns the (out, len(bands), k, k) weight and the per-band source channel indices.
    """
    if weight.ndim != 4 or weight.shape[1] != len(source_wavelengths):
        raise WeightsError(f"first conv weight of shape {tuple(weight.shape)} does not have "
                           f"{len(source_wavelengths)} input channels")
    idx = match_channels(bands, source_wavelengths)
    counts = torch.bincount(torch.tensor(idx), minlength=weight.shape[1]).to(weight.dtype)
    scale = 1.0 / counts[idx]
    return weight[:, idx] * scale.view(1, -1, 1, 1), idx


# ----------------------------------------------------------------------------------------------
# Loading into Res50UNet


@dataclass
class BackboneReport:
    """What `load_pretrained_backbone` did, key by key (all keys in torchvision layout).

    Attributes:
        source: where the state dict came from.
        used: checkpoint keys copied unchanged into the model (``layer1``..``layer4``).
        adapted: checkpoint key -> what it initialised and how (``conv1.weight``, ``bn1.*``).
        missing: model backbone keys the checkpoint did not provide (left at their initialisation).
        unexpected: checkpoint keys not used (e.g. ``fc.weight``, ``fc.bias``).
        reinitialised: model keys deliberately set (``stem.bn2.weight`` zeroed) or left fresh.
        channel_map: our band -> (source channel index, its wavelength in nm).
        unused_source_channels: source channels no band maps to (dropped).
    """

    source: str
    preset: str | None
    used: list[str] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    channel_map: dict[str, tuple[int, float]] = field(default_factory=dict)
    unused_source_channels: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-serialisable form (for the training metadata in config.json)."""
        d = asdict(self)
        d["channel_map"] = {b: list(v) for b, v in self.channel_map.items()}
        return d

    def summary(self) -> str:
        """A few human-readable lines."""
        bands = ", ".join(f"{b}->{j}" for b, (j, _) in self.channel_map.items())
        lines = [f"backbone from {self.source} ({self.preset or 'custom wavelengths'})",
                 f"  used {len(self.used)} keys unchanged (layer1..layer4)"]
        lines += [f"  adapted {k} -> {v}" for k, v in self.adapted.items()]
        lines.append(f"  band -> source channel: {bands}")
        if self.unused_source_channels:
            lines.append(f"  unused source channels: {self.unused_source_channels}")
        if self.missing:
            lines.append(f"  missing (kept initialisation): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"  ignored checkpoint keys: {', '.join(self.unexpected)}")
        if self.reinitialised:
            lines.append(f"  reinitialised: {', '.join(self.reinitialised)}")
        return "\n".join(lines)


@torch.no_grad()
def load_pretrained_backbone(model: nn.Module, source: str | os.PathLike | Mapping[str, torch.Tensor], *,
                             filename: str | None = None, bands: Sequence[str] | None = None,
                             source_wavelengths: Sequence[float] | str | None = None) -> BackboneReport:
    """Load a standard ResNet50 state dict into a Res50UNet's stem and ``layer1``..``layer4``.

    Args:
        model: a `Res50UNet` (anything with ``stem`` (`ResidualStem`) and ``layer1``..``layer4``).
        source: a local checkpoint file, a Hub repo id ``owner/name[@revision]`` (with `filename`), or an
            in-memory state dict.
        bands: the model's input band names (default from its channel count: 20 -> all DSTL bands,
            3 -> RGB).
        source_wavelengths: the checkpoint's input-channel centre wavelengths (nm), or a preset name
            of `PRETRAINED_WAVELENGTHS`; default by channel count (3 -> ImageNet RGB, 13 -> Sentinel-2).

    Every ``layer1``..``layer4`` tensor must be present with the right shape (else `WeightsError`
    naming the keys); ``num_batches_tracked`` buffers may be absent. ``conv1``/``bn1`` are adapted into
    the stem as described in the module docstring. Returns a `BackboneReport`.
    """
    if isinstance(source, Mapping):
        sd, where = _unwrap(source, "state dict"), "in-memory state dict"
    else:
        sd, where = read_state_dict(source, filename)
    in_channels = model.stem.conv1.in_channels
    bands = tuple(bands) if bands is not None else default_bands(in_channels)
    if len(bands) != in_channels:
        raise WeightsError(f"{len(bands)} band names for a {in_channels}-channel model")
    if "conv1.weight" not in sd:
        raise WeightsError(f"backbone weights {where}: no conv1.weight -- not a ResNet state dict "
                           f"(keys start: {_list(sd, 3)})")
    conv1 = sd["conv1.weight"].float()
    if conv1.ndim != 4 or conv1.shape[0] != 64:
        raise WeightsError(f"backbone weights {where}: conv1.weight has shape {tuple(conv1.shape)}, "
                           "expected (64, C, k, k)")
    preset = None
    if source_wavelengths is None:
        preset = _PRESET_BY_CHANNELS.get(conv1.shape[1])
        if preset is None:
            raise WeightsError(f"backbone weights {where}: {conv1.shape[1]} input channels; pass "
                               "source_wavelengths= (nm per channel) to match them to our bands")
        source_wavelengths = PRETRAINED_WAVELENGTHS[preset]
    elif isinstance(source_wavelengths, str):
        if source_wavelengths not in PRETRAINED_WAVELENGTHS:
            raise WeightsError(f"unknown wavelength preset {source_wavelengths!r} "
                               f"(known: {', '.join(PRETRAINED_WAVELENGTHS)})")
        preset, source_wavelengths = source_wavelengths, PRETRAINED_WAVELENGTHS[source_wavelengths]
    source_wavelengths = tuple(float(w) for w in source_wavelengths)

    # Stages: strict, key for key.
    target = {f"{s}.{k}": v for s in BACKBONE_STAGES for k, v in getattr(model, s).state_dict().items()}
    missing = [k for k in target if k not in sd]
    fatal_missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    wrong = [f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}" for k, v in target.items()
             if k in sd and sd[k].shape != v.shape]
    if fatal_missing or wrong:
        parts = []
        if fatal_missing:
            parts.append(f"{len(fatal_missing)} missing keys ({_list(fatal_missing)})")
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches (file vs model: {_list(wrong, 3)})")
        raise WeightsError(f"backbone weights {where}: not a ResNet50 state dict: {'; '.join(parts)}")

    adapted_w, idx = adapt_input_weight(conv1, source_wavelengths, bands)
    report = BackboneReport(source=where, preset=preset, missing=sorted(missing))
    live = model.state_dict()
    for k in target:
        if k in sd:
            live[k].copy_(sd[k].to(live[k].dtype))
            report.used.append(k)

    stem = model.stem
    stem.shortcut[0].weight.copy_(adapted_w.sum(dim=(2, 3), keepdim=True))
    k = adapted_w.shape[-1]
    if k >= 3:
        c = (k - 3) // 2
        centre = adapted_w[:, :, c:c + 3, c:c + 3]
        norm_full = adapted_w.flatten(1).norm(dim=1)
        norm_centre = centre.flatten(1).norm(dim=1).clamp_min(1e-12)
        stem.conv1.weight.copy_(centre * (norm_full / norm_centre).view(-1, 1, 1, 1))
        conv1_note = "stem.conv1.weight (centre 3x3, rescaled to the 7x7 filter's L2 norm)"
    else:
        conv1_note = None
    report.adapted["conv1.weight"] = (
        "stem.shortcut.0.weight (spatial sum = DC gain)" + (f", {conv1_note}" if conv1_note else "")
        + "; channels by nearest wavelength, shared channels divided by their count")
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        key = f"bn1.{name}"
        if key in sd:
            dst = getattr(stem.shortcut[1], name)
            dst.copy_(sd[key].to(dst.dtype))
            report.adapted[key] = f"stem.shortcut.1.{name}"
    stem.bn2.weight.zero_()
    report.reinitialised = ["stem.bn2.weight (zeroed: the residual 3x3 branch starts switched off)",
                            "stem.conv2.weight, stem.bn1.*, stem.bn2.bias/running stats (fresh)"]
    used_keys = set(report.used) | set(report.adapted)
    report.unexpected = sorted(k for k in sd if k not in used_keys and k not in target)
    report.channel_map = {b: (j, source_wavelengths[j]) for b, j in zip(bands, idx, strict=True)}
    report.unused_source_channels = sorted(set(range(len(source_wavelengths))) - set(idx))
    return report


# ----------------------------------------------------------------------------------------------
# Freezing and staged unfreezing


def _check_stages(stages: Iterable[str]) -> tuple[str, ...]:
    stages = tuple(stages)
    bad = [s for s in stages if s not in BACKBONE_STAGES]
    if bad:
        raise ValueError(f"unknown backbone stages {bad}; known: {BACKBONE_STAGES}")
    return stages


def freeze_backbone(model: nn.Module, stages: Iterable[str] = BACKBONE_STAGES) -> int:
    """Stop training `stages` (parameters get ``requires_grad=False``; their BatchNorm stays in eval mode).

    Returns the number of parameters frozen. The stem and decoder are never frozen: the stem is only
    partly pretrained. Optimisers may keep frozen parameters; they simply receive no gradient.
    """
    stages = _check_stages(stages)
    n = 0
    for s in stages:
        for p in getattr(model, s).parameters():
            p.requires_grad_(False)
            n += p.numel()
    model.frozen_stages = frozenset(model.frozen_stages) | set(stages)
    model.train(model.training)  # re-apply BN modes
    return n


def unfreeze_backbone(model: nn.Module, stages: Iterable[str] = BACKBONE_STAGES) -> int:
    """Train `stages` again; returns the number of parameters unfrozen."""
    stages = _check_stages(stages)
    n = 0
    for s in stages:
        for p in getattr(model, s).parameters():
            p.requires_grad_(True)
            n += p.numel()
    model.frozen_stages = frozenset(model.frozen_stages) - set(stages)
    model.train(model.training)
    return n


def trainable_stages(epoch: int, schedule: Mapping[int | str, int]) -> tuple[str, ...]:
    """The backbone stages trainable at `epoch` under a staged-unfreezing `schedule`.

    `schedule` maps a start epoch (int, or its string form as JSON keys are) to the number of deepest
    stages trainable from then on, e.g. ``{0: 0, 2: 1, 4: 2, 6: 4}``: epochs 0-1 backbone frozen,
    2-3 ``layer4`` trainable, 4-5 ``layer3`` too, from 6 everything. Before the first key: all trainable.
    """
    entries = sorted((int(k), int(v)) for k, v in schedule.items())
    n = len(BACKBONE_STAGES)
    for start, count in entries:
        if epoch >= start:
            n = count
    if not 0 <= n <= len(BACKBONE_STAGES):
        raise ValueError(f"unfreeze schedule: stage count must be 0..{len(BACKBONE_STAGES)}, got {n}")
    return BACKBONE_STAGES[len(BACKBONE_STAGES) - n:]


def apply_unfreeze_schedule(model: nn.Module, epoch: int,
                            schedule: Mapping[int | str, int]) -> tuple[str, ...]:
    """Freeze/unfreeze `model`'s stages for `epoch` (see `trainable_stages`); returns the trainable ones."""
    train = trainable_stages(epoch, schedule)
    frozen = [s for s in BACKBONE_STAGES if s not in train]
    if frozen:
        freeze_backbone(model, frozen)
    if train:
        unfreeze_backbone(model, train)
    return train


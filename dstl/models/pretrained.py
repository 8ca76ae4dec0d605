"""Loading a pretrained ResNet50 (torchvision / timm / torchgeo state dict) into Res50UNet's encoder.

The stages ``layer1``..``layer4`` of `dstl.models.backbone` are named as in torchvision, so they take
a standard ResNet50 state dict key for key; this module reads such a checkpoint (a local file or a
Hub repo, `read_state_dict`) and adapts its first convolution to our bands.

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
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from dstl.bands import WAVELENGTH_NM
from dstl.errors import WeightsError
from dstl.errors import one_line as _one_line
from dstl.errors import short_list as _list
from dstl.models.backbone import BACKBONE_STAGES, default_bands
from dstl.models.hub import hub_download, parse_repo_id

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

"""The segmentation models and their weights.

- `UNet` and `Res50UNet`: (N, C, H, W) normalised bands -> (N, 10, H, W) logits, H and W multiples of 32.
- `load_model(source)`: weights from a local folder, a bundled name, or a Hub repo ``owner/name[@rev]``,
  loaded strictly into a `LoadedModel` (module in eval mode, its `ModelConfig`, a source description).
- `save_pretrained` / `push_to_hub`: write and publish weights in Hub layout; the same as methods
  (`UNet.from_pretrained(source)`, `model.save_pretrained(dir)`, `model.push_to_hub(repo)`) through
  `HubMixin`.
- `model_card` / `card_data`: the README.md model card and its Hub metadata (`dstl.models.card`).
- `load_pretrained_backbone` (`dstl.models.pretrained`) and the freezing helpers
  (`dstl.models.backbone`): ResNet50 weights for `Res50UNet`.
- `dstl.models.decoder`: the UNet decoder both architectures share (encoder -> decoder -> head).
"""

from dstl.models.backbone import (
    BACKBONE_STAGES,
    ResNet50,
    apply_unfreeze_schedule,
    freeze_backbone,
    trainable_stages,
    unfreeze_backbone,
)
from dstl.models.card import card_data, model_card
from dstl.models.config import ModelConfig
from dstl.models.hub import (
    ARCHITECTURES,
    BUNDLED_DIR,
    DEFAULT_WEIGHTS,
    LoadedModel,
    ResolvedSource,
    build_model,
    config_for,
    list_bundled,
    load_folder,
    load_model,
    push_to_hub,
    read_config,
    resolve_source,
    save_pretrained,
)
from dstl.models.mixin import HubMixin
from dstl.models.pretrained import PRETRAINED_WAVELENGTHS, BackboneReport, load_pretrained_backbone
from dstl.models.res50unet import Res50UNet
from dstl.models.unet import UNet

__all__ = [
    "ARCHITECTURES", "BACKBONE_STAGES", "BUNDLED_DIR", "DEFAULT_WEIGHTS", "PRETRAINED_WAVELENGTHS",
    "BackboneReport", "HubMixin", "LoadedModel", "ModelConfig", "Res50UNet", "ResNet50", "ResolvedSource",
    "UNet", "apply_unfreeze_schedule", "build_model", "card_data", "config_for", "freeze_backbone",
    "list_bundled", "load_folder", "load_model", "load_pretrained_backbone", "model_card", "push_to_hub",
    "read_config", "resolve_source", "save_pretrained", "trainable_stages", "unfreeze_backbone",
]

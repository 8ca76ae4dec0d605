"""The configuration that travels with model weights (config.json in Hub layout).

Everything inference needs besides the tensors is here, so that a weights folder or Hub repo
is self-describing: the architecture and its constructor arguments, the input bands and their
normalisation statistics, the classes with display colours, per-class thresholds, and what the
weights were trained on (None for weights that were never trained).
"""

import math
import numbers
from dataclasses import dataclass, field

from dstl.bands import ALL_BANDS
from dstl.classes import CLASS_IDS, CLASSES, NUM_CLASSES, DstlClass
from dstl.errors import WeightsError
from dstl.normalization import BandStats

#: The files of a weights folder in Hub layout (see `dstl.models.hub`).
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"

#: Bump when the meaning of config.json fields changes.
CONFIG_VERSION = 1

#: Architecture name (config.json "architecture") -> module class. Filled by the classes themselves:
#: ``class UNet(HubMixin, nn.Module, architecture="unet")`` (`dstl.models.mixin`); importing
#: `dstl.models` (which any import of a submodule does first) registers "unet" and "res50unet".
ARCHITECTURES: dict[str, type] = {}


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _check_bands(bands) -> tuple[str, ...]:
    if isinstance(bands, str) or not isinstance(bands, list | tuple) or not bands:
        raise WeightsError(f"config: bands must be a non-empty list of band names, got {bands!r}")
    unknown = [b for b in bands if b not in ALL_BANDS]
    if unknown:
        raise WeightsError(f"config: unknown band {unknown[0]!r} in bands (DSTL products have "
                           f"{', '.join(ALL_BANDS)})")
    twice = sorted({b for b in bands if list(bands).count(b) > 1})
    if twice:
        raise WeightsError(f"config: band {twice[0]!r} is listed twice in bands")
    return tuple(bands)


def _check_classes(classes) -> tuple[DstlClass, ...]:
    classes = tuple(classes)
    ids = [c.id for c in classes]
    if tuple(ids) != CLASS_IDS:
        raise WeightsError(f"config: classes must be the {NUM_CLASSES} DSTL classes in id order "
                           f"{CLASS_IDS[0]}..{CLASS_IDS[-1]} (output channel k is class k+1), got ids {ids}")
    for c in classes:
        if not isinstance(c.name, str) or not c.name.strip():
            raise WeightsError(f"config: class {c.id} has no name")
        if len(c.colour) != 3 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                         and 0 <= v <= 255 for v in c.colour):
            raise WeightsError(f"config: class {c.id} colour must be 3 integers 0..255, got {list(c.colour)}")
    return classes


def _check_thresholds(thresholds, n_classes: int) -> tuple[float, ...]:
    thresholds = thresholds.tolist() if hasattr(thresholds, "tolist") else thresholds  # numpy arrays
    if isinstance(thresholds, str) or not isinstance(thresholds, list | tuple):
        raise WeightsError(f"config: thresholds must be a list of {n_classes} numbers, got {thresholds!r}")
    if len(thresholds) != n_classes:
        raise WeightsError(f"config: {len(thresholds)} thresholds for {n_classes} classes")
    for k, t in enumerate(thresholds):
        if not _is_number(t) or not 0.0 <= t <= 1.0:
            raise WeightsError(f"config: threshold of class {k + 1} must be a probability in [0, 1], "
                               f"got {t!r}")
    return tuple(float(t) for t in thresholds)


def _normalization(d, bands) -> BandStats:
    if not isinstance(d, dict):
        raise WeightsError(f"config: normalization must be an object with bands, mean, std; got {d!r}")
    n = len(bands) if isinstance(bands, list | tuple) else None
    for key in ("mean", "std"):
        values = d.get(key)
        if not isinstance(values, list | tuple) or not all(_is_number(v) for v in values):
            raise WeightsError(f"config: normalization {key} must be a list of finite numbers")
        if n is not None and len(values) != n:
            raise WeightsError(f"config: normalization has {len(values)} {key} values for {n} bands")
    if any(v <= 0 for v in d["std"]):
        raise WeightsError("config: every normalization std must be positive")
    return BandStats.from_dict({"bands": d.get("bands", bands), "mean": d["mean"], "std": d["std"]})


@dataclass
class ModelConfig:
    """Self-description of a set of weights.

    Attributes:
        architecture: "unet" or "res50unet".
        model_args: keyword arguments of the architecture's constructor (in_channels,
            num_classes, widths, dropout, ...), enough to rebuild the module exactly.
        bands: input band names in channel order (see `dstl.bands`); len == in_channels.
        normalization: per-band statistics applied to [0, 1]-scaled inputs.
        thresholds: per-class probability thresholds (index k-1 for class k).
        classes: the output classes in channel order.
        tile_size: the square tile side (pixels, a multiple of 32) inference should use.
        training: free-form metadata (data, recipe, command, metrics); None if never trained.
    """

    architecture: str
    model_args: dict
    bands: tuple[str, ...]
    normalization: BandStats
    thresholds: tuple[float, ...] = (0.5,) * NUM_CLASSES
    classes: tuple[DstlClass, ...] = CLASSES
    tile_size: int = 224
    training: dict | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        """Validate every field (`WeightsError` "config: ..."): what inference relies on is checked
        here, once, so that a wrong config.json is refused when it is loaded, not mid-prediction."""
        if not isinstance(self.architecture, str) or not self.architecture:
            raise WeightsError(f"config: architecture must be a name such as 'unet', got "
                               f"{self.architecture!r}")
        if not isinstance(self.model_args, dict) or not all(isinstance(k, str) for k in self.model_args):
            raise WeightsError(f"config: model_args must be an object of constructor arguments, got "
                               f"{self.model_args!r}")
        self.bands = _check_bands(self.bands)
        norm = self.normalization
        if tuple(norm.bands) != self.bands:
            raise WeightsError(f"config: normalization bands {list(norm.bands)} differ from the model's "
                               f"bands {list(self.bands)}")
        self.classes = _check_classes(self.classes)
        self.thresholds = _check_thresholds(self.thresholds, len(self.classes))
        if isinstance(self.tile_size, bool) or not isinstance(self.tile_size, numbers.Integral) \
                or self.tile_size < 32 or self.tile_size % 32:
            raise WeightsError(f"config: tile_size must be a positive multiple of 32, got {self.tile_size!r}")
        if self.training is not None and not isinstance(self.training, dict):
            raise WeightsError(f"config: training must be an object or null, got "
                               f"{type(self.training).__name__}")
        if not isinstance(self.extra, dict):
            raise WeightsError(f"config: extra must be an object, got {type(self.extra).__name__}")

    @property
    def is_trained(self) -> bool:
        return self.training is not None

    def to_dict(self) -> dict:
        return {
            "config_version": CONFIG_VERSION,
            "architecture": self.architecture,
            "model_args": dict(self.model_args),
            "bands": list(self.bands),
            "normalization": self.normalization.to_dict(),
            "thresholds": list(self.thresholds),
            "classes": [{"id": c.id, "name": c.name, "colour": list(c.colour)} for c in self.classes],
            "tile_size": self.tile_size,
            "training": self.training,
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        try:
            version = d.get("config_version", CONFIG_VERSION)
            if version > CONFIG_VERSION:
                raise WeightsError(f"config: version {version} is newer than this dstl understands "
                                   f"({CONFIG_VERSION}); upgrade dstl")
            return cls(
                architecture=d["architecture"],
                model_args=d["model_args"],
                bands=d["bands"],
                normalization=_normalization(d["normalization"], d["bands"]),
                thresholds=d.get("thresholds", (0.5,) * NUM_CLASSES),
                classes=tuple(DstlClass(c["id"], c["name"], tuple(c["colour"])) for c in d["classes"])
                if "classes" in d else CLASSES,
                tile_size=d.get("tile_size", 224),
                training=d.get("training"),
                extra=d.get("extra", {}),
            )
        except WeightsError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise WeightsError(f"config: malformed config.json ({type(e).__name__}: {e})") from None

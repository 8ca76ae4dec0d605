"""The configuration that travels with model weights (config.json in Hub layout).

Everything inference needs besides the tensors is here, so that a weights folder or Hub repo
is self-describing: the architecture and its constructor arguments, the input bands and their
normalisation statistics, the classes with display colours, per-class thresholds, and what the
weights were trained on (None for weights that were never trained).
"""

from dataclasses import dataclass, field

from dstl.classes import CLASSES, NUM_CLASSES, DstlClass
from dstl.errors import WeightsError
from dstl.normalization import BandStats

#: Bump when the meaning of config.json fields changes.
CONFIG_VERSION = 1


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
        self.bands = tuple(self.bands)
        self.thresholds = tuple(float(t) for t in self.thresholds)
        if tuple(self.normalization.bands) != self.bands:
            raise WeightsError("config: normalization bands differ from the model's bands")
        if len(self.thresholds) != len(self.classes):
            raise WeightsError(f"config: {len(self.thresholds)} thresholds for {len(self.classes)} classes")
        if self.tile_size % 32:
            raise WeightsError(f"config: tile_size must be a multiple of 32, got {self.tile_size}")

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
                model_args=dict(d["model_args"]),
                bands=tuple(d["bands"]),
                normalization=BandStats.from_dict(d["normalization"]),
                thresholds=tuple(d.get("thresholds", (0.5,) * NUM_CLASSES)),
                classes=tuple(DstlClass(int(c["id"]), c["name"], tuple(c["colour"])) for c in d["classes"])
                if "classes" in d else CLASSES,
                tile_size=int(d.get("tile_size", 224)),
                training=d.get("training"),
                extra=dict(d.get("extra", {})),
            )
        except WeightsError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise WeightsError(f"config: malformed config.json ({type(e).__name__}: {e})") from None

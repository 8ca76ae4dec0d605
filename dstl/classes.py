"""The ten object classes of the DSTL competition (ClassType 1..10).

Class k lives at index k-1 of every per-class array (masks, probability maps, thresholds).
Classes may overlap: a vehicle on a road belongs to both.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class DstlClass:
    """One class: its competition id (1..10), a display name and an RGB display colour."""

    id: int
    name: str
    colour: tuple[int, int, int]

    @property
    def index(self) -> int:
        """Position of this class in per-class arrays (id - 1)."""
        return self.id - 1

    @property
    def hex(self) -> str:
        """The colour as '#rrggbb'."""
        return "#{:02x}{:02x}{:02x}".format(*self.colour)


CLASSES: tuple[DstlClass, ...] = (
    DstlClass(1, "Buildings", (230, 25, 75)),
    DstlClass(2, "Misc. manmade structures", (245, 130, 48)),
    DstlClass(3, "Road", (128, 128, 128)),
    DstlClass(4, "Track", (170, 110, 40)),
    DstlClass(5, "Trees", (0, 110, 30)),
    DstlClass(6, "Crops", (210, 245, 60)),
    DstlClass(7, "Waterway", (0, 130, 200)),
    DstlClass(8, "Standing water", (70, 240, 240)),
    DstlClass(9, "Vehicle Large", (240, 50, 230)),
    DstlClass(10, "Vehicle Small", (255, 225, 25)),
)

NUM_CLASSES = len(CLASSES)
CLASS_IDS: tuple[int, ...] = tuple(c.id for c in CLASSES)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)


def class_by_id(class_id: int) -> DstlClass:
    """Return the class with competition id `class_id` (1..10); ValueError otherwise."""
    if not 1 <= class_id <= NUM_CLASSES:
        raise ValueError(f"class id must be 1..{NUM_CLASSES}, got {class_id}")
    return CLASSES[class_id - 1]

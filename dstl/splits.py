"""The split of the 25 real labelled DSTL images: 5 held out, 20 for training and validation.

`REAL_HOLDOUT_IDS` are never trained, validated or tuned on; figures "on the held-out real-layout
images" are on the scenes generated on these five. They were chosen by `choose_holdout` from the
real labels (`class_table`): over all C(25, 5) = 53,130 choices, those that put every class on
both sides (each of the ten classes has polygons in at least one held-out and one other image;
waterway is in only two images, 6070_2_3 and 6100_2_2, so one goes each way), the one whose
held-out share of each class is closest to 5/25, by area and by polygon count::

    cost = sum over classes c of (area_share_c - 0.2)**2 + (count_share_c - 0.2)**2

(ties: the first in sorted-id order). tests/test_splits.py recomputes it from
../shared/real/train_geojson_v3. Ids of real-layout scenes (``synth_rl_6100_2_2``, windows
``synth_rl_6100_2_2_r0_c0``) are held out when their real image is.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from dstl.errors import DstlError

__all__ = ["REAL_HOLDOUT_IDS", "HOLDOUT_SIZE", "real_id", "is_held_out", "held_out", "without_held_out",
           "check_not_held_out", "class_table", "choose_holdout", "real_split"]

#: The five held-out real images (see the module docstring).
REAL_HOLDOUT_IDS: tuple[str, ...] = ("6040_1_3", "6040_2_2", "6100_2_2", "6110_1_2", "6140_3_1")

HOLDOUT_SIZE = 5

_SCENE = re.compile(r"synth_rl_(\d{4}_\d_\d)(?:_r\d+_c\d+)?")


def real_id(image_id: str) -> str:
    """The real image an id stands for: itself, or the real id inside a real-layout scene's id."""
    match = _SCENE.fullmatch(image_id)
    return match.group(1) if match else image_id


def is_held_out(image_id: str) -> bool:
    """True for a held-out real id and for every real-layout scene made on one."""
    return real_id(image_id) in REAL_HOLDOUT_IDS


def held_out(ids: Iterable[str]) -> list[str]:
    """The held-out ones among `ids`, in their order."""
    return [i for i in ids if is_held_out(i)]


def without_held_out(ids: Iterable[str]) -> list[str]:
    """`ids` without the held-out ones, in their order: what training and validation may use."""
    return [i for i in ids if not is_held_out(i)]


def check_not_held_out(ids: Iterable[str], what: str = "training") -> None:
    """Raise DstlError naming the held-out ids found among `ids` (e.g. a training or validation list)."""
    bad = held_out(ids)
    if bad:
        raise DstlError(f"{what} must not use the held-out real images ({', '.join(bad)}; "
                        f"see dstl.splits.REAL_HOLDOUT_IDS)")


def class_table(data: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids, area, count) of the labelled images of DSTL folder `data` from its real label layers.

    area[i, c-1]: class c's area as a share of image i's grid extent (Xmax * |Ymin|);
    count[i, c-1]: its number of polygons (after the layers of the class are unioned).
    """
    from dstl.geojson_labels import GEOJSON_DIR, read_geojson_labels
    from dstl.labels import read_grid_sizes

    data = Path(data)
    grid = read_grid_sizes(data / "grid_sizes.csv")
    ids = sorted(p.name for p in (data / GEOJSON_DIR).iterdir() if p.is_dir())
    area = np.zeros((len(ids), 10))
    count = np.zeros((len(ids), 10), dtype=np.int64)
    for i, iid in enumerate(ids):
        labels = read_geojson_labels(data / GEOJSON_DIR / iid)
        xmax, ymin = grid[iid]
        for c, g in labels.items():
            area[i, c - 1] = g.area / (xmax * -ymin)
            count[i, c - 1] = len(g.geoms)
    return ids, area, count


def choose_holdout(ids: Sequence[str], area: np.ndarray, count: np.ndarray, k: int = HOLDOUT_SIZE
                   ) -> tuple[str, ...]:
    """The k ids to hold out (see the module docstring for the rule); deterministic.

    Raises:
        DstlError: no choice of k puts every class present in two or more images on both sides.
    """
    order = np.argsort(ids)
    ids = [ids[i] for i in order]
    area, count = np.asarray(area, float)[order], np.asarray(count, float)[order]
    n = len(ids)
    combos = np.array(list(itertools.combinations(range(n), k)))          # sorted: ties -> first
    present = count > 0
    held_present = present[combos].any(axis=1)                             # (C, 10)
    rest_present = (present.sum(0)[None] - present[combos].sum(axis=1)) > 0
    needed = present.sum(0) >= 2
    ok = ((held_present & rest_present) | ~needed[None]).all(axis=1)
    if not ok.any():
        raise DstlError(f"no {k} of the {n} images put every class on both sides")
    target = k / n

    def shares(table: np.ndarray) -> np.ndarray:
        total = table.sum(0)
        return table[combos].sum(axis=1) / np.where(total > 0, total, 1.0)

    cost = ((shares(area) - target) ** 2 + (shares(count) - target) ** 2).sum(axis=1)
    cost[~ok] = np.inf
    best = int(np.argmin(cost))
    return tuple(ids[i] for i in combos[best])


def real_split(data: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(held-out ids, other ids) among the labelled images of DSTL folder `data`.

    Raises:
        DstlError: `data` lacks some held-out image (it is not the real 25-image training set).
    """
    from dstl.synthetic.real_layout import list_real_ids

    ids = list_real_ids(data)
    missing = [i for i in REAL_HOLDOUT_IDS if i not in ids]
    if missing:
        raise DstlError(f"{data}: lacks the held-out real images {', '.join(missing)} "
                        "(--split needs the real 25 training images)")
    return held_out(ids), without_held_out(ids)

"""Write a real-layout dataset: one generated scene per labelled image of a real DSTL folder.

::

    OUT/three_band/synth_rl_<id>.tif          uint16 (3, H, W), 11-bit, H x W the real image's size
    OUT/sixteen_band/synth_rl_<id>_P.tif      uint16 (H, W), 11-bit
    OUT/sixteen_band/synth_rl_<id>_M.tif      uint16 (8, ~H/4, ~W/4), 11-bit
    OUT/sixteen_band/synth_rl_<id>_A.tif      uint16 (8, real A size), 14-bit
    OUT/grid_sizes.csv                        the real grid sizes (a window's own, see real_layout)
    OUT/train_wkt_v4.csv                      the real labels, 10 rows per image
    OUT/sample_submission.csv                 header only (every scene is labelled)
    OUT/README.md                             what this folder is, source, seed, sizes

The scenes are `dstl.synthetic.real_layout.make_real_layout_image`'s. Like `writer`, the folder
is assembled in ``OUT/.partial`` and moved into place when complete; OUT must be new, empty, or
(with ``overwrite``) a previous synthetic dataset. The labels are the competition's real label
geometry: the README says so, and such a folder belongs in data/ (gitignored), never in a repository.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dstl.atomic import write_text_atomic
from dstl.errors import DataError, DstlError
from dstl.labels import read_grid_sizes
from dstl.real_sizes import three_band_size
from dstl.synthetic.real_layout import list_real_ids, load_real_source, make_real_layout_image
from dstl.synthetic.writer import check_destination, partial_dataset, write_image, write_tables

__all__ = ["RealLayoutSummary", "generate_real_layout_dataset", "plan", "window_id"]


def window_id(scene_id: str, window: tuple[int, int, int, int] | None) -> str:
    """A windowed scene's id: ``synth_rl_6100_2_2_r1024_c640`` (origin row, column); else `scene_id`."""
    return scene_id if window is None else f"{scene_id}_r{window[0]}_c{window[1]}"


@dataclass
class RealLayoutSummary:
    """What `generate_real_layout_dataset` wrote: the folder, the real ids used, the scene ids
    (in order), each scene's (H, W) and whether its real 3-band size is exact, seconds per scene."""

    root: Path
    seed: int
    scale: float
    real_ids: list[str] = field(default_factory=list)
    scene_ids: list[str] = field(default_factory=list)
    image_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    exact_size: dict[str, bool] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _extent(window: tuple[int, int, int, int] | None) -> str:
    if window is None:
        return "whole image"
    r0, c0, h, w = window
    return f"rows {r0}.., cols {c0}.., {h} x {w} px"


def _readme(summary: RealLayoutSummary, data: Path, windows: dict) -> str:
    rows = "\n".join(
        f"| `{sid}` | {rid} | {summary.image_sizes[sid][0]} x {summary.image_sizes[sid][1]} | "
        f"{'exact' if summary.exact_size[sid] else 'from the grid size (within 1 px)'}"
        f"{'' if summary.scale == 1 else f', x{summary.scale:g}'} | "
        f"{_extent(windows.get(sid))} |"
        for sid, rid in zip(summary.scene_ids, summary.real_ids, strict=True))
    return f"""# Real-layout synthetic scenes (NOT real imagery)

Written by `python -m dstl synth OUT --layouts {data}` (seed {summary.seed}, scale {summary.scale:g}).

- **Labels are real**: `train_wkt_v4.csv` holds the real label polygons of the DSTL training
  images named below (from `{data}/train_geojson_v3`, the ten classes' layers unioned), at each
  image's real grid size (`grid_sizes.csv`). They are the competition's data: do not
  redistribute this folder or commit it to a repository.
- **Pixels are generated**: every product (three_band, P, M, A) is rendered by the project's
  rule-based generator (`dstl.synthetic`) on those polygons: its spectra, textures, shadows, haze,
  noise and product mis-registration. Label layers of no class (non-crop fields, orchards, mines,
  pylons, ...) and generated parcels and gardens vary the ground. No real pixel is used.
- Ids are `synth_rl_<real id>` (windows add `_r<row>_c<col>`): they cannot be mistaken for real
  ids. `sample_submission.csv` is empty: every scene is labelled.
- Figures computed on this folder are on *real-layout synthetic* scenes, not on the real data.

| scene | real image | 3-band size (px) | size | extent |
|---|---|---|---|---|
{rows}
"""


def plan(data: str | os.PathLike, *, ids: Sequence[str] | None = None,
         window: tuple[int, int, int, int] | None = None,
         windows: Sequence[tuple[str, tuple[int, int, int, int]]] | None = None
         ) -> list[tuple[str, tuple[int, int, int, int] | None]]:
    """The (real id, window) scenes `generate_real_layout_dataset` will write, checked up front.

    Raises:
        DstlError: no train_geojson_v3/ in `data`, an id that is not one of its labelled images,
            no id at all, or a window not inside its image.
    """
    data = Path(data)
    available = list_real_ids(data)
    if windows is not None:
        jobs = [(rid, tuple(int(v) for v in w)) for rid, w in windows]
    else:
        jobs = [(rid, window) for rid in (list(ids) if ids is not None else available)]
    unknown = sorted({rid for rid, _ in jobs} - set(available))
    if unknown:
        raise DataError(f"{data}: not labelled images there: {', '.join(unknown)}")
    if not jobs:
        raise DstlError("nothing to generate: no image ids")
    grid = read_grid_sizes(data / "grid_sizes.csv")
    for rid, win in jobs:
        if win is None:
            continue
        if rid not in grid:
            raise DataError(f"{data / 'grid_sizes.csv'}: no row for {rid}")
        (height, width), _ = three_band_size(rid, None, grid[rid])
        r0, c0, h, w = win
        if not (h >= 8 and w >= 8 and r0 + h <= height and c0 + w <= width):
            raise DstlError(f"window {r0},{c0},{h},{w} (row, col, height, width) is not inside "
                            f"{rid}'s {height}x{width} px")
    return jobs


def _real_a(data: Path, rid: str, shape: tuple[int, ...]):
    from dstl.tiff import read_tiff

    path = data / "sixteen_band" / f"{rid}_A.tif"
    if not path.is_file():
        raise DataError(f"{path}: not found (the real A product is needed with real_a)")
    a = read_tiff(path, 8)
    if a.shape != shape:
        raise DataError(f"{path}: shape {a.shape}, the scene's A is {shape}")
    return a


def generate_real_layout_dataset(out: str | os.PathLike, data: str | os.PathLike, seed: int = 0, *,
                                 ids: Sequence[str] | None = None, scale: float = 1.0,
                                 window: tuple[int, int, int, int] | None = None,
                                 windows: Sequence[tuple[str, tuple[int, int, int, int]]] | None = None,
                                 overwrite: bool = False, real_a: bool = False,
                                 sources: dict | None = None,
                                 progress: Callable[[str], None] | None = None) -> RealLayoutSummary:
    """Write a real-layout dataset (see the module docstring).

    Args:
        out: destination folder: new, empty, or (with `overwrite`) a previous synthetic dataset.
        data: a DSTL folder with train_geojson_v3/ and grid_sizes.csv (e.g. ../shared/real).
        seed: non-negative integer; the same arguments give byte-identical files.
        ids: real ids to use (default: every labelled image of `data`), in the order given.
        scale: pixel size factor in (0, 1] for reduced-size scenes.
        window: (row, col, height, width) in full-size pixels, applied to every image.
        windows: instead of ids/window, explicit (real id, window) pairs: one scene each.
        overwrite: replace a previous synthetic dataset at `out`.
        real_a: use each image's REAL A product (DATA/sixteen_band/<id>_A.tif) as the scene's A
            instead of the generated one (whole images at scale 1 only; the README says so). Off by
            default: see docs/swir_calibration.md for why.
        sources: real id -> `load_real_source` result already read (saves reading the layers again).
        progress: called with each scene id once it is written.

    Raises:
        DstlError: bad argument, an id that is not a labelled image of `data`, or `out` refused.
    """
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise DstlError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0 < scale <= 1:
        raise DstlError(f"scale must be in (0, 1], got {scale}")
    data = Path(data)
    jobs = plan(data, ids=ids, window=window, windows=windows)
    if real_a and (scale != 1 or any(w is not None for _, w in jobs)):
        raise DstlError("the real A product can only be used for whole images at scale 1")
    root = Path(out)
    check_destination(root, overwrite)
    grid = read_grid_sizes(data / "grid_sizes.csv")
    summary = RealLayoutSummary(root, int(seed), float(scale))
    scene_windows = {}
    with partial_dataset(root) as partial:
        grid_rows, label_rows = [], []
        loaded = dict(sources or {})
        for rid, win in jobs:
            start = time.perf_counter()
            if rid not in loaded:
                keep = {k: v for k, v in loaded.items() if sources and k in sources}
                loaded = {**keep, rid: load_real_source(data, rid, grid)}  # one image's layers at a time
            image = make_real_layout_image(loaded[rid], seed, scale=scale, window=win)
            if real_a:
                image.products["A"] = _real_a(data, rid, image.products["A"].shape)
            sid = window_id(image.image_id, win)
            if sid in summary.image_sizes:
                raise DstlError(f"scene {sid} asked for twice")
            image.image_id = sid
            write_image(partial, image)
            grid_rows.append(f"{sid},{image.xmax!r},{image.ymin!r}")
            label_rows += [(sid, c, image.labels[c]) for c in range(1, 11)]
            summary.real_ids.append(rid)
            summary.scene_ids.append(sid)
            summary.image_sizes[sid] = (image.geometry.height, image.geometry.width)
            summary.exact_size[sid] = loaded[rid].exact
            scene_windows[sid] = win
            del image
            summary.seconds[sid] = time.perf_counter() - start
            if progress is not None:
                progress(sid)
        text = _readme(summary, data, scene_windows)
        if real_a:
            text = text.replace("every product (three_band, P, M, A) is rendered", "three_band, P and M are "
                                "rendered").replace("No real pixel is used.", "**The A products are the REAL "
                                                    "ones** (sixteen_band/<id>_A.tif of DATA, --real-a).")
        write_text_atomic(partial / "README.md", text)
        write_tables(partial, label_rows, [], grid_rows)
    return summary

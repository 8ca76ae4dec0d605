"""Benchmark: re-rendering the class overlay of a full-size scene (toggle a class, move opacity).

    .venv/bin/python bench/bench_render.py [--size 3350x3400] [--repeats 7]

What the app does when a user toggles a class or moves the opacity slider is
`OverlayRenderer.render(classes, opacity)` on a renderer built once per scene/masks. This
script times that on a full-size scene (synthetic bands and masks with realistic class cover:
crops and trees large, roads/tracks/water linear, buildings, vehicles tiny), next to:

- the one-off costs: RGB preview (percentile stretch of float32 bands), mask packing;
- rendering at a display size (max side 1600 px, what a browser shows);
- PNG encoding of the full-size overlay (what a download costs);
- a naive baseline in the same run: float64 per-class alpha blending with boolean indexing
  (`out[m] = out[m] * (1 - a) + colour * a` for each class in draw order).

Each figure is the median of `--repeats` runs. The naive baseline mixes the colours of
overlapping classes, ours shows the top class; on pixels covered by one class both agree to
within rounding, which the script checks.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dstl import render  # noqa: E402
from dstl.classes import CLASSES, NUM_CLASSES  # noqa: E402


def _field(h: int, w: int, rng: np.random.Generator, scale: int) -> np.ndarray:
    """Smooth random field in [0, 1] with features ~`scale` px across (cheap: upsampled noise)."""
    small = rng.random((h // scale + 2, w // scale + 2)).astype(np.float32)
    small = ndimage.gaussian_filter(small, 1.0)
    big = ndimage.zoom(small, scale, order=1)[:h, :w]
    return (big - big.min()) / (big.max() - big.min() + 1e-9)


def synthetic_scene(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(3, H, W) float32 RGB bands in [0, 1] and (10, H, W) uint8 masks with realistic cover."""
    rng = np.random.default_rng(seed)
    mpx = h * w / 1e6
    m = np.zeros((NUM_CLASSES, h, w), np.uint8)
    a = _field(h, w, rng, 200)
    b = _field(h, w, rng, 60)
    m[5] = a > np.quantile(a, 0.65)  # crops: ~35 %
    m[4] = (b > np.quantile(b, 0.8)) & (m[5] == 0)  # trees: ~13 %
    m[7] = a < np.quantile(a, 0.03)  # standing water: ~3 %
    rows = rng.integers(0, h - 40, 6)
    for r in rows[:3]:
        m[2, r:r + 25] = 1  # roads
    for r in rows[3:]:
        m[3, :, r % w:(r % w) + 12] = 1  # tracks
    m[6, :, w // 2:w // 2 + 60] = 1  # a waterway
    for _ in range(int(35 * mpx)):  # buildings
        y, x = rng.integers(0, h - 40), rng.integers(0, w - 40)
        m[0, y:y + rng.integers(10, 40), x:x + rng.integers(10, 40)] = 1
    for _ in range(int(15 * mpx)):  # structures
        y, x = rng.integers(0, h - 20), rng.integers(0, w - 20)
        m[1, y:y + 12, x:x + 12] = 1
    for k, n, (dy, dx) in ((8, int(3 * mpx) + 1, (10, 30)), (9, int(15 * mpx) + 1, (6, 15))):
        r = rng.choice(rows[:3], n) + rng.integers(0, 20, n)  # vehicles, on the roads
        c = rng.integers(0, w - dx, n)
        for y, x in zip(r, c, strict=True):
            m[k, y:y + dy, x:x + dx] = 1
    rgb = np.empty((3, h, w), np.float32)
    tex = _field(h, w, rng, 8)
    for i in range(3):
        rgb[i] = 0.15 + 0.1 * tex + 0.05 * rng.random((h, w), dtype=np.float32)
    rgb[:, m[4] == 1] *= 0.6
    rgb[:, m[0] == 1] += 0.1
    return rgb, m


def naive_overlay(preview: np.ndarray, masks: np.ndarray, classes, opacity: float) -> np.ndarray:
    """Baseline: float64 image, one boolean-indexed blend per shown class in draw order."""
    out = preview.astype(np.float64)
    shown = set(classes)
    for k in render.DRAW_ORDER:
        if k not in shown:
            continue
        m = masks[k - 1].astype(bool)
        colour = np.array(CLASSES[k - 1].colour, np.float64)
        out[m] = out[m] * (1 - opacity) + colour * opacity
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def median_time(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and median CPU seconds of `fn()` over `repeats` runs.

    numpy runs these single-threaded, so CPU time ~ wall time on an idle machine; on a shared
    machine the CPU time is the steadier figure.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="3350x3400", help="scene size HxW in pixels (default 3350x3400)")
    ap.add_argument("--repeats", type=int, default=7, help="runs per figure; the median is reported")
    ap.add_argument("--display", type=int, default=1600, help="max side of the display-size render")
    args = ap.parse_args(argv)
    h, w = (int(v) for v in args.size.lower().split("x"))

    rgb, masks = synthetic_scene(h, w)
    cover = render.class_coverage(masks)
    all_ids = [c.id for c in CLASSES]
    without_trees = [k for k in all_ids if k != 5]

    preview = render.rgb_preview(rgb.transpose(1, 2, 0))
    renderer = render.OverlayRenderer(preview, masks)
    display = render.OverlayRenderer(preview, masks, max_side=args.display)
    overlay_img = renderer.render(all_ids, 0.5)

    # agreement with the baseline where exactly one class is present
    single = masks.sum(axis=0) <= 1
    naive = naive_overlay(preview, masks, all_ids, 0.5)
    max_diff = int(np.abs(naive[single].astype(int) - overlay_img[single].astype(int)).max())

    r = args.repeats
    rows = [
        ("one-off: RGB preview (stretch float32 bands)", median_time(
            lambda: render.rgb_preview(rgb.transpose(1, 2, 0)), r)),
        ("one-off: pack masks (10 masks -> uint16)", median_time(lambda: render.pack_masks(masks), r)),
        ("one-off: build renderer, full size", median_time(
            lambda: render.OverlayRenderer(preview, masks), r)),
        (f"one-off: build renderer, max side {args.display}", median_time(
            lambda: render.OverlayRenderer(preview, masks, max_side=args.display), r)),
        ("render: all classes, opacity 0.5", median_time(lambda: renderer.render(all_ids, 0.5), r)),
        ("render: toggle trees off", median_time(lambda: renderer.render(without_trees, 0.5), r)),
        ("render: change opacity to 0.8", median_time(lambda: renderer.render(all_ids, 0.8), r)),
        ("render: with outlines", median_time(lambda: renderer.render(all_ids, 0.5, outline=True), r)),
        (f"render: display size (max side {args.display})", median_time(
            lambda: display.render(without_trees, 0.5), r)),
        ("PNG encode full-size overlay (zlib level 3)", median_time(
            lambda: render.png_bytes(overlay_img, 3), max(1, r // 2))),
        ("naive baseline: float64 per-class loop", median_time(
            lambda: naive_overlay(preview, masks, without_trees, 0.5), max(1, r // 2))),
    ]
    ours = dict(rows)["render: toggle trees off"][0]
    base = dict(rows)["naive baseline: float64 per-class loop"][0]
    ours_cpu = dict(rows)["render: toggle trees off"][1]
    base_cpu = dict(rows)["naive baseline: float64 per-class loop"][1]

    print(f"scene {h} x {w} px ({h * w / 1e6:.1f} Mpx); class cover: "
          + ", ".join(f"{k}:{100 * v:.1f}%" for k, v in cover.items()))
    print(f"median of {r} runs (PNG and baseline: {max(1, r // 2)}); numpy {np.__version__}")
    print()
    print(f"| {'step':<48} | {'wall ms':>8} | {'CPU ms':>8} |")
    print(f"|{'-' * 50}|{'-' * 10}:|{'-' * 10}:|".replace("-:|", ":|"))
    for name, (wall, cpu) in rows:
        print(f"| {name:<48} | {1000 * wall:8.1f} | {1000 * cpu:8.1f} |")
    print()
    print(f"toggle a class: {1000 * ours:.0f} ms (CPU {1000 * ours_cpu:.0f}) vs naive {1000 * base:.0f} ms "
          f"(CPU {1000 * base_cpu:.0f}) -> {base / ours:.1f}x faster (CPU {base_cpu / ours_cpu:.1f}x); "
          f"max |difference| on single-class pixels: {max_diff}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How many calibration tiles the engine's int8 path needs: time and quality on one full-size scene.

Runs the bundled 20-band UNet (or `--weights`) over a full-size synthetic scene (3350 x 3400,
written by `python -m dstl synth` into `--data` unless there) with int8 calibrated on each of
`--tiles` counts and in fp32 (the reference), interleaved over `--rounds`, through the
engine API (`dstl.engine.Predictor`). Reports the median seconds per scene, the share of mask
pixels equal to fp32's and the mean pixel IoU against the scene's labels.

    python bench/int8_calibration.py --tiles 4 16 --rounds 2
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dstl.engine as engine  # noqa: E402
from dstl.dataset import DstlDataset  # noqa: E402
from dstl.metrics import pixel_scores  # noqa: E402
from dstl.models import load_model  # noqa: E402
from dstl.synthetic import generate_dataset  # noqa: E402


def pixel_iou(masks: np.ndarray, truth: np.ndarray) -> float:
    """Mean pixel IoU over the classes present in either."""
    return pixel_scores(masks, truth)["mean_iou"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="unet-20band")
    ap.add_argument("--data", type=Path, default=Path("out/full-scene"))
    ap.add_argument("--tiles", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    if not (args.data / "grid_sizes.csv").exists():
        generate_dataset(args.data, n_train=1, n_test=0, size=(3350, 3400), seed=5)
    ds = DstlDataset(args.data)
    image_id = ds.train_ids[0]
    loaded = load_model(args.weights)
    scene = ds.read_scene(image_id, loaded.config.bands)
    truth = ds.masks(image_id)

    fp32 = engine.Predictor(loaded, precision="fp32")
    ref = None
    times: dict = {"fp32": [], **{n: [] for n in args.tiles}}
    quality = {}
    for _ in range(args.rounds):  # fp32 and each tile count once per round, interleaved
        t = time.perf_counter()
        ref = fp32.predict(scene).masks()
        times["fp32"].append(time.perf_counter() - t)
        for n in args.tiles:
            engine.INT8_CALIBRATION_TILES = n
            predictor = engine.Predictor(loaded, precision="int8")  # new int8 model each time
            t = time.perf_counter()
            masks = predictor.predict(scene).masks()
            times[n].append(time.perf_counter() - t)
            quality[n] = ((masks == ref).mean(), pixel_iou(masks, truth))
    fp32_s = statistics.median(times["fp32"])
    print(f"scene {image_id} {scene.data.shape[1]}x{scene.data.shape[2]}, weights {args.weights}, "
          f"{args.rounds} interleaved rounds")
    print("| calibration tiles | s/scene (median) | runs | vs fp32 time | mask pixels equal to fp32 "
          "| pixel IoU |")
    print("|---|---|---|---|---|---|")
    runs = ", ".join(f"{x:.1f}" for x in times["fp32"])
    print(f"| fp32 (reference) | {fp32_s:.1f} | {runs} | 1.00 | 100 % | {pixel_iou(ref, truth):.3f} |")
    for n in args.tiles:
        med = statistics.median(times[n])
        runs = ", ".join(f"{x:.1f}" for x in times[n])
        print(f"| {n} | {med:.1f} | {runs} | {fp32_s / med:.2f}x faster | {100 * quality[n][0]:.2f} % | "
              f"{quality[n][1]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

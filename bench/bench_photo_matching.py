"""Benchmark: does matching an 8-bit photo to the RGB model's input statistics help?

    .venv/bin/python bench/bench_photo_matching.py [--seeds 2024 31 57 88 99 123] [--size 512]

A "photo" stands in for what a visitor uploads: the RGB preview (2-98 % percentile stretch) of a
SYNTHETIC 11-bit scene (`dstl.synthetic`, the given seeds; none is a training, held-out or demo
seed), saved as an 8-bit JPEG (quality 88) and read back as the app reads an upload (divided by
255). The bundled RGB model (`unet-rgb`) segments:

- the scene itself, 11-bit as trained ("11-bit original", the reference);
- the photo as read ("photo / 255", what the app did before);
- the photo with each band's mean and std matched to the model's training statistics
  (`dstl.demo.radiometry.match_bands`, what the app does now);
- for comparison, one shared gain for all bands with per-band offsets ("one gain").

Reported: how far the photo's bands sit from the model's statistics (in its standard deviations),
and the pixel mean IoU over the ten classes (counts summed over all scenes; classes empty in both
left out) against the ground truth and against the 11-bit prediction.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dstl import render  # noqa: E402
from dstl.bands import RGB_BANDS  # noqa: E402
from dstl.dataset import DstlDataset  # noqa: E402
from dstl.demo.radiometry import band_statistics, distances, match_bands  # noqa: E402
from dstl.engine import Predictor  # noqa: E402
from dstl.metrics import pixel_counts, scores_from_counts  # noqa: E402
from dstl.models import load_model  # noqa: E402
from dstl.scene import Scene, read_image  # noqa: E402
from dstl.synthetic import generate_dataset  # noqa: E402

COUNTS = ("intersection", "union", "pred", "true")


def one_gain(photo: Scene, stats) -> Scene:
    """All bands scaled by one gain (mean model std / mean photo std), each shifted to the model's mean."""
    mean, std = band_statistics(photo.data)
    gain = float(np.mean(stats.std) / np.mean(std))
    offset = np.asarray(stats.mean) - mean * gain
    data = np.clip(photo.data * np.float32(gain) + offset[:, None, None].astype(np.float32), 0, 1)
    return Scene(photo.image_id, data.astype(np.float32), photo.bands)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[2024, 31, 57, 88, 99, 123])
    p.add_argument("--size", type=int, default=512)
    args = p.parse_args(argv)
    model = load_model("unet-rgb")
    stats = model.config.normalization
    predictor = Predictor(model, precision="fp32")
    variants = ["11-bit original", "photo / 255", "per-band mean/std matching", "one gain"]
    vs_truth = {v: dict.fromkeys(COUNTS, 0) for v in variants}
    vs_reference = {v: dict.fromkeys(COUNTS, 0) for v in variants}
    sigmas = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            generate_dataset(Path(tmp) / "s", n_train=1, n_test=0, size=(args.size, args.size), seed=seed)
            ds = DstlDataset(Path(tmp) / "s")
            image_id = ds.image_ids[0]
            scene = ds.read_scene(image_id, RGB_BANDS)
            truth = ds.masks(image_id)
            path = Path(tmp) / "photo.jpg"
            Image.fromarray(render.rgb_preview(scene)).save(path, quality=88)
            photo = read_image(path)
            sigmas.append(list(distances(photo, stats).values()))
            inputs = {"11-bit original": scene, "photo / 255": photo,
                      "per-band mean/std matching": match_bands(photo, stats)[0],
                      "one gain": one_gain(photo, stats)}
            reference = None
            for name, x in inputs.items():
                masks = predictor.predict(x).masks()
                reference = masks if reference is None else reference
                for acc, target in ((vs_truth[name], truth), (vs_reference[name], reference)):
                    for key, value in pixel_counts(masks, target).items():
                        acc[key] = acc[key] + value
    s = np.asarray(sigmas)
    print(f"{len(args.seeds)} synthetic scenes of {args.size} px (seeds {', '.join(map(str, args.seeds))}); "
          f"the photos' R, G, B sat {s[:, 0].mean():.1f}, {s[:, 1].mean():.1f}, {s[:, 2].mean():.1f} model "
          f"standard deviations away on average (max {s.max():.1f})")
    print("| input to unet-rgb | mean IoU vs truth | mean IoU vs the 11-bit prediction |")
    print("|---|---|---|")
    for name in variants:
        truth_iou = scores_from_counts(vs_truth[name])["mean_iou"]
        ref_iou = scores_from_counts(vs_reference[name])["mean_iou"]
        print(f"| {name} | {truth_iou:.3f} | {ref_iou:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

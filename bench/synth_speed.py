"""Time the synthetic-scene generator on full-size scenes, stage by stage.

Generates `--scenes` images of the nominal DSTL size (3350 x 3400 by default) exactly as
`python -m dstl synth` does — layout, labels, masks, rendering, and writing the four TIFFs —
and reports wall-clock and CPU seconds per stage and per scene (median and max), with the
machine's load average, since other processes sharing the cores stretch wall-clock time.

    python bench/synth_speed.py --scenes 3 --json out/synth_speed.json
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dstl.atomic import write_text_atomic  # noqa: E402
from dstl.cli.synth import parse_size  # noqa: E402
from dstl.synthetic.image import make_image  # noqa: E402
from dstl.synthetic.writer import image_id, image_seed, write_image  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", type=int, default=3, help="scenes to time (default: %(default)s)")
    p.add_argument("--size", default="3350x3400", help="nominal size HxW (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default: %(default)s)")
    p.add_argument("--json", type=Path, default=None, help="write the results here as JSON")
    args = p.parse_args(argv)
    size = parse_size(args.size)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.scenes):
            stages: dict[str, tuple[float, float]] = {}
            load_before = os.getloadavg()[0]
            w0, c0 = time.perf_counter(), time.process_time()
            image = make_image(np.random.default_rng(image_seed(args.seed, k)), image_id(k), size, stages)
            w1, c1 = time.perf_counter(), time.process_time()
            write_image(Path(tmp), image)
            w2, c2 = time.perf_counter(), time.process_time()
            stages["write TIFFs"] = (w2 - w1, c2 - c1)
            run = {"id": image.image_id, "size": [image.geometry.height, image.geometry.width],
                   "wall_s": w2 - w0, "cpu_s": c2 - c0, "load_avg_1min": load_before,
                   "objects": len(image.layout.objects), "stages": stages}
            runs.append(run)
            print(f"{run['id']} {run['size'][0]}x{run['size'][1]}: wall {run['wall_s']:.2f} s, "
                  f"cpu {run['cpu_s']:.2f} s (load {load_before:.1f}) "
                  + ", ".join(f"{k} {w:.2f}/{c:.2f}" for k, (w, c) in stages.items()))
            del image
    wall = [r["wall_s"] for r in runs]
    cpu = [r["cpu_s"] for r in runs]
    summary = {"scenes": len(runs), "nominal_size": list(size), "cpu_count": os.cpu_count(),
               "wall_s": {"median": statistics.median(wall), "max": max(wall)},
               "cpu_s": {"median": statistics.median(cpu), "max": max(cpu)}, "runs": runs}
    print(f"per scene: wall median {summary['wall_s']['median']:.2f} s (max {max(wall):.2f}), "
          f"cpu median {summary['cpu_s']['median']:.2f} s (max {max(cpu):.2f}) on {os.cpu_count()} cores")
    if args.json:
        write_text_atomic(args.json, json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

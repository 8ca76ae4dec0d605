"""Time real-layout scenes (`synth --layouts`) against rule-based scenes, full size, same run.

For each real image id: read its layers (`load_real_source`), generate the scene
(`make_real_layout_image`) and write its four TIFFs; interleaved with a rule-based scene of the
nominal DSTL size (`make_image` + write) as the baseline. Reports per-scene wall / CPU seconds
(median over rounds), the ratio real-layout / rule-based, stages, and the 1-minute load average.

    python bench/real_layout_speed.py --data ../shared/real --ids 6100_2_2 6120_2_2 6170_4_1 --rounds 3
"""

import argparse
import functools
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
from dstl.synthetic.image import make_image  # noqa: E402
from dstl.synthetic.real_layout import load_real_source, make_real_layout_image  # noqa: E402
from dstl.synthetic.writer import image_id, image_seed, write_image  # noqa: E402


def _real_scene(data: str, rid: str, seed: int, tmp: Path, stages: dict):
    img = make_real_layout_image(load_real_source(data, rid), seed, timings=stages)
    write_image(tmp, img)
    return img


def _rule_scene(seed: int, k: int, tmp: Path):
    im = make_image(np.random.default_rng(image_seed(seed, k)), image_id(k), (3350, 3400))
    write_image(tmp, im)
    return im


def _timed(fn, *args):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - w0, time.process_time() - c0


def _demo(args) -> int:
    from dstl.demo.data import ensure_real_layout_demo

    runs = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            load = os.getloadavg()[0]
            quiet = functools.partial(ensure_real_layout_demo, log=lambda line: None)
            _, wall, cpu = _timed(quiet, Path(args.data), Path(tmp) / "demo")
            runs.append({"wall_s": wall, "cpu_s": cpu, "load_avg_1min": load})
            print(f"demo first run: wall {wall:.1f} s, cpu {cpu:.1f} s (load {load:.1f})", flush=True)
    med = {q: statistics.median(r[q] for r in runs) for q in ("wall_s", "cpu_s")}
    print(f"median: wall {med['wall_s']:.1f} s, cpu {med['cpu_s']:.1f} s")
    if args.json:
        write_text_atomic(args.json, json.dumps({"median": med, "runs": runs}, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/real", help="real DSTL folder (default: %(default)s)")
    p.add_argument("--ids", nargs="+", default=["6100_2_2", "6120_2_2", "6170_4_1"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--demo", action="store_true",
                   help="instead: time the demo's first run (dstl.demo.data.ensure_real_layout_demo: "
                        "2 windows of 640 px of each held-out image), --rounds times into fresh folders")
    args = p.parse_args(argv)
    if args.demo:
        return _demo(args)
    rows = {"real_layout": [], "rule_based": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for k, rid in enumerate(args.ids):
                load = os.getloadavg()[0]
                stages: dict = {}
                img, wall, cpu = _timed(_real_scene, args.data, rid, r, Path(tmp), stages)
                size = [img.geometry.height, img.geometry.width]
                rows["real_layout"].append({"id": rid, "round": r, "size": size,
                                            "objects": len(img.layout.objects), "wall_s": wall, "cpu_s": cpu,
                                            "load_avg_1min": load, "stages": stages})
                print(f"real-layout {rid} {img.geometry.height}x{img.geometry.width}: wall {wall:.2f} s, "
                      f"cpu {cpu:.2f} s (load {load:.1f})", flush=True)
                del img
                load = os.getloadavg()[0]
                im, wall, cpu = _timed(_rule_scene, r, k, Path(tmp))
                rows["rule_based"].append({"id": im.image_id, "round": r, "wall_s": wall, "cpu_s": cpu,
                                           "load_avg_1min": load})
                print(f"rule-based {im.image_id}: wall {wall:.2f} s, cpu {cpu:.2f} s (load {load:.1f})",
                      flush=True)
                del im
    med = {k: {q: statistics.median(x[q] for x in v) for q in ("wall_s", "cpu_s")} for k, v in rows.items()}
    ratio = med["real_layout"]["wall_s"] / med["rule_based"]["wall_s"]
    print(f"median per scene: real-layout wall {med['real_layout']['wall_s']:.2f} s / cpu "
          f"{med['real_layout']['cpu_s']:.2f} s; rule-based wall {med['rule_based']['wall_s']:.2f} s / cpu "
          f"{med['rule_based']['cpu_s']:.2f} s; ratio (wall) {ratio:.2f} on {os.cpu_count()} cores")
    if args.json:
        doc = {"median": med, "ratio_wall": ratio, "runs": rows}
        write_text_atomic(args.json, json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

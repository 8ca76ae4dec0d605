"""Benchmark: the demo server's memory with several visitors' results alive, and its bound.

    .venv/bin/python bench/bench_demo_memory.py [--visitors 8] [--size 2048] [--cache-mb 1024 256]

Each "visitor" segments a different labelled synthetic scene of `--size` px a side through the
app's own `DemoService` (bundled weights, 20-band model, ground truth attached: the largest kind of
result). A page keeps only a token; the results live in the service's `ResultStore`, bounded by
``--cache-mb``. For each bound the script reports, in a fresh process:

- RSS before the visitors (weights loaded, the pinned example on arrival segmented, as the app
  does at start-up: one more scene of the same size, kept whatever the bound);
- RSS after all visitors (VmRSS) and the peak (VmHWM: includes the model's activations);
- the store's own accounting (results kept, the pinned example included; MB held by their
  arrays) and how many of the visitors' results are still reachable;
- MB per result, from the store's accounting.

The scenes are synthetic (`dstl.synthetic`, seed 4321), written once to a temporary folder.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_one(data: str, visitors: int, cache_mb: float) -> dict:
    """In this process: the service, the visitors, the measurements."""
    from dstl.dataset import DstlDataset
    from dstl.demo.registry import ModelRegistry, bundled_sources
    from dstl.demo.service import DemoService

    service = DemoService(ModelRegistry(bundled_sources()), DstlDataset(data),
                          cache_bytes=int(cache_mb * 2**20))
    ids = service.labelled_ids()[:visitors + 1]
    service.segment_image(ids[-1], None, pin=True)  # the app's example on arrival (loads the model too)
    rss_before = _status_mb("VmRSS")
    tokens = [service.segment_image(i, None).token for i in ids[:visitors]]
    kept = sum(t in service.store for t in tokens)
    per_result = [service.store.get(t).result.nbytes / 2**20 for t in tokens if t in service.store]
    return {
        "cache_mb": cache_mb, "visitors": visitors, "rss_before_mb": round(rss_before),
        "rss_after_mb": round(_status_mb("VmRSS")), "peak_rss_mb": round(_status_mb("VmHWM")),
        "store_mb": round(service.store.nbytes / 2**20), "results_kept": len(service.store),
        "visitors_reachable": kept, "mb_per_result": round(sum(per_result) / max(len(per_result), 1), 1),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--visitors", type=int, default=8)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--cache-mb", type=float, nargs="+", default=[1024, 256])
    p.add_argument("--data", help="an existing DSTL-layout folder (default: synthetic scenes, made once)")
    p.add_argument("--child", nargs=2, metavar=("DATA", "CACHE_MB"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child[0], args.visitors, float(args.child[1]))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from dstl.synthetic import generate_dataset

            data = str(Path(tmp) / "synth")
            print(f"writing {args.visitors + 1} synthetic {args.size} px scenes ...", file=sys.stderr)
            generate_dataset(data, n_train=args.visitors + 1, n_test=0, size=(args.size, args.size),
                             seed=4321)
        rows = []
        for cache_mb in args.cache_mb:  # a fresh process per bound: peak RSS is per process
            command = [sys.executable, __file__, "--visitors", str(args.visitors), "--child", data,
                       str(cache_mb)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(f"CPU: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; scenes {args.size} px, "
          f"{args.visitors} visitors")
    print("| --cache-mb | RSS before | RSS after | peak RSS | store | results kept | visitors' results "
          "reachable | MB per result |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['cache_mb']:g} | {r['rss_before_mb']} MB | {r['rss_after_mb']} MB | "
              f"{r['peak_rss_mb']} MB | {r['store_mb']} MB | {r['results_kept']} | "
              f"{r['visitors_reachable']} of {r['visitors']} | {r['mb_per_result']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

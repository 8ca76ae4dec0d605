"""Time and peak memory of DstlDataset.read_scene on a full-size (3350 x 3403) random scene.

Usage: python bench/bench_read_scene.py [--repeat N]. Each measurement runs in a fresh subprocess so
ru_maxrss is that read's peak (minus the interpreter + imports baseline, also reported).
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from dstl.dataset import DstlDataset
from dstl.bands import ALL_BANDS, RGB_BANDS
import numpy as np
ds = DstlDataset({root!r})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
bands = ALL_BANDS if {full} else RGB_BANDS
t = time.perf_counter()
scene = ds.read_scene("9901_0_0", bands)
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(bands=len(bands), seconds=round(dt, 3),
                      result_mb=round(scene.data.nbytes / 2**20), baseline_rss_mb=round(base),
                      peak_rss_mb=round(peak), peak_over_baseline_mb=round(peak - base))))
"""


def main():
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    from conftest import write_dstl_folder

    with tempfile.TemporaryDirectory() as tmp:
        sizes = {"9901_0_0": {"3": (3350, 3403), "P": (3350, 3403), "M": (838, 851), "A": (134, 137)}}
        root = write_dstl_folder(Path(tmp) / "data", sizes=sizes, labelled=[])
        for full in (True, False):
            for _ in range(repeat):
                child = CHILD.format(repo=str(REPO), root=str(root), full=full)
                out = subprocess.run([sys.executable, "-c", child],
                                     capture_output=True, text=True, check=True)
                print(json.dumps(json.loads(out.stdout)))


if __name__ == "__main__":
    main()

"""What checking the training options against the model costs at start-up (dstl/train/checks.py).

    python bench/bench_train_checks.py [--rounds N] [--model unet|res50unet] [--crop N]

Each round is a fresh Python process (the probe's cost is a first-use cost) that times
- baseline: importing the training command's code (`dstl.train.train`, `dstl.dataset`: what every
  training run pays before it reads any data), and
- check: `check_options` on the model's default size (`--crop`, batch 16, one process);
then prints the medians, and the check's cost as a ratio of the baseline, as JSON. Needs `dstl`
importable (`pip install -e .`, or PYTHONPATH=. in the checkout).
"""

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, time
t0 = time.perf_counter()
import dstl.dataset, dstl.train.train  # noqa: F401
from dstl.train.checks import check_options
from dstl.train.config import TrainConfig
t1 = time.perf_counter()
check_options(TrainConfig(model={model!r}, crop_size={crop}, batch_size=16), 20)
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "check_s": t2 - t1}}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--model", default="unet", choices=("unet", "res50unet"))
    p.add_argument("--crop", type=int, default=224)
    a = p.parse_args()
    rows = []
    for _ in range(a.rounds):
        out = subprocess.run([sys.executable, "-c", CHILD.format(model=a.model, crop=a.crop)],
                             capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out))
    imp = statistics.median(r["import_s"] for r in rows)
    chk = statistics.median(r["check_s"] for r in rows)
    print(json.dumps({"model": a.model, "crop": a.crop, "rounds": a.rounds, "import_median_s": round(imp, 3),
                      "check_median_s": round(chk, 3), "check_over_import": round(chk / imp, 3)}))


if __name__ == "__main__":
    main()

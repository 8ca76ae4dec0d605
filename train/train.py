"""`python train/train.py ...`: the training command of DESIGN.md §6, kept for checkouts.

The training code is the package's `dstl.train` (installed with `pip install .` or `pip install -e .`,
which also gives the same command as `dstl-train ...`); this file only calls it. It imports the
installed `dstl`, so run `pip install -e .` (or `bash scripts/setup.sh`) in the checkout first.
"""

import sys

try:
    from dstl.train.train import cli
except ModuleNotFoundError as e:
    if e.name not in ("dstl", "dstl.train"):
        raise
    print("error: the dstl package is not installed in this Python; run `pip install -e .` in the "
          "checkout (or `bash scripts/setup.sh`), then `python train/train.py ...` or `dstl-train ...`",
          file=sys.stderr)
    sys.exit(2)

if __name__ == "__main__":
    sys.exit(cli())

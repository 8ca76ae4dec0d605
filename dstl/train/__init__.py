"""Training of the dstl models: `dstl-train --help` or `python train/train.py --help` (see train.py)."""

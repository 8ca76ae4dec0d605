"""Training of the dstl models: `python train/train.py --help` (see train.py)."""

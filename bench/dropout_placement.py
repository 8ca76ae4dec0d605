"""Does UNet's dropout placement change how well it trains? "original" vs "deep" (dstl.models.unet).

Short CPU training runs of the same UNet (same width, same dropout p, same seed, same crops and
steps) that differ only in ``dropout_placement``, scored on held-out synthetic scenes:

- data: `python -m dstl synth` scenes written by this script (SYNTHETIC; training set seed 0,
  held-out set seed 1, never trained on);
- training: random crops with dihedral flips, BCE + soft-Jaccard loss (the recipes' ``bce_jaccard``),
  AdamW with a linear warm-up and cosine decay, head bias at the logit of each class's pixel
  frequency, per-band standardisation from the training scenes, fp32 on 1 thread;
- score: mean per-class pixel IoU (threshold 0.5) over the held-out scenes, pixel counts summed over
  scenes (`dstl.metrics`); also the mean training loss of the last 20 % of steps.

Runs are interleaved (for each seed both placements, the order alternating) and the median over
seeds is reported with the per-seed difference. Dropout is off at evaluation for both.

    nice -n 10 python bench/dropout_placement.py --data /data/dropout-bench --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dstl.bands import ALL_BANDS
from dstl.dataset import DstlDataset
from dstl.metrics import pixel_counts, scores_from_counts
from dstl.models.unet import DROPOUT_PLACEMENTS, UNet
from dstl.normalization import BandStats


def make_data(root: Path, size: str) -> tuple[Path, Path]:
    """Training (seed 0, 8 scenes) and held-out (seed 1, 4 scenes) synthetic datasets under `root`."""
    out = []
    for name, n, seed in (("train", 8, 0), ("holdout", 4, 1)):
        folder = root / name
        if not (folder / "train_wkt_v4.csv").is_file():
            subprocess.run([sys.executable, "-m", "dstl", "synth", str(folder), "--train", str(n),
                            "--test", "0", "--size", size, "--seed", str(seed)], check=True,
                           stderr=subprocess.DEVNULL)
        out.append(folder)
    return out[0], out[1]


def load(folder: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(images (20, H, W) float32, masks (10, H, W) uint8), cropped to multiples of 32."""
    ds = DstlDataset(folder)
    images, masks = [], []
    for image_id in ds.train_ids:
        data, m = ds.read_scene(image_id, ALL_BANDS).data, ds.masks(image_id)
        h, w = (min(data.shape[1], m.shape[1]) // 32) * 32, (min(data.shape[2], m.shape[2]) // 32) * 32
        images.append(np.ascontiguousarray(data[:, :h, :w]))
        masks.append(np.ascontiguousarray(m[:, :h, :w]))
    return images, masks


def batches(images, masks, crop: int, batch: int, steps: int, seed: int):
    """`steps` batches of random crops (with a random flip / transpose), the same for every model."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        xs, ys = [], []
        for _ in range(batch):
            i = int(rng.integers(len(images)))
            h, w = images[i].shape[1:]
            r, c = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
            x, y = images[i][:, r:r + crop, c:c + crop], masks[i][:, r:r + crop, c:c + crop]
            k = int(rng.integers(8))
            x, y = np.rot90(x, k % 4, axes=(1, 2)), np.rot90(y, k % 4, axes=(1, 2))
            if k >= 4:
                x, y = x[:, :, ::-1], y[:, :, ::-1]
            xs.append(np.ascontiguousarray(x))
            ys.append(np.ascontiguousarray(y))
        yield torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)).float()


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + (1 - soft Jaccard), the soft Jaccard per class over the batch, averaged over classes."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum(dim=(0, 2, 3))
    union = (p + target - p * target).sum(dim=(0, 2, 3))
    return bce + (1 - ((inter + 1) / (union + 1)).mean())


def run(placement: str, args, train, holdout, stats: BandStats, prior: torch.Tensor) -> dict:
    torch.manual_seed(args.seed_now)
    model = UNet(in_channels=len(ALL_BANDS), num_classes=10, base_width=args.width, dropout=args.p,
                 dropout_placement=placement)
    with torch.no_grad():
        model.head.bias.copy_(prior)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = max(1, int(0.05 * args.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * (
        0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))))
    norm_images = [stats.normalize(a) for a in train[0]]
    losses = []
    t0 = time.perf_counter()
    model.train()
    for x, y in batches(norm_images, train[1], args.crop, args.batch, args.steps, args.seed_now):
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    train_s = time.perf_counter() - t0
    model.eval()
    counts = None
    with torch.no_grad():
        for image, mask in zip(*holdout, strict=True):
            prob = torch.sigmoid(model(torch.from_numpy(stats.normalize(image))[None]))[0].numpy()
            c = pixel_counts(prob > 0.5, mask)
            counts = c if counts is None else {k: counts[k] + c[k] for k in c}
    scores = scores_from_counts(counts)
    tail = losses[int(0.8 * len(losses)):]
    return {"placement": placement, "seed": args.seed_now, "mean_iou": scores["mean_iou"],
            "iou": scores["iou"], "final_loss": statistics.fmean(tail), "train_s": train_s}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("/data/dropout-bench"), help="folder for the scenes")
    p.add_argument("--size", default="512x512", help="nominal scene size (python -m dstl synth --size)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--width", type=int, default=8, help="UNet base width (bundled models: 16, original 32)")
    p.add_argument("--p", type=float, default=0.2, help="dropout probability (the original's 0.2)")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    train_dir, holdout_dir = make_data(args.data, args.size)
    train, holdout = load(train_dir), load(holdout_dir)
    stats = BandStats.from_arrays(ALL_BANDS, train[0])
    freq = np.clip(np.mean([m.reshape(10, -1).mean(axis=1) for m in train[1]], axis=0), 1e-4, 1 - 1e-4)
    prior = torch.from_numpy(np.log(freq / (1 - freq))).float()
    print(f"cpu: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s); {len(train[0])} training / {len(holdout[0])} held-out synthetic scenes "
          f"of {train[0][0].shape[1]}x{train[0][0].shape[2]} px; UNet width {args.width}, p={args.p}, "
          f"{args.steps} steps x {args.batch} crops of {args.crop} px")
    results = []
    for i, seed in enumerate(args.seeds):
        args.seed_now = seed
        order = DROPOUT_PLACEMENTS if i % 2 == 0 else DROPOUT_PLACEMENTS[::-1]
        for placement in order:
            r = run(placement, args, train, holdout, stats, prior)
            results.append(r)
            print(f"seed {seed} {placement:8s}: held-out mean pixel IoU {r['mean_iou']:.4f}, "
                  f"last-20% train loss {r['final_loss']:.4f} ({r['train_s']:.0f} s)", flush=True)
    summary = {}
    for placement in DROPOUT_PLACEMENTS:
        rs = [r for r in results if r["placement"] == placement]
        summary[placement] = {"median_mean_iou": statistics.median(r["mean_iou"] for r in rs),
                              "median_final_loss": statistics.median(r["final_loss"] for r in rs)}
    diffs = [next(r["mean_iou"] for r in results if r["seed"] == s and r["placement"] == "original")
             - next(r["mean_iou"] for r in results if r["seed"] == s and r["placement"] == "deep")
             for s in args.seeds]
    for placement, s in summary.items():
        print(f"{placement:8s}: median held-out mean pixel IoU {s['median_mean_iou']:.4f}, "
              f"median last-20% train loss {s['median_final_loss']:.4f}")
    print("original - deep, per seed: " + ", ".join(f"{d:+.4f}" for d in diffs)
          + f"; median {statistics.median(diffs):+.4f}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "summary": summary, "diffs": diffs,
                                         "args": {k: str(v) for k, v in vars(args).items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

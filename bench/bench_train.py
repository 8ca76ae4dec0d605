"""Training throughput (patches/s) of the real training step on this machine.

Times `train.train.train_step` (forward, loss, backward, gradient clipping, AdamW, schedule) on
batches drawn by the real in-memory sampler (`train.data.TrainSet`: crops, rare-class
oversampling, dihedral transforms, normalisation) from random 20-band images, for:

- the bundled recipe's model size (dstl/train/recipes/unet_synth_quick.toml: width, crop, batch), and
- the default UNet (base width 32, the original ~31 M parameters) on 224 x 224 crops,

each in fp32 (contiguous), fp32 + channels_last and bf16 autocast + channels_last. After warm-up
steps, it reports the median of several timed windows (wall clock), the same per CPU-second of
this process (process_time: on a CPU shared with other busy processes, wall-clock rates say more
about the neighbours than the code; with --threads 1, patches per CPU-second approximates one
dedicated core), and the achieved model FLOP/s (forward + backward FLOPs counted by
torch.utils.flop_counter). On CUDA it also reports the fraction of the GPU's bf16 peak, if
given (--peak-tflops).

    python bench/bench_train.py                      # CPU, both model sizes, all three modes
    python bench/bench_train.py --only recipe --windows 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from dstl.bands import ALL_BANDS  # noqa: E402
from dstl.train.config import apply_overrides, load_recipe  # noqa: E402
from dstl.train.data import TrainSet  # noqa: E402
from dstl.train.losses import SegmentationLoss  # noqa: E402
from dstl.train.train import build_model, cpu_has_native_bf16, make_optimizer, make_scheduler, train_step  # noqa: E402

MODES = {  # name -> (autocast dtype, channels_last)
    "fp32": (None, False),
    "fp32+channels_last": (None, True),
    "bf16+channels_last": (torch.bfloat16, True),
}


def random_trainset(crop: int, device: torch.device, n_images: int = 2, size: int = 512) -> TrainSet:
    rng = np.random.default_rng(0)
    images = [rng.random((len(ALL_BANDS), size, size), dtype=np.float32) for _ in range(n_images)]
    masks = [(rng.random((10, size, size)) < 0.05).astype(np.uint8) for _ in range(n_images)]
    return TrainSet.from_arrays([f"img{i}" for i in range(n_images)], images, masks, ALL_BANDS, crop,
                                rare_classes=[2, 7, 8, 9, 10], rare_prob=0.5, device=device)


def step_flops(model, x, y, loss_fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        loss_fn(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def bench(cfg, mode: str, device: torch.device, warmup: int, windows: int, steps: int) -> dict:
    amp_dtype, channels_last = MODES[mode]
    torch.manual_seed(0)
    model, _ = build_model(cfg, ALL_BANDS)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg)
    loss_fn = SegmentationLoss(cfg.loss, cfg.loss_weight).to(device)
    data = random_trainset(cfg.crop_size, device)
    gen = torch.Generator(device=device).manual_seed(0)

    def batch():
        b = data.sample(cfg.batch_size, gen)
        x, y = b.x, b.y
        if not channels_last:
            x, y = x.contiguous(), y.contiguous()
        return x, y

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    x, y = batch()
    flops = step_flops(model, x, y, loss_fn)
    for _ in range(warmup):
        x, y = batch()
        train_step(model, x, y, loss_fn, opt, sched, amp_dtype, cfg.grad_clip)
    sync()
    rates, cpu_rates = [], []
    for _ in range(windows):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            x, y = batch()
            train_step(model, x, y, loss_fn, opt, sched, amp_dtype, cfg.grad_clip)
        sync()
        rates.append(steps * cfg.batch_size / (time.perf_counter() - t0))
        cpu_rates.append(steps * cfg.batch_size / max(time.process_time() - c0, 1e-9))
    med = statistics.median(rates)
    return {"mode": mode, "patches_per_s": med, "windows": rates,
            "patches_per_cpu_s": statistics.median(cpu_rates),
            "tflops": flops / cfg.batch_size * med / 1e12, "flops_per_patch": flops / cfg.batch_size,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="unet_synth_quick", help="recipe whose model size is benchmarked")
    p.add_argument("--only", choices=("recipe", "default"), help="benchmark one model size only")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--windows", type=int, default=5, help="timed windows (the median is reported)")
    p.add_argument("--steps", type=int, default=2, help="steps per timed window")
    p.add_argument("--default-batch", type=int, default=8, help="batch for the default-size UNet")
    p.add_argument("--peak-tflops", type=float, help="the device's bf16 peak, to report the fraction reached")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    recipe = load_recipe(args.recipe)
    configs = {
        "recipe": (f"{args.recipe}: UNet {recipe.model_args or 'defaults'}, {recipe.crop_size}px crops, "
                   f"batch {recipe.batch_size}", recipe),
        "default": (f"default UNet (base width 32), 224px crops, batch {args.default_batch}",
                    apply_overrides(recipe, {"model_args": {}, "crop_size": 224,
                                             "batch_size": args.default_batch}, "bench")),
    }
    if args.only:
        configs = {args.only: configs[args.only]}
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# training throughput on {where}; median of {args.windows} windows x {args.steps} steps "
          f"after {args.warmup} warm-up steps; load average at start {load:.1f}", flush=True)
    print("| model | mode | patches/s | patches per CPU-second | achieved TFLOP/s | windows (patches/s) |",
          flush=True)
    print("|---|---|---:|---:|---:|---|", flush=True)
    results = []
    for key, (label, cfg) in configs.items():
        for mode in modes:
            r = bench(cfg, mode, device, args.warmup, args.windows, args.steps)
            r.update(model=label, size=key)
            if args.peak_tflops:
                r["fraction_of_peak"] = r["tflops"] / args.peak_tflops
            results.append(r)
            frac = f" ({r['fraction_of_peak']:.1%} of peak)" if args.peak_tflops else ""
            print(f"| {label} ({r['params_m']:.1f} M) | {mode} | {r['patches_per_s']:.2f} | "
                  f"{r['patches_per_cpu_s']:.2f} | {r['tflops']:.3f}{frac} | "
                  f"{', '.join(f'{v:.2f}' for v in r['windows'])} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": where, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: whole-scene inference with the default UNet, dstl.engine against two baselines.

    .venv/bin/python bench/bench_inference.py                      # full scene, 3 runs (long)
    .venv/bin/python bench/bench_inference.py --size 640x800 --runs 1 --precision int8  # smoke test
    .venv/bin/python bench/bench_inference.py --weights-dir dstl/weights/unet-20band --tile 256 --overlap 64
    .venv/bin/python bench/bench_inference.py --emulate-avx2 ...   # as on an AVX2-only CPU

`--weights-dir` benchmarks trained weights (a Hub-layout folder, e.g. the bundled width-16 UNet)
with their own normalisation instead of the default-size random UNet. `--emulate-avx2` re-runs the
whole command with the ISA caps of `bench/isa_caps.py` (no AVX-512, VNNI or AMX for ATen, oneDNN
and FBGEMM) and reports what the kernels used. The matrix-multiply rates are bounded in time
(`_rate`): on CPUs where a kernel is very slow (int8 without VNNI) they are measured on smaller
matrices instead of stalling the run.

One run on one machine. The scene is a synthetic DSTL scene (20 bands, `--size`, default a full
3350x3400; `--scene random` for uniform noise) written once to a temporary .npy file; the model
is `dstl.models.UNet` at its default size (base width 32, 31.1 M parameters, 20 bands -> 10
classes) with random weights (seed 0), which time exactly like trained ones. Their outputs,
though, hover around 0.5, where any change of arithmetic flips masks, unlike a trained model's;
so, by default, the 1x1 head (10x32 weights) is replaced by a logistic regression fitted to the
scene's own labels on the random body's features of `--fit-tiles` tiles (seconds), which gives
outputs the confidence of a trained model while every other weight stays random. Mask agreement
is also reported for the untouched random weights on a crop (`--random-agreement-size`).

Each measurement runs in its own subprocess (so its peak RSS, the process's high-water mark
including the scene, the model and Python/torch themselves, is independent of the others) and the
configurations are interleaved round by round, because the CPU may be shared:

- engine:       `dstl.engine.Predictor` as the CLI and app use it (`--precision`, default auto:
                the precision measured fastest for the scene's tile count, see dstl/autotune.py;
                its one-off measurement is part of the timed run, as for a first request).
- engine-fp32:  the same engine in fp32 (channels_last, batched): the reference for agreement.
- loop-fp32:    the straightforward loop: normalise and reflect-pad the whole scene, one tile at a
                time in fp32 (NCHW, batch 1, torch.no_grad), identical tiles, overlap and window.
- monai:        MONAI's `sliding_window_inference` (fp32, same tile size, overlap fraction and
                batch size, gaussian blending, reflect padding) on the normalised scene.
- engine-bf16:  optional (`--configs`), bf16 autocast; slow on CPUs without native bf16.
- engine-int8:  optional (`--configs`), int8 through the engine's int8 engine choice.

Reported per configuration: seconds per scene (median over runs), tile passes per second, the
model's achieved FLOP/s (FLOPs per tile from torch.utils.flop_counter times tiles, over the time
spent in forward passes) as a fraction of this machine's fp32, bf16 and int8 matrix-multiply
rates measured in the same run (large matmuls, medians of one measurement per round), peak RSS,
and the speed-up of the engine over each baseline. Mask agreement (fraction of equal pixels over
all 10 classes at threshold 0.5) of every configuration against engine-fp32.
Prints a markdown table and writes a JSON file (`--json`).
"""

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import isa_caps  # noqa: E402  (bench/, beside this script)

from dstl.atomic import write_text_atomic  # noqa: E402
from dstl.bands import ALL_BANDS  # noqa: E402
from dstl.classes import NUM_CLASSES  # noqa: E402
from dstl.engine import Predictor, TilePlan  # noqa: E402
from dstl.normalization import BandStats  # noqa: E402

CONFIGS = ("engine", "engine-fp32", "loop-fp32", "monai", "engine-bf16", "engine-int8")
DEFAULT_CONFIGS = ("engine", "engine-fp32", "loop-fp32", "monai")


def parse_size(s: str) -> tuple[int, int]:
    h, w = s.lower().split("x")
    return int(h), int(w)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------------------------------------
# Worker side (one configuration, one run, in a fresh process)


def build_model(weights: str | None, weights_dir: str | None = None):
    """The benchmarked module: trained weights from a Hub-layout folder (`--weights-dir`), or the
    default-size UNet with random weights (seed 0) and, if given, a fitted state dict."""
    from dstl.models.unet import UNet

    if weights_dir:
        from dstl.models import load_model

        return load_model(weights_dir).module.eval()
    torch.manual_seed(0)
    if not weights:
        return UNet().eval()  # default size: base width 32, 20 -> 10
    with torch.device("meta"):  # no second copy of the parameters
        model = UNet()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), assign=True)
    return model.eval()


def run_loop(data: np.ndarray, model, stats: BandStats, tile: int,
             overlap: int) -> tuple[np.ndarray, float, int]:
    """The straightforward fp32 loop on the engine's tiles and window; (probs, model seconds, tiles)."""
    h, w = data.shape[1:]
    plan = TilePlan.for_scene(h, w, tile, overlap)
    pt, pl = -plan.ys[0], -plan.xs[0]
    pb, pr = plan.ys[-1] + tile - h, plan.xs[-1] + tile - w
    padded = np.pad(stats.normalize(data), ((0, 0), (pt, pb), (pl, pr)), mode="reflect")
    win = plan.window()
    win2 = np.outer(win, win)
    acc = np.zeros((NUM_CLASSES,) + padded.shape[1:], dtype=np.float32)
    wsum = np.zeros(padded.shape[1:], dtype=np.float32)
    model_s = 0.0
    with torch.no_grad():
        for y in plan.ys:
            for x in plan.xs:
                t = torch.from_numpy(padded[None, :, y + pt:y + pt + tile, x + pl:x + pl + tile].copy())
                t0 = time.perf_counter()
                p = torch.sigmoid(model(t))[0].numpy()
                model_s += time.perf_counter() - t0
                acc[:, y + pt:y + pt + tile, x + pl:x + pl + tile] += p * win2
                wsum[y + pt:y + pt + tile, x + pl:x + pl + tile] += win2
    probs = acc[:, pt:pt + h, pl:pl + w] / wsum[pt:pt + h, pl:pl + w]
    return probs, model_s, plan.n_tiles


def run_monai(data: np.ndarray, model, stats: BandStats, tile: int, overlap: int,
              batch: int) -> tuple[np.ndarray, float, int]:
    from monai.inferers import sliding_window_inference

    x = torch.from_numpy(stats.normalize(data))[None]
    counter = {"tiles": 0, "seconds": 0.0}

    def predictor(t):
        t0 = time.perf_counter()
        out = torch.sigmoid(model(t))
        counter["seconds"] += time.perf_counter() - t0
        counter["tiles"] += t.shape[0]
        return out

    with torch.no_grad():
        out = sliding_window_inference(x, roi_size=(tile, tile), sw_batch_size=batch, predictor=predictor,
                                       overlap=overlap / tile, mode="gaussian", padding_mode="reflect")
    return out[0].numpy(), counter["seconds"], counter["tiles"]


def worker(args) -> None:
    rss_start = peak_rss_mb()
    data = np.load(args.scene_file)
    crop = args.crop
    if crop:
        data = np.ascontiguousarray(data[:, :crop, :crop])
    stats = BandStats.from_dict(json.loads(Path(args.stats).read_text()))
    model = build_model(args.weights, args.weights_dir)
    rss_ready = peak_rss_mb()
    cfg = args.worker
    t0 = time.perf_counter()
    info = {}
    if cfg.startswith("engine"):
        from dstl.scene import Scene

        precision = {"engine": args.precision, "engine-fp32": "fp32", "engine-bf16": "bf16",
                     "engine-int8": "int8"}[cfg]
        predictor = Predictor(model, bands=ALL_BANDS, normalization=stats, tile_size=args.tile,
                              overlap=args.overlap, batch_size=args.batch, precision=precision, device="cpu")
        pred = predictor.predict(Scene("bench", data, ALL_BANDS))
        probs, model_s, tiles = pred.probs, pred.info["model_seconds"], pred.info["tiles"]
        info = {k: pred.info[k] for k in ("precision", "setup_seconds", "batch_size", "tile_size")}
        if pred.info.get("int8_engine"):
            info["int8_engine"] = pred.info["int8_engine"]
        prof = predictor.speed_profile(measure=False)  # what the run measured, if it did
        if prof is not None:
            info["speed_profile"] = {"tile_seconds": dict(prof.tile_seconds), "int8_engine": prof.int8_engine,
                                     "probe_seconds": prof.probe_seconds}
    elif cfg == "loop-fp32":
        probs, model_s, tiles = run_loop(data, model, stats, args.tile, args.overlap)
    elif cfg == "monai":
        probs, model_s, tiles = run_monai(data, model, stats, args.tile, args.overlap, args.batch)
    else:
        raise SystemExit(f"unknown configuration {cfg}")
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()  # before the bookkeeping below, which is the benchmark's, not inference's
    if args.masks:
        np.save(args.masks, np.concatenate([np.packbits(p >= 0.5) for p in probs]))
    near = sum(int(np.count_nonzero(np.abs(p - 0.5) < 0.05)) for p in probs) / probs.size
    print(json.dumps({"config": cfg, "seconds": seconds, "model_seconds": model_s, "tiles": tiles,
                      "peak_rss_mb": peak, "rss_before_scene_mb": rss_start,
                      "rss_scene_and_model_mb": rss_ready, "near_threshold": near,
                      "threads": torch.get_num_threads(), **info}))


def fit_worker(args) -> None:
    """Fit the UNet's 1x1 head (logistic regression on its random 32-channel features) to the
    scene's labels; save the state dict. The body keeps its random weights."""
    data = np.load(args.scene_file)
    h, w = data.shape[1:]
    masks = np.unpackbits(np.load(args.labels))[:NUM_CLASSES * h * w].reshape(NUM_CLASSES, h, w)
    stats = BandStats.from_dict(json.loads(Path(args.stats).read_text()))
    model = build_model(None)
    feats = []
    hook = model.head.register_forward_hook(lambda m, inp, out: feats.append(inp[0]))
    rng = np.random.default_rng(1)
    t, n_tiles, per_tile = args.tile, args.fit_tiles, 20_000
    xs, ys = [], []
    with torch.no_grad():
        for _ in range(n_tiles):
            y0, x0 = (int(rng.integers(0, max(h - t, 0) + 1)), int(rng.integers(0, max(w - t, 0) + 1)))
            crop = data[:, y0:y0 + t, x0:x0 + t]
            if crop.shape[1:] != (t, t):
                raise SystemExit(f"--fit-tiles needs a scene of at least {t}x{t} pixels")
            feats.clear()
            model(torch.from_numpy(stats.normalize(crop))[None])
            f = feats[0][0].reshape(feats[0].shape[1], -1).T  # (t*t, 32)
            pick = rng.choice(t * t, per_tile, replace=False)
            xs.append(f[torch.from_numpy(pick)])
            ys.append(torch.from_numpy(masks[:, y0:y0 + t, x0:x0 + t].reshape(NUM_CLASSES, -1).T[pick]))
    hook.remove()
    x, y = torch.cat(xs), torch.cat(ys).float()
    mu, sd = x.mean(0), x.std(0) + 1e-6
    lin = torch.nn.Linear(x.shape[1], NUM_CLASSES)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(lin((x - mu) / sd), y)
        loss = loss + 1e-4 * lin.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():  # fold the feature standardisation into the 1x1 conv
        wgt = lin.weight / sd
        model.head.weight.copy_(wgt[:, :, None, None])
        model.head.bias.copy_(lin.bias - wgt @ mu)
        p = torch.sigmoid(lin((x - mu) / sd))
    print(f"  head fitted on {len(x)} pixels of {n_tiles} tiles: loss {closure().item():.4f}, "
          f"{100 * float(((p - 0.5).abs() < 0.05).float().mean()):.1f}% of probabilities within 0.05 of 0.5",
          file=sys.stderr, flush=True)
    torch.save(model.state_dict(), args.weights)


# ---------------------------------------------------------------------------------------------
# Parent side


def make_scene(kind: str, size: tuple[int, int], seed: int, tmp: Path) -> tuple[Path, Path | None, str]:
    """Write the scene (20, H, W) float32 and, for a synthetic scene, packed label masks."""
    scene_path, labels_path = tmp / "scene.npy", None
    if kind == "synthetic":
        try:
            from dstl.dataset import DstlDataset
            from dstl.synthetic import generate_dataset

            generate_dataset(tmp / "data", n_train=1, n_test=0, size=size, seed=seed)
            ds = DstlDataset(tmp / "data")
            image_id = ds.train_ids[0]
            scene = ds.read_scene(image_id)
            np.save(scene_path, np.ascontiguousarray(scene.data, dtype=np.float32))
            labels_path = tmp / "labels.npy"
            np.save(labels_path, np.packbits(ds.masks(image_id)))
            return scene_path, labels_path, f"synthetic DSTL scene {image_id} (seed {seed})"
        except Exception as e:  # the synthetic generator is optional for this benchmark
            print(f"synthetic scene unavailable ({type(e).__name__}: {e}); using random data",
                  file=sys.stderr)
    rng = np.random.default_rng(seed)
    np.save(scene_path, rng.random((len(ALL_BANDS), *size), dtype=np.float32))
    return scene_path, None, f"uniform random data (seed {seed})"


def _rate(make, budget: float, sizes=(256, 512, 1024, 2048, 4096)) -> tuple[float, int]:
    """Best-of-3 rate (G op/s) of `make(n)()` (2 n^3 ops) at the largest n of `sizes` whose run
    stays well within `budget` seconds: sizes grow only while the next (~8x longer) run would
    fit, so a slow kernel (e.g. `torch._int_mm` on a CPU without VNNI, emulated and very slow)
    is measured on small matrices instead of stalling the benchmark."""
    rate, used = 0.0, sizes[0]
    for n in sizes:
        f = make(n)
        t0 = time.perf_counter()
        f()  # warm-up
        if time.perf_counter() - t0 > budget and rate:
            break
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        rate, used = max(rate, 2 * n**3 / min(times) / 1e9), n
        if 8 * min(times) > budget / 4:
            break
    return rate, used


def matmul_rates(budget: float = 2.0) -> dict[str, float]:
    """Rates in GFLOP/s (GOP/s for int8) of large matrix multiplies on this CPU, each bounded by
    `budget` seconds (see `_rate`; the sizes used are returned as "<kind>_n")."""
    import warnings

    out = {}

    def float_mm(dtype):
        def make(n):
            a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
            return lambda: a @ b
        return make

    out["fp32"], out["fp32_n"] = _rate(float_mm(torch.float32), budget)
    out["bf16"], out["bf16_n"] = _rate(float_mm(torch.bfloat16), budget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        def int_mm(n):
            ai = torch.randint(-128, 127, (n, n), dtype=torch.int8)
            bi = torch.randint(-128, 127, (n, n), dtype=torch.int8)
            return lambda: torch._int_mm(ai, bi)

        def qlinear(engine):
            def make(n):
                torch.backends.quantized.engine = engine
                xq = torch.quantize_per_tensor(torch.rand(n, n), 1 / 255, 0, torch.quint8)
                wq = torch.quantize_per_tensor(torch.randn(n, n), 0.05, 0, torch.qint8)
                packed = torch.ops.quantized.linear_prepack(wq, None)

                def run():
                    torch.backends.quantized.engine = engine
                    torch.ops.quantized.linear(xq, packed, 1.0, 0)
                return run
            return make

        prev = torch.backends.quantized.engine
        try:
            rates = [_rate(int_mm, budget)]
            for engine in ("x86", "onednn", "fbgemm"):
                if engine in torch.backends.quantized.supported_engines:
                    rates.append(_rate(qlinear(engine), budget))
        finally:
            torch.backends.quantized.engine = prev
        out["int8"], out["int8_n"] = max(rates)
    return out


def model_flops_per_tile(tile: int, weights_dir: str | None = None) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(None, weights_dir)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, len(ALL_BANDS), tile, tile))
    return float(fc.get_total_flops())


def call_worker(args, cfg: str, tmp: Path, weights: Path | None, masks: Path | None = None,
                crop: int = 0, precision: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", cfg, "--scene-file", str(tmp / "scene.npy"),
           "--stats", str(tmp / "stats.json"), "--tile", str(args.tile), "--overlap", str(args.overlap),
           "--batch", str(args.batch), "--precision", precision or args.precision]
    if args.weights_dir:
        cmd += ["--weights-dir", args.weights_dir]
    if weights:
        cmd += ["--weights", str(weights)]
    if masks:
        cmd += ["--masks", str(masks)]
    if crop:
        cmd += ["--crop", str(crop)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"worker {cfg} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def agreement(a: Path, b: Path, pixels: int) -> float:
    """Fraction of equal mask pixels over all classes (`pixels` = H * W of the masks)."""
    x, y = np.load(a), np.load(b)
    diff = int(np.unpackbits(np.bitwise_xor(x, y)).sum())  # padding bits are equal (zero) in both
    return 1.0 - diff / (NUM_CLASSES * pixels)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, default=(3350, 3400),
                    help="scene size HxW (default 3350x3400)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs of the engine (median reported)")
    ap.add_argument("--baseline-runs", type=int, default=None,
                    help="timed runs of each baseline (default: --runs); engine-fp32 runs once")
    ap.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                    help=f"comma-separated subset of {','.join(CONFIGS)}")
    ap.add_argument("--precision", default="auto", help="precision of the 'engine' configuration")
    ap.add_argument("--weights-dir", default=None,
                    help="benchmark trained weights from this Hub-layout folder "
                         "(e.g. dstl/weights/unet-20band; "
                         "its own normalisation, no head fitting) instead of the default-size random UNet")
    ap.add_argument("--emulate-avx2", action="store_true",
                    help="run everything with ISA caps that imitate an AVX2-only CPU (bench/isa_caps.py)")
    ap.add_argument("--tile", type=int, default=224, help="tile size (the UNet's training size)")
    ap.add_argument("--overlap", type=int, default=56, help="tile overlap in pixels (engine default: tile/4)")
    ap.add_argument("--batch", type=int, default=4,
                    help="tiles per batch for engine and MONAI (the engine's CPU default: 4)")
    ap.add_argument("--scene", choices=("synthetic", "random"), default="synthetic", help="scene content")
    ap.add_argument("--seed", type=int, default=7, help="seed of the scene")
    ap.add_argument("--fit-tiles", type=int, default=8,
                    help="tiles whose pixels fit the UNet's head to the scene's labels before timing "
                         "(0: random weights throughout)")
    ap.add_argument("--random-agreement-size", type=int, default=1024,
                    help="square crop for the agreement of random weights (0 to skip)")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "inference.json"), help="output JSON")
    # worker-only options
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--fit", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--scene-file", help=argparse.SUPPRESS)
    ap.add_argument("--stats", help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--labels", help=argparse.SUPPRESS)
    ap.add_argument("--masks", help=argparse.SUPPRESS)
    ap.add_argument("--crop", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.emulate_avx2 and not isa_caps.emulating_avx2():
        # re-run this very command under the caps: every process (matmul rates, workers) obeys them
        argv = sys.argv[1:] if argv is None else list(argv)
        env = {**os.environ, **isa_caps.AVX2_ENV}
        raise SystemExit(subprocess.run([sys.executable, __file__, *argv], env=env).returncode)
    if args.fit:
        fit_worker(args)
        return {}
    if args.worker:
        worker(args)
        return {}

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    bad = [c for c in configs if c not in CONFIGS]
    if bad:
        ap.error(f"unknown configurations {bad}")
    if "monai" in configs and importlib.util.find_spec("monai") is None:
        # a bench-only extra (requirements-bench.txt): say so and measure the rest
        print("monai is not installed (pip install -r requirements-bench.txt): the monai baseline "
              "is left out", file=sys.stderr, flush=True)
        configs.remove("monai")
    baseline_runs = args.runs if args.baseline_runs is None else args.baseline_runs
    started = time.perf_counter()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="dstl-bench-") as tmpdir:
        tmp = Path(tmpdir)
        print(f"scene {args.size[0]}x{args.size[1]} ({args.scene}) ...", file=sys.stderr, flush=True)
        _, labels, scene_desc = make_scene(args.scene, args.size, args.seed, tmp)
        data = np.load(tmp / "scene.npy", mmap_mode="r")
        h, w = data.shape[1:]
        if args.weights_dir:  # trained weights bring their own normalisation
            from dstl.models import load_model

            stats = load_model(args.weights_dir).config.normalization
        else:
            stats = BandStats.from_arrays(ALL_BANDS, [data], max_pixels=500_000)
        del data
        (tmp / "stats.json").write_text(json.dumps(stats.to_dict()))
        flops = model_flops_per_tile(args.tile, args.weights_dir)

        weights = None
        fit_seconds = 0.0
        if args.fit_tiles > 0 and labels is not None and not args.weights_dir:
            print(f"fitting the UNet's head on {args.fit_tiles} tiles ...", file=sys.stderr, flush=True)
            weights = tmp / "fitted.pt"
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, __file__, "--fit", "--scene-file", str(tmp / "scene.npy"),
                                  "--labels", str(labels), "--stats", str(tmp / "stats.json"),
                                  "--weights", str(weights), "--fit-tiles", str(args.fit_tiles),
                                  "--tile", str(args.tile)], stderr=sys.stderr)
            if res.returncode:
                raise SystemExit("fitting failed")
            fit_seconds = time.perf_counter() - t0

        runs: dict[str, list[dict]] = {c: [] for c in configs}
        rates: list[dict] = []
        n_rounds = max(args.runs, baseline_runs, 1)
        for r in range(n_rounds):
            rates.append(matmul_rates())
            for cfg in configs:
                if cfg == "engine" and r >= args.runs:
                    continue
                if cfg in ("engine-fp32", "engine-bf16", "engine-int8") and r >= 1:
                    continue
                if cfg in ("loop-fp32", "monai") and r >= baseline_runs:
                    continue
                res = call_worker(args, cfg, tmp, weights, masks=tmp / f"{cfg}.npy" if r == 0 else None)
                runs[cfg].append(res)
                print(f"round {r + 1}/{n_rounds} {cfg}: {res['seconds']:.1f} s "
                      f"(peak RSS {res['peak_rss_mb']:.0f} MB)", file=sys.stderr, flush=True)

        agree = {}
        if "engine-fp32" in configs:
            for cfg in configs:
                if cfg != "engine-fp32":
                    agree[cfg] = agreement(tmp / f"{cfg}.npy", tmp / "engine-fp32.npy", h * w)
        random_agree = None
        if args.random_agreement_size and "engine" in configs:
            c = min(args.random_agreement_size, h, w)
            # the precision the full scene used ("auto" could choose differently for a crop)
            a = call_worker(args, "engine", tmp, None, masks=tmp / "ra.npy", crop=c,
                            precision=runs["engine"][0].get("precision"))
            b = call_worker(args, "engine-fp32", tmp, None, masks=tmp / "rb.npy", crop=c)
            random_agree = {"crop": c, "precision": a.get("precision"),
                            "agreement": agreement(tmp / "ra.npy", tmp / "rb.npy", c * c),
                            "near_threshold_fp32": b["near_threshold"]}

    rate = {k: statistics.median(r[k] for r in rates) for k in rates[0]}
    summary = {}
    for cfg, rs in runs.items():
        if not rs:
            continue
        sec = statistics.median(r["seconds"] for r in rs)
        msec = statistics.median(r["model_seconds"] for r in rs)
        tiles = rs[0]["tiles"]
        # FLOPs scale with the tile's area; the engine may use larger tiles than --tile
        tile_flops = flops * (rs[0].get("tile_size", args.tile) / args.tile) ** 2
        achieved = tile_flops * tiles / msec / 1e9
        summary[cfg] = {
            "seconds_per_scene": sec, "seconds_all_runs": [r["seconds"] for r in rs],
            "model_seconds": msec, "tiles": tiles, "tiles_per_second": tiles / sec,
            "tile_size": rs[0].get("tile_size", args.tile),
            "model_gflops": achieved,
            "fraction_of_fp32_matmul": achieved / rate["fp32"],
            "fraction_of_bf16_matmul": achieved / rate["bf16"],
            "fraction_of_int8_matmul": achieved / rate["int8"],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
            "rss_scene_and_model_mb": rs[0]["rss_scene_and_model_mb"],
            "precision": rs[0].get("precision", "fp32") + (f" ({rs[0]['int8_engine']})"
                                                           if rs[0].get("int8_engine") else ""),
            "speed_profile": rs[0].get("speed_profile"),
            "setup_seconds": statistics.median(r.get("setup_seconds", 0.0) for r in rs),
            "agreement_vs_engine_fp32": agree.get(cfg, 1.0 if cfg == "engine-fp32" else None),
            "near_threshold": rs[0]["near_threshold"],
        }
    if "engine" in summary:
        e = summary["engine"]["seconds_per_scene"]
        for cfg in summary:
            summary[cfg]["engine_speedup"] = summary[cfg]["seconds_per_scene"] / e
    result = {
        "command": "python bench/bench_inference.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "scene": {"size": [h, w], "content": scene_desc, "bands": len(ALL_BANDS)},
        "model": {"architecture": "UNet",
                  "base_width": build_model(None, args.weights_dir).model_args["base_width"],
                  "parameters": sum(p.numel() for p in build_model(None, args.weights_dir).parameters()),
                  "gflop_per_tile": flops / 1e9,
                  "weights": (f"trained, {args.weights_dir}" if args.weights_dir else
                              f"random body (seed 0), 1x1 head fitted to the scene's labels on "
                              f"{args.fit_tiles} tiles ({fit_seconds:.0f} s)" if weights
                              else "random (seed 0)")},
        "tiling": {"tile": args.tile, "overlap": args.overlap, "batch": args.batch},
        "machine": {"cpu_count": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                    "matmul_gflops_median": rate, "matmul_gflops_all": rates,
                    "isa": isa_caps.check(), "load_average_start": load_start,
                    "load_average_end": os.getloadavg()},
        "runs": {"engine": args.runs, "baselines": baseline_runs},
        "results": summary,
        "random_weights_agreement": random_agree,
        "wall_seconds": time.perf_counter() - started,
    }
    try:
        import monai

        result["monai_version"] = monai.__version__
    except ImportError:
        pass
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"\nJSON: {args.json}")
    return result


def markdown(r: dict) -> str:
    rate = r["machine"]["matmul_gflops_median"]
    sc, mo, ti = r["scene"], r["model"], r["tiling"]
    lines = [
        f"Scene {sc['size'][0]}x{sc['size'][1]}x{sc['bands']} ({sc['content']}); "
        f"UNet width {mo['base_width']}, {mo['parameters'] / 1e6:.1f} M params, "
        f"{mo['gflop_per_tile']:.1f} GFLOP per "
        f"{ti['tile']}px tile, weights {mo['weights']}; overlap {ti['overlap']} px, batch {ti['batch']}.",
        f"Matmul rates here (median): fp32 {rate['fp32']:.0f} GFLOP/s, bf16 {rate['bf16']:.0f} GFLOP/s, "
        f"int8 {rate['int8']:.0f} GOP/s. CPU kernels: {isa_caps.describe(r['machine']['isa'])}. "
        f"Load average at the start {', '.join(f'{v:.1f}' for v in r['machine']['load_average_start'])}, "
        f"at the end {', '.join(f'{v:.1f}' for v in r['machine']['load_average_end'])}.",
        "",
        "| configuration | precision | s/scene (median) | tiles (px) | tiles/s | model GFLOP/s | % fp32 mm | "
        "% bf16 mm | % int8 mm | peak RSS MB | engine speed-up | mask agreement vs fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cfg, s in r["results"].items():
        ag = s["agreement_vs_engine_fp32"]
        lines.append(
            f"| {cfg} | {s['precision']} | {s['seconds_per_scene']:.1f} | "
            f"{s['tiles']} ({s.get('tile_size', '')}) | "
            f"{s['tiles_per_second']:.2f} | "
            f"{s['model_gflops']:.0f} | {100 * s['fraction_of_fp32_matmul']:.0f}% | "
            f"{100 * s['fraction_of_bf16_matmul']:.0f}% | {100 * s['fraction_of_int8_matmul']:.0f}% | "
            f"{s['peak_rss_mb']:.0f} | {s.get('engine_speedup', float('nan')):.2f}x | "
            f"{'-' if ag is None else f'{100 * ag:.3f}%'} |")
    ra = r.get("random_weights_agreement")
    if ra:
        lines.append(f"\nRandom weights, {ra['crop']}x{ra['crop']} crop: engine ({ra['precision']}) vs fp32 "
                     f"mask agreement {100 * ra['agreement']:.3f}% ({100 * ra['near_threshold_fp32']:.0f}% "
                     f"of fp32 probabilities within 0.05 of 0.5).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

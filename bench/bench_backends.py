"""Benchmark: the engine's CPU forward pass against torch.compile, ONNX Runtime and OpenVINO.

    python bench/bench_backends.py                                  # bundled 20-band UNet, 5 rounds
    python bench/bench_backends.py --weights-dir unet-rgb --rounds 7
    python bench/bench_backends.py --only engine-fp32,engine-int8,ort-fp32

ONNX Runtime (and onnx) are the project's optional `onnx` extra, pinned in requirements.txt, and
the engine's own optional fp32 backend (`dstl.onnx_runner`, `--backend`); OpenVINO is not a
dependency: install it into a private virtual environment to measure it (`pip install openvino`
plus requirements.txt). A backend whose package is missing is reported as such and skipped.

What is timed is the unit the engine repeats over a scene: one forward pass of a batch of tiles
(the tile size and batch the engine uses for a full 3350 x 3400 scene, `Predictor.plan` and
`batch_for`), from a float32 channels_last batch to float32 logits. The tiles are cut from a
synthetic 20-band DSTL scene (seed 7) normalised with the model's own statistics. Candidates:

- engine-fp32: `dstl.runners.FloatRunner` (BatchNorm folded, channels_last), as the engine runs fp32.
- engine-bf16: the same folded module under CPU autocast to bfloat16, as the engine runs bf16
  (pays only with native bf16: AMX or AVX512-BF16 with a full-width datapath).
- engine-int8-<e>: `dstl.runners.Int8Model` on PyTorch's quantised engine e (oneDNN, FBGEMM),
  calibrated on 16 tiles of the model's base tile size, as the engine runs int8.
- compile: `torch.compile` (inductor, default mode) of the folded fp32 module.
- ort-fp32: ONNX Runtime (CPU provider, all graph optimisations) on the folded module exported
  to ONNX (opset 17).
- ort-int8: ONNX Runtime on that model statically quantised by onnxruntime.quantization (QDQ,
  per-channel int8 weights, uint8 activations, min/max calibrated on the same 16 tiles; the
  engine's int8 recalibrates per scene, this file is calibrated once).
- ov-fp32 / ov-int8: OpenVINO ("CPU", f32 inference precision, latency hint) on the same two ONNX
  files (OpenVINO runs the QDQ model in int8).

Every backend gets the same number of threads (torch's, `--threads`). One-off costs (folding,
int8 build and calibration, export, compile, quantisation, model compilation) are measured once.
Then `--rounds` rounds time every candidate once each, in turn (interleaved: the machine may be
shared), after a pause (`--gap`) in which the previous candidate's worker threads stop spinning
(ONNX Runtime's spinning is also switched off: threads busy-waiting on 2 cores slow the next
one); per candidate the median over rounds, and its ratio to engine-fp32 and to the fastest
engine precision, come from the same run. Agreement: the fraction of equal mask pixels at 0.5
against engine-fp32 on the batch, and the largest difference of probabilities. A scene estimate
adds the one-off costs to the tile passes of the full scene. Load averages at start and end and
the CPU's vector flags are recorded; prints a markdown table and writes JSON (`--json`).
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from dstl import runners  # noqa: E402
from dstl.atomic import write_text_atomic  # noqa: E402
from dstl.engine import INT8_CALIBRATION_TILES, Predictor  # noqa: E402
from dstl.models import load_model  # noqa: E402

SCENE = (3350, 3400)
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def tiles_from_scene(model, tile: int, n: int, seed: int, tmp: Path) -> torch.Tensor:
    """n tiles (n, bands, tile, tile) float32 cut from a synthetic DSTL scene, normalised."""
    from dstl.dataset import DstlDataset
    from dstl.synthetic import generate_dataset

    side = max(2 * tile, 768)
    generate_dataset(tmp / "data", n_train=1, n_test=0, size=(side, side), seed=seed)
    ds = DstlDataset(tmp / "data")
    data = ds.read_scene(ds.train_ids[0], model.config.bands).data.astype(np.float32)
    data = model.config.normalization.normalize(data)
    rng = np.random.default_rng(seed)
    ys, xs = rng.integers(0, side - tile + 1, n), rng.integers(0, side - tile + 1, n)
    return torch.from_numpy(np.stack([data[:, y:y + tile, x:x + tile] for y, x in zip(ys, xs, strict=True)]))


def export_onnx(module, x: torch.Tensor, path: Path) -> None:
    """The module exported to ONNX with dynamic batch and spatial axes (TorchScript exporter if
    this torch still has it, else torch.export)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, (x,), str(path), input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}},
                              opset_version=17, dynamo=False)
        except (TypeError, RuntimeError):
            torch.onnx.export(module, (x,), str(path), input_names=["x"], output_names=["y"],
                              dynamic_shapes=({0: torch.export.Dim("n"), 2: torch.export.Dim("h"),
                                               3: torch.export.Dim("w")},),
                              opset_version=17, dynamo=True)


def quantize_onnx(src: Path, dst: Path, calib: np.ndarray) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"x": calib[i:i + 1]} for i in range(calib.shape[0])])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def builders(model, batch: torch.Tensor, calib: torch.Tensor, tmp: Path, threads: int) -> dict:
    """name -> zero-argument builder returning run() -> float32 logits as numpy."""
    module = model.module.eval()
    x_cl = batch.contiguous(memory_format=torch.channels_last)
    x_np = batch.numpy()
    out: dict = {}

    def engine_fp32():
        folded = runners.FloatRunner(module).get()

        def run():
            with torch.inference_mode():
                return folded(x_cl).float().numpy()
        return run
    out["engine-fp32"] = engine_fp32

    def engine_bf16():
        folded = runners.FloatRunner(module).get()

        def run():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return folded(x_cl).float().numpy()
        return run
    out["engine-bf16"] = engine_bf16

    def engine_int8(engine):
        def build():
            m = runners.Int8Model(module, engine)
            q = m.calibrate(calib)

            def run():
                with torch.inference_mode(), runners.quantized_engine(engine):
                    return q(x_cl).float().numpy()
            return run
        return build
    for e in runners.int8_engines():
        out[f"engine-int8-{e}"] = engine_int8(e)

    def compiled():
        folded = runners.FloatRunner(module).get()
        fn = torch.compile(folded)
        with torch.inference_mode():
            fn(x_cl)  # compiles (counted as one-off)

        def run():
            with torch.inference_mode():
                return fn(x_cl).float().numpy()
        return run
    out["compile"] = compiled

    onnx_fp32, onnx_int8 = tmp / "model.onnx", tmp / "model-int8.onnx"
    prepared: dict[str, float] = {}  # one-off file preparation, counted for every backend using it

    def ensure_onnx(int8: bool) -> tuple[Path, float]:
        """The ONNX file and the seconds it took to make (export, plus quantisation for int8)."""
        if not onnx_fp32.exists():
            t0 = time.perf_counter()
            export_onnx(runners.FloatRunner(module).get().to(memory_format=torch.contiguous_format),
                        batch[:1].contiguous(), onnx_fp32)
            prepared["export"] = time.perf_counter() - t0
        if int8 and not onnx_int8.exists():
            t0 = time.perf_counter()
            quantize_onnx(onnx_fp32, onnx_int8, calib.numpy())
            prepared["quantize"] = time.perf_counter() - t0
        return ((onnx_int8, prepared["export"] + prepared["quantize"]) if int8
                else (onnx_fp32, prepared["export"]))

    def ort(int8):
        def build():
            import onnxruntime as ort_

            so = ort_.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
            so.graph_optimization_level = ort_.GraphOptimizationLevel.ORT_ENABLE_ALL
            # no busy-waiting threads left behind to slow the next candidate down
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            path, made = ensure_onnx(int8)
            t0 = time.perf_counter()
            sess = ort_.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            run = lambda: sess.run(None, {"x": x_np})[0]  # noqa: E731
            run.prepare_seconds = made + time.perf_counter() - t0
            return run
        return build

    def ov(int8):
        def build():
            import openvino

            core = openvino.Core()
            path, made = ensure_onnx(int8)
            t0 = time.perf_counter()
            compiled_model = core.compile_model(str(path), "CPU", {
                "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
                "PERFORMANCE_HINT": "LATENCY"})
            request = compiled_model.create_infer_request()

            def run():
                request.infer({0: x_np})
                return np.asarray(request.get_output_tensor(0).data).copy()
            run.prepare_seconds = made + time.perf_counter() - t0
            return run
        return build

    if importlib.util.find_spec("onnxruntime"):
        out["ort-fp32"], out["ort-int8"] = ort(False), ort(True)
    if importlib.util.find_spec("openvino"):
        out["ov-fp32"], out["ov-int8"] = ov(False), ov(True)
    return out


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a.astype(np.float64)))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights-dir", default="unet-20band",
                    help="a Hub-layout folder, a bundled name or a Hub repo id (default: unet-20band)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (median reported)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--only", default="", help="comma-separated candidate names (default: all available)")
    ap.add_argument("--gap", type=float, default=1.0,
                    help="seconds of pause before each timed call (threads of the previous one go idle)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "backends.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    started = time.perf_counter()
    model = load_model(args.weights_dir)
    predictor = Predictor(model, precision="fp32")
    plan = predictor.plan(*SCENE)
    tile, n_batch = plan.tile, predictor.batch_for(plan.tile)
    flags = runners.cpu_flags()
    missing = [m for m in ("onnxruntime", "openvino") if importlib.util.find_spec(m) is None]
    for m in missing:
        print(f"{m} is not installed: its candidates are left out", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="dstl-backends-") as tmpdir:
        tmp = Path(tmpdir)
        batch = tiles_from_scene(model, tile, n_batch, args.seed, tmp / "batch")
        # calibration on base-size tiles, as the engine calibrates (`INT8_CALIBRATION_TILES`)
        calib = tiles_from_scene(model, predictor.tile_size, INT8_CALIBRATION_TILES, args.seed + 1,
                                 tmp / "calib")
        build = builders(model, batch, calib, tmp, args.threads)
        if args.only:
            keep = [c.strip() for c in args.only.split(",")]
            build = {k: v for k, v in build.items() if k in keep or k == "engine-fp32"}
        runs, setup, outputs, errors = {}, {}, {}, {}
        for name, make in build.items():  # one-off costs, each measured once
            print(f"building {name} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                run = make()
                t1 = time.perf_counter()
                outputs[name] = run()  # first call (warm-up; compile for torch.compile)
            except Exception as e:  # noqa: BLE001 - a backend that cannot run here is reported
                errors[name] = f"{type(e).__name__}: {str(e)[:300]}"
                print(f"  {name} failed: {errors[name]}", file=sys.stderr)
                continue
            setup[name] = {"build": getattr(run, "prepare_seconds", t1 - t0),
                           "first_call": time.perf_counter() - t1}
            runs[name] = (run, [])
        for r in range(args.rounds):
            for run, times in runs.values():
                time.sleep(args.gap)  # the previous candidate's threads stop spinning first
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
            done = ", ".join(f"{n} {t[-1]:.2f}s" for n, (_, t) in runs.items())
            print(f"round {r + 1}/{args.rounds}: {done}", file=sys.stderr, flush=True)

    ref = sigmoid(outputs["engine-fp32"])
    med = {name: statistics.median(times) for name, (_, times) in runs.items()}
    engine_best = min((n for n in med if n.startswith("engine-")), key=med.get)
    results = {}
    for name, (_, times) in runs.items():
        p = sigmoid(outputs[name])
        one_off = setup[name]["build"] + setup[name]["first_call"] - med[name]
        results[name] = {
            "batch_seconds_median": med[name], "batch_seconds_all": times,
            "tile_seconds": med[name] / n_batch,
            "vs_engine_fp32": med["engine-fp32"] / med[name],
            "vs_engine_best": med[engine_best] / med[name],
            "one_off_seconds": max(one_off, 0.0), "setup": setup[name],
            "scene_estimate_seconds": max(one_off, 0.0) + plan.n_tiles * med[name] / n_batch,
            "mask_agreement": float(((p >= 0.5) == (ref >= 0.5)).mean()),
            "max_probability_difference": float(np.abs(p - ref).max()),
        }
    versions = {"torch": torch.__version__}
    for m in ("onnxruntime", "openvino"):
        if importlib.util.find_spec(m):
            versions[m] = __import__(m).__version__
    result = {
        "command": "python bench/bench_backends.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                    "threads": args.threads, "vector_flags": [f for f in VECTOR_FLAGS if f in flags],
                    "aten_capability": runners.cpu_capability(), "load_average_start": load_start,
                    "load_average_end": os.getloadavg()},
        "versions": versions, "model": args.weights_dir,
        "unit": {"tile": tile, "batch": n_batch, "scene": list(SCENE), "scene_tiles": plan.n_tiles},
        "engine_best": engine_best, "results": results, "errors": errors, "missing": missing,
        "rounds": args.rounds, "wall_seconds": time.perf_counter() - started,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"\nJSON: {args.json}")
    return result


def markdown(r: dict) -> str:
    u, m = r["unit"], r["machine"]
    lines = [f"{r['model']}: batches of {u['batch']} tiles of {u['tile']} px ({u['scene_tiles']} tiles "
             f"for a {u['scene'][0]} x {u['scene'][1]} scene), {m['threads']} threads, "
             f"CPU flags {' '.join(m['vector_flags'])}, ATen {m['aten_capability']}; "
             f"median of {r['rounds']} interleaved rounds; load "
             f"{m['load_average_start'][0]:.1f} -> {m['load_average_end'][0]:.1f}; "
             + ", ".join(f"{k} {v}" for k, v in r["versions"].items()), "",
             "| candidate | s per tile | x engine fp32 | x engine best | one-off s | scene est. s "
             "| mask agreement | max prob. diff |", "|---|---|---|---|---|---|---|---|"]
    for name, v in sorted(r["results"].items(), key=lambda kv: kv[1]["tile_seconds"]):
        lines.append(f"| {name} | {v['tile_seconds']:.3f} | {v['vs_engine_fp32']:.2f} "
                     f"| {v['vs_engine_best']:.2f} | {v['one_off_seconds']:.1f} "
                     f"| {v['scene_estimate_seconds']:.0f} "
                     f"| {100 * v['mask_agreement']:.2f} % | {v['max_probability_difference']:.3f} |")
    for name, e in r["errors"].items():
        lines.append(f"| {name} | failed: {e} | | | | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

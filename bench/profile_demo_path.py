"""Benchmark: where the time goes on the demo's whole path, from "Segment" to the picture and on
to the polygon-based scores, stage by stage.

    .venv/bin/python bench/profile_demo_path.py                           # 512 px and full scene
    .venv/bin/python bench/profile_demo_path.py --cases 512x512 --rounds 5
    .venv/bin/python bench/profile_demo_path.py --emulate-avx2            # as on an AVX2-only CPU
    .venv/bin/python bench/profile_demo_path.py --precision auto fp32     # auto against plain fp32

Each case runs in its own process (so its peak RSS is its own), as the app runs it: a
`dstl.demo.DemoService` with the bundled weights (result cache off, so every round computes),
`service.segment_image` / `service.segment_upload`, then what the page does after it — the view
(`render_view`), the page's pictures (`service.picture`: JPEG/PNG files), coverage and metrics
tables — which is the moment the visitor sees the overlay; then the Kaggle Jaccard (polygons of
the masks and the competition metric), which the page fills in after the picture. The API's
full-resolution overlay PNG (`service.api_overlay`) is timed on its own.

The stages are measured inside that real path, not re-implemented: the functions the path calls
(scene reading, RGB preview, ground truth, the engine, the result's precomputation, polygons,
metric) are wrapped with timers for the run; nested calls count for the inner stage only.
"other" is what no timer covered. The engine's own split (tile input, model, blending, setup)
comes from `Prediction.info`.

Each worker first does what `python app.py` does before serving: `DemoService.warm_up()` (load
every served model, measure its speed profile, so that "auto" is decided before the first
visitor; reported as "start-up warm-up", not part of any round). The first ("cold") round then
still pays first-use costs (e.g. folding BatchNorm, building int8) and is reported separately;
the medians are over the warm rounds that follow, as a running Space serves its visitors.
Several `--precision` values run every case at each of them, interleaved (each case under every
setting before the next case), so that "auto" is compared with plain fp32 in the same run.

Cases: `HxW` is one labelled synthetic 20-band DSTL image of that size (written once to a
temporary folder by `dstl synth`'s generator, seed 11) segmented with the default 20-band model;
`upload:HxW` is an 8-bit RGB PNG of that size (the synthetic scene's RGB preview) uploaded and
segmented with the RGB model.

`--emulate-avx2` runs the cases under ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2 and
FBGEMM_ENABLE_INSTRUCTIONS=AVX2, which keep PyTorch's own kernels, oneDNN and FBGEMM to AVX2 (no
AVX-512, VNNI, AMX) on a newer CPU; the script checks that each cap took effect and says so.
It is an imitation: the cache sizes, clock and memory of the real AVX2 machine are not.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import isa_caps  # noqa: E402  (bench/, beside this script)

from dstl.atomic import write_text_atomic  # noqa: E402

#: Stages in the order the path runs them; the first group ends when the overlay is on the page.
PICTURE_STAGES = ("read", "preview", "truth", "engine", "result", "view", "pictures")
EXTRA_STAGES = ("polygons", "jaccard")
ENGINE_PARTS = ("setup_seconds", "input_seconds", "model_seconds", "blend_seconds")


def parse_case(text: str) -> dict:
    kind, _, size = text.rpartition(":")
    h, w = (int(v) for v in size.lower().split("x"))
    if kind not in ("", "upload"):
        raise argparse.ArgumentTypeError(f"case {text!r}: HxW or upload:HxW")
    return {"name": text, "kind": kind or "dataset", "size": (h, w)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------------------------------------
# Stage timers (worker side)


class StageTimer:
    """Exclusive wall time per stage over wrapped callables (a nested timed call is subtracted
    from its caller's stage)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.engine: list[dict] = []
        self._stack: list[list] = []

    def reset(self) -> None:
        self.seconds, self.engine = {}, []

    def time(self, stage: str, fn, *args, **kwargs):
        """fn(*args, **kwargs), its time counted for `stage`."""
        frame = [stage, time.perf_counter(), 0.0]  # stage, start, time of nested stages
        self._stack.append(frame)
        try:
            out = fn(*args, **kwargs)
        finally:
            self._stack.pop()
            elapsed = time.perf_counter() - frame[1]
            self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed - frame[2]
            if self._stack:
                self._stack[-1][2] += elapsed
        if stage == "engine":
            keys = (*ENGINE_PARTS, "precision", "backend", "tiles")
            self.engine.append({k: out.info.get(k, 0.0) for k in keys})
        return out

    def wrap(self, owner, attr: str, stage: str) -> bool:
        """Replace owner.attr by a timed version; False (nothing done) if it does not exist."""
        original = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr, None)
        if original is None:
            return False
        func = original.__func__ if isinstance(original, classmethod) else original

        def timed(*args, **kwargs):
            return self.time(stage, func, *args, **kwargs)

        setattr(owner, attr, classmethod(timed) if isinstance(original, classmethod) else timed)
        return True


def instrument(timer: StageTimer) -> list[str]:
    """Wrap what the demo path calls; returns the stages that could not be wrapped."""
    import dstl.metrics
    import dstl.polygonize
    import dstl.render
    from dstl.dataset import DstlDataset
    from dstl.demo.result import SegmentationResult
    from dstl.engine import Predictor

    missing = []
    for owner, attr, stage in [(DstlDataset, "read_scene", "read"), (dstl.render, "rgb_preview", "preview"),
                               (DstlDataset, "masks", "truth"), (DstlDataset, "labels", "truth"),
                               (Predictor, "predict", "engine"), (SegmentationResult, "create", "result"),
                               (dstl.polygonize, "masks_to_polygons", "polygons"),
                               (dstl.metrics, "kaggle_jaccard", "jaccard")]:
        if not timer.wrap(owner, attr, stage):
            missing.append(f"{getattr(owner, '__name__', owner)}.{attr}")
    import dstl.demo.service as service  # binds read_upload by name

    if not timer.wrap(service, "read_upload", "read"):
        missing.append("dstl.demo.service.read_upload")
    return missing


def page_pictures(service, name: str, rendered) -> list:
    """The page's three pictures written as the app writes them."""
    return [service.picture(rendered.overlay, f"{name}_overlay", photo=True),
            service.picture(rendered.panels, f"{name}_masks", photo=False),
            service.picture(rendered.compare, f"{name}_vs_truth", photo=True)]


def page_tables(result, view) -> tuple[str, str]:
    """The coverage legend and the metrics table (pixel scores only) as the page shows them first."""
    from dstl.demo import coverage_html, coverage_rows, metrics_html, metrics_rows

    coverage = coverage_html(coverage_rows(result, view))
    return coverage, metrics_html(metrics_rows(result, view, with_jaccard=False))


def worker(args) -> None:
    """One case in this process: a cold round, then `rounds` warm rounds; prints one JSON line."""
    import torch

    from dstl.dataset import DstlDataset
    from dstl.demo import (
        DemoService,
        ModelRegistry,
        View,
        bundled_sources,
        metrics_html,
        metrics_rows,
        render_view,
    )

    timer = StageTimer()
    missing = instrument(timer)
    dataset = DstlDataset(args.data) if args.data else None
    service = DemoService(ModelRegistry(bundled_sources()), dataset, cache_bytes=0,
                          predictor_args=predictor_args(args.precision[0]))
    t0 = time.perf_counter()
    warm_up = service.warm_up()
    warm_up_seconds = time.perf_counter() - t0
    rounds = []
    for _ in range(args.rounds + 1):
        timer.reset()
        t0 = time.perf_counter()
        if args.upload:
            seg = service.segment_upload([args.upload], None, allow_switch=True)
        else:
            seg = service.segment_image(args.image_id, None, allow_switch=True)
        result = seg.result
        # what the page does with a new result (app.py's `present`)
        view = View.default(result)
        rendered = timer.time("view", render_view, result, view)
        timer.time("pictures", page_pictures, service, result.image_id, rendered)
        timer.time("view", page_tables, result, view)
        t_picture = time.perf_counter()
        # then the scores that need polygons (app.py's `on_jaccard`)
        if result.has_truth:
            metrics_html(metrics_rows(result, view, with_jaccard=True))
        t_extras = time.perf_counter()
        api_png = time.perf_counter()
        service.api_overlay(result)
        api_png = time.perf_counter() - api_png
        picture = t_picture - t0
        to_picture = sum(timer.seconds.get(s, 0.0) for s in PICTURE_STAGES)
        extras = t_extras - t_picture
        rounds.append({
            "to_picture": picture, "extras": extras, "total": t_extras - t0, "api_png": api_png,
            "stages": dict(timer.seconds), "other_to_picture": picture - to_picture,
            "other_extras": extras - sum(timer.seconds.get(s, 0.0) for s in EXTRA_STAGES),
            "engine": timer.engine[-1] if timer.engine else {},
        })
        del seg, result, rendered
    profile = {}  # per served model
    for key, predictor in service._predictors.items():
        p = predictor.speed_profile(measure=False)
        if p is not None:
            profile[key] = {"tile_seconds": dict(p.tile_seconds), "int8_engine": p.int8_engine,
                            "probe_seconds": p.probe_seconds}
    print(json.dumps({"rounds": rounds, "peak_rss_mb": peak_rss_mb(), "missing": missing,
                      "warm_up": warm_up, "warm_up_seconds": warm_up_seconds,
                      "threads": torch.get_num_threads(), "speed_profile": profile,
                      "cpu_capability": torch.backends.cpu.get_cpu_capability()}))


# ---------------------------------------------------------------------------------------------
# Parent side


def make_cases(cases: list[dict], tmp: Path, seed: int) -> None:
    """Write one labelled synthetic dataset per dataset size, and PNGs for upload cases."""
    from dstl.dataset import DstlDataset
    from dstl.synthetic import generate_dataset

    for case in cases:
        h, w = case["size"]
        folder = tmp / f"data-{h}x{w}"
        if not (folder / "grid_sizes.csv").is_file():
            generate_dataset(folder, n_train=1, n_test=0, size=(h, w), seed=seed)
        ds = DstlDataset(folder)
        case["data"], case["image_id"] = str(folder), ds.train_ids[0]
        if case["kind"] == "upload":
            from PIL import Image

            from dstl import render
            from dstl.bands import RGB_BANDS

            png = tmp / f"upload-{h}x{w}.png"
            if not png.exists():
                Image.fromarray(render.rgb_preview(ds.read_scene(case["image_id"], RGB_BANDS))).save(png)
            case["upload"] = str(png)


def predictor_args(setting: str) -> dict:
    """"auto" -> {"precision": "auto"}; "auto/torch" -> {"precision": "auto", "backend": "torch"}."""
    precision, _, backend = setting.partition("/")
    return {"precision": precision, **({"backend": backend} if backend else {})}


def run_case(case: dict, args, env: dict, precision: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--rounds", str(args.rounds), "--precision", precision]
    if case["kind"] == "upload":
        cmd += ["--upload", case["upload"]]
    else:
        cmd += ["--data", case["data"], "--image-id", case["image_id"]]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise SystemExit(f"case {case['name']} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def summarise(raw: dict) -> dict:
    warm = raw["rounds"][1:] or raw["rounds"]
    med = statistics.median
    stages = sorted({s for r in warm for s in r["stages"]})
    out = {
        "cold": {k: raw["rounds"][0][k] for k in ("to_picture", "extras", "total")},
        "to_picture": med(r["to_picture"] for r in warm),
        "to_picture_all": [r["to_picture"] for r in warm],
        "extras": med(r["extras"] for r in warm),
        "total": med(r["total"] for r in warm),
        "api_png": med(r["api_png"] for r in warm),
        "stages": {s: med(r["stages"].get(s, 0.0) for r in warm) for s in stages},
        "other_to_picture": med(r["other_to_picture"] for r in warm),
        "other_extras": med(r["other_extras"] for r in warm),
        "engine": {k: med(r["engine"].get(k, 0.0) for r in warm) for k in ENGINE_PARTS},
        "precision": warm[-1]["engine"].get("precision"), "backend": warm[-1]["engine"].get("backend"),
        "tiles": warm[-1]["engine"].get("tiles"),
        "peak_rss_mb": raw["peak_rss_mb"], "speed_profile": raw["speed_profile"],
        "missing_timers": raw["missing"], "cpu_capability": raw["cpu_capability"],
        "warm_up_seconds": raw.get("warm_up_seconds"),
    }
    return out


def markdown(result: dict) -> str:
    lines = []
    for label, cases in result["runs"].items():
        names = list(cases)
        lines += [f"**{label}** ({isa_caps.describe(result['emulation'][label])})", "",
                  "| stage | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

        def row(title, get, fmt="{:.2f}", names=names, cases=cases, lines=lines):
            vals = ["-" if v is None else fmt.format(v) for v in (get(cases[n]) for n in names)]
            lines.append(f"| {title} | " + " | ".join(vals) + " |")

        def used(c) -> str:
            backend = " (ONNX Runtime)" if c.get("backend") == "onnxruntime" else ""
            return f"{c['precision']}{backend}, {c['tiles']}"

        row("precision used, tiles", used, "{}")
        for s in PICTURE_STAGES:
            row(s, lambda c, s=s: c["stages"].get(s))
            if s == "engine":
                for part in ENGINE_PARTS:
                    row(f"  engine: {part.replace('_seconds', '')}", lambda c, p=part: c["engine"].get(p))
        row("other (until the picture)", lambda c: c["other_to_picture"])
        row("**overlay on the page (median)**", lambda c: c["to_picture"], "**{:.2f}**")
        row("  all warm rounds", lambda c: ", ".join(f"{v:.2f}" for v in c["to_picture_all"]), "{}")
        for s in EXTRA_STAGES:
            row(s, lambda c, s=s: c["stages"].get(s))
        row("other (extras)", lambda c: c["other_extras"])
        row("**Kaggle Jaccard on the page (median)**", lambda c: c["total"], "**{:.2f}**")
        row("API full-resolution overlay PNG", lambda c: c["api_png"])
        row("start-up warm-up (models loaded, speed probes)", lambda c: c.get("warm_up_seconds"))
        row("cold first round (first-use costs)", lambda c: c["cold"]["total"])
        row("peak RSS (MB)", lambda c: c["peak_rss_mb"], "{:.0f}")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", type=parse_case,
                    default=[parse_case("512x512"), parse_case("3350x3400")],
                    help="HxW (a labelled 20-band dataset image) or upload:HxW (an RGB PNG upload)")
    ap.add_argument("--rounds", type=int, default=3, help="warm rounds per case (after one cold round)")
    ap.add_argument("--precision", nargs="+", default=["auto"], metavar="PRECISION[/BACKEND]",
                    help="the engine's precision, optionally with its backend, e.g. auto, fp32, "
                         "auto/torch, fp32/onnxruntime (default: auto, as the app); several: each, "
                         "interleaved")
    ap.add_argument("--emulate-avx2", action="store_true",
                    help="also run every case with the ISA caps of an AVX2-only CPU (interleaved)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "demo_path.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--image-id", help=argparse.SUPPRESS)
    ap.add_argument("--upload", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return {}

    envs = {"native": dict(os.environ)}
    if args.emulate_avx2:
        envs["emulated AVX2"] = {**os.environ, **isa_caps.AVX2_ENV}
    isa = {label: isa_caps.check(env) for label, env in envs.items()}
    if args.emulate_avx2 and isa["emulated AVX2"]["aten_capability"] != "AVX2":
        raise SystemExit(f"the AVX2 caps did not take effect: {isa['emulated AVX2']}")
    # one setting per (ISA caps, precision): "native" alone for the default single precision
    settings = {(label if len(args.precision) == 1 else f"{label}, {precision}"): (env, precision)
                for label, env in envs.items() for precision in args.precision}
    emulation = {name: isa[name.split(", ")[0]] for name in settings}
    started = time.perf_counter()
    load_start = os.getloadavg()
    raw: dict[str, dict] = {label: {} for label in settings}
    with tempfile.TemporaryDirectory(prefix="dstl-demo-path-") as tmp:
        make_cases(args.cases, Path(tmp), args.seed)
        for case in args.cases:  # interleaved: each case under every setting before the next case
            for label, (env, precision) in settings.items():
                print(f"{case['name']} ({label}) ...", file=sys.stderr, flush=True)
                raw[label][case["name"]] = run_case(case, args, env, precision)
    result = {
        "command": "python bench/profile_demo_path.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                    "load_average_start": load_start, "load_average_end": os.getloadavg()},
        "emulation": emulation,
        "runs": {label: {name: summarise(r) for name, r in cases.items()} for label, cases in raw.items()},
        "raw": raw,
        "wall_seconds": time.perf_counter() - started,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"load average: start {', '.join(f'{v:.1f}' for v in load_start)}; end "
          f"{', '.join(f'{v:.1f}' for v in result['machine']['load_average_end'])}")
    print(f"\nJSON: {args.json}")
    return result


if __name__ == "__main__":
    main()

"""`python -m dstl predict DATA IMAGE_ID [IMAGE_ID ...] --out DIR [--weights SRC] [--tta]`.

Segments images of a DSTL-layout dataset with one model and writes, per image, into DIR
(`dstl.exports`; every file atomic):

    <id>_masks.tif      uint8 (10, H, W) 0/1 masks, class k at band k-1, the image's 3-band size
    <id>_overlay.png    the RGB preview with every class in its colour, legend below
    <id>.csv            the image's ten Kaggle submission rows (grid coordinates)
    <id>.geojson        the polygons, in pixel and grid coordinates
    <id>_metrics.json   per-class IoU, Dice and Kaggle Jaccard vs the labels (labelled images only)

Everything the command can check is checked before any work: every id is looked up in the
dataset, the weights are loaded (once), and the header of every product file the model's bands
need is read for every image. A bad id, a missing file or a weights problem therefore ends the
command with a one-line error and nothing written. (A file whose pixel data turns out to be
corrupt is found only when that image is read; the images before it keep their complete outputs.)

The options shared with `submit` (--weights, --tta, --thresholds, --batch-size, --precision,
--backend, --device, --overlap) are defined here: `add_inference_arguments` and `make_predictor`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tqdm import tqdm

from dstl.classes import CLASSES, NUM_CLASSES
from dstl.errors import DstlError

THRESHOLDS_HELP = (
    "override the weights' per-class probability thresholds: one number for every class "
    "(0.4), ten comma-separated numbers (classes 1..10), or CLASS=VALUE pairs for some classes, "
    "by id or name (5=0.3,crops=0.6); each in [0, 1]")


def add_inference_arguments(p: argparse.ArgumentParser) -> None:
    """The model and engine options of `predict` and `submit`."""
    p.add_argument("--weights", metavar="SRC", default=None,
                   help="weights: a local folder in Hub layout (config.json, model.safetensors), a "
                        "bundled name (e.g. unet-rgb), or a Hub repo id owner/name[@revision]; "
                        "default: the bundled weights/unet-20band")
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: average the model over the 8 flips/rotations "
                        "(8 model passes per tile instead of 1)")
    p.add_argument("--thresholds", metavar="T", default=None, help=THRESHOLDS_HELP)
    p.add_argument("--batch-size", type=int, metavar="N", default=None,
                   help="base-size tiles per forward pass (default 4 on CPU, 16 on CUDA; larger tiles "
                        "come in proportionally smaller batches)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "int8"), default="auto",
                   help="arithmetic: auto picks bf16 on CUDA and, on a CPU, whichever of fp32, bf16 "
                        "and int8 it measures fastest here for the image's number of tiles (a one-off "
                        "probe of 1-4 s; see dstl/autotune.py; ONNX Runtime's fp32 too, see --backend) "
                        "(default auto)")
    p.add_argument("--backend", choices=("auto", "torch", "onnxruntime"), default="auto",
                   help="who runs the model: torch (PyTorch), onnxruntime (fp32 on the CPU through "
                        "ONNX Runtime, optional: pip install 'dstl-segmentation[onnx]'), or auto: "
                        "PyTorch for an explicit --precision, and with --precision auto also ONNX "
                        "Runtime where it is installed and measured faster (default auto)")
    p.add_argument("--device", default="auto", metavar="DEV",
                   help="auto (CUDA if available, else CPU; under torchrun the GPU of LOCAL_RANK), "
                        "cpu, cuda or cuda:N (default auto)")
    p.add_argument("--overlap", type=int, metavar="PX", default=None,
                   help="pixels shared by neighbouring tiles (default a quarter of the tile size); "
                        "more overlap is smoother and slower")


def parse_thresholds(text: str | None):
    """The --thresholds value as `dstl.engine.resolve_thresholds` takes it.

    None -> None; "0.4" -> 0.4; ten numbers -> a list; "5=0.3,crops=0.6" -> {5: 0.3, 6: 0.6}
    (classes by id or by name, unique prefixes allowed). Raises DstlError on anything else;
    ranges are checked by the engine.
    """
    if text is None:
        return None
    tokens = [t.strip() for t in str(text).split(",") if t.strip()]
    if not tokens:
        raise DstlError("--thresholds: no value given")

    def number(s: str) -> float:
        try:
            return float(s)
        except ValueError:
            raise DstlError(f"--thresholds: {s!r} is not a number") from None

    keyed = ["=" in t for t in tokens]
    if any(keyed):
        if not all(keyed):
            raise DstlError("--thresholds: give either numbers or CLASS=VALUE pairs, not both")
        from dstl.cli.figure import parse_classes

        out: dict[int, float] = {}
        for t in tokens:
            key, value = (s.strip() for s in t.split("=", 1))
            try:
                ids = parse_classes(key)
            except argparse.ArgumentTypeError as e:
                raise DstlError(f"--thresholds: {e}") from None
            if len(ids) != 1:
                raise DstlError(f"--thresholds: {t!r} must name one class")
            out[ids[0]] = number(value)
        return out
    if len(tokens) == 1:
        return number(tokens[0])
    if len(tokens) != NUM_CLASSES:
        raise DstlError(f"--thresholds: {len(tokens)} numbers given; give one, or one per class "
                        f"({NUM_CLASSES})")
    return [number(t) for t in tokens]


def make_predictor(loaded, args: argparse.Namespace, device):
    """A `dstl.engine.Predictor` for `loaded` with the options of `add_inference_arguments`."""
    from dstl.engine import Predictor

    if args.batch_size is not None and args.batch_size < 1:
        raise DstlError(f"--batch-size must be >= 1, got {args.batch_size}")
    return Predictor(loaded, thresholds=parse_thresholds(args.thresholds), overlap=args.overlap,
                     batch_size=args.batch_size, tta=args.tta, precision=args.precision, device=device,
                     backend=args.backend)


def describe_run(loaded, predictor) -> str:
    """One line: the model and how it runs."""
    tta = "TTA x8" if predictor.tta else "no TTA"
    backend = "" if predictor.backend == "auto" else f", backend {predictor.backend}"
    return (f"model: {loaded.describe()}; {predictor.device}, precision {predictor.precision}{backend}, "
            f"{tta}, tiles {predictor.tile_size}-{predictor.max_tile_size} px, "
            f"overlap {predictor.overlap} px")


def untrained_warning(loaded) -> str | None:
    if loaded.is_trained:
        return None
    return (f"warning: {loaded.source} holds UNTRAINED weights (no training record in its config.json): "
            "the predictions are meaningless")


def check_writable_folder(folder: Path, what: str) -> None:
    """DstlError unless files can be created in `folder` (or in the folder that would hold it).

    Nothing is created: a missing folder is checked through its nearest existing parent.
    """
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise DstlError(f"{what} {folder}: {probe} is a file, not a folder")
    if probe.is_dir() and not os.access(probe, os.W_OK | os.X_OK):
        raise DstlError(f"{what} {folder}: cannot write in {probe} (permission denied)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="segment images of a dataset: masks TIFF, overlay PNG, CSV rows, GeoJSON, metrics",
        description="Segment one or more images of a DSTL-layout dataset with a model and write, per "
                    "image, <id>_masks.tif (uint8 (10, H, W) 0/1), <id>_overlay.png, <id>.csv (the "
                    "ten Kaggle submission rows), <id>.geojson (polygons in pixel and grid "
                    "coordinates) and, for a labelled image, <id>_metrics.json (per-class IoU, "
                    "Dice and Kaggle Jaccard against train_wkt_v4.csv). Ids, weights and the "
                    "product files the model needs are all checked before any work starts.",
    )
    p.add_argument("data", metavar="DATA",
                   help="DSTL-layout folder (three_band/, sixteen_band/, grid_sizes.csv)")
    p.add_argument("image_ids", nargs="+", metavar="IMAGE_ID",
                   help="image ids of DATA to segment, e.g. 6120_2_2 (each listed in grid_sizes.csv)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (created if needed; existing files of the same names are replaced)")
    add_inference_arguments(p)
    p.set_defaults(func=run)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def summary_lines(result, written: dict[str, Path]) -> list[str]:
    """The short per-image report: size, timing, classes found, files, metrics table."""
    info = result.prediction.info
    lines = [f"{result.image_id}: {result.height} x {result.width} px, {info['tiles']} tile(s), "
             f"{result.seconds['infer']:.2f} s inference ({info['device']}, {info['precision']}"
             f"{' through ONNX Runtime' if info.get('backend') == 'onnxruntime' else ''}"
             f"{', TTA x8' if info['tta'] else ''}), {result.seconds['polygons']:.2f} s polygons"]
    cover = result.coverage()
    found = [f"{c.name} {100 * cover[c.id]:.1f}% ({len(result.polygons[c.id].geoms)})"
             for c in CLASSES if cover[c.id] > 0]
    lines.append("  found (area, polygons): " + (", ".join(found) if found else "nothing"))
    lines.append("  wrote: " + ", ".join(p.name for p in written.values()))
    m = result.metrics
    if m is not None:
        mean = m["mean"]
        lines.append(f"  vs labels: mean IoU {_fmt(mean['iou'])}, mean Dice {_fmt(mean['dice'])}, "
                     f"Kaggle Jaccard {_fmt(mean['kaggle_jaccard'])}")
        lines.append(f"    {'class':>5}  {'name':<26}{'IoU':>7}{'Dice':>7}{'Jaccard':>9}")
        for c in CLASSES:
            s = m["per_class"][str(c.id)]
            lines.append(f"    {c.id:>5}  {c.name:<26}{_fmt(s['iou']):>7}{_fmt(s['dice']):>7}"
                         f"{_fmt(s['kaggle_jaccard']):>9}")
    return lines


def tile_bar(image_id: str, enabled: bool = True):
    """A tqdm bar over an image's tiles and a `progress(done, total)` callback that drives it."""
    bar = tqdm(desc=image_id, unit="tile", file=sys.stderr, leave=False, disable=not enabled)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.update(done - bar.n)

    return bar, progress


def run(args: argparse.Namespace) -> int:
    from dstl.dataset import DstlDataset
    from dstl.exports import write_prediction_files
    from dstl.models import load_model
    from dstl.parallel import Group
    from dstl.pipeline import check_images, segment_image

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DstlError(f"--out {out}: is a file; give a folder")
    check_writable_folder(out, "--out")
    dataset = DstlDataset(args.data)
    ids = list(dict.fromkeys(dataset.check_id(i) for i in args.image_ids))
    parse_thresholds(args.thresholds)  # syntax errors before the (possibly slow) model load
    loaded = load_model(args.weights)
    predictor = make_predictor(loaded, args, Group().device(args.device))
    ids = check_images(dataset, ids, predictor.bands)

    warning = untrained_warning(loaded)
    if warning:
        print(warning, file=sys.stderr)
    print(describe_run(loaded, predictor))
    # Redrawn after every image (miniters=1, mininterval=0): an image is a step of seconds, and
    # tqdm's default 0.1 s throttle would skip the step after a small, fast image.
    images = tqdm(ids, desc="images", unit="image", file=sys.stderr, leave=False, disable=len(ids) < 2,
                  miniters=1, mininterval=0)
    for image_id in images:
        bar, progress = tile_bar(image_id)
        with bar:
            result = segment_image(dataset, image_id, predictor, progress=progress)
        try:
            written = write_prediction_files(out, image_id, result.masks, result.polygons, result.transform,
                                             preview=result.preview, metrics=result.metrics)
        except OSError as e:
            raise DstlError(f"cannot write the outputs of {image_id} to {out}: "
                            f"{e.strerror or e}") from None
        tqdm.write("\n".join(summary_lines(result, written)), file=sys.stdout)
    print(f"{len(ids)} image(s) written to {out}")
    return 0


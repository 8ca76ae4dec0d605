"""`python -m dstl figure DATA IMAGE_ID --out FIG.png`: a picture of one image of a DSTL folder.

With the image's 3-band product (``--background rgb``, the default when DATA has three_band/)
the figure has three panels — the RGB bands, the colour-infrared false colour (M7, M5, M3: NIR1,
red, green; vegetation shows red) and the RGB with the image's labels blended in their class
colours — and a legend with each class's share of the image. An image without labels (a test
image) gets the first two panels and a note.

Without 3-band pixels (a folder of labels only, such as the real labels and SWIR products in
../shared/real) the labels are drawn on the SWIR product as a false colour (``--background
swir``: A6, A3, A1 = 2205, 1660, 1210 nm, 7.5 m pixels resampled onto the 3-band grid; the
default when the A product is there) or on a plain grey ground (``--background plain``), beside
the background alone; the title says when the 3-band size is estimated. The file is written
atomically.
"""

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from dstl.bands import RGB_BANDS
from dstl.classes import CLASSES, class_by_id
from dstl.errors import DstlError

#: File types the figure can be saved as (matplotlib picks the format from the suffix).
FORMATS = (".png", ".jpg", ".jpeg", ".pdf", ".svg")

#: SWIR bands shown as R, G, B by ``--background swir`` (2205, 1660, 1210 nm): vegetation, bright
#: at 1210 nm and dark beyond 2000 nm, shows blue-green; bare soil and roofs red to white.
SWIR_FALSE_COLOUR = ("A6", "A3", "A1")

#: ``--background`` choices (auto: rgb with three_band/, else swir with the A product, else plain).
BACKGROUNDS = ("auto", "rgb", "swir", "plain")


def parse_classes(text: str) -> list[int]:
    """Class list from the command line: ids and/or names, comma- or space-separated.

    "1,3,10", "buildings,road" and "Vehicle Small" all work; names are matched ignoring case
    and may be shortened to a unique prefix ("veh" is ambiguous, "vehicle s" is not).
    """
    out: list[int] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if token.isdigit():
            try:
                out.append(class_by_id(int(token)).id)
            except ValueError:
                raise argparse.ArgumentTypeError(f"class id must be 1..{len(CLASSES)}, got {token}") from None
            continue
        key = token.lower()
        exact = [c.id for c in CLASSES if c.name.lower() == key]
        matches = exact or [c.id for c in CLASSES if c.name.lower().startswith(key)]
        if len(matches) != 1:
            names = ", ".join(f"{c.id} {c.name}" for c in CLASSES)
            what = "ambiguous" if matches else "unknown"
            raise argparse.ArgumentTypeError(f"{what} class {token!r} (classes: {names})")
        out.append(matches[0])
    return out


def _opacity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"opacity must be a number in 0..1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"opacity must be in 0..1, got {text}")
    return value


def _max_side(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be a whole number of pixels, got {text!r}") from None
    if not 64 <= value <= 8192:
        raise argparse.ArgumentTypeError(f"size must be 64..8192 pixels, got {value}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "figure",
        help="save an RGB + false-colour + label-overlay figure of one image",
        description="Save a figure of one image of a DSTL-layout folder: its RGB bands, a "
                    "colour-infrared false colour (M7/M5/M3 = NIR1/red/green) and the RGB with the "
                    "labels from train_wkt_v4.csv overlaid in their class colours, with a legend.",
    )
    p.add_argument("data", metavar="DATA", help="DSTL-layout folder (three_band/, sixteen_band/, "
                                                "grid_sizes.csv, train_wkt_v4.csv)")
    p.add_argument("image_id", metavar="IMAGE_ID", help="image id in DATA, e.g. 6120_2_2")
    p.add_argument("--out", required=True, metavar="FIG.png",
                   help=f"output file; format from the suffix ({', '.join(FORMATS)})")
    p.add_argument("--classes", type=parse_classes, nargs="+", metavar="CLASS",
                   help="classes to overlay: ids 1..10 or names, e.g. --classes 1 3 or "
                        "--classes buildings,road (default: all ten)")
    p.add_argument("--opacity", type=_opacity, default=0.5, metavar="A",
                   help="opacity of the label colours, 0 (invisible) .. 1 (opaque); default 0.5")
    p.add_argument("--outline", action="store_true",
                   help="draw a solid outline around each labelled region")
    p.add_argument("--background", choices=BACKGROUNDS, default="auto",
                   help="what the labels are drawn on: rgb (the 3-band image, with a false-colour "
                        "panel), swir (the A product in false colour A6/A3/A1), plain (grey); "
                        "default auto: rgb if DATA has three_band/, else swir if the A product "
                        "exists, else plain")
    p.add_argument("--size", type=_max_side, default=1200, metavar="PX",
                   help="longest side of each panel's picture in pixels (default 1200)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dstl.dataset import DstlDataset
    from dstl.render import FALSE_COLOUR_BANDS, save_figure, scene_figure

    out = Path(args.out)
    if out.suffix.lower() not in FORMATS:
        raise DstlError(f"--out {out}: unsupported file type {out.suffix or '(none)'!r}; "
                        f"use one of {', '.join(FORMATS)}")
    if out.is_dir():
        raise DstlError(f"--out {out}: is a folder; give a file name such as {out / 'figure.png'}")
    classes = None
    if args.classes is not None:
        classes = list(dict.fromkeys(k for group in args.classes for k in group))  # flatten, dedupe
        if not classes:
            raise DstlError("--classes: no class given (use ids 1..10 or class names)")

    dataset = DstlDataset(args.data)
    image_id = dataset.check_id(args.image_id)
    background = _background(dataset, image_id, args.background)
    if background != "rgb":
        return _labels_only(dataset, image_id, background, out, classes, args)
    with tqdm(total=3, desc="figure", unit="step", file=sys.stderr, leave=False) as bar:
        bar.set_postfix_str("reading scene")
        scene = dataset.read_scene(image_id, bands=RGB_BANDS + FALSE_COLOUR_BANDS)
        bar.update()
        masks = None
        if dataset.has_labels(image_id):
            bar.set_postfix_str("rasterising labels")
            masks = dataset.masks(image_id)
        else:
            tqdm.write(f"note: {image_id} has no labels in {_where(dataset)}; the label panel is empty",
                       file=sys.stderr)
        bar.update()
        bar.set_postfix_str("drawing")
        title = f"{image_id}  ({scene.height} x {scene.width} px)"
        fig = scene_figure(scene, masks, title=title, classes=classes, opacity=args.opacity,
                           outline=args.outline, max_side=args.size)
        save_figure(out, fig)
        bar.update()
    print(out)
    return 0


def _where(dataset) -> str:
    return str(dataset.label_path or dataset.root / "train_wkt_v4.csv")


def _background(dataset, image_id: str, choice: str) -> str:
    """The background to draw: `choice`, or for "auto" the best the folder has (see BACKGROUNDS)."""
    if choice == "auto":
        if dataset.has_three_band:
            return "rgb"
        return "swir" if dataset.product_path(image_id, "A").is_file() else "plain"
    if choice == "rgb" and not dataset.has_three_band:
        raise DstlError(f"--background rgb: {dataset.root} has no three_band/ (use swir or plain)")
    return choice


def _labels_only(dataset, image_id: str, background: str, out: Path, classes, args) -> int:
    """Labels on the SWIR false colour or a plain ground: background | labels, with a legend."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from dstl.render import class_coverage, format_coverage, overlay, save_figure, stretch

    if not dataset.has_labels(image_id):
        raise DstlError(f"image {image_id!r} has no labels in {_where(dataset)}; without 3-band "
                        "pixels there is nothing to draw")
    with tqdm(total=3, desc="figure", unit="step", file=sys.stderr, leave=False) as bar:
        bar.set_postfix_str("reading labels")
        masks = dataset.masks(image_id)
        h, w = masks.shape[1:]
        bar.update()
        if background == "swir":
            bar.set_postfix_str("reading the A product")
            scene = dataset.read_scene(image_id, bands=SWIR_FALSE_COLOUR)
            ground = stretch(list(scene.data), (2, 98))
            name = f"SWIR false colour ({', '.join(SWIR_FALSE_COLOUR)}; 7.5 m pixels)"
        else:
            ground = np.full((h, w, 3), 200, np.uint8)
            name = "plain background"
        bar.update()
        bar.set_postfix_str("drawing")
        shown = classes or [c.id for c in CLASSES]
        over = overlay(ground, masks, shown, args.opacity, args.outline, max_side=args.size)
        back = overlay(ground, masks, [], 0.0, False, max_side=args.size)
        ph, pw = over.shape[:2]
        fig = Figure(figsize=(12.0, 6.0 * ph / pw + 1.6), dpi=100, layout="constrained")
        for ax, img, label in zip(fig.subplots(1, 2), (back, over),
                                  (name, f"Labels from {dataset.label_source} (opacity {args.opacity:g})"),
                                  strict=True):
            ax.imshow(img, interpolation="antialiased")
            ax.set_title(label, fontsize=11)
            ax.set_xticks([])
            ax.set_yticks([])
        size = f"{h} x {w} px" + (", size estimated" if dataset.size_estimated(image_id) else "")
        fig.suptitle(f"{image_id}  ({size})", fontsize=14, fontweight="bold")
        cov = class_coverage(masks)
        handles = [Patch(facecolor=class_by_id(k).hex, edgecolor="0.3",
                         label=f"{k} {class_by_id(k).name} ({format_coverage(cov[k])})") for k in shown]
        leg = fig.legend(handles=handles, loc="outside lower center", ncol=min(5, len(handles)),
                         fontsize=10, frameon=False)
        for k, text in zip(shown, leg.get_texts(), strict=True):
            if cov[k] == 0:
                text.set_color("0.55")
        save_figure(out, fig)
        bar.update()
    for note in dataset.notes:
        print(f"note: {note}", file=sys.stderr)
    print(out)
    return 0

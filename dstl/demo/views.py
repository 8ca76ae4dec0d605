"""What the page shows for one `SegmentationResult` and one set of display settings.

**The current view** is defined once, here (`View`): the classes shown and the per-class
thresholds (a pixel belongs to class k when its probability is at least threshold k), plus the
overlay opacity, which only affects pictures. Everything the page derives from a result follows
it: the pictures, the coverage legend, the scores and their means, and every download (see
`dstl.demo.downloads`), which also carry `View.definition()` inside the file where the format
allows.

Pictures are rendered from the result's display-resolution arrays (at most `DISPLAY_MAX_SIDE` px
a side) and its histograms, never from the model, so a changed view renders in milliseconds; the
compare slider can also show the image, the overlay and the truth at full resolution
(`render_view(..., full=True)`), for zooming into a large scene. Tables are plain rows, and the
small HTML fragments (coverage legend, metrics table, pixel probe) are framework-free strings the
app puts in the page.
"""

import html
import io
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dstl import render
from dstl.classes import CLASSES, NUM_CLASSES, class_by_id
from dstl.demo.result import SegmentationResult

__all__ = ["View", "VIEW_DEFINITION", "RenderedView", "render_view", "heatmap", "coverage_rows",
           "metrics_rows", "coverage_html", "metrics_html", "probe_html", "status_markdown", "timing_text",
           "format_seconds", "picture_bytes", "save_picture", "METRICS_HEADERS", "METRICS_NOTE"]

METRICS_HEADERS = ["Class", "IoU", "Dice", "Kaggle Jaccard", "Predicted", "Truth"]

VIEW_DEFINITION = (
    "The current view is the set of classes shown and the per-class thresholds: a pixel belongs to "
    "class k when the model's probability for k is at least threshold k. Every file of a download holds "
    "the shown classes only, at these thresholds; a hidden class is empty everywhere (an all-zero plane "
    "of the masks TIFF, a MULTIPOLYGON EMPTY row of the CSV, no GeoJSON feature, not drawn in the PNG, "
    "no row in metrics.json). Means of scores are over the shown classes whose every score is defined "
    "(present in the prediction or the truth, as pixels and as polygons): the same classes for IoU, "
    "Dice and Kaggle Jaccard.")


@dataclass(frozen=True)
class View:
    """Display settings: shown class ids, overlay opacity (0..1), per-class thresholds (0..1)."""

    classes: tuple[int, ...]
    opacity: float
    thresholds: tuple[float, ...]

    def __post_init__(self):
        classes = tuple(sorted({int(c) for c in self.classes}))
        for c in classes:
            class_by_id(c)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "opacity", float(min(1.0, max(0.0, self.opacity))))
        thresholds = tuple(float(min(1.0, max(0.0, t))) for t in self.thresholds)
        if len(thresholds) != NUM_CLASSES:
            raise ValueError(f"expected {NUM_CLASSES} thresholds, got {len(thresholds)}")
        object.__setattr__(self, "thresholds", thresholds)

    @classmethod
    def default(cls, result: SegmentationResult, opacity: float = 0.5) -> "View":
        return cls(tuple(c.id for c in CLASSES), opacity, result.thresholds)

    def definition(self) -> dict:
        """The view as written into downloads: shown classes, thresholds, opacity, and what it means."""
        return {
            "classes_shown": list(self.classes),
            "class_names_shown": [class_by_id(k).name for k in self.classes],
            "thresholds": {c.name: round(self.thresholds[c.index], 4) for c in CLASSES},
            "opacity": round(self.opacity, 4),
            "definition": VIEW_DEFINITION,
        }


@dataclass
class RenderedView:
    """Pictures (uint8 (h, w, 3)) of one view.

    `image` (the RGB preview), `overlay` and `truth_overlay` (the ground truth drawn like the
    prediction; None without truth) share one size, for the compare slider; `panels` and `compare`
    are None when there is nothing to show.
    """

    image: np.ndarray
    overlay: np.ndarray
    truth_overlay: np.ndarray | None
    panels: np.ndarray | None
    compare: np.ndarray | None


def render_view(result: SegmentationResult, view: View, *, full: bool = False,
                compare_side: int = 640) -> RenderedView:
    """Overlay on the preview, the truth drawn the same way, per-class mask panels and (with truth)
    prediction vs truth. `full` renders image, overlay and truth overlay at full resolution."""
    masks = result.display_masks(view.thresholds)
    if full:
        image, packed, truth = result.preview, result.packed_masks(view.thresholds), result.truth_packed
    else:
        image, packed, truth = result.display_preview, masks, result.display_truth
    overlay = render.OverlayRenderer(image, packed).render(view.classes, view.opacity)
    truth_overlay = None
    if truth is not None:
        truth_overlay = render.OverlayRenderer(image, truth).render(view.classes, view.opacity)
    panels = render.mask_panels(masks, view.classes, columns=5, panel_side=320) if view.classes else None
    compare = None
    if result.display_truth is not None and view.classes:
        compare = render.compare(masks, result.display_truth, result.display_preview, view.classes,
                                 opacity=max(view.opacity, 0.35), panel_side=compare_side)
    return RenderedView(image, overlay, truth_overlay, panels, compare)


# ------------------------------------------------------------------------------ heatmap


@lru_cache(maxsize=1)
def _heat_lut() -> np.ndarray:
    """uint8 (256, 3): matplotlib's perceptually uniform "magma" colour map (dark = 0, light = 1)."""
    from matplotlib import colormaps

    return np.rint(colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def _heat_legend(width: int, class_id: int, threshold: float, font_size: int = 14) -> np.ndarray:
    font = render._font(font_size)
    pad = 6
    h = font_size * 2 + 3 * pad
    img = Image.new("RGB", (width, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    name = class_by_id(class_id).name
    left_text, right_text = "0", "1"
    x0 = pad + render._text_width(font, left_text) + pad
    x1 = width - pad - render._text_width(font, right_text) - pad
    bar_y = pad
    if x1 - x0 >= 16:
        lut = _heat_lut()
        cols = np.linspace(0, 255, x1 - x0).astype(int)
        bar = np.repeat(lut[cols][None], font_size, axis=0)
        img.paste(Image.fromarray(bar), (x0, bar_y))
        tx = x0 + int(round(threshold * (x1 - x0 - 1)))
        draw.rectangle([tx - 1, bar_y - 2, tx + 1, bar_y + font_size + 1], fill=(0, 200, 255))
    draw.text((pad, bar_y + font_size // 2), left_text, font=font, fill=(20, 20, 20), anchor="lm")
    draw.text((width - pad, bar_y + font_size // 2), right_text, font=font, fill=(20, 20, 20), anchor="rm")
    caption = f"Probability of {class_id} {name}; cyan: threshold {threshold:.2f} (mask outline)"
    draw.text((width // 2, bar_y + font_size + pad + font_size // 2), caption, font=font, fill=(20, 20, 20),
              anchor="mm")
    return np.asarray(img)


def heatmap(result: SegmentationResult, class_id: int, thresholds: Sequence[float], *,
            marker: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """The probability of one class as a colour map over a grey copy of the image, at display size.

    The mask at the class's threshold is outlined in cyan; `marker` (full-resolution x, y) is
    ringed. A colour bar with the threshold follows below. Returns (picture, height of the map
    part): clicks below that height are on the legend.
    """
    k = class_by_id(class_id).index
    p = result.display_probs[k]
    grey = result.display_preview.mean(axis=2, dtype=np.float32)[..., None]
    heat = _heat_lut()[p].astype(np.float32)
    out = np.rint(grey * 0.25 + heat * 0.75).astype(np.uint8)
    level = int(round(thresholds[k] * 255))
    edge = render._edges((p >= level).astype(np.uint8))
    out[edge] = (0, 200, 255)
    if marker is not None:
        scale = result.display_scale
        mx, my = (marker[0] + 0.5) * scale, (marker[1] + 0.5) * scale
        r = max(6.0, 3 * scale)
        pic = Image.fromarray(out)
        draw = ImageDraw.Draw(pic)
        for radius, colour in ((r + 2, (0, 0, 0)), (r, (255, 255, 255))):
            draw.ellipse([mx - radius, my - radius, mx + radius, my + radius], outline=colour, width=2)
        out = np.asarray(pic)
    legend = _heat_legend(out.shape[1], class_id, thresholds[k],
                          font_size=int(np.clip(out.shape[1] / 45, 12, 22)))
    return render._stack_vertical([out, legend]), out.shape[0]


def probe_html(probe: dict | None, thresholds: Sequence[float] | None = None) -> str:
    """The probabilities at one pixel (`SegmentationResult.probe`) as bars, highest first; a tick on
    each bar marks the class's threshold, ✓ a class predicted there, "truth" a class of the truth."""
    if probe is None:
        return ('<p class="dstl-note">Click the map to see every class\'s probability at that pixel.</p>')
    truth = probe["truth"]
    rows = []
    for c in sorted(CLASSES, key=lambda c: -probe["probability"][c.id]):
        p = probe["probability"][c.id]
        mark = " ✓" if c.id in probe["predicted"] else ""
        t = f'<span class="dstl-probe-thr" style="left:{100 * thresholds[c.index]:.0f}%"></span>' \
            if thresholds is not None else ""
        tag = ' <span class="dstl-probe-truth">truth</span>' if truth and c.id in truth else ""
        rows.append(
            f'<div class="dstl-probe-row"><span class="dstl-swatch" style="background:{c.hex}"></span>'
            f'<span class="dstl-cov-name">{c.id}. {html.escape(c.name)}{tag}</span>'
            f'<span class="dstl-cov-bar dstl-probe-bar">'
            f'<span style="width:{100 * p:.1f}%;background:{c.hex}"></span>{t}</span>'
            f'<span class="dstl-cov-pct">{p:.2f}{mark}</span></div>')
    predicted = ", ".join(class_by_id(k).name for k in probe["predicted"]) or "no class"
    head = (f'<p><b>Pixel x = {probe["x"]}, y = {probe["y"]}</b> (full-resolution column, row): '
            f'predicted {html.escape(predicted)}')
    if truth is not None:
        head += "; truth " + html.escape(", ".join(class_by_id(k).name for k in truth) or "no class")
    return f'<div class="dstl-probe">{head}.</p>{"".join(rows)}</div>'


# ------------------------------------------------------------------------------ encoding


def picture_bytes(image: np.ndarray, photo: bool) -> tuple[bytes, str]:
    """Encode a picture for the page: (bytes, suffix).

    Pictures over imagery (`photo`) are JPEG at quality 90 without chroma subsampling (so thin
    coloured edges stay crisp): ~50x faster to encode than PNG and a few times smaller to send,
    which is what keeps a re-render of a full scene well under a second. Binary mask panels are
    PNG with fast compression (they are mostly flat, so small anyway). Downloads are exact PNGs.
    """
    if not photo:
        return render.png_bytes(image, compress_level=1), ".png"
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="JPEG", quality=90, subsampling=0)
    return buf.getvalue(), ".jpg"


def save_picture(image: np.ndarray, folder: Path, name: str, photo: bool) -> Path:
    """Write `picture_bytes(image, photo)` to ``folder/name.<suffix>`` and return the path."""
    data, suffix = picture_bytes(image, photo)
    path = Path(folder) / f"{name}{suffix}"
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------ tables


def coverage_rows(result: SegmentationResult, view: View) -> list[dict]:
    """Per class: id, name, colour, shown, threshold, coverage (0..1) and pixel count, full resolution."""
    cov = result.coverage(view.thresholds)
    n = result.height * result.width
    return [{"class_id": c.id, "name": c.name, "colour": c.hex, "shown": c.id in view.classes,
             "threshold": view.thresholds[c.index], "coverage": float(cov[c.index]),
             "pixels": int(round(cov[c.index] * n))} for c in CLASSES]


def coverage_html(rows: Iterable[dict]) -> str:
    """A compact legend: colour swatch, class name, coverage bar and percentage per class."""
    rows = list(rows)
    top = max((r["coverage"] for r in rows), default=0.0) or 1.0
    items = []
    for r in rows:
        width = 100 * r["coverage"] / top
        cls = "dstl-cov-row" + ("" if r["shown"] else " dstl-cov-hidden")
        items.append(
            f'<div class="{cls}"><span class="dstl-swatch" style="background:{r["colour"]}"></span>'
            f'<span class="dstl-cov-name">{r["class_id"]}. {html.escape(r["name"])}</span>'
            f'<span class="dstl-cov-bar"><span style="width:{width:.1f}%;background:{r["colour"]}">'
            f'</span></span><span class="dstl-cov-pct">{render.format_coverage(r["coverage"])}</span></div>')
    return '<div class="dstl-coverage">' + "".join(items) + "</div>"


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def metrics_rows(result: SegmentationResult, view: View, *, with_jaccard: bool = True) -> list[list] | None:
    """Rows for METRICS_HEADERS, one per shown class, then "Mean"; None without ground truth.

    "Predicted" / "Truth" are the class's pixel coverage in prediction and ground truth. With
    `with_jaccard` False the Kaggle Jaccard column shows the cached value, or "…" when it has not
    been computed for these thresholds (it needs polygons: the app computes it after the pictures).
    The mean row's first cell names how many classes the means are over (`VIEW_DEFINITION`).
    """
    metrics = result.metrics(view.thresholds, classes=view.classes, with_jaccard=with_jaccard)
    if metrics is None:
        return None
    with_jaccard = metrics["jaccard_computed"]
    n = result.height * result.width
    pred_cov = result.coverage(view.thresholds)
    true_cov = result.hist_true.sum(axis=1) / n
    rows = []
    for c in CLASSES:
        if c.name not in metrics["per_class"]:
            continue
        m = metrics["per_class"][c.name]
        rows.append([f"{c.id}. {c.name}", _fmt(m["iou"]), _fmt(m["dice"]),
                     _fmt(m["jaccard"]) if with_jaccard else "…",
                     render.format_coverage(pred_cov[c.index]), render.format_coverage(true_cov[c.index])])
    mean = metrics["mean"]
    over = len(metrics["mean_over"])
    rows.append([f"Mean of {over} class{'es' if over != 1 else ''}", _fmt(mean["iou"]), _fmt(mean["dice"]),
                 _fmt(mean["jaccard"]) if with_jaccard else "…", "", ""])
    return rows


def metrics_html(rows: Sequence[Sequence[str]] | None) -> str:
    """The metrics rows as an HTML table (or a note when the image has no ground truth)."""
    if rows is None:
        return ('<p class="dstl-note">No ground truth for this image, so there are no scores. '
                "Pick an image id marked <b>✓ labelled</b> to compare with the truth.</p>")
    if len(rows) == 1:
        return '<p class="dstl-note">No class is shown, so there is nothing to score.</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in METRICS_HEADERS)
    body = []
    for i, row in enumerate(rows):
        is_mean = i == len(rows) - 1
        swatch = ""
        if not is_mean:
            colour = class_by_id(int(str(row[0]).split(".")[0])).hex
            swatch = f'<span class="dstl-swatch" style="background:{colour}"></span>'
        cells = [f"<td>{swatch}{html.escape(str(row[0]))}</td>"]
        cells += [f"<td>{html.escape(str(v))}</td>" for v in row[1:]]
        cls = ' class="dstl-mean"' if is_mean else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f'<table class="dstl-metrics"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


METRICS_NOTE = ("IoU and Dice are computed on the pixel masks at full resolution; the Kaggle Jaccard is the "
                "competition metric on the polygons made from the masks (grid coordinates). Rows are the "
                "classes shown; the means are over the shown classes whose every score is defined (present "
                "in prediction or truth, as pixels and as polygons), the same classes for all three. "
                "\"—\" means the class is absent from both prediction and truth.")


# ------------------------------------------------------------------------------ status


def format_seconds(s: float) -> str:
    """Seconds as "1.9 s" from a second up, "250 ms" below, "<1 ms" under a millisecond."""
    if s < 0.0005:
        return "<1 ms"
    return f"{s:.1f} s" if s >= 1 else f"{s * 1000:.0f} ms"


def _ago(seconds: float) -> str:
    if seconds < 2:
        return "just now"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def timing_text(result: SegmentationResult, *, reused: bool, request_seconds: float,
                created: float | None = None) -> str:
    """How long this request took, and for a reused result when and how fast it was computed."""
    if not reused:
        return (f"segmented in {format_seconds(request_seconds)} "
                f"(model {format_seconds(result.model_seconds)})")
    when = f", {_ago(time.time() - created)}" if created is not None else ""
    return (f"{format_seconds(request_seconds)}: a kept result was reused (it was segmented in "
            f"{format_seconds(result.seconds)}{when})")


def status_markdown(result: SegmentationResult, note: str | None = None, timing: str | None = None) -> str:
    """The line under the controls after segmenting: what ran on what, how long, and any note."""
    truth = "ground truth ✓" if result.has_truth else "no ground truth"
    where = "dataset image" if result.origin == "dataset" else "upload"
    timing = timing if timing is not None else f"segmented in {format_seconds(result.seconds)}"
    text = (f"**{html.escape(result.image_id)}** ({where}, {result.width} × {result.height} px, {truth}) — "
            f"{html.escape(result.model_summary)} · {timing}")
    if "SYNTHETIC" in result.model_summary:
        text += "  \n⚠️ These weights were trained on synthetic scenes: do not trust them on real imagery."
    if result.radiometry:
        text += f"  \nℹ️ {html.escape(result.radiometry)}"
    if note:
        text += f"  \nℹ️ {note}"
    return text

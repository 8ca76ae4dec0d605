"""What the page shows for one `SegmentationResult` and one set of display settings.

A view is the shown classes, the overlay opacity and the per-class thresholds. Everything here
works on the result's display-resolution arrays (at most `DISPLAY_MAX_SIDE` px a side) and its
histograms, never on the model, so a changed view renders in milliseconds. Pictures come from
`dstl.render`; tables are plain rows, and the small HTML fragments (coverage legend, metrics
table) are framework-free strings the app puts in the page.
"""

import html
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dstl import render
from dstl.classes import CLASSES, NUM_CLASSES, class_by_id
from dstl.demo.result import SegmentationResult

__all__ = ["View", "RenderedView", "render_view", "coverage_rows", "metrics_rows", "coverage_html",
           "metrics_html", "status_markdown", "picture_bytes", "save_picture", "METRICS_HEADERS",
           "METRICS_NOTE"]

METRICS_HEADERS = ["Class", "IoU", "Dice", "Kaggle Jaccard", "Predicted", "Truth"]


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


@dataclass
class RenderedView:
    """Pictures (uint8 (h, w, 3)) of one view; `panels`/`compare` are None when there is nothing to show."""

    overlay: np.ndarray
    panels: np.ndarray | None
    compare: np.ndarray | None


def render_view(result: SegmentationResult, view: View, *, compare_side: int = 640) -> RenderedView:
    """Overlay on the preview, per-class mask panels and (with truth) prediction vs truth."""
    masks = result.display_masks(view.thresholds)
    overlay = render.OverlayRenderer(result.display_preview, masks).render(view.classes, view.opacity)
    panels = render.mask_panels(masks, view.classes, columns=5, panel_side=320) if view.classes else None
    compare = None
    if result.display_truth is not None and view.classes:
        compare = render.compare(masks, result.display_truth, result.display_preview, view.classes,
                                 opacity=max(view.opacity, 0.35), panel_side=compare_side)
    return RenderedView(overlay, panels, compare)


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
    """Rows for METRICS_HEADERS (one per class, then "Mean"), or None without ground truth.

    "Predicted" / "Truth" are the class's pixel coverage in prediction and ground truth. With
    `with_jaccard` False the Kaggle Jaccard column shows the cached value, or "…" when it has not
    been computed for these thresholds (it needs polygons: the app computes it after the pictures).
    """
    metrics = result.metrics(view.thresholds, with_jaccard=with_jaccard)
    if metrics is None:
        return None
    with_jaccard = metrics["jaccard_computed"]
    n = result.height * result.width
    pred_cov = result.coverage(view.thresholds)
    true_cov = result.hist_true.sum(axis=1) / n
    rows = []
    for c in CLASSES:
        m = metrics["per_class"][c.name]
        rows.append([f"{c.id}. {c.name}", _fmt(m["iou"]), _fmt(m["dice"]),
                     _fmt(m["jaccard"]) if with_jaccard else "…",
                     render.format_coverage(pred_cov[c.index]), render.format_coverage(true_cov[c.index])])
    mean = metrics["mean"]
    rows.append(["Mean", _fmt(mean["iou"]), _fmt(mean["dice"]),
                 _fmt(mean["jaccard"]) if with_jaccard else "…", "", ""])
    return rows


def metrics_html(rows: Sequence[Sequence[str]] | None) -> str:
    """The metrics rows as an HTML table (or a note when the image has no ground truth)."""
    if rows is None:
        return ('<p class="dstl-note">No ground truth for this image, so there are no scores. '
                "Pick an image id marked <b>✓ labelled</b> to compare with the truth.</p>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in METRICS_HEADERS)
    body = []
    for i, row in enumerate(rows):
        colour = CLASSES[i].hex if i < NUM_CLASSES else None
        swatch = f'<span class="dstl-swatch" style="background:{colour}"></span>' if colour else ""
        cells = [f"<td>{swatch}{html.escape(str(row[0]))}</td>"]
        cells += [f"<td>{html.escape(str(v))}</td>" for v in row[1:]]
        cls = ' class="dstl-mean"' if i == NUM_CLASSES else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f'<table class="dstl-metrics"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


METRICS_NOTE = ("IoU and Dice are computed on the pixel masks at full resolution; the Kaggle Jaccard is the "
                "competition metric on the polygons made from the masks (grid coordinates). Scores are for "
                "this one image and all ten classes, whichever classes are shown; \"—\" means the class is "
                "absent from both prediction and truth.")


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s >= 1 else f"{s * 1000:.0f} ms"


def status_markdown(result: SegmentationResult, note: str | None = None) -> str:
    """The line under the controls after segmenting: what ran on what, how long, and any note."""
    truth = "ground truth ✓" if result.has_truth else "no ground truth"
    where = "dataset image" if result.origin == "dataset" else "upload"
    text = (f"**{html.escape(result.image_id)}** ({where}, {result.width} × {result.height} px, {truth}) — "
            f"{html.escape(result.model_summary)} · {_seconds(result.seconds)}")
    if "SYNTHETIC" in result.model_summary:
        text += "  \n⚠️ These weights were trained on synthetic scenes: do not trust them on real imagery."
    if note:
        text += f"  \nℹ️ {note}"
    return text

"""What each output of the page shows, keyed by output name, for a result seen through a view.

The page has one rule for its state: it shows the result named by the session's token, drawn
through the current view, and — when the last action failed — an error message beside it. Every
event handler therefore builds its answer here, as a dict {output name: value}, and `app.py` only
maps names to components. A value of type `Props` sets component properties (choices, label,
visibility) rather than the value alone.

Output names: token, other (the token of a second model's result on the same image, for the
side-by-side comparison), view_key, status, error, link_note, full_res, mode, thresholds (a tuple
of the ten values), slider (a pair of picture files), slider_caption, coverage, heat, probe,
panels, compare, metrics, downloads, downloads_note.
"""

import html
import json

from dstl.classes import CLASSES
from dstl.demo.result import SegmentationResult
from dstl.demo.views import (
    View,
    coverage_html,
    coverage_rows,
    heatmap,
    metrics_html,
    metrics_rows,
    probe_html,
    render_view,
)

__all__ = ["IMAGE_VS_PREDICTION", "PREDICTION_VS_TRUTH", "MODEL_VS_MODEL", "COMPARE_MODES", "Presenter",
           "Props", "VIEW_OUTPUTS", "error_html"]

IMAGE_VS_PREDICTION = "Image ↔ prediction"
PREDICTION_VS_TRUTH = "Prediction ↔ ground truth"
MODEL_VS_MODEL = "Model ↔ model"
#: The compare slider's modes. All are always offered; one a result cannot show (no ground truth,
#: no second model yet) shows the image and the prediction, and the caption says why.
COMPARE_MODES = (IMAGE_VS_PREDICTION, PREDICTION_VS_TRUTH, MODEL_VS_MODEL)

#: Outputs that depend on the view (redrawn when classes, opacity or thresholds change).
VIEW_OUTPUTS = ("slider", "slider_caption", "coverage", "heat", "probe", "panels", "compare", "metrics",
                "downloads", "downloads_note")


class Props(dict):
    """Component properties to set (e.g. {"choices": [...], "value": ...}), not just a value."""


def error_html(what: str, message_html: str, still: SegmentationResult | None = None) -> str:
    """The error banner: what failed and why; and which result the page still shows, if any."""
    text = f'<div class="dstl-error"><b>{html.escape(what)}</b>: {message_html}.'
    if still is not None:
        text += (f" The page still shows the previous result, <b>{html.escape(still.image_id)}</b> "
                 f"({html.escape(still.model_key)}).")
    return text + "</div>"


class Presenter:
    """Builds the page's outputs for a `DemoService`'s results (pictures are written by the service)."""

    def __init__(self, service):
        self.service = service

    def _picture(self, image, name: str, photo: bool = True) -> str | None:
        return self.service.picture(image, name, photo=photo)

    def view(self, token: str, result: SegmentationResult, view: View, *, full: bool, mode: str,
             heat_class: int, jaccard: bool = False, other: SegmentationResult | None = None) -> dict:
        """The outputs that depend on the view (`VIEW_OUTPUTS`); `other` is a second model's result
        on the same image, shown against this one in `MODEL_VS_MODEL` mode."""
        full = bool(full) and result.display_scale < 1
        rendered = render_view(result, view, full=full)
        name = result.image_id
        overlay = self._picture(rendered.overlay, f"{name}_overlay")
        if mode == PREDICTION_VS_TRUTH and rendered.truth_overlay is not None:
            pair = (overlay, self._picture(rendered.truth_overlay, f"{name}_truth"))
            caption = f"◀ prediction of **{result.model_key}** · ground truth ▶"
        elif mode == MODEL_VS_MODEL and other is not None:
            # The other model's view: same classes and opacity, at its own model's thresholds.
            theirs = render_view(other, View(view.classes, view.opacity, other.thresholds), full=full)
            pair = (overlay, self._picture(theirs.overlay, f"{name}_{other.model_key}_overlay"))
            caption = (f"◀ **{result.model_key}** (the thresholds above) · **{other.model_key}** (its "
                       "model's thresholds) ▶")
        else:
            pair = (self.service.image_picture(token, result, rendered.image, full), overlay)
            caption = f"◀ the image · prediction of **{result.model_key}** ▶"
            if mode == PREDICTION_VS_TRUTH:
                caption = f"No ground truth for this image, so: {caption}"
            elif mode == MODEL_VS_MODEL:
                caption = f"Pick a second model under *Compare two models on this image* (below). {caption}"
        size = f"{result.width} × {result.height} px"
        if not full and result.display_scale < 1:
            size = f"shown at {rendered.image.shape[1]} × {rendered.image.shape[0]} px of {size}"
        heat, _ = heatmap(result, int(heat_class), view.thresholds)
        return {
            "slider": pair,
            "slider_caption": f"{caption} · {size} · scroll or pinch to zoom, drag to pan",
            "coverage": coverage_html(coverage_rows(result, view)),
            "heat": self._picture(heat, f"{name}_probability"),
            "probe": probe_html(None),
            "panels": self._picture(rendered.panels, f"{name}_masks", photo=False),
            "compare": self._picture(rendered.compare, f"{name}_vs_truth"),
            "metrics": metrics_html(metrics_rows(result, view, with_jaccard=jaccard)),
            "downloads": None,
            "downloads_note": "",
        }

    def result(self, token: str, result: SegmentationResult, view: View, *, full: bool, mode: str,
               heat_class: int, status: str, jaccard: bool = False) -> dict:
        """Every output for a newly shown result: `view` keeps the visitor's classes and opacity, and
        its thresholds should be the result's (the sliders are set to them). A comparison with
        another model is dropped (it was of the previous image), and so is "prediction vs truth"
        for an image without truth."""
        reduced = result.display_scale < 1
        if mode != PREDICTION_VS_TRUTH or not result.has_truth:
            mode = IMAGE_VS_PREDICTION
        link = json.dumps({"token": token, "origin": result.origin, "image_id": result.image_id,
                           "model": result.model_key})
        link_note = ""
        if result.origin == "upload":
            link_note = ("A link to an upload opens it while this server keeps its result (at most "
                         f"{self.service.store.max_bytes / 2**20:.0f} MB of results, not across restarts); "
                         "links to dataset images always work.")
        return {
            "token": token, "other": None, "view_key": link, "status": status, "error": "",
            "link_note": link_note,
            "full_res": Props(visible=reduced, value=bool(full) and reduced,
                              label=f"Full resolution ({result.width} × {result.height} px)"),
            "mode": mode,
            "thresholds": tuple(view.thresholds),
            **self.view(token, result, view, full=full, mode=mode, heat_class=heat_class, jaccard=jaccard),
        }

    def compared(self, token: str, result: SegmentationResult, other_token: str, other: SegmentationResult,
                 view: View, *, full: bool, heat_class: int) -> dict:
        """The outputs once a second model's result `other` on the same image is at hand."""
        link = json.dumps({"token": token, "origin": result.origin, "image_id": result.image_id,
                           "model": result.model_key, "other_token": other_token,
                           "other_model": other.model_key})
        return {"other": other_token, "error": "", "view_key": link,
                "mode": MODEL_VS_MODEL,
                **self.view(token, result, view, full=full, mode=MODEL_VS_MODEL, heat_class=heat_class,
                            other=other)}

    def probe(self, result: SegmentationResult, heat_class: int, thresholds, x: int, y: int) -> dict | None:
        """The heat map ringed at display pixel (x, y) and the probabilities there; None off the map."""
        if not (0 <= y < result.display_probs.shape[1] and 0 <= x < result.display_probs.shape[2]):
            return None
        info = result.probe(int(x / result.display_scale), int(y / result.display_scale), thresholds)
        heat, _ = heatmap(result, int(heat_class), thresholds, marker=(info["x"], info["y"]))
        return {"heat": self._picture(heat, f"{result.image_id}_probability"),
                "probe": probe_html(info, thresholds)}

    def downloads(self, result: SegmentationResult, view: View) -> dict:
        """The download files of `view` and a line naming what they hold."""
        paths = self.service.export(result, view)
        names = ", ".join(f"{c.id} {c.name}" for c in CLASSES if c.id in view.classes) or "none"
        return {"downloads": [str(p) for p in paths], "error": "",
                "downloads_note": f"Files of **{html.escape(result.image_id)}**, classes shown: {names}."}

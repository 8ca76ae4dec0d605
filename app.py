"""The DSTL segmentation demo: a Gradio app (layout and event wiring only; the work is in `dstl.demo`).

    python app.py [--data DATA] [--weights SRC ...] [--port N] [--share]

With no flags it serves the bundled weights on a small synthetic DSTL dataset, generated on the
first run. `python app.py --help` lists every flag and the environment variables (Hugging Face
Space variables) that set their defaults, e.g. DSTL_WEIGHTS=owner/name@rev and DSTL_DATA.

Public API (gradio_client), one endpoint::

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    overlay_png, summary = client.predict(model="", image_id="6120_2_2", files=[], api_name="/segment")
    overlay_png, summary = client.predict(model="", image_id="", files=[handle_file("scene.png")],
                                          api_name="/segment")

`model` is a model key from the menu ("" picks the best model for the image's bands); give
either `image_id` (a dataset id) or `files` (one RGB image, or the four DSTL TIFFs of one image).
`summary` holds the image size, model, per-class coverage and, for labelled images, per-class
IoU, Dice and Kaggle Jaccard. Every other event of the page is private.
"""

import html
import json
import logging
import sys
import traceback
from functools import wraps

import gradio as gr

from dstl.classes import CLASSES
from dstl.demo import (
    METRICS_NOTE,
    DemoService,
    View,
    card_markdown,
    coverage_html,
    coverage_rows,
    metrics_html,
    metrics_rows,
    parse_args,
    render_view,
    status_markdown,
)
from dstl.demo.page import ABOUT_MARKDOWN, HEADER_HTML, TITLE, page_css, upload_note
from dstl.demo.settings import DemoSettings, build_service
from dstl.demo.uploads import IMAGE_SUFFIXES
from dstl.errors import DstlError
from dstl.progress import print_error

log = logging.getLogger("dstl.app")

# Gradio recognises a gr.Progress default and passes each call its own tracker, so one shared
# default object is safe.
PROGRESS = gr.Progress()


def _user_errors(fn):
    """Run an event handler; show input errors (and unexpected ones, briefly) as gr.Error in the page."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except DstlError as e:
            # gr.Error renders (sanitised) HTML: escape <, > and & so that file names the visitor
            # chose show as typed; quotes need no escaping in text and stay readable for API clients.
            raise gr.Error(html.escape(str(e), quote=False), title="Cannot do that",
                           print_exception=False) from None
        except Exception as e:
            log.error("unexpected error in %s:\n%s", fn.__name__, traceback.format_exc())
            raise gr.Error(f"Internal error ({html.escape(type(e).__name__)}); the details are in the "
                           "server log. Please try again or report it.",
                           title="Something went wrong") from None
    return wrapper


def _reporter(progress: gr.Progress):
    """The service's progress(fraction, text) drawn as Gradio's progress bar."""
    def report(fraction: float, desc: str) -> None:
        progress(min(max(fraction, 0.0), 1.0), desc=desc)
    return report


def build_app(service: DemoService, concurrency: int = 2) -> gr.Blocks:
    """The page: input on the left, results and view controls on the right; the `segment` API.

    `concurrency` is how many segmentations (page and API together) run at once; others queue.
    """
    registry = service.registry
    choices = service.image_choices()
    labelled = [value for label, value in choices if "✓" in label]
    first_id = labelled[0] if labelled else (choices[0][1] if choices else None)
    try:
        first_card = card_markdown(registry, registry.default_key)
        first_thresholds = registry.load(registry.default_key).config.thresholds
    except DstlError as e:
        first_card = f"⚠️ {html.escape(str(e))}"
        first_thresholds = (0.5,) * len(CLASSES)
    image_buttons = ["download", "fullscreen"]

    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 7200)) as demo:
        result_state = gr.State(None, time_to_live=3 * 3600)
        gr.HTML(HEADER_HTML)
        with gr.Row(equal_height=False):
            # -------------------------------------------------------------- input
            with gr.Column(scale=4, min_width=340):
                with gr.Group():
                    model = gr.Dropdown([(s.label, s.key) for s in registry.sources],
                                        value=registry.default_key, label="Model",
                                        info="Weights served here: bundled, local folders, Hub repos",
                                        elem_id="dstl-model")
                    card = gr.Markdown(first_card, elem_id="dstl-card", padding=True)
                with gr.Tabs():
                    with gr.Tab("Dataset image", id="dataset"):
                        image_id = gr.Dropdown(choices, value=first_id, label="Image id", filterable=True,
                                               info=f"{len(choices)} images; ✓ labelled = ground truth, "
                                                    "scores and comparison available (type to search)",
                                               elem_id="dstl-image-id")
                        segment_id_btn = gr.Button("Segment image", variant="primary", size="lg",
                                                   elem_id="dstl-segment-id")
                    with gr.Tab("Upload", id="upload"):
                        files = gr.File(file_count="multiple", file_types=list(IMAGE_SUFFIXES), height=150,
                                        label="PNG / JPEG / TIFF RGB image, or the 4 DSTL TIFFs of one image",
                                        elem_id="dstl-files")
                        gr.Markdown(upload_note(service.limits.max_bytes, service.limits.max_pixels))
                        segment_up_btn = gr.Button("Segment upload", variant="primary", size="lg",
                                                   elem_id="dstl-segment-upload")
                status = gr.Markdown("Pick an image and press **Segment**.", elem_id="dstl-status")
                gr.DeepLinkButton("Copy a link to this view", copied_value="Link copied!", size="md")
                with gr.Accordion("About the models and the API", open=False):
                    gr.Markdown(ABOUT_MARKDOWN)
            # -------------------------------------------------------------- results
            with gr.Column(scale=8, min_width=480):
                with gr.Tabs():
                    with gr.Tab("Overlay", id="overlay"):
                        overlay = gr.Image(label="Prediction overlaid on the RGB preview", show_label=False,
                                           type="filepath", interactive=False, buttons=image_buttons,
                                           height=560, elem_id="dstl-overlay")
                        coverage = gr.HTML(elem_id="dstl-coverage")
                    with gr.Tab("Class masks", id="masks"):
                        panels = gr.Image(label="Per-class masks (white = class present)", show_label=False,
                                          type="filepath", interactive=False, buttons=image_buttons,
                                          elem_id="dstl-panels")
                    with gr.Tab("Prediction vs truth", id="truth"):
                        compare = gr.Image(label="Prediction | ground truth | errors", show_label=False,
                                           type="filepath", interactive=False, buttons=image_buttons,
                                           elem_id="dstl-compare")
                        metrics = gr.HTML(elem_id="dstl-metrics")
                        gr.Markdown(METRICS_NOTE, elem_classes=["dstl-note"])
                    with gr.Tab("Downloads", id="downloads"):
                        gr.Markdown("Masks (TIFF), polygons (GeoJSON and Kaggle CSV rows) and the overlay "
                                    "(PNG) of the current view, at full resolution; plus the metrics (JSON) "
                                    "for labelled images.")
                        export_btn = gr.Button("Prepare downloads", elem_id="dstl-export")
                        downloads = gr.File(label="Files", file_count="multiple", interactive=False,
                                            elem_id="dstl-downloads")
                # The view: changing it re-renders the pictures without running the model again.
                with gr.Group():
                    with gr.Row(equal_height=False):
                        classes = gr.CheckboxGroup([(f"{c.id} {c.name}", c.id) for c in CLASSES],
                                                   value=[c.id for c in CLASSES], label="Classes shown",
                                                   elem_id="dstl-classes", scale=3)
                        with gr.Column(scale=1, min_width=200):
                            opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Overlay opacity",
                                                elem_id="dstl-opacity")
                            with gr.Row():
                                all_btn = gr.Button("All classes", size="sm")
                                none_btn = gr.Button("None", size="sm")
                with gr.Accordion("Per-class thresholds", open=False, elem_id="dstl-thresholds"):
                    gr.Markdown("<span class='dstl-note'>A pixel belongs to a class when its probability is "
                                "at least the threshold. Defaults come from the model's config.</span>")
                    thresholds = []
                    for row in range(0, len(CLASSES), 5):
                        with gr.Row():
                            for c in CLASSES[row:row + 5]:
                                thresholds.append(gr.Slider(
                                    0.0, 1.0, value=first_thresholds[c.index], step=0.01,
                                    label=f"{c.id} {c.name.replace(' manmade', '')}", min_width=150,
                                    elem_id=f"dstl-thr-{c.id}"))
                    reset_btn = gr.Button("Reset to the model's thresholds", size="sm")
        # Deep links restore component values, not server state: this remembers which dataset
        # image and model the view shows, so that opening a copied link segments it again.
        view_key = gr.Textbox(visible=False)
        # The public API: hidden components and one event that nothing in the page triggers.
        with gr.Column(visible=False):
            api_model = gr.Textbox(label="model")
            api_image_id = gr.Textbox(label="image_id")
            api_files = gr.File(label="files", file_count="multiple")
            api_overlay = gr.Image(label="overlay", type="filepath")
            api_summary = gr.JSON(label="summary")

        # ------------------------------------------------------------------ handlers
        result_outputs = [result_state, status, overlay, coverage, panels, compare, metrics, downloads]
        # The metrics table is not a view output: segmenting writes it (pixel scores) and `on_jaccard`
        # completes it, so a slower re-render can never overwrite finished scores.
        view_outputs = [overlay, coverage, panels, compare]

        def present(result, view: View, note: str | None) -> tuple:
            """Values of `result_outputs` for `result` seen through `view`."""
            rendered = render_view(result, view)
            name = result.image_id
            return (result, status_markdown(result, note),
                    service.picture(rendered.overlay, f"{name}_overlay", photo=True),
                    coverage_html(coverage_rows(result, view)),
                    service.picture(rendered.panels, f"{name}_masks", photo=False),
                    service.picture(rendered.compare, f"{name}_vs_truth", photo=True),
                    metrics_html(metrics_rows(result, view, with_jaccard=False)), None)

        def segmented(seg, shown, alpha, key: str) -> tuple:
            view = View(tuple(shown or ()), alpha, seg.result.thresholds)
            return (*present(seg.result, view, seg.note), key, gr.update(value=seg.result.model_key),
                    *seg.result.thresholds)

        @_user_errors
        def on_segment_image(model_key, image, shown, alpha, progress=PROGRESS):
            seg = service.segment_image(image, model_key, allow_switch=True, progress=_reporter(progress))
            key = json.dumps({"model": seg.result.model_key, "image_id": seg.result.image_id})
            return segmented(seg, shown, alpha, key)

        @_user_errors
        def on_segment_upload(model_key, paths, shown, alpha, progress=PROGRESS):
            seg = service.segment_upload(paths or [], model_key, allow_switch=True,
                                         progress=_reporter(progress))
            return segmented(seg, shown, alpha, "")

        @_user_errors
        def on_view(result, shown, alpha, *thr):
            if result is None:
                return (gr.skip(),) * len(view_outputs)
            return present(result, View(tuple(shown or ()), alpha, thr), None)[2:6]

        @_user_errors
        def on_jaccard(result, *thr):
            if result is None or not result.has_truth:
                return gr.skip()
            view = View(tuple(c.id for c in CLASSES), 0.5, thr)
            return metrics_html(metrics_rows(result, view, with_jaccard=True))

        @_user_errors
        def on_restore(key, shown, alpha, progress=PROGRESS, *thr):
            if not key:
                return (gr.skip(),) * len(result_outputs)
            wanted = json.loads(key)
            seg = service.segment_image(wanted["image_id"], wanted["model"], allow_switch=True,
                                        progress=_reporter(progress))
            note = "Opened from a shared link: the view is live again." + (f" {seg.note}" if seg.note else "")
            return present(seg.result, View(tuple(shown or ()), alpha, thr), note)

        @_user_errors
        def on_export(result, shown, alpha, *thr):
            if result is None:
                raise gr.Error("Segment an image first; then its files can be downloaded.",
                               title="Nothing to download", print_exception=False)
            return [str(p) for p in service.export(result, View(tuple(shown or ()), alpha, thr))]

        @_user_errors
        def on_model(model_key):
            return card_markdown(registry, model_key)

        @_user_errors
        def on_reset(result):
            return tuple(result.thresholds) if result is not None else (gr.skip(),) * len(thresholds)

        @_user_errors
        def segment(model: str, image_id: str, files: list[str] | None, progress=PROGRESS):
            """Segment a dataset image (image_id) or an upload (files: one RGB image, or the four DSTL
            TIFFs of one image) with a model ("" = the best model for the image's bands).

            Returns the overlay of all classes on the RGB preview (PNG, full resolution, legend below)
            and a JSON summary: image size, model, bands, per-class coverage and, for labelled dataset
            images, per-class IoU, Dice and Kaggle Jaccard ("metrics"; null otherwise).
            """
            files = [f for f in (files or []) if f]
            image_id = (image_id or "").strip()
            if files and image_id:
                raise DstlError("give either image_id or files, not both")
            report = _reporter(progress)
            if files:
                seg = service.segment_upload(files, model or None, allow_switch=False, progress=report)
            else:
                seg = service.segment_image(image_id, model or None, allow_switch=False, progress=report)
            return str(service.api_overlay(seg.result)), service.summary(seg.result)

        # ------------------------------------------------------------------ wiring
        private = {"api_visibility": "private"}
        inference = {**private, "concurrency_id": "inference", "concurrency_limit": concurrency}
        rerender = {**private, "show_progress": "hidden", "trigger_mode": "always_last",
                    "concurrency_id": "render", "concurrency_limit": 8}
        view_inputs = [result_state, classes, opacity, *thresholds]
        jaccard_args = (on_jaccard, [result_state, *thresholds], metrics)
        segment_outputs = [*result_outputs, view_key, model, *thresholds]

        segment_id_btn.click(on_segment_image, [model, image_id, classes, opacity], segment_outputs,
                             show_progress_on=[overlay], **inference).then(*jaccard_args, **private)
        segment_up_btn.click(on_segment_upload, [model, files, classes, opacity], segment_outputs,
                             show_progress_on=[overlay], **inference).then(*jaccard_args, **private)
        gr.on([classes.input, opacity.input, *[t.input for t in thresholds]], on_view, view_inputs,
              view_outputs, **rerender)
        # Scores follow the thresholds once one is let go (the Kaggle Jaccard needs polygons).
        gr.on([t.release for t in thresholds], *jaccard_args, **private, trigger_mode="always_last",
              concurrency_id="jaccard", concurrency_limit=2)
        all_btn.click(lambda: [c.id for c in CLASSES], None, classes, queue=False, **private
                      ).then(on_view, view_inputs, view_outputs, **rerender)
        none_btn.click(lambda: [], None, classes, queue=False, **private
                       ).then(on_view, view_inputs, view_outputs, **rerender)
        reset_btn.click(on_reset, result_state, thresholds, queue=False, **private
                        ).then(on_view, view_inputs, view_outputs, **rerender).then(*jaccard_args, **private)
        model.change(on_model, model, card, show_progress="minimal", **private)
        export_btn.click(on_export, view_inputs, downloads, **private, concurrency_id="export",
                         concurrency_limit=concurrency)
        demo.load(on_restore, [view_key, classes, opacity, *thresholds], result_outputs, **inference
                  ).then(*jaccard_args, **private)
        gr.on([], segment, [api_model, api_image_id, api_files], [api_overlay, api_summary],
              api_name="segment", api_visibility="public", concurrency_id="inference",
              concurrency_limit=concurrency)
    return demo


def launch(demo: gr.Blocks, settings: DemoSettings, **kwargs):
    """Queue and launch `demo` with the theme, CSS and limits of `settings` (kwargs override)."""
    demo.queue(max_size=64, default_concurrency_limit=settings.concurrency)
    args = {"server_port": settings.port, "server_name": settings.host, "share": settings.share,
            "max_file_size": int(settings.max_upload_mb * 2**20), "footer_links": ["api", "gradio"],
            "theme": gr.themes.Soft(primary_hue="teal", secondary_hue="emerald", neutral_hue="slate"),
            "css": page_css()}
    args.update(kwargs)
    return demo.launch(**args)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests
    try:
        settings = parse_args(argv)
        service = build_service(settings)
    except DstlError as e:
        print_error(e)  # after the synthetic demo set's progress bar, on a line of its own
        return 2
    launch(build_app(service, settings.concurrency), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

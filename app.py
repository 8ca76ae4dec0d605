"""The DSTL segmentation demo: a Gradio app (layout and event wiring only; the work is in `dstl.demo`).

    python app.py [--data DATA] [--weights SRC ...] [--port N] [--share] [--mcp]

With no flags it serves the bundled weights on a small synthetic DSTL dataset, generated on the
first run. `python app.py --help` lists every flag and the environment variables (Hugging Face
Space variables) that set their defaults, e.g. DSTL_WEIGHTS=owner/name@rev and DSTL_DATA.

Public API (gradio_client), one endpoint::

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    overlay_png, summary = client.predict(image_id="synth_9100_0_0", api_name="/segment")
    overlay_png, summary = client.predict(files=[handle_file("scene.png")], api_name="/segment")

Give either `image_id` (an id of the dataset served; synth_9100_0_0 is the first labelled image of
the bundled demo set) or `files` (one RGB image, or the four DSTL TIFFs of one image); `model`
(optional) is a model key from the menu, left out or "" for the best model for the image's bands.
`summary` holds the image size, model, timing, per-class coverage and, for labelled images,
per-class IoU, Dice and Kaggle Jaccard. Every other event of the page is private. With `--mcp`
the same endpoint is also an MCP tool (Gradio's MCP server, /gradio_api/mcp/).
"""

import html
import logging
import sys
import time
import traceback
from functools import wraps

import gradio as gr

from dstl.classes import CLASSES
from dstl.demo import METRICS_NOTE, DemoService, View, card_markdown, metrics_html, metrics_rows, parse_args
from dstl.demo.data import data_world
from dstl.demo.examples import RGB_SAMPLE, dataset_examples, dstl_sample
from dstl.demo.links import LINK_JS, decode_view_link
from dstl.demo.page import HEADER_HTML, TITLE, about_markdown, page_css, upload_note
from dstl.demo.presenter import COMPARE_MODES, IMAGE_VS_PREDICTION, VIEW_OUTPUTS, Presenter, Props, error_html
from dstl.demo.settings import DemoSettings, build_service
from dstl.demo.uploads import IMAGE_SUFFIXES, upload_preview
from dstl.demo.views import VIEW_DEFINITION, format_seconds, status_markdown
from dstl.errors import DstlError
from dstl.progress import print_error

log = logging.getLogger("dstl.app")

# Gradio recognises a gr.Progress default and passes each call its own tracker, so one shared
# default object is safe.
PROGRESS = gr.Progress()

AUTO = ""  # the model menu's "Auto" entry: the best model for each image's bands

#: Brings the status line above the results into view unless it already is (phones: the results
#: follow the inputs).
SCROLL_TO_RESULTS = """() => {
  const top = document.getElementById('dstl-status');
  if (!top) return;
  const box = top.getBoundingClientRect();
  if (box.top < 0 || box.top > window.innerHeight * 0.4) {
    top.scrollIntoView({behavior: 'smooth', block: 'start'});
  }
}"""


def _message(e: Exception, where: str) -> str:
    """A one-line, HTML-safe message for an exception raised while doing `where`."""
    if isinstance(e, DstlError):
        # Escape <, > and & so that file names the visitor chose show as typed; quotes need no
        # escaping in text and stay readable for API clients.
        return html.escape(str(e), quote=False)
    log.error("unexpected error in %s:\n%s", where, traceback.format_exc())
    return (f"internal error ({html.escape(type(e).__name__)}); the details are in the server log. "
            "Please try again or report it.")


def _api_errors(fn):
    """Run an API handler; raise every error as gr.Error (a message for the client, never a trace)."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:
            raise gr.Error(_message(e, fn.__name__), title="Cannot do that", print_exception=False) from None
    return wrapper


def _reporter(progress: gr.Progress):
    """The service's progress(fraction, text) drawn as Gradio's progress bar."""
    def report(fraction: float, desc: str) -> None:
        progress(min(max(fraction, 0.0), 1.0), desc=desc)
    return report


def build_app(service: DemoService, concurrency: int = 2) -> gr.Blocks:
    """The page: input on the left, results and view controls on the right; the `segment` API.

    Every page event keeps one consistent state (`dstl.demo.presenter`): the result named by the
    session's token (only the token: results live in the service's store) drawn through the
    current view, and an error message beside it when the last action failed. The page opens on a
    finished segmentation of the dataset's first labelled image, computed here, at start-up, and
    kept for the server's life. `concurrency` is how many segmentations (page and API together)
    run at once; others queue.
    """
    registry = service.registry
    present = Presenter(service)
    choices = service.image_choices()
    labelled = service.labelled_ids()
    first_id = labelled[0] if labelled else (choices[0][1] if choices else None)
    model_choices = [("Auto: the best model for the image's bands", AUTO)] + \
        [(s.label, s.key) for s in registry.sources]
    all_ids = tuple(c.id for c in CLASSES)

    # The first result, computed now so that a visitor's first look is a finished segmentation.
    init: dict = {}
    if first_id is not None:
        try:
            first = service.segment_image(first_id, None, pin=True)
            init = present.result(first.token, first.result, View(all_ids, 0.5, first.result.thresholds),
                                  full=False, mode=IMAGE_VS_PREDICTION, heat_class=1, jaccard=True,
                                  status=status_markdown(first.result, "The example shown on arrival "
                                                         "(segmented when the server started).",
                                                         first.timing()))
        except DstlError as e:
            log.warning("no example result on arrival: %s", e)

    def props(name: str, **defaults) -> dict:
        """Constructor arguments of output `name`: its defaults, then its first-result value/props."""
        value = init.get(name)
        if isinstance(value, Props):
            return {**defaults, **value}
        return {**defaults, "value": value} if name in init else defaults

    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 7200)) as demo:
        token = gr.State(init.get("token"))
        other = gr.State(None)  # a second model's result on the same image (side-by-side comparison)
        gr.HTML(HEADER_HTML)
        if service.dataset is not None:
            gr.Markdown(f"**Dataset shown:** {data_world(service.dataset.root)}", elem_id="dstl-data-world")
        with gr.Row(equal_height=False):
            # -------------------------------------------------------------- input
            with gr.Column(scale=4, min_width=320, elem_id="dstl-inputs"):
                model = gr.Dropdown(model_choices, value=AUTO, label="Model", elem_id="dstl-model",
                                    info="Auto picks, for each image, the model made for its bands")
                with gr.Accordion("Model card", open=False):
                    card = gr.Markdown(auto_card(registry), elem_id="dstl-card", padding=True)
                with gr.Tabs():
                    with gr.Tab("Dataset image", id="dataset"):
                        image_id = gr.Dropdown(choices, value=first_id, label="Image id", filterable=True,
                                               info=f"{len(choices)} images; ✓ labelled = ground truth, "
                                                    "scores and comparison (type to search)",
                                               elem_id="dstl-image-id")
                        segment_id_btn = gr.Button("Segment image", variant="primary", size="lg",
                                                   elem_id="dstl-segment-id")
                        thumb = gr.Image(visible=False, type="filepath", label="Preview")
                        shown_examples = dataset_examples(service.dataset)
                        id_examples = None
                        if shown_examples:
                            id_examples = gr.Examples([[i, str(p)] for i, p in shown_examples],
                                                      [image_id, thumb],
                                                      label="Examples: click one to segment it",
                                                      examples_per_page=6, api_visibility="private",
                                                      elem_id="dstl-id-examples")
                    with gr.Tab("Upload", id="upload"):
                        files = gr.File(file_count="multiple", file_types=list(IMAGE_SUFFIXES),
                                        label="PNG / JPEG / TIFF RGB image, or the 4 DSTL TIFFs of one image",
                                        elem_id="dstl-files")
                        upload_pic = gr.Image(label="Upload preview", type="filepath", interactive=False,
                                              height=200, visible=False, buttons=[],
                                              elem_id="dstl-upload-preview")
                        upload_info = gr.Markdown(default_upload_note(service), elem_id="dstl-upload-info")
                        with gr.Row():
                            segment_up_btn = gr.Button("Segment upload", variant="primary", size="lg",
                                                       elem_id="dstl-segment-upload", scale=3)
                            clear_btn = gr.Button("Clear", size="lg", elem_id="dstl-clear", scale=1)
                        four = dstl_sample(service.dataset)
                        up_examples = gr.Examples(
                            [[[str(RGB_SAMPLE)]]] + ([[[str(p) for p in four]]] if four else []), [files],
                            label="Examples: click one to segment it", api_visibility="private",
                            example_labels=["RGB photo: an 8-bit JPEG of a synthetic scene"]
                            + ([f"The four DSTL TIFFs of {four[0].stem}"] if four else []),
                            elem_id="dstl-upload-examples")
                link_btn = gr.Button("Copy a link to this view", size="md", elem_id="dstl-link")
                link_box = gr.Textbox(label="Link to this view (copied to the clipboard where the browser "
                                            "allows)", interactive=False, visible=False, buttons=["copy"],
                                      elem_id="dstl-link-box")
                link_note = gr.Markdown(**props("link_note", value=""), elem_id="dstl-link-note")
                with gr.Accordion("About the models and the API", open=False):
                    gr.Markdown(about_markdown(first_id))
            # -------------------------------------------------------------- results
            with gr.Column(scale=8, min_width=340, elem_id="dstl-results"):
                status = gr.Markdown(**props("status", value="Pick an image and press **Segment**."),
                                     elem_id="dstl-status")
                error = gr.HTML("", elem_id="dstl-error")
                with gr.Tabs():
                    with gr.Tab("Compare", id="compare"):
                        with gr.Row(equal_height=True):
                            mode = gr.Radio(COMPARE_MODES, **props("mode", value=IMAGE_VS_PREDICTION),
                                            show_label=False, container=False, elem_id="dstl-mode", scale=3)
                            full_res = gr.Checkbox(**props("full_res", value=False, visible=False,
                                                           label="Full resolution"),
                                                   elem_id="dstl-full", scale=1, container=False)
                        slider_caption = gr.Markdown(**props("slider_caption", value=""),
                                                     elem_id="dstl-slider-caption")
                        slider = gr.ImageSlider(**props("slider"), show_label=False, type="filepath",
                                                interactive=False, max_height=620, elem_id="dstl-slider",
                                                label="Drag the handle to compare; scroll or pinch to zoom, "
                                                      "drag to pan")
                        coverage = gr.HTML(**props("coverage"), elem_id="dstl-coverage")
                        with gr.Accordion("Compare two models on this image", open=False,
                                          elem_id="dstl-models-accordion"):
                            with gr.Row(equal_height=False):
                                other_model = gr.Dropdown([(s.label, s.key) for s in registry.sources],
                                                          value=None, label="Second model", scale=3,
                                                          elem_id="dstl-other-model")
                                compare_btn = gr.Button("Compare", scale=1, elem_id="dstl-compare-models")
                    with gr.Tab("Probabilities", id="probabilities"):
                        heat_class = gr.Dropdown([(f"{c.id} {c.name}", c.id) for c in CLASSES], value=1,
                                                 label="Class", elem_id="dstl-heat-class",
                                                 info="Its probability at every pixel; click the map to read "
                                                      "all ten classes at that pixel")
                        with gr.Row(equal_height=False):
                            heat = gr.Image(**props("heat"), show_label=False, type="filepath",
                                            interactive=False,
                                            buttons=["fullscreen", "download"], elem_id="dstl-heat", scale=3)
                            probe = gr.HTML(**props("probe"), elem_id="dstl-probe", scale=2, min_width=280)
                    with gr.Tab("Class masks", id="masks"):
                        panels = gr.Image(**props("panels"), show_label=False, type="filepath",
                                          interactive=False,
                                          buttons=["download", "fullscreen"], elem_id="dstl-panels",
                                          label="Per-class masks (white = class present)")
                    with gr.Tab("Prediction vs truth", id="truth"):
                        compare = gr.Image(**props("compare"), show_label=False, type="filepath",
                                           interactive=False, buttons=["download", "fullscreen"],
                                           elem_id="dstl-compare", label="Prediction | ground truth | errors")
                        metrics = gr.HTML(**props("metrics"), elem_id="dstl-metrics")
                        gr.Markdown(METRICS_NOTE, elem_classes=["dstl-note"])
                    with gr.Tab("Downloads", id="downloads"):
                        gr.Markdown("Masks (TIFF), polygons (GeoJSON and Kaggle CSV rows), the overlay (PNG) "
                                    "and, for labelled images, the metrics (JSON) of **the current view**, "
                                    f"at full resolution. {VIEW_DEFINITION}", elem_classes=["dstl-note"])
                        export_btn = gr.Button("Prepare downloads of this view", elem_id="dstl-export")
                        downloads_note = gr.Markdown("", elem_id="dstl-downloads-note")
                        downloads = gr.File(label="Files", file_count="multiple", interactive=False,
                                            elem_id="dstl-downloads")
                # The view: changing it re-renders the pictures without running the model again.
                with gr.Group():
                    with gr.Row(equal_height=False):
                        classes = gr.CheckboxGroup([(f"{c.id} {c.name}", c.id) for c in CLASSES],
                                                   value=list(all_ids), label="Classes shown",
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
                    first_thr = init.get("thresholds", (0.5,) * len(CLASSES))
                    for row in range(0, len(CLASSES), 5):
                        with gr.Row():
                            for c in CLASSES[row:row + 5]:
                                thresholds.append(gr.Slider(
                                    0.0, 1.0, value=first_thr[c.index], step=0.01,
                                    label=f"{c.id} {c.name.replace(' manmade', '')}", min_width=150,
                                    elem_id=f"dstl-thr-{c.id}"))
                    reset_btn = gr.Button("Reset to the model's thresholds", size="sm")
        # Deep links restore component values, not server state: this names the result the view
        # shows (dataset image and model, or an upload's token), so that opening a link shows it again.
        view_key = gr.Textbox(**props("view_key", value=""), visible=False)
        # The public API: hidden components and one event that nothing in the page triggers.
        with gr.Column(visible=False):
            api_model = gr.Textbox("", label="model")
            api_image_id = gr.Textbox("", label="image_id")
            api_files = gr.File(label="files", file_count="multiple")
            api_overlay = gr.Image(label="overlay", type="filepath")
            api_summary = gr.JSON(label="summary")

        # Status first: Gradio scrolls to the first output when a segmentation finishes.
        outputs = {"status": status, "token": token, "other": other, "view_key": view_key, "error": error,
                   "link_note": link_note, "full_res": full_res, "mode": mode, "slider": slider,
                   "slider_caption": slider_caption, "classes": classes, "opacity": opacity,
                   "heat_class": heat_class,
                   "coverage": coverage, "heat": heat, "probe": probe, "panels": panels, "compare": compare,
                   "metrics": metrics, "downloads": downloads, "downloads_note": downloads_note}

        def updates(values: dict) -> dict:
            """{output name: value} -> {component: value or gr.update} for Gradio."""
            out = {}
            for name, value in values.items():
                if name == "thresholds":
                    out.update(zip(thresholds, value, strict=True))
                elif isinstance(value, Props):
                    out[outputs[name]] = gr.update(**value)
                else:
                    out[outputs[name]] = value
            return out

        def failure(e: Exception, where: str, what: str, shown_token: str | None) -> dict:
            found = service.store.get(shown_token)
            return updates({"error": error_html(what, _message(e, where), found.result if found else None)})

        def current_view(shown, alpha, thr) -> View:
            return View(tuple(shown or ()), alpha, thr)

        # ------------------------------------------------------------------ handlers

        # The segmentation handlers are plain functions, not generators: Gradio (6.x) ends a
        # generator's event by sending the values of its last yield once more, which would put the
        # sliders and pictures back over anything the visitor changed since that yield (a threshold
        # moved right after an upload's result was reverted). The polygon-based scores follow as
        # `.then` steps instead (`then_scores`), which read the view as it is when they start.
        def segmented(run, what, shown_token, shown, alpha, full, mode_value, hclass) -> dict:
            """Run `run()` -> Segmented; every output for its result (or the error beside the last)."""
            start = time.perf_counter()
            try:
                seg = run()
                result = seg.result
                view = current_view(shown, alpha, result.thresholds)
                values = present.result(seg.token, result, view, full=full, mode=mode_value,
                                        heat_class=hclass, status="")
                values["status"] = status_markdown(result, seg.note, seg.timing(time.perf_counter() - start))
            except Exception as e:
                return failure(e, "segment", f"Cannot segment {what}", shown_token)
            return updates(values)

        def on_segment_image(model_key, image, shown_token, shown, alpha, full, mode_value, hclass,
                             progress=PROGRESS):
            return segmented(lambda: service.segment_image(image, model_key or None, allow_switch=True,
                                                           progress=_reporter(progress)),
                             f"image {image}" if image else "an image", shown_token, shown, alpha, full,
                             mode_value, hclass)

        def on_segment_upload(model_key, paths, shown_token, shown, alpha, full, mode_value, hclass,
                              progress=PROGRESS):
            return segmented(lambda: service.segment_upload(paths or [], model_key or None,
                                                            allow_switch=True, progress=_reporter(progress)),
                             "the upload", shown_token, shown, alpha, full, mode_value, hclass)

        def on_view(tok, other_tok, shown, alpha, full, mode_value, hclass, *thr):
            if not tok:
                return {error: gr.skip()}
            try:
                found = service.stored(tok)
                second = service.store.get(other_tok)
                return updates(present.view(tok, found.result, current_view(shown, alpha, thr), full=full,
                                            mode=mode_value, heat_class=hclass,
                                            other=second.result if second else None))
            except Exception as e:
                return failure(e, "view", "Cannot redraw", tok)

        def on_compare_models(tok, other_key, paths, shown, alpha, full, hclass, progress=PROGRESS, *thr):
            start = time.perf_counter()
            try:
                if not other_key:
                    raise DstlError("choose the second model first")
                seg = service.segment_with(tok, other_key, paths, progress=_reporter(progress))
                found = service.stored(tok)
                values = present.compared(tok, found.result, seg.token, seg.result,
                                          current_view(shown, alpha, thr), full=full, heat_class=hclass)
            except Exception as e:
                return failure(e, "compare", "Cannot compare the models", tok)
            took = seg.timing(time.perf_counter() - start)
            values["slider_caption"] += f" · {seg.result.model_key}: {took}"
            return updates(values)

        def on_jaccard(tok, *thr):
            """Compute (and keep with the result) the Kaggle Jaccard at these thresholds."""
            found = service.store.get(tok)
            if found is not None and found.result.has_truth:
                found.result.kaggle_jaccard(thr)

        def on_metrics(tok, shown, *thr):
            found = service.store.get(tok)
            if found is None:
                return gr.skip()
            return metrics_html(metrics_rows(found.result, current_view(shown, 0.5, thr), with_jaccard=False))

        def on_probe(tok, hclass, evt: gr.SelectData, *thr):
            found = service.store.get(tok)
            values = present.probe(found.result, hclass, thr, *evt.index) if found and evt.index else None
            return updates(values) if values else {probe: gr.skip()}

        def on_restore(request: gr.Request, progress=PROGRESS):
            """Open a link's view (``?view=``, `dstl.demo.links`); without one, the page stays as it is."""
            code = request.query_params.get("view")
            if not code:
                return {token: gr.skip()}  # Gradio needs a non-empty answer
            start = time.perf_counter()
            try:
                link = decode_view_link(code)
                if link.origin == "upload":
                    found = service.stored(link.token)
                    tok, result, note = found.token, found.result, None
                    timing = f"{format_seconds(time.perf_counter() - start)}: the result kept for the upload"
                else:
                    seg = service.segment_image(link.image_id, link.model, allow_switch=True,
                                                progress=_reporter(progress))
                    tok, result, note = seg.token, seg.result, seg.note
                    timing = seg.timing(time.perf_counter() - start)
                view = View(link.classes, link.opacity, link.thresholds or result.thresholds)
                values = present.result(tok, result, view, full=link.full, mode=link.mode or "",
                                        heat_class=link.heat, status="")
            except Exception as e:
                return failure(e, "restore", "Cannot open the link", None)
            values.update(classes=list(view.classes), opacity=view.opacity, heat_class=link.heat)
            values["status"] = status_markdown(result, "Opened from a link: the view is live again."
                                               + (f" {note}" if note else ""), timing)
            if link.other_model:  # the link was made while two models were compared
                try:
                    second = service.store.get(link.other_token) or \
                        service.stored(service.segment_with(tok, link.other_model).token)
                    values.update(present.compared(tok, result, second.token, second.result, view,
                                                   full=link.full, heat_class=link.heat))
                except Exception as e:
                    values["error"] = error_html("Cannot show the second model of the link",
                                                 _message(e, "restore"))
            return updates(values)

        def on_export(tok, shown, alpha, *thr):
            try:
                found = service.stored(tok)
                return updates(present.downloads(found.result, current_view(shown, alpha, thr)))
            except Exception as e:
                return failure(e, "export", "Cannot prepare the downloads", tok)

        def on_model(model_key):
            if not model_key:
                return auto_card(registry)
            try:
                return card_markdown(registry, model_key)
            except DstlError as e:
                return f"⚠️ {html.escape(str(e))}"

        def on_reset(tok):
            found = service.store.get(tok)
            return tuple(found.result.thresholds) if found else (gr.skip(),) * len(thresholds)

        def on_upload(paths):
            """A preview of what was uploaded, or what is wrong with it, before anything runs."""
            if not paths:
                return gr.update(value=None, visible=False), default_upload_note(service)
            try:
                preview, text = upload_preview(paths, max_bytes=service.limits.max_bytes,
                                               max_pixels=service.limits.max_pixels)
                return (gr.update(value=service.picture(preview, "upload_preview", photo=True), visible=True),
                        html.escape(text))
            except Exception as e:
                return (gr.update(value=None, visible=False),
                        error_html("This upload cannot be segmented", _message(e, "upload")))

        def on_clear():
            return None, gr.update(value=None, visible=False), default_upload_note(service)

        @_api_errors
        def segment(model: str = "", image_id: str = "", files: list[str] | None = None, progress=PROGRESS):
            """Segment a dataset image (image_id) or an upload (files: one RGB image, or the four DSTL
            TIFFs of one image) with a model ("" or left out = the best model for the image's bands).

            Returns the overlay of all classes on the RGB preview (PNG, full resolution, legend below)
            and a JSON summary: image size, model, bands, timing, per-class coverage and, for labelled
            dataset images, per-class IoU, Dice and Kaggle Jaccard ("metrics"; null otherwise).

            Args:
                model: a model key of the demo's model menu; "" (the default) picks the model that
                    reads the most of the image's bands.
                image_id: an image id of the dataset the demo serves (give this or files).
                files: one RGB image (PNG, JPEG or TIFF), or the four DSTL TIFFs of one image
                    (ID.tif, ID_P.tif, ID_M.tif, ID_A.tif); give this or image_id.
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
            return str(service.api_overlay(seg.result)), service.summary(seg.result, segmented=seg)

        # ------------------------------------------------------------------ wiring
        private = {"api_visibility": "private"}
        inference = {**private, "concurrency_id": "inference", "concurrency_limit": concurrency}
        rerender = {**private, "show_progress": "hidden", "trigger_mode": "always_last",
                    "concurrency_id": "render", "concurrency_limit": 8}
        all_outputs = [*outputs.values(), *thresholds]
        view_inputs = [token, other, classes, opacity, full_res, mode, heat_class, *thresholds]
        view_outputs = [outputs[name] for name in (*VIEW_OUTPUTS, "error")]
        seg_inputs = [token, classes, opacity, full_res, mode, heat_class]
        seg_events = {"show_progress_on": [slider], "scroll_to_output": True, **inference}
        metrics_now = (on_metrics, [token, classes, *thresholds], metrics)
        jaccard = (on_jaccard, [token, *thresholds], None)

        def then_scores(event):
            # After the pictures: the Kaggle Jaccard (polygons: seconds on a full scene) at the
            # thresholds shown when it starts, then the table for the view as it is by then.
            return event.then(*jaccard, **private).then(*metrics_now, **private)

        # On a phone the results may be out of sight: bring them (and the progress bar) into view.
        for trigger in [segment_id_btn.click, segment_up_btn.click, up_examples.dataset.click,
                        *([id_examples.dataset.click] if id_examples is not None else [])]:
            trigger(None, js=SCROLL_TO_RESULTS, **private)

        then_scores(segment_id_btn.click(on_segment_image, [model, image_id, *seg_inputs], all_outputs,
                                          **seg_events))
        then_scores(segment_up_btn.click(on_segment_upload, [model, files, *seg_inputs], all_outputs,
                                          **seg_events))
        if id_examples is not None:
            then_scores(id_examples.load_input_event.then(on_segment_image, [model, image_id, *seg_inputs],
                                                           all_outputs, **seg_events))
        then_scores(up_examples.load_input_event.then(on_upload, files, [upload_pic, upload_info], **private)
                     .then(on_segment_upload, [model, files, *seg_inputs], all_outputs, **seg_events))
        files.upload(on_upload, files, [upload_pic, upload_info], **private)
        files.clear(on_clear, None, [files, upload_pic, upload_info], queue=False, **private)
        clear_btn.click(on_clear, None, [files, upload_pic, upload_info], queue=False, **private)
        gr.on([classes.input, opacity.input, full_res.input, mode.input, heat_class.input,
               *[t.input for t in thresholds]], on_view, view_inputs, view_outputs, **rerender)
        # Scores follow the thresholds once one is let go (the Kaggle Jaccard needs polygons).
        gr.on([t.release for t in thresholds], *jaccard, **private, trigger_mode="always_last",
              concurrency_id="jaccard", concurrency_limit=2).then(*metrics_now, **private)
        all_btn.click(lambda: list(all_ids), None, classes, queue=False, **private
                      ).then(on_view, view_inputs, view_outputs, **rerender)
        none_btn.click(lambda: [], None, classes, queue=False, **private
                       ).then(on_view, view_inputs, view_outputs, **rerender)
        reset_btn.click(on_reset, token, thresholds, queue=False, **private
                        ).then(on_view, view_inputs, view_outputs, **rerender
                               ).then(*jaccard, **private).then(*metrics_now, **private)
        compare_btn.click(on_compare_models, [token, other_model, files, classes, opacity, full_res,
                                              heat_class, *thresholds],
                          [*view_outputs, other, mode, view_key], show_progress_on=[slider], **inference)
        heat.select(on_probe, [token, heat_class, *thresholds], [heat, probe], **private,
                    concurrency_id="render")
        model.change(on_model, model, card, show_progress="minimal", **private)
        export_btn.click(on_export, [token, classes, opacity, *thresholds],
                         [downloads, downloads_note, error], **private, concurrency_id="export",
                         concurrency_limit=concurrency)
        link_btn.click(None, [view_key, classes, opacity, full_res, mode, heat_class, *thresholds], link_box,
                       js=LINK_JS, **private
                       ).then(lambda: gr.update(visible=True), None, link_box, queue=False, **private)
        # Without a link this returns at once; with one, the example shows until the link's view replaces it.
        demo.load(on_restore, None, all_outputs, show_progress_on=[slider], **inference
                  ).then(*metrics_now, **private)
        gr.on([], segment, [api_model, api_image_id, api_files], [api_overlay, api_summary],
              api_name="segment", api_visibility="public", concurrency_id="inference",
              concurrency_limit=concurrency)
    return demo


def auto_card(registry) -> str:
    """The model card text for "Auto": what it picks, and each model's one-line summary."""
    from dstl.demo.cards import short_summary

    lines = [f"- {html.escape(short_summary(registry, s.key))}" for s in registry.sources]
    return ("**Auto** picks, for each image, the model that reads the most of its bands (a 20-band image: "
            "the 20-band model; an RGB image: an RGB model). Models served:\n\n" + "\n".join(lines))


def default_upload_note(service: DemoService) -> str:
    return upload_note(service.limits.max_bytes, service.limits.max_pixels)


def launch(demo: gr.Blocks, settings: DemoSettings, **kwargs):
    """Queue and launch `demo` with the theme, CSS and limits of `settings` (kwargs override).

    `show_error` makes errors that Gradio itself raises before a handler runs (e.g. an API request
    naming a server file that was never uploaded) reach the client with their message.
    """
    demo.queue(max_size=64, default_concurrency_limit=settings.concurrency)
    args = {"server_port": settings.port, "server_name": settings.host, "share": settings.share,
            "max_file_size": int(settings.max_upload_mb * 2**20), "footer_links": ["api", "gradio"],
            "theme": gr.themes.Soft(primary_hue="teal", secondary_hue="emerald", neutral_hue="slate"),
            "css": page_css(), "show_error": True, "mcp_server": settings.mcp}
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
    # Measure each model's speed now (a few seconds) so that "auto" precision is decided before
    # the first visitor arrives rather than on their time.
    for key, what in service.warm_up().items():
        log.info("model %s: speed profile %s", key, what)
    launch(build_app(service, settings.concurrency), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The web demo's logic, kept apart from the web framework (`app.py` only lays out and wires the page).

- `registry`: the weight sources served (bundled, local, Hub), each loaded once and shared.
- `cards`: model card summaries (architecture, bands, trained on what).
- `uploads`: validation of uploaded files into a `Scene`.
- `result`: a segmented scene kept as quantised probabilities, re-thresholded without the model.
- `views`: pictures, coverage and metrics of a result for the shown classes, opacity, thresholds.
- `downloads`: the files of the current view (masks TIFF, GeoJSON, CSV rows, overlay PNG, metrics).
- `service`: segmenting a dataset image or an upload, with a result cache.
- `data`, `settings`: the dataset served (bundled synthetic set made on first run) and the flags.
"""

from dstl.demo.cards import card_markdown, short_summary, training_facts
from dstl.demo.registry import ModelRegistry, WeightSource, bundled_sources, describe_bands
from dstl.demo.result import SegmentationResult
from dstl.demo.service import DemoService, Limits, ResultCache, Segmented
from dstl.demo.settings import DemoSettings, build_service, parse_args
from dstl.demo.uploads import read_upload
from dstl.demo.views import (
    METRICS_HEADERS,
    METRICS_NOTE,
    View,
    coverage_html,
    coverage_rows,
    metrics_html,
    metrics_rows,
    render_view,
    status_markdown,
)

__all__ = [
    "METRICS_HEADERS", "METRICS_NOTE", "DemoService", "DemoSettings", "Limits", "ModelRegistry",
    "ResultCache",
    "SegmentationResult", "Segmented", "View", "WeightSource", "build_service", "bundled_sources",
    "card_markdown", "coverage_html", "coverage_rows", "describe_bands", "metrics_html", "metrics_rows",
    "parse_args", "read_upload", "render_view", "short_summary", "status_markdown", "training_facts",
]

"""The web demo's logic, kept apart from the web framework (`app.py` only lays out and wires the page).

- `registry`: the weight sources served (bundled, local, Hub), each loaded once and shared.
- `cards`: model card summaries (architecture, bands, trained on what).
- `uploads`: validation of uploaded files into a `Scene`.
- `radiometry`: bringing a plain 8-bit photo onto a model's input statistics.
- `result`: a segmented scene kept as quantised probabilities, re-thresholded without the model.
- `store`: finished results kept server-side under random tokens (what pages and links hold), LRU
  bounded by memory.
- `views`: the current view (shown classes, thresholds) and its pictures, coverage, metrics.
- `presenter`: every output of the page for a result seen through a view (one consistent state).
- `links`: links to a view (`?view=`), written by the page and read back by the server.
- `downloads`: the files of the current view (masks TIFF, GeoJSON, CSV rows, overlay PNG, metrics).
- `service`: segmenting a dataset image or an upload, reusing kept results.
- `gpu`: where the model runs (CPU, GPU, or a ZeroGPU Space's GPU inside `spaces.GPU`).
- `examples`: the page's examples (dataset thumbnails, a shipped RGB photo, four DSTL TIFFs).
- `page`: the page's fixed text and CSS.
- `data`, `settings`: the dataset served (bundled synthetic set made on first run) and the flags.
"""

from dstl.demo.cards import card_markdown, short_summary, training_facts
from dstl.demo.registry import ModelRegistry, WeightSource, bundled_sources, describe_bands
from dstl.demo.result import SegmentationResult
from dstl.demo.service import DemoService, Limits, ResultGoneError, Segmented
from dstl.demo.settings import DemoSettings, build_service, parse_args
from dstl.demo.store import ResultStore
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
    "ResultGoneError", "ResultStore",
    "SegmentationResult", "Segmented", "View", "WeightSource", "build_service", "bundled_sources",
    "card_markdown", "coverage_html", "coverage_rows", "describe_bands", "metrics_html", "metrics_rows",
    "parse_args", "read_upload", "render_view", "short_summary", "status_markdown", "training_facts",
]

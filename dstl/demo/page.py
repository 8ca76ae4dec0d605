"""The page's fixed text and style: title, header, the "about" text, and the CSS.

Plain strings (HTML, Markdown, CSS), no web framework: `app.py` puts them in the page. The CSS
styles the HTML fragments of `dstl.demo.views` (coverage legend, metrics table) and gives each
class toggle its class colour, so that the toggles double as the legend.
"""

from dstl.classes import CLASSES

__all__ = ["TITLE", "HEADER_HTML", "about_markdown", "page_css", "upload_note"]

TITLE = "DSTL satellite imagery segmentation"

_ICON = ('<svg width="30" height="30" viewBox="0 0 24 24" fill="none" stroke="#5eead4" stroke-width="1.8" '
         'stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><rect x="9" y="9" width="6" '
         'height="6" rx="1"/><path d="M2 4l5 5M7 4L4 7M22 20l-5-5M17 20l3-3M9 9L6 6M15 15l3 3M16 3a5 5 0 0 '
         '1 5 5M16 6a2 2 0 0 1 2 2"/></svg>')

HEADER_HTML = f"""
<div id="dstl-header">
  <h1>{_ICON}{TITLE}</h1>
  <p class="dstl-long">Find the ten object classes of the Kaggle
  <i>Dstl Satellite Imagery Feature Detection</i> competition — buildings, structures, roads, tracks,
  trees, crops, waterways, standing water, large and small vehicles — in 20-band WorldView-3 scenes or
  plain RGB images. Pick or upload an image, press <b>Segment</b>, then compare, zoom, toggle classes and
  thresholds: the view updates without running the model again.</p>
  <span class="dstl-badge">UNet · PyTorch</span><span class="dstl-badge">20 bands or RGB</span>
  <span class="dstl-badge dstl-warn">Bundled weights and data are SYNTHETIC</span>
  <a class="dstl-jump" href="#dstl-inputs">Choose or upload an image ↓</a>
</div>
"""


def about_markdown(example_id: str | None) -> str:
    """The "about the models and the API" text, with an image id of this demo's dataset."""
    image_id = example_id or "IMAGE_ID"
    return f"""
**Models.** Each model card says what its weights were trained on; the bundled ones were
trained on *synthetic* DSTL-layout scenes, so do not trust them on real imagery. More weights:
`python app.py --weights owner/name@rev` or the `DSTL_WEIGHTS` Space variable. **Auto** picks the
model that uses the most of the image's bands (20-band images: the 20-band model; RGB: an RGB one)
for each image anew.

**API.** One public endpoint, `segment`, for
[gradio_client](https://www.gradio.app/guides/getting-started-with-the-python-client):

```python
from gradio_client import Client, handle_file
client = Client("URL_OF_THIS_PAGE")
png, summary = client.predict(image_id="{image_id}", api_name="/segment")
png, summary = client.predict(files=[handle_file("scene.png")], api_name="/segment")
```
`model` (optional) is a key of the model menu; left out, the best model for the image's bands is used.
`png` is the overlay (all classes, legend below); `summary` holds the per-class coverage, the timing
and, for labelled images, per-class IoU, Dice and Kaggle Jaccard.

**Plain photos.** An 8-bit image has no known relation to the 11-bit WorldView-3 counts the models
were trained on; its R, G, B are shifted and scaled so that their mean and spread match the model's
training statistics (from its config.json), and the page says so.
"""


_CSS = """
.gradio-container { max-width: 1480px !important; }
#dstl-header { padding: 14px 22px; border-radius: 14px; color: #f8fafc; margin-bottom: 4px;
  background: linear-gradient(120deg, #0f172a 0%, #134e4a 55%, #0f766e 100%); }
#dstl-header h1 { font-size: 1.65rem; margin: 0 0 6px 0; color: #f8fafc;
  display: flex; align-items: center; gap: 10px; }
#dstl-header p { margin: 2px 0; color: #cbd5e1; font-size: 0.95rem; }
#dstl-header i, #dstl-header b { color: #f8fafc; }
#dstl-header .dstl-badge { display: inline-block; padding: 2px 10px; margin: 8px 6px 0 0;
  border-radius: 999px; font-size: 0.78rem; font-weight: 600; background: rgba(255,255,255,0.12);
  color: #e2e8f0; }
#dstl-header .dstl-warn { background: #f59e0b; color: #1f2937; }
#dstl-header .dstl-jump { display: none; }
.dstl-coverage { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr));
  gap: 4px 18px; padding: 6px 4px; }
.dstl-cov-row { display: grid; grid-template-columns: 16px minmax(120px, 1fr) 70px 58px;
  align-items: center; gap: 8px; font-size: 0.86rem; }
.dstl-cov-hidden { opacity: 0.38; }
.dstl-swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; margin-right: 6px;
  border: 1px solid rgba(0,0,0,0.35); vertical-align: -2px; }
.dstl-cov-row .dstl-swatch { margin-right: 0; }
.dstl-cov-bar { height: 8px; background: var(--neutral-200); border-radius: 4px; overflow: hidden; }
.dstl-cov-bar span { display: block; height: 100%; }
.dstl-cov-pct { text-align: right; font-variant-numeric: tabular-nums; }
table.dstl-metrics { width: 100%; border-collapse: collapse; font-size: 0.9rem; }
table.dstl-metrics th, table.dstl-metrics td { padding: 5px 10px; text-align: right;
  border-bottom: 1px solid var(--neutral-200); font-variant-numeric: tabular-nums; }
table.dstl-metrics th:first-child, table.dstl-metrics td:first-child { text-align: left; }
table.dstl-metrics tr.dstl-mean td { font-weight: 700; border-top: 2px solid var(--neutral-400); }
.dstl-note { color: var(--body-text-color-subdued); font-size: 0.9rem; }
#dstl-status { min-height: 1.5em; }
#dstl-error:not(:has(.dstl-error)) { display: none; }
.dstl-error { border-left: 4px solid #dc2626; background: rgba(220, 38, 38, 0.08); padding: 8px 12px;
  border-radius: 6px; font-size: 0.92rem; }
.dstl-error b { color: #b91c1c; }
#dstl-files .file-preview-holder, #dstl-files table { max-height: none !important; }
#dstl-files { min-height: 0 !important; }
#dstl-upload-preview img { object-fit: contain; }
.dstl-probe p { margin: 0 0 6px 0; font-size: 0.92rem; }
.dstl-probe-row { display: grid; grid-template-columns: 14px minmax(90px, 1fr) minmax(60px, 90px) 48px;
  align-items: center; gap: 6px; font-size: 0.84rem; margin: 2px 0; }
.dstl-probe-bar { position: relative; }
.dstl-probe-thr { position: absolute; top: -2px; width: 2px; height: 12px; background: #0f172a; }
.dstl-probe-truth { font-size: 0.7rem; padding: 0 5px; border-radius: 6px; background: var(--neutral-200);
  color: var(--neutral-700); }
#dstl-link-note { font-size: 0.82rem; color: var(--body-text-color-subdued); }
#dstl-id-examples thead { display: none; }
#dstl-id-examples table { display: block; border: none; }
#dstl-id-examples tbody { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 8px; }
#dstl-id-examples tr.tr-body { display: flex; flex-direction: column-reverse; align-items: stretch;
  border: 1px solid var(--border-color-primary); border-radius: 8px; overflow: hidden; }
#dstl-id-examples td { padding: 4px !important; border: none !important; text-align: center; }
#dstl-id-examples td.image .container { width: 100% !important; height: auto !important; border: none; }
#dstl-id-examples td.image img { width: 100%; height: auto; aspect-ratio: 1; object-fit: cover; }
#dstl-id-examples td .table { font-size: 0.72rem; white-space: normal; line-height: 1.2; }
#dstl-status p { margin: 0; }
@media (max-width: 720px) {
  .gradio-container .main { padding-left: 8px !important; padding-right: 8px !important; }
  #dstl-results { order: -1; }
  #dstl-mode label { padding: 4px 10px; font-size: 0.85rem; }
  #dstl-header { padding: 10px 14px; border-radius: 10px; }
  #dstl-header h1 { font-size: 1.15rem; margin: 0; }
  #dstl-header h1 svg { width: 22px; height: 22px; }
  #dstl-header .dstl-long { display: none; }
  #dstl-header .dstl-jump { display: inline-block; margin-top: 8px; color: #5eead4; font-weight: 600;
    font-size: 0.85rem; }
  #dstl-header .dstl-badge { margin-top: 6px; font-size: 0.7rem; }
}
#dstl-card { font-size: 0.88rem; }
#dstl-classes label { background: var(--block-background-fill) !important;
  color: var(--body-text-color) !important; border: 1px solid var(--border-color-primary) !important; }
#dstl-classes label:not(.selected) { opacity: 0.6; }
"""


def page_css() -> str:
    """The page's CSS, with each class toggle drawn in its class colour."""
    per_class = "".join(
        f'#dstl-classes input[name="{c.id}"]:checked {{ background-color: {c.hex} !important; '
        f'border-color: {c.hex} !important; }}\n'
        f'#dstl-classes label:has(input[name="{c.id}"]) {{ border-left: 5px solid {c.hex} !important; }}\n'
        for c in CLASSES)
    return _CSS + per_class


def upload_note(max_bytes: int, max_pixels: int) -> str:
    """The hint under the upload box (Markdown)."""
    return (f"<span class='dstl-note'>DSTL TIFFs: `ID.tif`, `ID_P.tif`, `ID_M.tif`, `ID_A.tif` for 20-band "
            f"input. Up to {max_bytes / 2**20:.0f} MB per file and {max_pixels / 1e6:.1f} megapixels.</span>")

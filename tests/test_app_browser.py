"""The page in a real browser: Debian's Chromium driven by Playwright against the app on a loopback port.

What a visitor does and sees: the page opens on a finished segmentation; they zoom into it, drag
the compare slider, read a pixel's probabilities on the heat map; segment images and uploads;
make mistakes (the page keeps one consistent state, with the message beside the last good
result); upload an RGB photo without the model choice sticking; share a link to an upload;
download the files of the view they see; use a phone-sized window. Screenshots go to
$DSTL_TEST_ARTIFACTS (if set) or the test's temporary folder.

The app runs in this process on a tiny synthetic dataset (`dstl.synthetic`) with tiny randomly
initialised UNets saved in Hub layout; nothing depends on the bundled weights.
"""

import io
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.app_harness import save_tiny_model, serve_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("DSTL_TEST_ARTIFACTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (/usr/bin/chromium); apt-get install -y chromium")
    from dstl.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("browser-app")
    generate_dataset(root / "data", n_train=2, n_test=1, size=(128, 144), seed=11)
    weights = [save_tiny_model(root / "m20", 20, 1), save_tiny_model(root / "rgb", 3, 2)]
    with serve_app(["--data", str(root / "data"), "--weights", *map(str, weights), "--no-bundled"],
                   name="dstl_app_browser") as served:
        yield {**served, "root": root}


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def open_page(browser, server, viewport=None, url=None):
    context = browser.new_context(viewport=viewport or {"width": 1440, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server["url"].rstrip("/"))
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url or server["url"])
    page.wait_for_selector("#dstl-segment-id")
    return page


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server)
    yield page
    page.context.close()


def slider_images(page) -> list[str]:
    page.wait_for_function("() => [...document.querySelectorAll('#dstl-slider img')]"
                           ".filter(i => i.complete && i.naturalWidth > 0).length === 2")
    return page.eval_on_selector_all("#dstl-slider img", "els => els.map(e => e.src)")


def fetch_picture(page, src: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB"))


def overlay_pixels(page) -> tuple[str, np.ndarray]:
    """The prediction overlay (the slider's right-hand picture) as the browser gets it."""
    src = slider_images(page)[1]
    return src, fetch_picture(page, src)


def wait_for_new_overlay(page, old_src: str, timeout_ms: float | None = None) -> tuple[str, np.ndarray]:
    page.wait_for_function("old => { const i = document.querySelectorAll('#dstl-slider img')[1];"
                           " return i && i.src !== old && i.complete; }", arg=old_src,
                           **({} if timeout_ms is None else {"timeout": timeout_ms}))
    return overlay_pixels(page)


def open_accordion(page, label: str, first_input: str) -> None:
    """Open the accordion `label` and wait until `first_input` inside it takes typing.

    Gradio mounts a closed accordion's children only when it is first opened, and an input is
    visible (and actionable for Playwright) a frame before its value binding is live: a value
    typed in that window is overwritten by the component's own value as the binding starts, and
    the event it sends carries the old value. Measured with `fill` at once: 10 of 12 typed values
    lost; after two animation frames: 0 of 12 (this was the "threshold after an upload" flake).
    A person cannot type within those ~30 ms; a test can.
    """
    page.click(f"button:has-text('{label}')")
    page.wait_for_selector(first_input, state="visible")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def pick_image(page, image_id: str) -> None:
    page.click("button[role=tab]:has-text('Dataset image')")
    page.click("#dstl-image-id input")
    page.keyboard.press("Control+A")
    page.keyboard.type(image_id[-5:])  # search by part of the id
    page.click(f"#dstl-image-id ul.option-list li:has-text('{image_id}')")


def segment_image(page, image_id: str) -> None:
    pick_image(page, image_id)
    page.click("#dstl-segment-id")
    page.wait_for_selector(f"#dstl-status:has-text('{image_id}'):has-text('segmented')")


def copy_link(page) -> str:
    page.click("#dstl-link")
    link, deadline = "", time.monotonic() + TIMEOUT_MS / 1000
    while "?view=" not in link and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        link = page.evaluate("() => navigator.clipboard.readText()")
    assert "?view=" in link, f"no link copied: {link!r}"
    assert page.input_value("#dstl-link-box textarea, #dstl-link-box input") == link  # shown as well
    return link


def top_visible_class(result) -> int:
    """A class drawn on top somewhere in `result`'s overlay (so hiding it changes the picture)."""
    from dstl.render import DRAW_ORDER

    coverage = result.coverage(result.thresholds)
    return next(k for k in reversed(DRAW_ORDER) if coverage[k - 1] > 0.01)


def photo(folder: Path, name="my_photo.png", size=(100, 120), seed=0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / name)
    return folder / name


def dstl_files(server, image_id: str, products="3PMA") -> list[str]:
    data = server["root"] / "data"
    return [str(data / "three_band" / f"{image_id}.tif") if p == "3" else
            str(data / "sixteen_band" / f"{image_id}_{p}.tif") for p in products]


def test_the_page_opens_on_a_finished_result_to_zoom_compare_and_probe(page, server, artifacts):
    service = server["service"]
    first = service.labelled_ids()[0]
    # Nothing clicked: the example computed at start-up is there, finished.
    status = page.inner_text("#dstl-status")
    assert first in status and "shown on arrival" in status and "ground truth ✓" in status
    image_src, overlay_src = slider_images(page)
    assert "_image" in image_src and "_overlay" in overlay_src
    page.screenshot(path=str(artifacts / "01-arrival.png"))
    page.click("button[role=tab]:has-text('Prediction vs truth')")
    page.wait_for_selector("#dstl-metrics:has-text('Mean of')")
    assert "…" not in page.inner_text("#dstl-metrics")  # the polygon scores too, already
    page.click("button[role=tab]:has-text('Compare')")

    # The compare slider: dragging its handle moves where the overlay is cut.
    overlay_img = page.locator("#dstl-slider img").nth(1)
    clip_before = overlay_img.evaluate("e => e.style.clipPath")
    page.locator("#dstl-slider .icon-wrap").scroll_into_view_if_needed()
    handle = page.locator("#dstl-slider .icon-wrap").bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 60, y, steps=5)
    page.mouse.move(x - 120, y, steps=5)
    page.mouse.up()
    assert overlay_img.evaluate("e => e.style.clipPath") != clip_before

    # Zoom: the wheel over the picture scales it; the reset button brings it back.
    box = page.locator("#dstl-slider img").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.4)
    for _ in range(6):
        page.mouse.wheel(0, -240)
        page.wait_for_timeout(60)
    page.wait_for_function("() => /scale\\((?!1\\))/.test("
                           "document.querySelector('#dstl-slider img').style.transform)")
    page.screenshot(path=str(artifacts / "02-zoomed.png"))

    # Prediction against the truth, on the same slider.
    page.click("#dstl-mode label:has-text('ground truth')")
    truth_pair = page.wait_for_function(
        "() => { const s = [...document.querySelectorAll('#dstl-slider img')].map(i => i.src);"
        " return s.length === 2 && s[1].includes('_truth') ? s : null; }").json_value()
    assert "_overlay" in truth_pair[0]
    assert "ground truth" in page.inner_text("#dstl-slider-caption")

    # The heat map of one class, and a click on it reads all ten classes at that pixel.
    page.click("button[role=tab]:has-text('Probabilities')")
    page.wait_for_function("() => { const i = document.querySelector('#dstl-heat img');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    heat = page.locator("#dstl-heat img").bounding_box()
    page.mouse.click(heat["x"] + heat["width"] * 0.4, heat["y"] + heat["height"] * 0.3)
    page.wait_for_selector("#dstl-probe:has-text('Pixel x =')")
    probe = page.inner_text("#dstl-probe")
    result = service.segment_image(first, None).result  # the kept example: the page's result
    x, y = (int(v) for v in re.search(r"Pixel x = (\d+), y = (\d+)", probe).groups())
    expected = result.probe(x, y, result.thresholds)["probability"]
    top_class = max(expected, key=expected.get)
    assert f"{expected[top_class]:.2f}" in probe
    assert probe.count("\n") >= 10  # a row per class
    page.screenshot(path=str(artifacts / "03-probe.png"))


def test_an_error_after_a_result_keeps_that_result_with_the_message_beside_it(page, server, artifacts):
    service = server["service"]
    image_id = service.dataset.train_ids[1]
    segment_image(page, image_id)
    before = slider_images(page)
    status_before = page.inner_text("#dstl-status")

    page.click("button[role=tab]:has-text('Upload')")
    page.set_input_files("#dstl-files input[type=file]", dstl_files(server, image_id, "3PM"))
    # Told before anything runs, in the upload box ...
    page.wait_for_selector(f"#dstl-upload-info:has-text('{image_id}_A.tif is missing')")
    page.click("#dstl-segment-upload")
    # ... and, on trying anyway, next to the result, which stays the previous one, whole.
    page.wait_for_selector(f"#dstl-error:has-text('{image_id}_A.tif is missing')")
    banner = page.inner_text("#dstl-error")
    assert "Cannot segment the upload" in banner and f"still shows the previous result, {image_id}" in banner
    assert page.inner_text("#dstl-status") == status_before
    assert slider_images(page) == before
    assert page.locator("#dstl-slider .error").count() == 0  # no "Error" pill over the picture
    page.screenshot(path=str(artifacts / "04-error-after-result.png"))

    # Four files, all names visible in the upload box (no scrolling), and the banner goes.
    page.click("#dstl-clear")
    page.wait_for_selector("#dstl-upload-info:has-text('ID_A.tif for 20-band input')")  # cleared
    page.set_input_files("#dstl-files input[type=file]", dstl_files(server, image_id))
    page.wait_for_selector("#dstl-upload-info:has-text('the four DSTL TIFFs')")
    box = page.locator("#dstl-files").bounding_box()
    for name in (Path(f).name for f in dstl_files(server, image_id)):
        row = page.locator(f"#dstl-files td.filename[aria-label='{name}']").bounding_box()
        assert box["y"] <= row["y"] and row["y"] + row["height"] <= box["y"] + box["height"], name
    assert page.eval_on_selector("#dstl-files table", "t => { let e = t; while (e && e.id !== 'dstl-files') {"
                                 " if (e.scrollHeight > e.clientHeight + 1) return false;"
                                 " e = e.parentElement; } return true; }"), "the file list scrolls"
    page.click("#dstl-segment-upload")
    page.wait_for_selector(f"#dstl-status:has-text('{image_id}'):has-text('upload')")
    assert page.inner_text("#dstl-error").strip() == ""
    page.screenshot(path=str(artifacts / "05-four-tiffs.png"))


def test_an_rgb_upload_does_not_change_the_model_for_the_next_image(page, server, artifacts, tmp_path):
    service = server["service"]
    image_id = service.dataset.train_ids[0]
    # The visitor picks the 20-band model; an RGB photo needs another one, for that image only.
    page.click("#dstl-model input")
    page.click("#dstl-model ul.option-list li:has-text('m20')")
    page.click("button[role=tab]:has-text('Upload')")
    page.set_input_files("#dstl-files input[type=file]", str(photo(tmp_path / "p")))
    page.wait_for_selector("#dstl-upload-preview img")
    assert "8-bit RGB image, 120 × 100 px" in page.inner_text("#dstl-upload-info")
    page.click("#dstl-segment-upload")
    page.wait_for_selector("#dstl-status:has-text('my_photo')")
    status = page.inner_text("#dstl-status")
    assert "used rgb instead" in status and "rgb: UNet" in status
    assert "8-bit image" in status and "matched" in status  # what was done to the photo, said
    assert "m20" in page.input_value("#dstl-model input")  # the choice did not move
    page.screenshot(path=str(artifacts / "06-rgb-upload.png"))
    segment_image(page, image_id)
    assert "m20: UNet" in page.inner_text("#dstl-status")


def test_a_link_to_an_upload_opens_it_and_a_link_to_a_forgotten_one_says_why(browser, page, server, artifacts,
                                                                             tmp_path):
    from dstl.demo.links import encode_view_link

    page.click("button[role=tab]:has-text('Upload')")
    shared_photo = photo(tmp_path / "q", "shared.png", seed=3)
    page.set_input_files("#dstl-files input[type=file]", str(shared_photo))
    page.click("#dstl-segment-upload")
    page.wait_for_selector("#dstl-status:has-text('shared')")
    before = slider_images(page)[1]
    hidden = top_visible_class(server["service"].segment_upload([shared_photo], "rgb").result)
    page.click(f"#dstl-classes label:has(input[name='{hidden}'])")  # a class off: the link keeps it off
    _, seen = wait_for_new_overlay(page, before)
    link = copy_link(page)
    assert "while this server keeps its result" in page.inner_text("#dstl-link-note")

    shared = open_page(browser, server, url=link)
    try:
        shared.wait_for_selector("#dstl-status:has-text('Opened from a link')")
        assert "shared" in shared.inner_text("#dstl-status")
        assert not shared.is_checked(f"#dstl-classes input[name='{hidden}']")
        _, opened = overlay_pixels(shared)
        np.testing.assert_array_equal(opened, seen)
        shared.screenshot(path=str(artifacts / "07-link-to-upload.png"))
    finally:
        shared.context.close()

    gone = encode_view_link({"origin": "upload", "image_id": "shared", "model": "rgb", "token": "forgotten"},
                            [1], 0.5, [0.5] * 10)
    stale = open_page(browser, server, url=f"{server['url']}?view={gone}")
    try:
        stale.wait_for_selector("#dstl-error:has-text('no longer kept on the server')")
        assert "Cannot open the link" in stale.inner_text("#dstl-error")
        assert "shown on arrival" in stale.inner_text("#dstl-status")  # and the page is whole
        slider_images(stale)
    finally:
        stale.context.close()


def test_downloads_follow_the_view_after_a_toggle(page, server, artifacts):
    from dstl.classes import class_by_id

    service = server["service"]
    image_id = service.dataset.train_ids[0]
    segment_image(page, image_id)
    hidden = top_visible_class(service.segment_image(image_id, None).result)
    name = class_by_id(hidden).name
    src, _ = overlay_pixels(page)
    page.click(f"#dstl-classes label:has(input[name='{hidden}'])")
    wait_for_new_overlay(page, src)
    page.click("button[role=tab]:has-text('Downloads')")
    page.click("#dstl-export")
    files = {}
    for suffix in ("_masks.tif", ".geojson", ".csv", "_overlay.png", "_metrics.json"):
        page.wait_for_selector(f"#dstl-downloads a[download='{image_id}{suffix}']")
        href = page.get_attribute(f"#dstl-downloads a[download='{image_id}{suffix}']", "href")
        files[suffix] = page.request.get(href).body()
    assert f"{hidden} {name}" not in page.inner_text("#dstl-downloads-note")
    page.screenshot(path=str(artifacts / "08-downloads.png"))
    shown = [k for k in range(1, 11) if k != hidden]
    with tifffile.TiffFile(io.BytesIO(files["_masks.tif"])) as tif:
        masks = tif.asarray()
        assert json.loads(tif.pages.first.description)["view"]["classes_shown"] == shown
    assert masks.shape[0] == 10 and not masks[hidden - 1].any()
    geo = json.loads(files[".geojson"])
    assert geo["view"]["classes_shown"] == shown and all(f["properties"]["class_id"] != hidden
                                                          for f in geo["features"])
    rows = [row.split(",", 2) for row in files[".csv"].decode().splitlines()[1:]]
    assert [r[2] for r in rows if r[1] == str(hidden)] == ["MULTIPOLYGON EMPTY"]
    metrics = json.loads(files["_metrics.json"])
    assert name not in metrics["metrics"]["per_class"] and hidden not in metrics["metrics"]["mean_over"]
    picture_view = json.loads(Image.open(io.BytesIO(files["_overlay.png"])).text["dstl:view"])
    assert picture_view["classes_shown"] == shown
    # Another toggle: the prepared files no longer describe the view, so they are taken away.
    page.click(f"#dstl-classes label:has(input[name='{hidden}'])")
    page.wait_for_function("() => !document.querySelector('#dstl-downloads a[download]')")


def test_a_phone_sees_the_result_first_and_is_brought_back_to_it(browser, server, artifacts):
    phone = open_page(browser, server, viewport={"width": 390, "height": 844})
    try:
        slider_images(phone)
        top = phone.locator("#dstl-slider").bounding_box()["y"]
        assert top < 844, f"the result starts {top:.0f} px down, below the first screen"
        phone.screenshot(path=str(artifacts / "09-phone-arrival.png"))
        phone.click("#dstl-header a.dstl-jump")  # "Choose or upload an image"
        phone.locator("#dstl-segment-id").scroll_into_view_if_needed()
        phone.click("#dstl-segment-id")
        phone.wait_for_function("() => { const b = document.querySelector('#dstl-status')"
                                ".getBoundingClientRect();"
                                " return b.top >= -1 && b.top < window.innerHeight / 2; }")
        phone.wait_for_selector("#dstl-status:has-text('segmented')")
        phone.screenshot(path=str(artifacts / "10-phone-after-segment.png"))
    finally:
        phone.context.close()


def test_mistakes_are_messages_and_thresholds_redraw_without_the_model(page, server, artifacts, tmp_path):
    page.click("button[role=tab]:has-text('Upload')")
    page.click("#dstl-segment-upload")  # nothing uploaded yet: a message, not a crash
    page.wait_for_selector("#dstl-error:has-text('no file uploaded')")
    shutil.copy(photo(tmp_path / "t", "thr.png", seed=5), tmp_path / "thr.png")
    page.set_input_files("#dstl-files input[type=file]", str(tmp_path / "thr.png"))
    page.click("#dstl-segment-upload")
    page.wait_for_selector("#dstl-status:has-text('thr')")
    src, pixels = overlay_pixels(page)
    top = top_visible_class(server["service"].segment_upload([tmp_path / "thr.png"], "rgb").result)
    box = f"#dstl-thr-{top} input[type=number]"
    open_accordion(page, "Per-class thresholds", box)
    page.fill(box, "0.99")
    page.press(box, "Tab")
    _, higher = wait_for_new_overlay(page, src)
    assert np.any(higher != pixels, axis=2).mean() > 0.005
    page.screenshot(path=str(artifacts / "11-threshold.png"))

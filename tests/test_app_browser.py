"""The page in a real browser: Debian's Chromium driven by Playwright against the app on a loopback port.

Picks an image id, segments it, toggles a class off and checks the overlay's pixels change, copies a
deep link and opens it, uploads an RGB image, and checks that a mistake shows as a message in the
page. Screenshots go to $DSTL_TEST_ARTIFACTS (if set) or the test's temporary folder.

The app runs in this process on a tiny synthetic dataset (`dstl.synthetic`) with tiny randomly
initialised UNets saved in Hub layout; nothing depends on the bundled weights.
"""

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
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


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server["url"].rstrip("/"))
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server["url"])
    page.wait_for_selector("#dstl-segment-id")
    yield page
    context.close()


def overlay_pixels(page) -> tuple[str, np.ndarray]:
    """The overlay image's URL and pixels, fetched as the browser shows them."""
    src = page.eval_on_selector("#dstl-overlay img", "e => e.src")
    body = page.request.get(src).body()
    return src, np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def wait_for_new_overlay(page, old_src: str | None) -> tuple[str, np.ndarray]:
    page.wait_for_function("old => { const i = document.querySelector('#dstl-overlay img');"
                           " return i !== null && i.src !== old && i.complete; }", arg=old_src or "")
    return overlay_pixels(page)


def pick_image(page, image_id: str) -> None:
    page.click("#dstl-image-id input")
    page.keyboard.press("Control+A")
    page.keyboard.type(image_id[-5:])  # search by part of the id
    page.click(f"#dstl-image-id ul.option-list li:has-text('{image_id}')")


def test_pick_segment_toggle_a_class_and_share_a_link(page, server, artifacts):
    from dstl.render import DRAW_ORDER

    service = server["service"]
    image_id = service.dataset.train_ids[1]
    page.screenshot(path=str(artifacts / "01-start.png"), full_page=True)
    pick_image(page, image_id)
    page.click("#dstl-segment-id")
    src, before = wait_for_new_overlay(page, None)
    page.wait_for_selector(f"#dstl-status:has-text('{image_id}')")
    assert "ground truth ✓" in page.inner_text("#dstl-status")
    page.screenshot(path=str(artifacts / "02-segmented.png"), full_page=True)

    # The page's result is the cached one: use it to pick a class that is visible on top.
    result = service.segment_image(image_id, service.registry.default_key).result
    coverage = result.coverage(result.thresholds)
    shown_on_top = next(k for k in reversed(DRAW_ORDER) if coverage[k - 1] > 0.01)
    page.click(f"#dstl-classes label:has(input[name='{shown_on_top}'])")
    src2, after = wait_for_new_overlay(page, src)
    assert before.shape == after.shape
    changed = np.any(before != after, axis=2)
    assert changed.mean() > 0.005, "turning a class off did not change the overlay"
    page.screenshot(path=str(artifacts / "03-class-off.png"), full_page=True)

    page.click("button[role=tab]:has-text('Prediction vs truth')")
    page.wait_for_selector("#dstl-metrics table.dstl-metrics")
    page.wait_for_function("() => !document.querySelector('#dstl-metrics').innerText.includes('…')")
    assert "Mean" in page.inner_text("#dstl-metrics")
    page.screenshot(path=str(artifacts / "04-truth.png"), full_page=True)

    page.click("button[role=tab]:has-text('Downloads')")
    page.click("#dstl-export")
    for suffix in ("_masks.tif", ".geojson", ".csv", "_overlay.png"):
        name = image_id + suffix
        page.wait_for_selector(f"#dstl-downloads a[download='{name}']")
    page.screenshot(path=str(artifacts / "05-downloads.png"), full_page=True)

    # A link to this view: opening it shows the same image, with the class still off.
    page.click("button:has-text('Copy a link to this view')")
    link, deadline = "", time.monotonic() + TIMEOUT_MS / 1000
    while "deep_link=" not in link and time.monotonic() < deadline:  # the button fetches, then copies
        page.wait_for_timeout(200)
        link = page.evaluate("() => navigator.clipboard.readText()")
    assert "deep_link=" in link, f"no link copied: {link!r}"
    shared = page.context.new_page()
    shared.set_default_timeout(TIMEOUT_MS)
    shared.goto(link)
    shared.wait_for_selector("#dstl-status:has-text('Opened from a shared link')")
    assert image_id in shared.inner_text("#dstl-status")
    assert not shared.is_checked(f"#dstl-classes input[name='{shown_on_top}']")
    restored_src, restored = overlay_pixels(shared)
    np.testing.assert_array_equal(restored, after)
    shared.screenshot(path=str(artifacts / "06-deep-link.png"), full_page=True)
    # The shared view is live: turning the class back on gives the first picture again.
    shared.click(f"#dstl-classes label:has(input[name='{shown_on_top}'])")
    _, again = wait_for_new_overlay(shared, restored_src)
    np.testing.assert_array_equal(again, before)


def test_upload_an_rgb_image_and_see_mistakes_as_messages(page, server, artifacts, tmp_path):
    page.click("button[role=tab]:has-text('Upload')")
    page.click("#dstl-segment-upload")  # nothing uploaded yet: a message, not a crash
    page.wait_for_selector("[data-testid='toast-body']:has-text('no file uploaded')")
    page.wait_for_timeout(1000)  # the message slides in
    page.screenshot(path=str(artifacts / "07-error-message.png"))

    rng = np.random.default_rng(0)
    path = tmp_path / "my_photo.png"
    Image.fromarray(rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)).save(path)
    page.set_input_files("#dstl-files input[type=file]", str(path))
    page.wait_for_function("() => document.querySelector('#dstl-files').innerText.includes('my_photo')")
    page.click("#dstl-segment-upload")
    page.wait_for_selector("#dstl-status:has-text('my_photo')")
    status = page.inner_text("#dstl-status")
    assert "upload" in status and "120 × 100 px" in status and "used rgb instead" in status
    src, pixels = overlay_pixels(page)
    assert pixels.shape[1] / pixels.shape[0] == pytest.approx(120 / 100, rel=0.02)
    page.screenshot(path=str(artifacts / "08-upload.png"), full_page=True)

    # A per-class threshold re-renders the picture (the model does not run again).
    from dstl.render import DRAW_ORDER

    result = server["service"].segment_upload([path], "rgb").result  # the page's (cached) result
    coverage = result.coverage(result.thresholds)
    top = next(k for k in reversed(DRAW_ORDER) if coverage[k - 1] > 0.01)
    page.click("button:has-text('Per-class thresholds')")
    page.fill(f"#dstl-thr-{top} input[type=number]", "0.99")
    page.press(f"#dstl-thr-{top} input[type=number]", "Tab")
    _, higher = wait_for_new_overlay(page, src)
    assert np.any(higher != pixels, axis=2).mean() > 0.005
    page.screenshot(path=str(artifacts / "09-threshold.png"), full_page=True)

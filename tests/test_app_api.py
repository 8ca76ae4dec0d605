"""The app's public API (`segment`) through gradio_client, against the app served on a loopback port.

The app runs in this process (`prevent_thread_lock`), on a tiny synthetic DSTL dataset made by
`dstl.synthetic` and two tiny randomly initialised UNets saved in Hub layout (20-band and RGB):
nothing depends on the bundled weights. The result cache is off so that every request, including
the concurrent ones, really runs the model.
"""

import inspect
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.app_harness import ROOT, free_port, save_tiny_model, serve_app


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    from dstl.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("app")
    generate_dataset(root / "data", n_train=2, n_test=1, size=(96, 112), seed=5)
    return {"root": root, "data": root / "data", "m20": save_tiny_model(root / "m20", 20, 1),
            "rgb": save_tiny_model(root / "rgb", 3, 2)}


@pytest.fixture(scope="module")
def server(fixtures):
    flags = ["--data", str(fixtures["data"]), "--weights", str(fixtures["m20"]), str(fixtures["rgb"]),
             "--no-bundled", "--max-upload-mb", "1", "--cache-mb", "0", "--concurrency", "2"]
    with serve_app(flags) as served:
        yield served


@pytest.fixture(scope="module")
def client(server):
    return Client(server["url"], verbose=False)


def segment(client, model="", image_id="", files=()):
    return client.predict(model=model, image_id=image_id, files=[handle_file(str(f)) for f in files],
                          api_name="/segment")


def photo(folder: Path, name="photo.png", size=(80, 90), seed=0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / name)
    return folder / name


def test_segment_is_the_only_public_endpoint_and_every_parameter_has_a_default(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert list(api["named_endpoints"]) == ["/segment"]
    assert api["unnamed_endpoints"] == {}
    params = api["named_endpoints"]["/segment"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["model", "image_id", "files"]
    assert [(p["parameter_has_default"], p["parameter_default"]) for p in params] == \
        [(True, ""), (True, ""), (True, None)]


def test_only_image_id_or_only_files_is_enough(client, server, tmp_path):
    labelled = server["service"].dataset.train_ids[0]
    _, summary = client.predict(image_id=labelled, api_name="/segment")
    assert summary["image_id"] == labelled and summary["model"] == "m20"
    assert summary["reused"] is False and 0 < summary["request_seconds"]
    _, summary = client.predict(files=[handle_file(str(photo(tmp_path / "d")))], api_name="/segment")
    assert summary["source"] == "upload" and summary["model"] == "rgb"
    assert summary["input_adjustment"].startswith("8-bit image")


def test_a_server_file_that_was_never_uploaded_is_refused_with_a_message(server):
    # A raw request (gradio_client would upload a local file first): it names a file on the server.
    base = server["url"].rstrip("/")
    body = json.dumps({"data": ["", "", [{"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}]]})
    request = urllib.request.Request(f"{base}/gradio_api/call/segment", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        event_id = json.loads(r.read())["event_id"]
    with urllib.request.urlopen(f"{base}/gradio_api/call/segment/{event_id}", timeout=120) as r:
        stream = r.read().decode()
    assert "event: error" in stream
    message = stream.split("event: error", 1)[1].split("data:", 1)[1].strip()
    assert message not in ("", "null") and "/etc/hostname" in message and "not uploaded" in message


def test_no_page_event_that_sets_the_view_is_a_generator(server):
    """Gradio 6 ends a generator's event by sending its last yield's values again, which would put
    the thresholds and pictures back over a change the visitor made in between (seen: a threshold
    moved right after an upload's result was not redrawn). So the handlers that set them return."""
    demo = server["demo"]
    view_ids = {b._id for b in demo.blocks.values()
                if (getattr(b, "elem_id", None) or "").startswith("dstl-thr-")
                or getattr(b, "elem_id", None) == "dstl-slider"}
    assert len(view_ids) == 11  # ten thresholds and the compare slider
    setting = [fn for fn in demo.fns.values() if view_ids & {o._id for o in fn.outputs}]
    assert setting, "no event sets the view"
    for fn in setting:
        assert not (inspect.isgeneratorfunction(fn.fn) or inspect.isasyncgenfunction(fn.fn)), fn.name


def test_the_api_example_in_app_py_names_an_image_of_the_default_dataset(tmp_path):
    import re

    from dstl.dataset import DstlDataset
    from dstl.demo.data import ensure_demo_dataset

    ids = set(re.findall(r'image_id="([^"]+)"', (ROOT / "app.py").read_text().split('"""')[1]))
    assert ids, "app.py's docstring shows no image_id example"
    dataset = DstlDataset(ensure_demo_dataset(tmp_path / "demo", log=lambda message: None))
    assert ids <= set(dataset.image_ids)
    assert all(dataset.has_labels(i) for i in ids)


def test_pick_a_labelled_image_by_id_returns_the_overlay_and_metrics(client, server):
    labelled = server["service"].dataset.train_ids[0]
    overlay_path, summary = segment(client, image_id=labelled)
    assert summary["image_id"] == labelled and summary["source"] == "dataset"
    assert summary["model"] == "m20" and len(summary["bands"]) == 20  # the best model for 20 bands
    assert summary["has_ground_truth"] is True
    per_class = summary["metrics"]["per_class"]
    assert len(per_class) == 10
    for scores in per_class.values():
        assert set(scores) >= {"iou", "dice", "jaccard"}
    assert summary["metrics"]["mean"]["iou"] is not None and summary["metrics"]["mean"]["jaccard"] is not None
    picture = np.asarray(Image.open(overlay_path))
    assert picture.shape[1] == summary["width"] and picture.shape[0] > summary["height"]  # legend below


def test_unlabelled_image_and_the_rgb_model_by_name(client, server):
    test_id = server["service"].dataset.test_ids[0]
    _, summary = segment(client, model="rgb", image_id=test_id)
    assert summary["model"] == "rgb" and summary["bands"] == ["R", "G", "B"]
    assert summary["has_ground_truth"] is False and summary["metrics"] is None


def test_upload_an_rgb_image(client, tmp_path):
    overlay_path, summary = segment(client, files=[photo(tmp_path / "up")])
    assert summary["source"] == "upload" and summary["image_id"] == "photo"
    assert summary["model"] == "rgb" and (summary["height"], summary["width"]) == (80, 90)
    assert np.asarray(Image.open(overlay_path)).shape[1] == 90


def test_upload_the_four_dstl_tiffs_of_one_image_uses_the_20_band_model(client, fixtures, tmp_path):
    image_id = "synth_9100_0_0"
    sources = [fixtures["data"] / "three_band" / f"{image_id}.tif",
               *[fixtures["data"] / "sixteen_band" / f"{image_id}_{p}.tif" for p in "PMA"]]
    files = []
    for n, src in enumerate(sources):
        (tmp_path / str(n)).mkdir()
        files.append(shutil.copy(src, tmp_path / str(n) / src.name))
    _, summary = segment(client, files=files)
    assert summary["model"] == "m20" and len(summary["bands"]) == 20 and summary["image_id"] == image_id
    assert summary["metrics"] is None  # an upload carries no labels


@pytest.mark.parametrize("kwargs, match", [
    ({"image_id": "6120_2_2"}, "unknown image id '6120_2_2'"),
    ({"model": "m20"}, "no image id given"),
    ({"image_id": "../three_band/x"}, "unknown image id"),
    ({}, "no image id given"),
    ({"model": "nope", "image_id": "synth_9100_0_0"}, "unknown model 'nope'; choose one of: m20, rgb"),
])
def test_bad_requests_are_clear_errors(client, kwargs, match):
    with pytest.raises(AppError, match=match):
        segment(client, **kwargs)


def test_bad_uploads_are_clear_errors(client, tmp_path):
    text = tmp_path / "t" / "notes.txt"
    text.parent.mkdir()
    text.write_text("hello")
    with pytest.raises(AppError, match="notes.txt: unsupported file type '.txt'"):
        segment(client, files=[text])
    broken = tmp_path / "b" / "broken.tif"
    broken.parent.mkdir()
    broken.write_bytes(b"II*\x00" + b"\x00" * 40)
    with pytest.raises(AppError, match="broken.tif") as e:
        segment(client, files=[broken])
    assert "/tmp" not in str(e.value) and "Traceback" not in str(e.value)
    with pytest.raises(AppError, match=r"model m20 needs all 20 bands .*, but the image has RGB only"):
        segment(client, model="m20", files=[photo(tmp_path / "p")])
    with pytest.raises(AppError, match="either image_id or files, not both"):
        segment(client, image_id="synth_9100_0_0", files=[photo(tmp_path / "q")])


def test_too_large_uploads_are_refused(client, tmp_path):
    big = photo(tmp_path / "big", "big.png", size=(700, 700))  # ~1.4 MB of noise > the 1 MB limit
    assert big.stat().st_size > 2**20
    with pytest.raises(Exception, match="exceeds the maximum file size"):
        segment(client, files=[big])
    # The server enforces the limit too, whatever the client does.
    boundary = "dstlboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode()
    body = head + big.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(client.src.rstrip("/") + "/gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=60)
    assert e.value.code == 413


def test_concurrent_clients_all_get_their_own_correct_answers(server, tmp_path):
    service = server["service"]
    ids = service.dataset.train_ids + service.dataset.test_ids
    pic = photo(tmp_path / "c", "crowd.png", seed=3)
    requests = [{"image_id": ids[0]}, {"image_id": ids[1]}, {"files": [pic]}, {"image_id": ids[2]},
                {"image_id": ids[0], "model": "rgb"}]
    # Reference answers, one at a time.
    reference = [segment(Client(server["url"], verbose=False), **r)[1] for r in requests]
    answers = [None] * len(requests)
    errors = []

    def run(i):
        try:
            answers[i] = segment(Client(server["url"], verbose=False), **requests[i])[1]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert time.perf_counter() - start < 300
    for got, ref in zip(answers, reference, strict=True):
        assert (got["image_id"], got["model"], got["height"], got["width"]) == \
            (ref["image_id"], ref["model"], ref["height"], ref["width"])
        for name, fraction in ref["coverage"].items():
            assert got["coverage"][name] == pytest.approx(fraction, abs=2e-3)
    assert len({json.dumps(a["coverage"], sort_keys=True) for a in answers}) == len(answers)


@pytest.mark.slow  # two fresh Python processes importing torch and gradio
def test_the_command_line_serves_the_page_and_fails_cleanly_on_bad_flags(fixtures):
    port = free_port()
    cmd = [sys.executable, str(ROOT / "app.py"), "--data", str(fixtures["data"]), "--weights",
           str(fixtures["rgb"]), "--no-bundled", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={"PATH": "/usr/bin:/bin", "GRADIO_ANALYTICS_ENABLED": "False"})
    try:
        html = None
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    html = r.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert html is not None, proc.stdout.read() if proc.poll() is not None else "no answer"
        assert "DSTL satellite imagery segmentation" in html
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    bad = subprocess.run([sys.executable, str(ROOT / "app.py"), "--data", str(fixtures["root"] / "nowhere"),
                          "--weights", str(fixtures["rgb"]), "--no-bundled"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in bad.stderr

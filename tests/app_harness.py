"""Serving app.py in the test process on a loopback port, for the API and browser tests.

Not a test module: `tests/test_app_api.py` and `tests/test_app_browser.py` import it. The app is
served exactly as `python app.py` serves it (settings parsed from command-line flags with an
empty environment, `build_service`, `build_app`, `launch`), but `prevent_thread_lock` returns
control to the test instead of blocking.
"""

import contextlib
import importlib.util
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_tiny_model(folder: Path, in_channels: int, seed: int) -> Path:
    """A randomly initialised UNet (base width 4, 64 px tiles) in Hub layout: 20 bands or R, G, B."""
    import torch

    from dstl.bands import ALL_BANDS, RGB_BANDS
    from dstl.models import UNet, config_for, save_pretrained

    torch.manual_seed(seed)
    module = UNet(in_channels=in_channels, base_width=4, dropout=0.0)
    bands = ALL_BANDS if in_channels == 20 else RGB_BANDS
    return save_pretrained(module, config_for(module, bands=bands, tile_size=64), folder)


def load_app_module(name: str = "dstl_app"):
    """app.py imported as a module under `name` (it is a script, not part of a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import would: Gradio inspects the module of app.py's classes
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def serve_app(flags: Sequence[str], name: str = "dstl_app") -> Iterator[dict]:
    """Serve the app with command-line `flags` (plus a free --port) until the block ends.

    Yields {"url": "http://127.0.0.1:PORT/", "service": the DemoService, "app": app.py's module,
    "demo": the gr.Blocks served}.
    """
    from dstl.demo.settings import build_service, parse_args

    app = load_app_module(name)
    port = free_port()
    settings = parse_args([*flags, "--port", str(port)], env={})
    service = build_service(settings)
    demo = app.build_app(service, settings.concurrency)
    app.launch(demo, settings, prevent_thread_lock=True, quiet=True)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "service": service, "app": app, "demo": demo}
    finally:
        demo.close()

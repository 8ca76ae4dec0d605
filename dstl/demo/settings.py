"""The demo's settings: command-line flags, with environment variables as defaults (for Spaces).

    python app.py [--data DATA] [--weights SRC ...] [--port N] [--share]

| flag               | environment variable   | default                                     |
|--------------------|------------------------|---------------------------------------------|
| --data DATA        | DSTL_DATA              | the demo set (made once, see below)         |
| --layouts DIR      | DSTL_LAYOUTS           | ../shared/real beside the clone, if present |
| --weights SRC ...  | DSTL_WEIGHTS           | none added; the bundled weights are listed  |
| --no-bundled       | DSTL_NO_BUNDLED=1      | off                                         |
| --port N           | GRADIO_SERVER_PORT     | 7860 (Gradio's default, next free if taken) |
| --host HOST        | GRADIO_SERVER_NAME     | 127.0.0.1 (Spaces set 0.0.0.0)              |
| --share            | GRADIO_SHARE=True      | off                                         |
| --concurrency N    | DSTL_CONCURRENCY       | 2 segmentations at a time                   |
| --max-upload-mb N  | DSTL_MAX_UPLOAD_MB     | 200 MB per file                             |
| --max-megapixels N | DSTL_MAX_MEGAPIXELS    | 16.8 (4096 x 4096; a DSTL scene is ~11.4)   |
| --cache-mb N       | DSTL_CACHE_MB          | 1024 MB of finished results kept            |
| --mcp              | DSTL_MCP=1             | off; also serve `segment` as an MCP tool    |

DATA is a DSTL-layout folder or a Hub dataset repo ``owner/name[@revision]``. Without it the demo
set is real-layout crops of the held-out real images when a real DSTL folder with
train_geojson_v3/ is at hand (--layouts), else the bundled rule-based synthetic set
(`dstl.demo.data.resolve_data`). SRC is a weights
folder in Hub layout or a Hub model repo ``owner/name[@revision]``; DSTL_WEIGHTS holds one or
more, separated by commas or spaces. Sources given explicitly come first in the model menu (the
first is the default), the bundled ones after them.
"""

import argparse
import importlib.util
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dstl.errors import DstlError

__all__ = ["DemoSettings", "parse_args", "build_parser", "build_service"]


@dataclass
class DemoSettings:
    data: str | None = None
    layouts: str | None = None
    weights: list[str] = field(default_factory=list)
    bundled: bool = True
    port: int | None = None
    host: str | None = None
    share: bool = False
    concurrency: int = 2
    max_upload_mb: float = 200.0
    max_megapixels: float = 4096 * 4096 / 1e6
    cache_mb: float = 1024.0
    mcp: bool = False


def _env_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def build_parser(env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    env = os.environ if env is None else env
    d = DemoSettings()

    def num(name: str, default: float) -> float:
        raw = env.get(name)
        try:
            return float(raw) if raw not in (None, "") else default
        except ValueError:
            raise DstlError(f"environment variable {name}={raw!r} is not a number") from None

    p = argparse.ArgumentParser(
        prog="python app.py",
        description="The DSTL segmentation demo: a Gradio web app that segments the ten DSTL object "
                    "classes in a dataset image or an uploaded image. Environment variables (in "
                    "brackets) give defaults, e.g. as Hugging Face Space variables.")
    p.add_argument("--data", default=env.get("DSTL_DATA") or None,
                   help="DSTL-layout dataset folder, or Hub dataset repo owner/name[@revision] [DSTL_DATA]; "
                        "default: a small synthetic demo set, generated on first run")
    p.add_argument("--layouts", default=env.get("DSTL_LAYOUTS") or None, metavar="DIR",
                   help="real DSTL folder with train_geojson_v3/ (e.g. ../shared/real, the default when "
                        "present beside the clone): without --data, serve real-layout crops of the "
                        "held-out images (labels real, pixels generated), made on first run "
                        "[DSTL_LAYOUTS]")
    p.add_argument("--weights", nargs="+", default=None, metavar="SRC",
                   help="weights sources to serve in addition to the bundled ones: folders in Hub layout "
                        "or Hub repos owner/name[@revision]; the first is the default [DSTL_WEIGHTS, "
                        "comma or space separated]")
    p.add_argument("--no-bundled", action="store_true", default=_env_bool(env.get("DSTL_NO_BUNDLED")),
                   help="do not list the bundled weights (serve only --weights) [DSTL_NO_BUNDLED=1]")
    p.add_argument("--port", type=int, default=None,
                   help="port to listen on (default: Gradio's, 7860 or the next free one) "
                        "[GRADIO_SERVER_PORT]")
    p.add_argument("--host", default=None,
                   help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all) [GRADIO_SERVER_NAME]")
    p.add_argument("--share", action="store_true", default=_env_bool(env.get("GRADIO_SHARE")),
                   help="also create a public *.gradio.live link (needs internet) [GRADIO_SHARE=True]")
    p.add_argument("--concurrency", type=int, default=int(num("DSTL_CONCURRENCY", d.concurrency)),
                   help=f"segmentations run at once; others wait in the queue (default {d.concurrency}) "
                        "[DSTL_CONCURRENCY]")
    p.add_argument("--max-upload-mb", type=float, default=num("DSTL_MAX_UPLOAD_MB", d.max_upload_mb),
                   help=f"largest upload per file in MB (default {d.max_upload_mb:g}) [DSTL_MAX_UPLOAD_MB]")
    p.add_argument("--max-megapixels", type=float, default=num("DSTL_MAX_MEGAPIXELS", d.max_megapixels),
                   help=f"largest uploaded image in megapixels (default {d.max_megapixels:.1f}) "
                        "[DSTL_MAX_MEGAPIXELS]")
    p.add_argument("--cache-mb", type=float, default=num("DSTL_CACHE_MB", d.cache_mb),
                   help=f"memory for the finished results the server keeps (visitors' pages, shared links, "
                        f"reuse), MB (default {d.cache_mb:g}; 0 keeps only the newest and turns reuse off) "
                        "[DSTL_CACHE_MB]")
    p.add_argument("--mcp", action="store_true", default=_env_bool(env.get("DSTL_MCP")),
                   help="also serve the segment endpoint as a tool of Gradio's MCP server at "
                        "/gradio_api/mcp/ (needs the mcp package: pip install 'gradio[mcp]') [DSTL_MCP=1]")
    return p


def parse_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> DemoSettings:
    """Settings from `argv` (default sys.argv[1:]) with `env` (default os.environ) as defaults."""
    env = os.environ if env is None else env
    args = build_parser(env).parse_args(argv)
    weights = args.weights if args.weights is not None else \
        [w for w in re.split(r"[,\s]+", env.get("DSTL_WEIGHTS", "")) if w]
    if args.concurrency < 1:
        raise DstlError(f"--concurrency must be at least 1, got {args.concurrency}")
    for name in ("max_upload_mb", "max_megapixels", "cache_mb"):
        if getattr(args, name) < 0 or (name != "cache_mb" and getattr(args, name) == 0):
            raise DstlError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.mcp and importlib.util.find_spec("mcp") is None:
        raise DstlError("--mcp needs the mcp package, which is not installed: "
                        "pip install 'gradio[mcp]==6.31.0'")
    return DemoSettings(data=args.data, layouts=args.layouts, weights=list(weights),
                        bundled=not args.no_bundled, port=args.port, host=args.host, share=args.share,
                        concurrency=args.concurrency,
                        max_upload_mb=args.max_upload_mb, max_megapixels=args.max_megapixels,
                        cache_mb=args.cache_mb, mcp=args.mcp)


def build_service(settings: DemoSettings):
    """The `DemoService` for `settings`: weight sources, dataset (generated if needed), limits."""
    from dstl.dataset import DstlDataset
    from dstl.demo.data import resolve_data
    from dstl.demo.registry import ModelRegistry, bundled_sources
    from dstl.demo.service import DemoService, Limits

    specs = list(settings.weights) + (bundled_sources() if settings.bundled else [])
    registry = ModelRegistry(specs)
    dataset = DstlDataset(resolve_data(settings.data, layouts=settings.layouts))
    limits = Limits(max_bytes=int(settings.max_upload_mb * 2**20),
                    max_pixels=int(settings.max_megapixels * 1e6))
    return DemoService(registry, dataset, limits=limits, cache_bytes=int(settings.cache_mb * 2**20))

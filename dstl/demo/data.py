"""The dataset a demo serves: a folder given by the user, a Hub dataset repo, or the bundled
synthetic demo set, generated on first run.

The bundled demo set is small on purpose (a few 512 x 512 synthetic scenes, a couple of seconds
to write) and uses a seed the bundled weights were not trained on. It is written into a temporary
folder beside its destination and renamed into place when complete, so an interrupted first run
never leaves a half-written dataset behind.
"""

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from dstl.errors import DataError
from dstl.models.hub import parse_repo_id
from dstl.resources import checkout_root

__all__ = ["DEMO_SPEC", "default_data_dir", "ensure_demo_dataset", "resolve_data"]

#: The bundled demo set: labelled and unlabelled synthetic scenes, their size and seed.
DEMO_SPEC = {"n_train": 4, "n_test": 2, "size": (512, 512), "seed": 777}

#: The source checkout dstl runs from (None for an installed wheel: the demo set then goes to the cache).
_REPO = checkout_root()


def _writable(folder: Path) -> bool:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    return os.access(probe, os.W_OK)


def default_data_dir() -> Path:
    """data/synthetic-demo in the source checkout if writable, else ~/.cache/dstl/synthetic-demo."""
    if _REPO is not None:
        local = _REPO / "data" / "synthetic-demo"
        if (local / "grid_sizes.csv").is_file() or _writable(local.parent):
            return local
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dstl" / "synthetic-demo"
    return cache


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_demo_dataset(folder: Path | None = None, *, generate: Callable | None = None,
                        log: Callable[[str], None] = _say) -> Path:
    """The bundled synthetic demo set at `folder` (default `default_data_dir()`), generated if absent.

    Args:
        generate: ``generate(out, n_train=, n_test=, size=, seed=, progress=)`` (default
            `dstl.synthetic.generate_dataset`); `progress(image_id)` is called per image written.
        log: where progress lines go (default stderr).
    """
    folder = Path(folder) if folder else default_data_dir()
    if (folder / "grid_sizes.csv").is_file():
        return folder
    if generate is None:
        from dstl.synthetic import generate_dataset as generate
    spec = DEMO_SPEC
    log(f"dstl demo: first run: writing {spec['n_train']} labelled + {spec['n_test']} unlabelled synthetic "
        f"{spec['size'][0]}x{spec['size'][1]} scenes to {folder} (once; a few seconds)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    total = spec["n_train"] + spec["n_test"]
    done = []

    def progress(image_id: str) -> None:
        done.append(image_id)
        log(f"dstl demo:   [{len(done)}/{total}] {image_id}")

    try:
        generate(tmp, n_train=spec["n_train"], n_test=spec["n_test"], size=spec["size"], seed=spec["seed"],
                 progress=progress)
        if (folder / "grid_sizes.csv").is_file():  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            if folder.exists():
                shutil.rmtree(folder)  # an incomplete leftover: no grid_sizes.csv
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def resolve_data(spec: str | None) -> Path:
    """A DSTL-layout folder for `spec`: None -> the bundled demo set; a folder; or a Hub dataset
    repo ``owner/name[@revision]`` (downloaded once into the Hub cache; offline it uses the cache).

    Raises DataError when the spec is none of these or the download fails.
    """
    if not spec:
        return ensure_demo_dataset()
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    parsed = parse_repo_id(spec)
    if parsed is None:
        raise DataError(f"data {spec!r}: no such folder, and not a Hub dataset id (owner/name[@revision])")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    repo, revision = parsed
    try:
        return Path(snapshot_download(repo, repo_type="dataset", revision=revision or None,
                                      allow_patterns=["grid_sizes.csv", "*.csv", "three_band/*",
                                                      "sixteen_band/*"]))
    except (RepositoryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"data {spec!r}: cannot get the Hub dataset ({first}); check the id and revision, "
                        "the network, or HF_TOKEN for a private repo") from None

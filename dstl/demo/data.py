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

__all__ = ["DEMO_SPEC", "REAL_LAYOUT_DEMO", "LAYOUTS_ENV", "default_data_dir", "ensure_demo_dataset",
           "resolve_data", "find_layouts", "demo_windows", "ensure_real_layout_demo", "data_world"]

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


def resolve_data(spec: str | None, layouts: str | None = None) -> Path:
    """A DSTL-layout folder for `spec`: None -> the default demo set; a folder; or a Hub dataset
    repo ``owner/name[@revision]`` (downloaded once into the Hub cache; offline it uses the cache).

    The default demo set is the real-layout crops of the held-out images when real layouts are at
    hand (`find_layouts(layouts)`: ``--layouts``, $DSTL_LAYOUTS, or ../shared/real beside the
    clone), else the bundled rule-based synthetic set.

    Raises DataError when the spec is none of these or the download fails.
    """
    if not spec:
        real = find_layouts(layouts)
        return ensure_real_layout_demo(real) if real is not None else ensure_demo_dataset()
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


# --------------------------------------------------------------------------- real-layout demo set

#: The real-layout demo set: crops of the held-out real images (dstl.splits.REAL_HOLDOUT_IDS), so the
#: model is shown on layouts it never trained on. WINDOWS_PER_IMAGE crops of WINDOW px each, seed SEED.
REAL_LAYOUT_DEMO = {"window": 640, "per_image": 2, "seed": 777}

#: Environment variable naming a real DSTL folder (e.g. ../shared/real) for the real-layout demo set.
LAYOUTS_ENV = "DSTL_LAYOUTS"


def find_layouts(explicit: str | None = None, env: dict | None = None) -> Path | None:
    """The real DSTL folder to take layouts from: `explicit` (``--layouts``), else $DSTL_LAYOUTS,
    else ``../shared/real`` beside the clone when it holds train_geojson_v3/; None when none is at hand.

    Raises DataError when `explicit` or $DSTL_LAYOUTS is given but has no train_geojson_v3/.
    """
    env = os.environ if env is None else env
    for given, what in ((explicit, "--layouts"), (env.get(LAYOUTS_ENV), LAYOUTS_ENV)):
        if given:
            path = Path(given).expanduser()
            if not (path / "train_geojson_v3").is_dir():
                raise DataError(f"{what} {given}: no train_geojson_v3/ folder there (a real DSTL folder)")
            return path
    beside = _REPO.parent / "shared" / "real"
    return beside if (beside / "train_geojson_v3").is_dir() else None


def demo_windows(source, size: int, count: int) -> list[tuple[int, int, int, int]]:
    """`count` class-rich windows of a real image (`dstl.synthetic.real_layout.class_rich_windows`)."""
    from dstl.synthetic.real_layout import class_rich_windows

    return class_rich_windows(source, size, count)


def ensure_real_layout_demo(layouts: Path, folder: Path | None = None, *,
                            log: Callable[[str], None] = _say) -> Path:
    """The real-layout demo set made from the real folder `layouts`, generated once and cached.

    `folder` defaults to data/real-layout-demo in the repository (or ~/.cache/dstl/real-layout-demo
    if the repository is read-only). Scenes: `REAL_LAYOUT_DEMO["per_image"]` windows of each
    held-out image (`demo_windows`), labels real, pixels generated (`dstl.synthetic.real_writer`);
    ids ``synth_rl_<id>_r<row>_c<col>``. Written into a temporary folder and renamed into place.
    """
    from dstl.splits import REAL_HOLDOUT_IDS
    from dstl.synthetic.real_layout import load_real_source
    from dstl.synthetic.real_writer import generate_real_layout_dataset

    if folder is None:
        local = _REPO / "data" / "real-layout-demo"
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dstl" / "real-layout-demo"
        folder = local if (local / "grid_sizes.csv").is_file() or _writable(local.parent) else cache
    folder = Path(folder)
    if (folder / "grid_sizes.csv").is_file():
        return folder
    spec = REAL_LAYOUT_DEMO
    log(f"dstl demo: first run: writing real-layout crops ({spec['per_image']} x {spec['window']} px) of the "
        f"held-out images {', '.join(REAL_HOLDOUT_IDS)} from {layouts} to {folder} (once; seconds)")
    windows, sources = [], {}
    for rid in REAL_HOLDOUT_IDS:
        sources[rid] = load_real_source(layouts, rid)
        windows += [(rid, win) for win in demo_windows(sources[rid], spec["window"], spec["per_image"])]
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        generate_real_layout_dataset(tmp / "d", layouts, spec["seed"], windows=windows, sources=sources,
                                     progress=lambda sid: log(f"dstl demo:   {sid}"))
        if (folder / "grid_sizes.csv").is_file():  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp / "d", folder)
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def data_world(root: Path) -> str:
    """What a served folder shows, for the page: real-layout synthetic, rule-based synthetic, or other."""
    root = Path(root)
    try:
        first = (root / "grid_sizes.csv").read_text().splitlines()[1].split(",")[0]
    except (OSError, IndexError):
        first = ""
    if first.startswith("synth_rl_"):
        return ("real-layout synthetic scenes: real DSTL label geometry of held-out images, generated "
                "pixels (not real imagery)")
    if first.startswith("synth_"):
        return "rule-based synthetic scenes (invented layouts, generated pixels)"
    return "the dataset folder given"

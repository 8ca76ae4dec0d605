"""The weight sources a demo serves: found once, loaded lazily, shared by every visitor.

A source is what `dstl.models.load_model` accepts: a local folder in Hub layout (config.json,
model.safetensors, README.md) or a Hub repo id ``owner/name`` optionally pinned ``@revision``.
The bundled sources are the folders under the repository's ``weights/``
(`dstl.models.list_bundled`). Each source gets a short key shown in the model menu (the folder's
name, or the Hub id). A model is loaded the first time someone needs it and then kept: loading is
guarded by a per-source lock, so two visitors asking at once load it once, and a model in eval
mode is only read afterwards (safe to share between threads).
"""

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dstl.bands import ALL_BANDS, RGB_BANDS
from dstl.errors import BandMismatchError, WeightsError
from dstl.models import BUNDLED_DIR, DEFAULT_WEIGHTS, list_bundled, load_model
from dstl.models.hub import parse_repo_id, resolve_source

__all__ = ["WeightSource", "ModelRegistry", "describe_bands", "bundled_sources"]

def describe_bands(bands: Sequence[str]) -> str:
    """A short human description of a band list, e.g. "20 bands (R, G, B, P, M1-M8, A1-A8)"."""
    bands = tuple(bands)
    if bands == ALL_BANDS:
        return "all 20 bands (R, G, B, P, M1–M8, A1–A8)"
    if bands == RGB_BANDS:
        return "RGB only (3 bands)"
    return f"{len(bands)} bands ({', '.join(bands)})"


@dataclass(frozen=True)
class WeightSource:
    """One entry of the model menu.

    Attributes:
        key: the unique name shown in the menu and accepted by the API's ``model`` argument.
        spec: what `load_model` gets (a folder path or ``owner/name[@rev]``).
        kind: "bundled", "local" or "hub".
    """

    key: str
    spec: str
    kind: str

    @property
    def label(self) -> str:
        return f"{self.key} · {self.kind}"


def bundled_sources() -> list[str]:
    """The bundled weight folders (``weights/<name>`` with a config.json), the default one first."""
    names = list_bundled()
    names.sort(key=lambda n: (n != DEFAULT_WEIGHTS, n))
    return [str(BUNDLED_DIR / n) for n in names]


def _classify(spec: str) -> tuple[str, str, str]:
    """(kind, key, spec for load_model) of a weights source; WeightsError if it cannot be one.

    A folder is "bundled" when it lies in weights/, else "local"; a bare name is a bundled weights
    name; ``owner/name[@rev]`` is a Hub repo (downloaded only when first used).
    """
    text = str(spec).strip()
    path = Path(text).expanduser()
    if path.is_dir():
        resolved = path.resolve()
        kind = "bundled" if resolved.parent == BUNDLED_DIR.resolve() else "local"
        return kind, resolved.name, str(resolved)
    if text and "/" not in text and "\\" not in text and "@" not in text:
        folder = resolve_source(text).folder  # WeightsError naming the bundled weights if unknown
        return "bundled", text, str(folder)
    if text and not text.startswith((".", "/", "~")) and parse_repo_id(text):
        return "hub", text, text
    raise WeightsError(f"weights source {text!r}: no such folder, bundled name or Hub repo id "
                       "(owner/name[@revision])")


def _default_loader(spec: str):
    return load_model(spec)


class ModelRegistry:
    """The demo's weight sources, each loaded once on first use.

    Args:
        specs: sources in menu order (folders or Hub ids); duplicates are dropped.
        loader: ``spec -> LoadedModel`` (default `dstl.models.load_model`).

    Raises:
        WeightsError: no source given, or a spec that is neither a folder nor a Hub id.
    """

    def __init__(self, specs: Sequence[str], loader: Callable | None = None):
        self._loader = loader or _default_loader
        self.sources: list[WeightSource] = []
        seen_specs: set[str] = set()
        for given in specs:
            kind, key, spec = _classify(str(given))
            if spec in seen_specs:
                continue
            seen_specs.add(spec)
            base, n = key, 2
            while any(s.key == key for s in self.sources):
                key, n = f"{base} ({n})", n + 1
            self.sources.append(WeightSource(key, spec, kind))
        if not self.sources:
            raise WeightsError("no weights to serve: the bundled weights/ folder is empty and no "
                               "--weights source was given")
        self._models: dict[str, object] = {}
        self._locks = {s.key: threading.Lock() for s in self.sources}

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.sources]

    @property
    def default_key(self) -> str:
        return self.sources[0].key

    def source(self, key: str) -> WeightSource:
        """The source named `key` (its menu key); WeightsError naming the choices otherwise."""
        for s in self.sources:
            if s.key == key:
                return s
        raise WeightsError(f"unknown model {key!r}; choose one of: {', '.join(self.keys)}")

    def is_loaded(self, key: str) -> bool:
        return key in self._models

    def load(self, key: str):
        """The LoadedModel of `key`, loading it on first use (thread-safe; WeightsError on failure)."""
        source = self.source(key)
        model = self._models.get(key)
        if model is not None:
            return model
        with self._locks[key]:
            model = self._models.get(key)
            if model is None:
                model = self._loader(source.spec)
                self._models[key] = model
        return model

    def bands(self, key: str) -> tuple[str, ...]:
        return tuple(self.load(key).config.bands)

    def choose(self, key: str | None, scene_bands: Sequence[str], *,
               allow_switch: bool) -> tuple[str, str | None]:
        """The model to run on a scene with `scene_bands`, and a note when it is not `key`.

        A model fits when every band it needs is in the scene (a 20-band scene fits an RGB
        model too: its R, G, B are used). If `key` is empty, or does not fit and `allow_switch`
        is set, the fitting model that uses the most bands is chosen.

        Raises:
            BandMismatchError: `key` does not fit and switching is not allowed or no model fits.
        """
        scene_bands = tuple(scene_bands)

        def fits(k: str) -> bool:
            return set(self.bands(k)) <= set(scene_bands)

        if key and fits(key):
            return key, None
        if not key or allow_switch:
            candidates = []
            for k in self.keys:
                try:
                    if fits(k):
                        candidates.append(k)
                except WeightsError:
                    continue  # a source that cannot load (offline Hub id, ...) is no candidate
            if candidates:
                best = max(candidates, key=lambda k: len(self.bands(k)))  # max keeps menu order on ties
                if not key:
                    return best, None
                return best, (f"**{key}** needs {describe_bands(self.bands(key))}, but this image has "
                              f"{describe_bands(scene_bands)}: used **{best}** instead.")
        if not key:
            raise BandMismatchError(f"no model can read an image with {describe_bands(scene_bands)}")
        raise BandMismatchError(
            f"model {key} needs {describe_bands(self.bands(key))}, but the image has "
            f"{describe_bands(scene_bands)}; choose a model made for RGB images, or upload the "
            "four DSTL TIFFs (ID.tif, ID_P.tif, ID_M.tif, ID_A.tif) for 20-band input")

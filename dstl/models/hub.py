"""Weights in Hugging Face Hub layout: save, resolve, strictly load, push.

A weights folder (local, bundled under ``dstl/weights/<name>``, or a Hub model repo) holds:

    config.json         `dstl.models.config.ModelConfig.to_dict()`: architecture and constructor
                        arguments, bands, normalisation, classes, thresholds, tile size, training
    model.safetensors   the module's state dict (never pickle); its header carries a SHA-256 of the
                        tensors so that corrupted data is detected, not just truncated files
    README.md           a model card generated from the config (front matter for the Hub)

This is the Hub's own layout. The model classes get ``from_pretrained`` / ``save_pretrained`` /
``push_to_hub`` from `dstl.models.mixin.HubMixin`, which calls the functions here; why that is not
huggingface_hub's ``PyTorchModelHubMixin`` is measured in README "Hub idioms". We use
huggingface_hub's own download and cache code (`snapshot_download`, `hf_hub_download`), card
utilities (`ModelCard`, `ModelCardData`, `EvalResult`) and upload API (`HfApi.upload_folder`).

Weights sources (`resolve_source`): None -> the bundled default ``weights/unet-20band``; a bare name
such as ``unet-rgb`` -> ``weights/unet-rgb``; an existing folder; or a Hub repo id ``owner/name``
optionally pinned as ``owner/name@revision`` (branch, tag or full commit sha). Hub downloads go
through the Hugging Face cache (``HF_HUB_CACHE``); with ``HF_HUB_OFFLINE=1`` only the cache is used.
huggingface_hub reads those variables when it is imported (`huggingface_hub.constants`); set them
before importing it, or patch the constants.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dstl.atomic import atomic_path, write_text_atomic
from dstl.errors import WeightsError, one_line, short_list
from dstl.models.backbone import default_bands
from dstl.models.card import model_card
from dstl.models.config import ARCHITECTURES, CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, ModelConfig
from dstl.normalization import BandStats
from dstl.resources import package_path

#: The bundled weights live here (package data: ``dstl/weights/<name>``), one Hub-layout folder per name.
BUNDLED_DIR = package_path("weights")
#: The bundled weights `load_model(None)` uses.
DEFAULT_WEIGHTS = "unet-20band"


# Files never pushed: pickles (checkpoints, optimiser state) and hidden files.
_PUSH_IGNORE = [".*", "*/.*", "*.pt", "*.pth", "*.bin", "*.ckpt", "*.pkl", "*.pickle", "__pycache__/*"]
_REPO_RE = re.compile(r"^(?P<repo>[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9_.\-]+)(?:@(?P<rev>[^\s@]+))?$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_DIGEST_KEY = "dstl_tensor_sha256"


# ----------------------------------------------------------------------------------------------
# Building modules from a config


def unwrap_module(module: nn.Module) -> nn.Module:
    """The plain module inside DDP (``.module``) or torch.compile (``._orig_mod``) wrappers."""
    while True:
        inner = getattr(module, "_orig_mod", None) or getattr(module, "module", None)
        if not isinstance(inner, nn.Module):
            return module
        module = inner


_unwrap_module = unwrap_module  # the former private name, kept importable


def architecture_name(module: nn.Module) -> str:
    """The registry name of `module`'s class ("unet", "res50unet")."""
    cls = type(unwrap_module(module))
    for name, arch in ARCHITECTURES.items():
        if cls is arch:
            return name
    raise WeightsError(f"{cls.__name__} is not a registered architecture "
                       f"({', '.join(sorted(ARCHITECTURES))})")


def build_model(architecture: str, model_args: dict, where: str = "config",
                device: str | torch.device | None = None) -> nn.Module:
    """Instantiate `architecture` with `model_args` (randomly initialised, train mode).

    ``device="meta"`` builds shapes only (no memory, no initialisation cost), for loading weights into.
    """
    cls = ARCHITECTURES.get(architecture)
    if cls is None:
        raise WeightsError(f"{where}: unknown architecture {architecture!r} "
                           f"(known: {', '.join(sorted(ARCHITECTURES))})")
    try:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            return cls(**model_args)
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{where}: model_args not accepted by {cls.__name__}: {one_line(e)}") from None


def config_for(module: nn.Module, bands: tuple[str, ...] | None = None,
               normalization: BandStats | None = None, **fields) -> ModelConfig:
    """A `ModelConfig` describing `module` (architecture and constructor arguments taken from it).

    `bands` defaults to all 20 DSTL bands or RGB by the module's channel count, `normalization` to the
    identity; other `ModelConfig` fields (thresholds, tile_size, training, extra) pass through.
    """
    module = unwrap_module(module)
    bands = tuple(bands) if bands is not None else default_bands(module.in_channels)
    return ModelConfig(architecture=architecture_name(module), model_args=dict(module.model_args),
                       bands=bands, normalization=normalization or BandStats.identity(bands), **fields)


def _check_consistent(module: nn.Module, config: ModelConfig, where: str) -> None:
    if module.in_channels != len(config.bands):
        raise WeightsError(f"{where}: the model takes {module.in_channels} input channels but the config "
                           f"lists {len(config.bands)} bands")
    if module.num_classes != len(config.classes):
        raise WeightsError(f"{where}: the model has {module.num_classes} outputs but the config lists "
                           f"{len(config.classes)} classes")


# ----------------------------------------------------------------------------------------------
# safetensors I/O


def tensor_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and raw bytes of every tensor (sorted by name): equal iff the
    state dicts are bit for bit identical. Stored in model.safetensors; also the DDP rank fingerprint."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


_tensor_digest = tensor_digest  # the former private name, kept importable


def module_digest(module: nn.Module) -> str:
    """`tensor_digest` of `module`'s state dict (wrappers removed): equal iff every parameter and
    buffer is bit-identical. ~28 ms for the bundled 7.8 M-parameter UNet on one AVX2 core: for
    checks, not for per-call change detection (`dstl.runners.weights_fingerprint` does that)."""
    return tensor_digest(unwrap_module(module).state_dict())


def save_weights(module: nn.Module, path: str | os.PathLike) -> None:
    """Write `module`'s state dict to `path` as safetensors, atomically, with a tensor digest."""
    from safetensors.torch import save_file

    module = unwrap_module(module)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    meta = {"format": "pt", _DIGEST_KEY: tensor_digest(state)}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)


def _all_finite(t: torch.Tensor) -> bool:
    # numpy, single-threaded: per-tensor torch ops pay a thread-pool wake-up each on a busy CPU.
    a = t.numpy() if t.dtype in (torch.float16, torch.float32, torch.float64) else t.float().numpy()
    return bool(np.isfinite(a).all())


def load_weights(module: nn.Module, path: str | os.PathLike) -> None:
    """Load safetensors `path` into `module` strictly, or raise a one-line `WeightsError` naming the file.

    Refused: an unreadable (truncated, corrupted header) file; missing or unexpected keys; shape or
    dtype-kind mismatches; a tensor digest that does not match the data (corrupted tensors); NaN/inf.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # any parser failure (SafetensorError, OSError, ...) means an unusable file
        raise WeightsError(f"{path}: unreadable safetensors file ({one_line(e)}); it is truncated or "
                           "corrupted -- download or save it again") from None
    module = unwrap_module(module)
    expected = module.state_dict()
    missing = sorted(k for k in expected if k not in state)
    unexpected = sorted(k for k in state if k not in expected)
    wrong = [f"{k} file {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in expected.items()
             if k in state and (state[k].shape != v.shape
                                or state[k].dtype.is_floating_point != v.dtype.is_floating_point)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({short_list(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({short_list(unexpected)})")
        if wrong:
            parts.append(f"{len(wrong)} shape/dtype mismatches ({short_list(wrong, 2)})")
        raise WeightsError(f"{path}: does not match {type(module).__name__}({module.model_args}): "
                           + "; ".join(parts))
    if _DIGEST_KEY in meta and meta[_DIGEST_KEY] != tensor_digest(state):
        raise WeightsError(f"{path}: tensor data does not match its recorded checksum; the file is "
                           "corrupted -- download or save it again")
    bad = [k for k, t in state.items() if t.dtype.is_floating_point and not _all_finite(t)]
    if bad:
        raise WeightsError(f"{path}: {len(bad)} tensors contain NaN or inf ({short_list(bad)})")
    # A module built on the meta device (shapes only) takes the loaded tensors themselves, in the
    # module's dtypes (a file saved from a bf16 module still loads into the float32 architecture).
    assign = any(t.is_meta for t in expected.values())
    state = {k: t.to(expected[k].dtype) for k, t in state.items()}
    try:
        module.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as e:
        raise WeightsError(f"{path}: {one_line(e)}") from None
    if assign and any(t.is_meta for t in [*module.parameters(), *module.buffers()]):
        raise WeightsError(f"{path}: some tensors of {type(module).__name__} were not loaded")


# ----------------------------------------------------------------------------------------------
# Saving and loading folders


def save_pretrained(module: nn.Module, config: ModelConfig, folder: str | os.PathLike, *,
                    notes: str | None = None) -> Path:
    """Write `module` and `config` to `folder` in Hub layout (config.json, model.safetensors, README.md).

    The config must describe the module (same architecture and constructor arguments, channel and
    class counts); `notes` is extra Markdown for the model card. Every file is written atomically;
    other files in `folder` (metrics, plots) are left alone. Returns the folder.
    """
    module = unwrap_module(module)
    folder = Path(folder)
    where = f"saving to {folder}"
    if architecture_name(module) != config.architecture:
        raise WeightsError(f"{where}: config architecture {config.architecture!r} but the module is "
                           f"{architecture_name(module)!r}")
    if json.loads(json.dumps(module.model_args)) != json.loads(json.dumps(config.model_args)):
        raise WeightsError(f"{where}: config model_args {config.model_args} differ from the module's "
                           f"{module.model_args}")
    _check_consistent(module, config, where)
    try:
        config_text = json.dumps(config.to_dict(), indent=2) + "\n"
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{where}: config is not JSON-serialisable ({one_line(e)})") from None
    card = model_card(config, sum(p.numel() for p in module.parameters()), notes,
                      base_model=base_model_of(config))
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(module, folder / WEIGHTS_FILE)
    write_text_atomic(folder / CARD_FILE, card)
    write_text_atomic(folder / CONFIG_FILE, config_text)
    return folder


def read_config(folder: str | os.PathLike) -> ModelConfig:
    """Read and validate ``folder/config.json``; one-line `WeightsError` naming the file otherwise."""
    path = Path(folder) / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WeightsError(f"{folder}: no {CONFIG_FILE} -- not a dstl weights folder (expected "
                           f"{CONFIG_FILE}, {WEIGHTS_FILE}, {CARD_FILE})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path}: unreadable ({one_line(e)})") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise WeightsError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(d, dict):
        raise WeightsError(f"{path}: expected a JSON object, got {type(d).__name__}")
    try:
        return ModelConfig.from_dict(d)
    except WeightsError as e:
        msg = str(e)
        raise WeightsError(f"{path}: {msg.removeprefix('config: ')}") from None
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"{path}: malformed config ({type(e).__name__}: {one_line(e)})") from None


@dataclass
class LoadedModel:
    """A model ready for inference: `module` (eval mode) maps (N, C, h, w) normalised bands to logits."""

    module: nn.Module
    config: ModelConfig
    source: str

    @property
    def is_trained(self) -> bool:
        """False for weights that were never trained (config training is None)."""
        return self.config.is_trained

    @property
    def bands(self) -> tuple[str, ...]:
        return self.config.bands

    def describe(self) -> str:
        """One line: architecture, bands, source and whether the weights are trained."""
        state = "trained" if self.is_trained else "UNTRAINED weights"
        return (f"{type(self.module).__name__} ({len(self.config.bands)} bands) from {self.source} "
                f"[{state}]")


def load_folder(folder: str | os.PathLike, source: str | None = None,
                map_location: str | torch.device = "cpu") -> LoadedModel:
    """Load a Hub-layout folder strictly; the module is in eval mode on `map_location`."""
    folder = Path(folder)
    config = read_config(folder)
    # Built on the meta device: strict loading then fills every tensor, so random init would be wasted.
    module = build_model(config.architecture, config.model_args, str(folder / CONFIG_FILE), device="meta")
    _check_consistent(module, config, str(folder / CONFIG_FILE))
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise WeightsError(f"{folder}: no {WEIGHTS_FILE} -- the folder has a config but no weights")
    load_weights(module, weights)
    module.to(map_location).eval()
    return LoadedModel(module, config, source or f"folder {folder}")


# ----------------------------------------------------------------------------------------------
# Resolving a weights source


@dataclass(frozen=True)
class ResolvedSource:
    """Where a weights source points: a local `folder` holding the Hub-layout files."""

    folder: Path
    description: str
    kind: str  # "bundled", "local" or "hub"
    repo_id: str | None = None
    revision: str | None = None
    commit: str | None = None


def parse_repo_id(text: str) -> tuple[str, str | None] | None:
    """Split ``owner/name[@revision]`` into (repo_id, revision or None); None if `text` is not one."""
    m = _REPO_RE.match(text.strip())
    if not m or ".." in m["repo"] or "--" in m["repo"]:
        return None
    return m["repo"], m["rev"]


def base_model_of(config: ModelConfig) -> str | None:
    """The Hub repo id the weights' training started from (``training.init_weights`` recorded a Hub
    source, description "Hub owner/name@rev ..."), for the card's ``base_model``; None otherwise."""
    init = (config.training or {}).get("init_weights")
    if not isinstance(init, dict) or not str(init.get("description", "")).startswith("Hub "):
        return None
    parsed = parse_repo_id(str(init.get("source", "")))
    return parsed[0] if parsed else None


def list_bundled() -> list[str]:
    """Names of the bundled weights folders (those under `BUNDLED_DIR` with a config.json)."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / CONFIG_FILE).is_file())


def _bundled(name: str, is_default: bool) -> ResolvedSource:
    folder = BUNDLED_DIR / name
    rel = f"weights/{name}"
    if (folder / CONFIG_FILE).is_file():
        return ResolvedSource(folder, f"bundled {rel}", "bundled")
    how = (f"train them with `python train/train.py --data DATA --model unet --out {folder}`, or pass a "
           "weights folder or a Hub repo id (owner/name[@revision])")
    if is_default:
        raise WeightsError(f"no trained bundled weights exist yet ({rel} is missing); {how}")
    known = list_bundled()
    raise WeightsError(f"no bundled weights named {name!r} ({rel} is missing; bundled: "
                       f"{', '.join(known) if known else 'none yet'}); {how}")


def _hub_cache_hint(repo_id: str, revision: str | None, what: str) -> str:
    """Say what the local Hugging Face cache holds for `repo_id` (for not-found messages)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    cache = Path(constants.HF_HUB_CACHE)
    storage = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    if not storage.is_dir():
        return f"Hub repo {repo_id} is not in the Hugging Face cache ({cache})"
    refs_dir, snaps_dir = storage / "refs", storage / "snapshots"
    rev = revision or "main"
    ref_file = refs_dir / rev
    commit = ref_file.read_text().strip() if ref_file.is_file() else rev
    if (snaps_dir / commit).is_dir():
        return (f"{what} is not in the cached snapshot of Hub repo {repo_id}@{rev} "
                f"(commit {commit[:12]}, {cache})")
    refs = sorted(str(p.relative_to(refs_dir)) for p in refs_dir.rglob("*") if p.is_file()) \
        if refs_dir.is_dir() else []
    snaps = sorted(p.name[:12] for p in snaps_dir.iterdir()) if snaps_dir.is_dir() else []
    return (f"revision {rev!r} of Hub repo {repo_id} is not in the Hugging Face cache ({cache}; cached "
            f"refs: {', '.join(refs) or 'none'}; cached commits: {', '.join(snaps) or 'none'})")


def _hub_error(e: Exception, repo_id: str, revision: str | None, what: str) -> WeightsError:
    """Translate a huggingface_hub exception into a one-line `WeightsError` that says how to fix it."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        IncompleteSnapshotError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    ref = f"{repo_id}@{revision}" if revision else repo_id
    if isinstance(e, RevisionNotFoundError):
        return WeightsError(f"Hub repo {repo_id} has no revision {revision!r}; check the branch, tag or "
                            "commit")
    if isinstance(e, GatedRepoError):
        return WeightsError(f"Hub repo {repo_id} is gated: accept its terms on huggingface.co and set "
                            "HF_TOKEN")
    if isinstance(e, RepositoryNotFoundError):
        return WeightsError(f"Hub repo {repo_id} not found (or private: set HF_TOKEN to a token that can "
                            "read it); check the id")
    if isinstance(e, RemoteEntryNotFoundError):
        return WeightsError(f"Hub repo {ref} has no file {what}; is it the right repo?")
    if isinstance(e, IncompleteSnapshotError):
        return WeightsError(f"the cached copy of Hub repo {ref} is incomplete and the Hub cannot be "
                            "reached; run once online to complete it")
    if isinstance(e, LocalEntryNotFoundError):
        hint = _hub_cache_hint(repo_id, revision, what)
        if constants.is_offline_mode():
            return WeightsError(f"{hint} and HF_HUB_OFFLINE=1 forbids downloading {what}; run once online "
                                "(unset HF_HUB_OFFLINE) to fill the cache, or check the id and revision")
        return WeightsError(f"{hint} and the Hub could not be reached for {what}; check your connection "
                            "(or HF_ENDPOINT), the id and revision; private repos need HF_TOKEN")
    if isinstance(e, HFValidationError):
        return WeightsError(f"invalid Hub repo id {repo_id!r}: {one_line(e)}")
    if isinstance(e, HfHubHTTPError):
        return WeightsError(f"Hub request for {ref} failed: {one_line(e)}")
    return WeightsError(f"could not fetch {what} from Hub repo {ref}: {type(e).__name__}: {one_line(e)}")


def hub_download(repo_id: str, filename: str, revision: str | None = None) -> Path:
    """Fetch one file of a Hub model repo through the Hugging Face cache; `WeightsError` if impossible."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, library_name="dstl"))
    except Exception as e:  # huggingface_hub's and its HTTP client's errors need not share a base class
        raise _hub_error(e, repo_id, revision, filename) from None


def _hub(repo_id: str, revision: str | None) -> ResolvedSource:
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, revision=revision, library_name="dstl",
                                        allow_patterns=[CONFIG_FILE, WEIGHTS_FILE, CARD_FILE]))
    except Exception as e:  # see hub_download
        raise _hub_error(e, repo_id, revision, f"{CONFIG_FILE} and {WEIGHTS_FILE}") from None
    commit = folder.name
    desc = f"Hub {repo_id}@{revision or 'main'} (commit {commit[:12]})"
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise WeightsError(f"{desc} has no {name}; is it a dstl weights repo?")
    return ResolvedSource(folder, desc, "hub", repo_id, revision, commit)


def resolve_source(source: str | os.PathLike | None = None) -> ResolvedSource:
    """Resolve a weights source to a local folder (see the module docstring for the accepted forms).

    An existing path wins over a Hub id; a name without "/" is a bundled weights name; ``owner/name``
    that is not an existing folder is a Hub repo.
    """
    if source is None:
        return _bundled(DEFAULT_WEIGHTS, is_default=True)
    text = str(source).strip()
    if not text:
        raise WeightsError("empty weights source; give a folder, a bundled name or a Hub repo id")
    path = Path(text).expanduser()
    if path.is_dir():
        return ResolvedSource(path.resolve(), f"folder {path}", "local")
    if path.exists():
        raise WeightsError(f"weights source {text}: is a file; pass the folder that holds {CONFIG_FILE} "
                           f"and {WEIGHTS_FILE}")
    if "/" not in text and "\\" not in text and "@" not in text:
        if not _NAME_RE.match(text):
            raise WeightsError(f"weights source {text!r}: not a folder, bundled name or Hub repo id")
        return _bundled(text, is_default=False)
    parsed = parse_repo_id(text) if not text.startswith((".", "/", "~")) else None
    if parsed is None:
        raise WeightsError(f"weights source {text!r}: no such folder, and not a Hub repo id "
                           "(owner/name[@revision])")
    return _hub(*parsed)


def load_model(source: str | os.PathLike | None = None, *,
               map_location: str | torch.device = "cpu") -> LoadedModel:
    """Resolve `source` and load it strictly: `LoadedModel(module in eval mode, config, source)`.

    None means the bundled default (``weights/unet-20band``); until trained bundled weights exist this
    raises a `WeightsError` saying so rather than returning random weights.
    """
    resolved = resolve_source(source)
    return load_folder(resolved.folder, resolved.description, map_location)


# ----------------------------------------------------------------------------------------------
# Publishing


def _push_target(repo_id: str, token: str | None) -> tuple[str, str, str | None]:
    """(token, repo_id, branch or None), or a `WeightsError` for a missing token or an invalid id."""
    token = token or os.environ.get("HF_TOKEN")
    if not token:
        raise WeightsError("pushing to the Hub needs a token: pass token= or set HF_TOKEN (a write token "
                           "from https://huggingface.co/settings/tokens)")
    parsed = parse_repo_id(repo_id)
    if parsed is None:
        raise WeightsError(f"invalid Hub repo id {repo_id!r}; expected owner/name[@branch]")
    return token, *parsed


def _refuse_offline() -> None:
    from huggingface_hub import constants

    if constants.is_offline_mode():
        raise WeightsError("cannot push to the Hub while HF_HUB_OFFLINE=1 is set; unset it and retry")


def check_push(repo_id: str, token: str | None = None) -> None:
    """Raise the `WeightsError` that `push_to_hub` would raise for this id and token (no token, an
    invalid id, ``HF_HUB_OFFLINE=1``), without a folder and before any network call."""
    _push_target(repo_id, token)
    _refuse_offline()


def push_to_hub(folder: str | os.PathLike, repo_id: str, *, token: str | None = None, private: bool = False,
                revision: str | None = None, commit_message: str | None = None) -> str:
    """Upload a weights folder to the Hub model repo `repo_id` (created if needed); return the commit URL.

    The token comes from `token` or the ``HF_TOKEN`` environment variable; without one, or with
    ``HF_HUB_OFFLINE=1``, or if the folder does not load strictly, this raises `WeightsError` before any
    network call. `revision` (or ``repo_id@branch``) pushes to a branch, created from main if needed.
    Pickle files (``*.pt``, ``*.pth``, ``*.bin``, ``*.ckpt``) and hidden files are never uploaded.
    """
    from huggingface_hub import HfApi

    token, repo_id, branch = _push_target(repo_id, token)
    revision = revision or branch
    loaded = load_folder(folder)  # refuse to publish anything that would not load back
    _refuse_offline()
    message = commit_message or f"Upload dstl {loaded.config.architecture} weights"
    api = HfApi(token=token, library_name="dstl")
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                                 revision=revision, commit_message=message, ignore_patterns=_PUSH_IGNORE)
    except Exception as e:  # network, HTTP and auth failures all become one clear line
        raise WeightsError(f"push of {folder} to Hub repo {repo_id} failed: {type(e).__name__}: "
                           f"{one_line(e)}") from None
    return str(info.commit_url)

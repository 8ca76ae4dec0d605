"""`from_pretrained` / `save_pretrained` / `push_to_hub` on the model classes.

    model = UNet.from_pretrained("owner/name@v1")   # or a folder, or a bundled name ("unet-rgb")
    model.save_pretrained("out/my-unet")            # config.json, model.safetensors, README.md
    model.push_to_hub("owner/my-unet")              # HF_TOKEN or token=...

These are the methods users of `segmentation_models_pytorch` and huggingface_hub's
``PyTorchModelHubMixin`` expect, with the project's guarantees: loading goes through
`dstl.models.hub.load_model` (the one resolver: folder, bundled name, ``owner/name[@revision]``),
always strictly (every tensor present, no extra ones, shapes and checksum checked, config.json
validated), and only safetensors is ever read or written (no pickle fallback).

Why this is our own small class rather than a subclass of ``PyTorchModelHubMixin`` (measured on
huggingface_hub 2.4 in ``tests/models/test_mixin.py`` and README "Hub idioms"): the mixin's
config.json holds constructor arguments only, while ours must also carry bands, normalisation and
thresholds; its ``from_pretrained`` does not parse ``owner/name@revision``, loads with
``strict=False`` by default and falls back to ``pytorch_model.bin`` (pickle). A strict, safetensors-only
subclass has to override ``from_pretrained``, ``_from_pretrained``, ``save_pretrained`` and
``_save_pretrained``, i.e. everything but ``push_to_hub``, which would then save unchecked and push
without our token and offline refusals.

A subclass declares its config.json name with ``class UNet(HubMixin, nn.Module, architecture="unet")``;
that registers it in `dstl.models.config.ARCHITECTURES`, which builds modules from configs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dstl.errors import WeightsError
from dstl.models import hub
from dstl.models.config import ARCHITECTURES, ModelConfig
from dstl.runners import weights_fingerprint


class HubMixin:
    """Hub-layout loading, saving and publishing for an `nn.Module` subclass (see the module docstring).

    A module returned by `from_pretrained` carries its `ModelConfig` as ``dstl_config`` (bands,
    normalisation, thresholds, training record) and `save_pretrained` / `push_to_hub` write it back;
    a module built in code gets `dstl.models.hub.config_for`'s defaults (all 20 bands or RGB by
    channel count, identity normalisation, thresholds 0.5, untrained) unless `config` is given.
    """

    dstl_config: ModelConfig | None = None
    _dstl_loaded: tuple | None = None  # weights_fingerprint right after from_pretrained

    def __init_subclass__(cls, *, architecture: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if architecture is not None:
            if architecture in ARCHITECTURES:
                raise TypeError(f"architecture name {architecture!r} is already taken by "
                                f"{ARCHITECTURES[architecture].__name__}")
            ARCHITECTURES[architecture] = cls

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike | None = None, *, revision: str | None = None,
                        map_location: str = "cpu"):
        """The module stored at `source` (see `dstl.models.hub.resolve_source`), strictly loaded, in eval
        mode on `map_location`. `revision` pins a Hub repo id given without ``@revision``.

        Raises `WeightsError` (one line naming the source) if the weights are of another architecture,
        or anything about them is wrong.
        """
        if revision is not None:
            parsed = hub.parse_repo_id(str(source or ""))
            if parsed is None or parsed[1] is not None:
                raise WeightsError(f"revision={revision!r} needs a Hub repo id without @revision, got "
                                   f"{str(source)!r}")
            source = f"{parsed[0]}@{revision}"
        loaded = hub.load_model(source, map_location=map_location)
        if not isinstance(loaded.module, cls):
            raise WeightsError(f"{loaded.source} holds {type(loaded.module).__name__} weights (architecture "
                               f"{loaded.config.architecture!r}), not {cls.__name__}; use "
                               f"{type(loaded.module).__name__}.from_pretrained or dstl.models.load_model")
        loaded.module.dstl_config = loaded.config
        loaded.module._dstl_loaded = weights_fingerprint(loaded.module)
        return loaded.module

    def _config(self, config: ModelConfig | None) -> ModelConfig:
        if config is not None:
            return config
        if self.dstl_config is None:
            return hub.config_for(self)
        if self.dstl_config.is_trained and self._dstl_loaded != weights_fingerprint(self):
            # The loaded training record (data, metrics) describes the loaded tensors, not these.
            raise WeightsError(f"{type(self).__name__}: the weights changed since from_pretrained, so the "
                               "loaded config's training record no longer describes them; pass config= "
                               "(e.g. dataclasses.replace(model.dstl_config, training={...}))")
        return self.dstl_config

    def save_pretrained(self, save_directory: str | os.PathLike, *, config: ModelConfig | None = None,
                        notes: str | None = None) -> Path:
        """Write config.json, model.safetensors and the model card README.md to `save_directory`
        (`dstl.models.hub.save_pretrained`: atomic, refuses a config that does not describe this module).
        Returns the folder."""
        return hub.save_pretrained(self, self._config(config), save_directory, notes=notes)

    def push_to_hub(self, repo_id: str, *, config: ModelConfig | None = None, token: str | None = None,
                    private: bool = False, revision: str | None = None,
                    commit_message: str | None = None) -> str:
        """Save to a temporary folder and upload it to the Hub model repo `repo_id` (``owner/name`` or
        ``owner/name@branch``); returns the commit URL. Without a token, with ``HF_HUB_OFFLINE=1`` or
        with an invalid id this raises `WeightsError` before writing anything or touching the network.
        """
        hub.check_push(repo_id, token)
        with tempfile.TemporaryDirectory(prefix="dstl-push-") as tmp:
            folder = self.save_pretrained(Path(tmp) / "weights", config=config)
            return hub.push_to_hub(folder, repo_id, token=token, private=private, revision=revision,
                                   commit_message=commit_message)

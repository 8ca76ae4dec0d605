"""Fixtures of the model tests: `hub_offline`, an offline Hugging Face cache (`tests.hub_cache`)."""

import socket

import huggingface_hub.constants as hf_constants
import pytest

from tests.hub_cache import HubCache


@pytest.fixture
def hub_offline(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE=1 and HF_HUB_CACHE=tmp, as environment AND as huggingface_hub's constants.

    huggingface_hub reads both variables once, at import (huggingface_hub/constants.py); its download
    code then consults `constants.HF_HUB_CACHE` and `constants.is_offline_mode()` (the HTTP layer,
    utils/_http.py) at call time, so patching the constants is what makes an already-imported
    huggingface_hub honour them. Sockets are disabled too, and any connection attempt fails the test.
    """
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "ENDPOINT", "http://127.0.0.1:9")
    attempts = []

    def no_network(self, address, *args):
        attempts.append(address)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    yield HubCache(cache)
    assert attempts == [], f"network connection attempted: {attempts}"



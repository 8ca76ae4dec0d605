"""The weight sources: naming, lazy thread-safe loading, choosing the model for the bands present."""

import threading

import pytest

from dstl.bands import ALL_BANDS, RGB_BANDS
from dstl.demo.registry import ModelRegistry, describe_bands
from dstl.errors import BandMismatchError, WeightsError
from dstl.models import load_model


class CountingLoader:
    """The real `load_model`, counting calls (slowed a little so that concurrent calls overlap)."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, spec):
        with self.lock:
            self.calls.append(spec)
        threading.Event().wait(0.05)
        return load_model(spec)


def test_sources_are_named_by_folder_and_deduplicated(tiny_weights, tmp_path):
    other = tmp_path / "x" / "m20"
    other.mkdir(parents=True)
    m20, rgb = str(tiny_weights["m20"]), str(tiny_weights["rgb"])
    reg = ModelRegistry([m20, rgb, m20, str(other), "someone/dstl-unet@v1"])
    assert reg.keys == ["m20", "rgb", "m20 (2)", "someone/dstl-unet@v1"]
    assert [s.kind for s in reg.sources] == ["local", "local", "local", "hub"]
    assert reg.default_key == "m20"
    assert reg.source("rgb").label == "rgb · local"


@pytest.mark.parametrize("spec, match", [
    ("no-such-bundled-weights", "no bundled weights named"),
    ("./missing/folder", "no such folder"),
    ("not a source!", "weights source"),
])
def test_bad_sources_fail_at_startup_with_a_clear_message(spec, match):
    with pytest.raises(WeightsError, match=match):
        ModelRegistry([spec])


def test_no_sources_is_an_error():
    with pytest.raises(WeightsError, match="no weights to serve"):
        ModelRegistry([])


def test_unknown_key_names_the_choices(tiny_weights):
    reg = ModelRegistry([str(tiny_weights["m20"])])
    with pytest.raises(WeightsError, match=r"unknown model 'nope'; choose one of: m20"):
        reg.load("nope")


def test_a_model_loads_once_even_when_many_ask_at_once(tiny_weights):
    loader = CountingLoader()
    reg = ModelRegistry([str(tiny_weights["m20"])], loader=loader)
    assert not reg.is_loaded("m20")
    got = []
    threads = [threading.Thread(target=lambda: got.append(reg.load("m20"))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loader.calls) == 1
    assert all(m is got[0] for m in got)
    assert reg.is_loaded("m20")
    assert reg.bands("m20") == ALL_BANDS


def test_choose_keeps_a_fitting_model_and_switches_or_explains_otherwise(tiny_weights):
    reg = ModelRegistry([str(tiny_weights["m20"]), str(tiny_weights["rgb"])])
    # A 20-band scene fits both; the requested one is kept.
    assert reg.choose("rgb", ALL_BANDS, allow_switch=False) == ("rgb", None)
    assert reg.choose("m20", ALL_BANDS, allow_switch=False) == ("m20", None)
    # No request: the fitting model using the most bands.
    assert reg.choose(None, ALL_BANDS, allow_switch=False) == ("m20", None)
    assert reg.choose(None, RGB_BANDS, allow_switch=False) == ("rgb", None)
    # An RGB image with the 20-band model: switch with a note, or a clear error.
    key, note = reg.choose("m20", RGB_BANDS, allow_switch=True)
    assert key == "rgb"
    assert "m20" in note and "RGB only" in note and "used **rgb**" in note
    with pytest.raises(BandMismatchError, match=r"model m20 needs all 20 bands .* image has RGB only"):
        reg.choose("m20", RGB_BANDS, allow_switch=False)


def test_choose_without_any_fitting_model(tiny_weights):
    reg = ModelRegistry([str(tiny_weights["m20"])])
    with pytest.raises(BandMismatchError, match="upload the four DSTL TIFFs"):
        reg.choose("m20", RGB_BANDS, allow_switch=True)
    with pytest.raises(BandMismatchError, match="no model can read an image with RGB only"):
        reg.choose(None, RGB_BANDS, allow_switch=True)


def test_an_unreachable_hub_source_is_skipped_when_choosing(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    reg = ModelRegistry(["nobody/not-cached", str(tiny_weights["rgb"])])
    with pytest.raises(WeightsError, match="not in the Hugging Face cache"):
        reg.load("nobody/not-cached")
    assert reg.choose(None, RGB_BANDS, allow_switch=True) == ("rgb", None)
    with pytest.raises(WeightsError):  # asked for explicitly: its problem is reported, not hidden
        reg.choose("nobody/not-cached", RGB_BANDS, allow_switch=True)


def test_describe_bands():
    assert describe_bands(ALL_BANDS).startswith("all 20 bands")
    assert describe_bands(RGB_BANDS) == "RGB only (3 bands)"
    assert describe_bands(("M7", "M5")) == "2 bands (M7, M5)"

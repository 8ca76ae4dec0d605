"""The weights shipped in dstl/weights/: they load strictly, say they are synthetic, and the figures the
README and BENCHMARKS.md quote are the ones recorded in their configs.

The scores themselves were measured when the weights were trained (held-out synthetic scenes,
`python train/train.py --holdout`); `bench/bundled_weights.py` re-measures them through the CLI's inference
path. These tests keep the documents honest when the weights change.
"""

from pathlib import Path

import pytest

from dstl.bands import ALL_BANDS, RGB_BANDS
from dstl.models import BUNDLED_DIR, list_bundled, load_model

REPO = Path(__file__).resolve().parents[2]
SPECTRAL_CLASSES = (5, 6, 7, 8)  # trees, crops, waterway, standing water: told apart by their spectra


@pytest.fixture(scope="module")
def bundled():
    return {name: load_model(name) for name in ("unet-20band", "unet-rgb")}


def holdout(loaded) -> dict:
    return loaded.config.training["metrics"]["holdout"]


def test_both_models_are_bundled_and_load_strictly(bundled):
    assert {"unet-20band", "unet-rgb"} <= set(list_bundled())
    assert tuple(bundled["unet-20band"].config.bands) == ALL_BANDS
    assert tuple(bundled["unet-rgb"].config.bands) == RGB_BANDS
    assert load_model().source == bundled["unet-20band"].source  # the default


@pytest.mark.parametrize("name", ["unet-20band", "unet-rgb"])
def test_cards_say_the_training_data_was_synthetic(bundled, name):
    training = bundled[name].config.training
    assert training["synthetic"] is True
    card = (BUNDLED_DIR / name / "README.md").read_text()
    assert "Trained on SYNTHETIC data" in card
    assert training["command"].startswith("python train/train.py")
    assert f"{holdout(bundled[name])['jaccard_mean']:.3f}" in card


def test_the_documents_quote_the_recorded_held_out_scores(bundled):
    benchmarks = (REPO / "BENCHMARKS.md").read_text()
    readme = (REPO / "README.md").read_text()
    for loaded in bundled.values():
        mean = f"{holdout(loaded)['jaccard_mean']:.3f}"
        assert mean in benchmarks and mean in readme, mean


def test_the_20_band_model_beats_the_rgb_model_where_spectra_matter(bundled):
    j20, jrgb = holdout(bundled["unet-20band"])["jaccard"], holdout(bundled["unet-rgb"])["jaccard"]
    for k in SPECTRAL_CLASSES:
        assert j20[str(k)] > jrgb[str(k)], k


@pytest.mark.parametrize("name", ["unet-20band", "unet-rgb"])
def test_bundled_weights_load_as_the_architecture_they_were_trained_with(bundled, name):
    """They were trained with the "deep" dropout placement, which their config.json records; dropout has
    no parameters and is off in eval, so the placement changes neither the keys nor inference."""
    loaded = bundled[name]
    assert loaded.config.model_args["dropout_placement"] == "deep"
    assert loaded.module.model_args["dropout_placement"] == "deep"
    assert not loaded.module.training

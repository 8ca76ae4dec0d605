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
from dstl.splits import REAL_HOLDOUT_IDS, held_out, real_id

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
    if training["command"].startswith("python -m dstl.train.interpolate "):
        # Interpolated weights: both ends are recorded, and the fine-tune's end was trained by the script.
        ends = training["interpolation"]
        assert ends["b"]["command"].startswith("python train/train.py")
        assert ends["a"]["command"] and 0.0 <= ends["alpha"] <= 1.0
    else:
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


@pytest.mark.parametrize("name, placement", [("unet-20band", "original"), ("unet-rgb", "original")])
def test_bundled_weights_load_as_the_architecture_they_were_trained_with(bundled, name, placement):
    """Both bundled models are now of the final architecture, the original's dropout placement: stage
    3 (unet-rgb) and the stage-5 fine-tune behind unet-20band trained with it (stage 2 used "deep";
    dropout has no parameters, so the interpolation of the two is well defined); config.json records
    it. Dropout is off in eval, so the placement changes neither the keys nor inference."""
    loaded = bundled[name]
    assert loaded.config.model_args["dropout_placement"] == placement
    assert loaded.module.model_args["dropout_placement"] == placement
    assert not loaded.module.training


def real_layout(loaded) -> dict:
    return loaded.config.training["metrics"]["holdout_real_layout"]


@pytest.mark.parametrize("name", ["unet-20band", "unet-rgb"])
def test_real_layout_figures_are_recorded_on_the_held_out_images_only(bundled, name):
    record = real_layout(bundled[name])
    assert sorted(real_id(i) for i in record["ids"]) == sorted(REAL_HOLDOUT_IDS)
    assert record["command"].startswith("python bench/bundled_weights.py --holdout data/rl_holdout")
    training = bundled[name].config.training
    assert not held_out(training["train_ids"] + training["val_ids"])
    assert set(record["jaccard"]) == {str(k) for k in range(1, 11)}


def test_the_documents_quote_the_recorded_real_layout_scores(bundled):
    benchmarks = (REPO / "BENCHMARKS.md").read_text()
    readme = (REPO / "README.md").read_text()
    for name, loaded in bundled.items():
        mean = f"{real_layout(loaded)['jaccard_mean']:.3f}"
        assert mean in benchmarks and mean in readme, (name, mean)
        card = (BUNDLED_DIR / name / "README.md").read_text()
        assert mean in card, (name, mean)
    # the per-class figures of the shipped RGB model are the ones in the BENCHMARKS table
    rgb = real_layout(bundled["unet-rgb"])["jaccard"]
    assert "| 5 Trees |" in benchmarks and f"{rgb['5']:.3f}" in benchmarks


def test_the_rgb_model_is_behind_the_20_band_one_on_trees_crops_and_water_on_real_layouts(bundled):
    j20, jrgb = real_layout(bundled["unet-20band"])["jaccard"], real_layout(bundled["unet-rgb"])["jaccard"]
    for k in SPECTRAL_CLASSES:
        assert j20[str(k)] > jrgb[str(k)], k

"""Model cards: Hub metadata made with huggingface_hub's card utilities and read back by them
(`ModelCard.load` parses the front matter into `ModelCardData`, whose model-index parser raises on a
malformed index), the bundled cards regenerated from their configs, base_model from a Hub start.

The Hub's own server-side check (`RepoCard.validate`, a POST to /api/validate-yaml) needs the network
and is not run here; what it checks of the model-index (task.type, dataset.type/name, each metric's
type and value) is checked on the parsed data below.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results

from dstl.models import BUNDLED_DIR, UNet, config_for, load_model, save_pretrained
from dstl.models.card import DEFAULT_LICENSE, HELDOUT_KEYS, SYNTHETIC_DATASET, card_notes, model_card

REPO = Path(__file__).resolve().parents[2]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def check_model_index(meta: dict) -> None:
    """What the Hub requires of each model-index entry, on the YAML as written."""
    for entry in meta["model-index"]:
        assert isinstance(entry["name"], str) and entry["results"]
        for result in entry["results"]:
            assert result["task"]["type"] == meta["pipeline_tag"]
            assert result["dataset"]["type"] and result["dataset"]["name"]
            for metric in result["metrics"]:
                assert metric["type"] in meta["metrics"] and isinstance(metric["value"], float)


@pytest.mark.parametrize("name", ["unet-20band", "unet-rgb"])
def test_bundled_cards_carry_hub_metadata_with_the_recorded_held_out_scores(name):
    card = ModelCard.load(BUNDLED_DIR / name / "README.md")  # parses and validates the metadata
    data = card.data
    training = load_model(name).config.training
    holdout = training["metrics"]["holdout"]
    assert (data.library_name, data.pipeline_tag, data.license) == ("dstl", "image-segmentation", "unknown")
    assert data.datasets == [SYNTHETIC_DATASET] and "synthetic-data" in data.tags
    assert data.base_model is None  # stage 1 (init_weights) is a local folder, not a Hub repo
    assert training["init_weights"]["source"] in card.text and "no `base_model`" in card.text
    assert data.model_name == f"dstl-{name}"
    recorded = [training["metrics"][k] for k in HELDOUT_KEYS if k in training["metrics"]]
    assert recorded[0] is holdout
    values = [(r.metric_type, r.metric_value) for r in data.eval_results]
    assert values == [pair for h in recorded for pair in
                      (("jaccard", round(h["jaccard_mean"], 3)), ("mean_iou", round(h["iou_mean"], 3)))]
    assert {r.dataset_split for r in data.eval_results} == {"holdout"}
    meta = front_matter((BUNDLED_DIR / name / "README.md").read_text())
    check_model_index(meta)
    # The model-index round trip through huggingface_hub's own converters is lossless.
    model_name, results = model_index_to_eval_results(meta["model-index"])
    assert eval_results_to_model_index(model_name, results) == meta["model-index"]


def test_bundled_cards_are_what_the_configs_make():
    """Regenerating the cards (scripts/update_cards.py) changes nothing: the committed cards are up to
    date with their config.json, and the figures they quote are those recorded there."""
    assert load_script("update_cards").main(["--check"]) == 0


def test_stale_card_is_reported_and_rewritten(tmp_path, capsys):
    m = UNet(in_channels=3, base_width=4)
    save_pretrained(m, config_for(m, training={"data": "synthetic", "synthetic": True}), tmp_path / "w")
    card = tmp_path / "w" / "README.md"
    fresh = card.read_text()
    card.write_text(fresh.replace("license: unknown", "license: mit"))
    script = load_script("update_cards")
    assert script.main([str(tmp_path / "w"), "--check"]) == 1
    assert "stale model cards" in capsys.readouterr().err
    assert script.main([str(tmp_path / "w")]) == 0
    assert card.read_text() == fresh
    assert script.main([str(tmp_path / "nothing")]) == 2
    assert "nothing': no such folder" in capsys.readouterr().err


def test_base_model_can_be_given_when_the_starting_weights_are_published(tmp_path, capsys):
    m, cfg = trained_config(init_weights={"source": "runs/stage1", "description": "folder runs/stage1"})
    save_pretrained(m, cfg, tmp_path / "w")
    script = load_script("update_cards")
    assert script.main([str(tmp_path / "w"), "--base-model", "owner/stage1@v1"]) == 2
    assert "expected a Hub repo id owner/name (no @revision)" in capsys.readouterr().err
    assert script.main([str(tmp_path / "w"), "--base-model", "owner/stage1"]) == 0
    card = ModelCard.load(tmp_path / "w" / "README.md")
    assert card.data.base_model == "owner/stage1" and "Fine-tuned from [`owner/stage1`]" in card.text


def trained_config(**training):
    m = UNet(base_width=4)
    record = {"data": "synthetic scenes", "synthetic": True,
              "metrics": {"holdout": {"jaccard_mean": 0.41234, "iou_mean": 0.38766}}, **training}
    return m, config_for(m, training=record)


def test_base_model_is_the_hub_repo_training_started_from(tmp_path):
    m, cfg = trained_config(init_weights={"source": "owner/stage1@v2",
                                          "description": "Hub owner/stage1@v2 (commit 0123456789ab)"})
    save_pretrained(m, cfg, tmp_path / "w")
    card = ModelCard.load(tmp_path / "w" / "README.md")
    assert card.data.base_model == "owner/stage1"
    assert "Fine-tuned from [`owner/stage1`](https://huggingface.co/owner/stage1)" in card.text
    # A local starting folder that happens to look like owner/name is not a Hub id.
    m, cfg = trained_config(init_weights={"source": "runs/stage1", "description": "folder runs/stage1"})
    save_pretrained(m, cfg, tmp_path / "l")
    assert ModelCard.load(tmp_path / "l" / "README.md").data.base_model is None


def test_real_layout_held_out_results_are_a_second_model_index_dataset():
    real_layout = {"name": "5 held-out real-layout scenes", "jaccard_mean": 0.3012, "iou_mean": 0.2899}
    _, cfg = trained_config(metrics={"holdout": {"jaccard_mean": 0.41234, "iou_mean": 0.38766},
                                     "holdout_real_layout": real_layout})
    text = model_card(cfg, heldout_name="8 rule-based scenes")
    data = ModelCard(text).data
    by_dataset = {}
    for r in data.eval_results:
        by_dataset.setdefault(r.dataset_name, {})[r.metric_type] = r.metric_value
    assert by_dataset == {"8 rule-based scenes": {"jaccard": 0.412, "mean_iou": 0.388},
                          "5 held-out real-layout scenes": {"jaccard": 0.301, "mean_iou": 0.29}}
    check_model_index(front_matter(text))
    assert ("(`model-index` in the metadata; 5 held-out real-layout scenes): mean Kaggle polygon Jaccard "
            "0.301") in text


def test_recorded_license_and_datasets_win_and_an_untrained_card_has_no_results(tmp_path):
    m, cfg = trained_config(license="apache-2.0", datasets=["owner/dstl-real"], synthetic=False)
    data = ModelCard(model_card(cfg)).data
    assert (data.license, data.datasets) == ("apache-2.0", ["owner/dstl-real"])
    assert data.eval_results[0].dataset_type == "owner/dstl-real"
    assert data.eval_results[0].metric_value == 0.412
    untrained = ModelCard(model_card(config_for(UNet(base_width=4)))).data
    assert untrained.license == DEFAULT_LICENSE and "untrained" in untrained.tags
    assert untrained.eval_results is None and "model-index" not in untrained.to_dict()


def test_a_malformed_model_index_is_refused_by_huggingface_hub():
    meta = front_matter(model_card(trained_config()[1]))
    del meta["model-index"][0]["results"][0]["dataset"]
    with pytest.raises(ValueError, match="Invalid `model_index`"):
        ModelCardData(**meta)


def test_notes_survive_regeneration():
    notes = "## Extra\n\nA table | here |\n\n- and a list"
    card = model_card(trained_config()[1], notes=notes)
    assert card_notes(card) == notes
    assert model_card(trained_config()[1], notes=card_notes(card)) == card
    assert card_notes("# no notes here\n") is None


def test_card_round_trips_through_model_card_save(tmp_path):
    text = model_card(trained_config()[1], 123)
    ModelCard(text).save(tmp_path / "README.md")
    assert (tmp_path / "README.md").read_text() == text
    assert json.dumps(front_matter(text))  # plain YAML: strings, numbers, lists, mappings


def test_bench_record_writes_held_out_figures_that_the_card_then_quotes(tmp_path, monkeypatch):
    # The bench script puts the checkout first on sys.path (it runs as a script); restored after the
    # test, so that later tests still find the installed wheel's metadata, not the checkout's.
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = importlib.util.spec_from_file_location("bundled_weights", REPO / "bench" / "bundled_weights.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    m, cfg = trained_config()
    save_pretrained(m, cfg, tmp_path / "w")
    col = {"precision": "auto", "kaggle_jaccard": {k: 0.1 * k / 2 for k in range(1, 11)},
           "kaggle_jaccard_mean": 0.275, "pixel_iou": {k: 0.05 * k for k in range(1, 11)},
           "pixel_iou_mean": 0.275}
    bench.record_metrics(tmp_path / "w", "holdout_real_layout", col, ["synth_rl_6040_1_3"],
                         Path("data/rl_holdout"), "python bench/bundled_weights.py --holdout data/rl_holdout",
                         "1 real-layout scene")
    record = load_model(tmp_path / "w").config.training["metrics"]["holdout_real_layout"]
    assert record["jaccard"]["10"] == 0.5 and record["ids"] == ["synth_rl_6040_1_3"]
    assert record["name"] == "1 real-layout scene" and record["dataset"] == "rl_holdout"
    load_script("update_cards").main([str(tmp_path / "w")])
    data = ModelCard.load(tmp_path / "w" / "README.md").data
    assert {(r.dataset_name, r.metric_type, r.metric_value) for r in data.eval_results} >= {
        ("1 real-layout scene", "jaccard", 0.275), ("1 real-layout scene", "mean_iou", 0.275)}

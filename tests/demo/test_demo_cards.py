"""Model card summaries: architecture, bands, and an unmissable note on what the weights learnt from."""

from dstl.demo.cards import card_markdown, short_summary, training_facts
from dstl.demo.registry import ModelRegistry


def test_untrained_weights_are_reported_as_such(tiny_weights):
    reg = ModelRegistry([str(tiny_weights["m20"])])
    facts = training_facts(reg.load("m20").config)
    assert facts == {"trained": False, "synthetic": False, "data": None, "jaccard": None, "jaccard_on": None}
    card = card_markdown(reg, "m20")
    assert "UNet (base width 4)" in card and "M parameters" in card and "local folder" in card
    assert "all 20 bands" in card and "tiles of 64 px" in card
    assert "Untrained weights" in card
    assert short_summary(reg, "m20") == \
        "m20: UNet, all 20 bands (R, G, B, P, M1–M8, A1–A8), UNTRAINED (random weights)"


def test_synthetic_training_is_flagged_with_its_held_out_score(tiny_weights):
    reg = ModelRegistry([str(tiny_weights["rgb"])])
    facts = training_facts(reg.load("rgb").config)
    assert facts["trained"] and facts["synthetic"]
    assert facts["jaccard"] == 0.4321 and facts["jaccard_on"] == "held-out synthetic scenes"
    card = card_markdown(reg, "rgb")
    assert "Trained on SYNTHETIC scenes" in card and "RGB only" in card
    assert "Synthetic DSTL-layout scenes" in card and "0.432 on held-out synthetic scenes" in card
    assert "trained on SYNTHETIC scenes" in short_summary(reg, "rgb")


def test_synthetic_is_recognised_from_the_data_description_alone():
    class Config:
        training = {"data_description": "Synthetic scenes, seeds 0-7", "val_scores": {"jaccard_mean": 0.3}}

    facts = training_facts(Config())
    assert facts["synthetic"] and facts["jaccard"] == 0.3 and facts["jaccard_on"] == "validation images"

    class Real:
        training = {"data_description": "The 25 labelled DSTL training images"}

    assert training_facts(Real())["synthetic"] is False

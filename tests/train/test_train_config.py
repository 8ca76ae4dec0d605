"""dstl/train/config.py: defaults, recipe files, overrides; unknown keys and bad values rejected."""

import argparse

import pytest

from dstl.train.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    list_recipes,
    load_recipe,
    parse_set_args,
    recipe_description,
)
from dstl.train.train import build_parser, resolve_config


def test_the_recipes_exist_and_validate():
    names = list_recipes()
    assert {"unet_real", "res50unet_real", "unet_synth_quick", "unet_rgb_synth_quick", "unet_synth_continue",
            "unet_rgb_synth_continue"} <= set(names)
    for name in names:
        cfg = load_recipe(name)
        assert isinstance(cfg, TrainConfig)
        assert recipe_description(name).strip(), f"recipe {name} lacks a description"
    assert load_recipe("unet_rgb_synth_quick").bands == "rgb"
    assert load_recipe("unet_synth_quick").bands == "all"
    assert load_recipe("res50unet_real").model == "res50unet"


@pytest.mark.parametrize("stage", ["quick", "continue"])
def test_the_synthetic_recipes_of_the_two_bundled_models_differ_only_by_bands(stage):
    a = load_recipe(f"unet_synth_{stage}").to_dict()
    b = load_recipe(f"unet_rgb_synth_{stage}").to_dict()
    assert {k for k in a if a[k] != b[k]} == {"bands"}


def test_recipe_with_unknown_key_is_rejected(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('model = "unet"\nepochz = 3\n')
    with pytest.raises(ConfigError, match="unknown key 'epochz'"):
        load_recipe(str(path))


def test_recipe_with_wrong_type_is_rejected(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('epochs = "many"\n')
    with pytest.raises(ConfigError, match="epochs expects int"):
        load_recipe(str(path))


def test_unknown_recipe_name_lists_the_available_ones():
    with pytest.raises(ConfigError, match="unet_synth_quick"):
        load_recipe("no_such_recipe")


def test_set_values_are_coerced_to_the_field_types():
    cfg = apply_overrides(TrainConfig(), parse_set_args([
        "epochs=5", "lr=3e-4", "compile=true", "rare_classes=[9, 10]", "model_args.base_width=8",
        "class_weights=[1,1,1,1,1,1,1,1,2,2]"]), "--set")
    assert cfg.epochs == 5 and isinstance(cfg.epochs, int)
    assert cfg.lr == pytest.approx(3e-4)
    assert cfg.compile is True
    assert cfg.rare_classes == [9, 10]
    assert cfg.model_args == {"base_width": 8}
    assert cfg.class_weights[-1] == 2


@pytest.mark.parametrize("item, message", [
    ("epochs=abc", "epochs expects int"),
    ("epochs=0", "epochs must be >= 1"),
    ("crop_size=100", "crop_size must be a positive multiple of 32"),
    ("loss=mse", "loss must be one of"),
    ("sample_by=pixels", "sample_by must be one of"),
    ("bogus=1", "unknown key 'bogus'"),
    ("rare_classes=[11]", "rare_classes must be class ids"),
    ("model_args.in_channels=3", "follow from bands"),
    ("pretrained_backbone=/x.pth", "res50unet only"),
    ("compile=maybe", "compile expects bool"),
    ("epochs", "key=value"),
])
def test_bad_overrides_fail_with_one_line_naming_the_key(item, message):
    with pytest.raises(ConfigError, match=message) as e:
        apply_overrides(TrainConfig(), parse_set_args([item]), "--set")
    assert "\n" not in str(e.value)


def test_precedence_defaults_recipe_set_flags():
    parser = build_parser()
    args = parser.parse_args(["--data", "d", "--out", "o", "--recipe", "unet_synth_quick",
                              "--set", "epochs=7", "--set", "lr=0.5", "--lr", "0.25"])
    cfg, recipe = resolve_config(args)
    assert recipe == "unet_synth_quick"
    assert cfg.epochs == 7            # --set over the recipe
    assert cfg.lr == 0.25             # explicit flag over --set
    assert cfg.crop_size == load_recipe("unet_synth_quick").crop_size  # recipe over defaults


def test_model_flag_conflicting_with_the_recipe_is_an_error():
    args = build_parser().parse_args(["--data", "d", "--out", "o", "--recipe", "unet_synth_quick",
                                      "--model", "res50unet"])
    with pytest.raises(ConfigError, match="conflicts with recipe"):
        resolve_config(args)


def test_model_or_recipe_is_required():
    args = argparse.Namespace(**{**vars(build_parser().parse_args(["--data", "d", "--out", "o"]))})
    with pytest.raises(ConfigError, match="--model"):
        resolve_config(args)


def test_res50unet_backbone_may_be_switched_off():
    off = parse_set_args(["pretrained_backbone=none"])
    cfg = apply_overrides(load_recipe("res50unet_real"), off, "--set")
    assert cfg.pretrained_backbone is None

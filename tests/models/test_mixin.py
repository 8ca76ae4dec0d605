"""`UNet.from_pretrained` / `save_pretrained` / `push_to_hub` (dstl.models.mixin.HubMixin), through
folders, bundled names and an offline Hub cache laid out as huggingface_hub lays it out; and, at the
end, what huggingface_hub's own ``PyTorchModelHubMixin`` does with the same cases (the measurement
behind README "Hub idioms": if a huggingface_hub upgrade changes these facts, these tests say so).
"""

import dataclasses
import json

import pytest
import safetensors.torch
import torch
from huggingface_hub import PyTorchModelHubMixin
from huggingface_hub.errors import HFValidationError
from torch import nn

from dstl.bands import RGB_BANDS
from dstl.errors import WeightsError
from dstl.models import ModelConfig, Res50UNet, UNet, config_for, hub, load_model, save_pretrained
from dstl.normalization import BandStats
from tests.hub_cache import COMMIT_A, COMMIT_B, folder_files


def tiny(seed: int, in_channels: int = 20) -> UNet:
    torch.manual_seed(seed)
    m = UNet(in_channels=in_channels, base_width=4)
    nn.init.normal_(m.head.weight, std=0.5)
    return m.eval()


def out(module, in_channels=20):
    x = torch.randn(1, in_channels, 32, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return module(x)


def trained_config(m: UNet) -> ModelConfig:
    stats = BandStats(config_for(m).bands, tuple(0.1 + 0.01 * i for i in range(20)), (0.2,) * 20)
    return config_for(m, normalization=stats, thresholds=[0.3] * 10, tile_size=256,
                      training={"data": "synthetic scenes", "metrics": {"holdout": {"jaccard_mean": 0.4}}})


def test_from_pretrained_folder_keeps_the_config_and_loads_strictly(tmp_path):
    m = tiny(0)
    cfg = trained_config(m)
    save_pretrained(m, cfg, tmp_path / "w")
    loaded = UNet.from_pretrained(tmp_path / "w")
    assert type(loaded) is UNet and not loaded.training
    assert torch.equal(out(loaded), out(m))
    assert loaded.dstl_config.to_dict() == cfg.to_dict()
    # Saved again untouched: the same config.json (bands, normalisation, thresholds, training record).
    loaded.save_pretrained(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "config.json").read_text()) == cfg.to_dict()
    assert load_model(tmp_path / "again").config.thresholds == (0.3,) * 10


def test_from_pretrained_bundled_name():
    rgb = UNet.from_pretrained("unet-rgb")
    assert rgb.dstl_config.bands == RGB_BANDS and rgb.in_channels == 3
    assert torch.equal(out(rgb, 3), out(load_model("unet-rgb").module, 3))


def test_save_pretrained_of_a_module_built_in_code(tmp_path):
    m = Res50UNet(in_channels=3, decoder_widths=[8, 8, 8, 8]).eval()
    folder = m.save_pretrained(tmp_path / "r")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    back = Res50UNet.from_pretrained(folder)
    assert torch.equal(out(back, 3), out(m, 3))
    assert back.dstl_config.bands == RGB_BANDS and not back.dstl_config.is_trained
    assert "These weights are untrained" in (folder / "README.md").read_text()


def test_changed_weights_need_a_config_that_describes_them(tmp_path):
    m = tiny(1)
    save_pretrained(m, trained_config(m), tmp_path / "w")
    loaded = UNet.from_pretrained(tmp_path / "w")
    with torch.no_grad():
        loaded.head.bias.add_(1.0)  # what an optimiser step does
    with pytest.raises(WeightsError, match=r"the weights changed since from_pretrained.*pass config="):
        loaded.save_pretrained(tmp_path / "x")
    assert not (tmp_path / "x").exists()
    new = dataclasses.replace(loaded.dstl_config, training={"data": "fine-tuned on more scenes"})
    loaded.save_pretrained(tmp_path / "x", config=new)
    assert load_model(tmp_path / "x").config.training == {"data": "fine-tuned on more scenes"}


def test_wrong_architecture_is_refused_naming_the_source(tmp_path):
    save_pretrained(tiny(0), config_for(tiny(0)), tmp_path / "u")
    with pytest.raises(WeightsError, match=r"folder .*/u holds UNet weights \(architecture 'unet'\), not "
                                           r"Res50UNet; use UNet.from_pretrained"):
        Res50UNet.from_pretrained(tmp_path / "u")


def test_from_pretrained_hub_ids_offline(hub_offline, tmp_path):
    a, b = tiny(10), tiny(11)
    save_pretrained(a, config_for(a), tmp_path / "A")
    save_pretrained(b, config_for(b), tmp_path / "B")
    hub_offline.add("owner/seg", COMMIT_A, folder_files(tmp_path / "A"), refs=["v1.0"])
    hub_offline.add("owner/seg", COMMIT_B, folder_files(tmp_path / "B"), refs=["main"])
    assert torch.equal(out(UNet.from_pretrained("owner/seg")), out(b))
    assert torch.equal(out(UNet.from_pretrained("owner/seg@v1.0")), out(a))
    assert torch.equal(out(UNet.from_pretrained("owner/seg", revision="v1.0")), out(a))
    assert torch.equal(out(UNet.from_pretrained(f"owner/seg@{COMMIT_A}")), out(a))
    with pytest.raises(WeightsError, match=r"revision='main' needs a Hub repo id without @revision"):
        UNet.from_pretrained("owner/seg@v1.0", revision="main")
    with pytest.raises(WeightsError, match=r"revision 'v2' of Hub repo owner/seg is not in the Hugging Face "
                                           r"cache.*HF_HUB_OFFLINE=1"):
        UNet.from_pretrained("owner/seg@v2")


def test_a_broken_config_in_a_hub_repo_names_the_cached_file(hub_offline, tmp_path):
    m = tiny(0)
    save_pretrained(m, config_for(m), tmp_path / "w")
    d = json.loads((tmp_path / "w" / "config.json").read_text())
    d["bands"][3] = d["normalization"]["bands"][3] = "X9"
    (tmp_path / "w" / "config.json").write_text(json.dumps(d))
    hub_offline.add("owner/broken", COMMIT_A, folder_files(tmp_path / "w"), refs=["main"])
    with pytest.raises(WeightsError, match=rf"hf-cache/models--owner--broken/snapshots/{COMMIT_A}/"
                                           r"config.json: unknown band 'X9' in bands"):
        UNet.from_pretrained("owner/broken")


def test_push_to_hub_refuses_before_writing_or_networking(hub_offline, monkeypatch, tmp_path):
    m = tiny(0)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hub, "save_pretrained", lambda *a, **k: pytest.fail("saved before refusing"))
    with pytest.raises(WeightsError, match="pushing to the Hub needs a token"):
        m.push_to_hub("owner/new")
    with pytest.raises(WeightsError, match="invalid Hub repo id 'not a repo'"):
        m.push_to_hub("not a repo", token="hf_x")
    with pytest.raises(WeightsError, match="cannot push to the Hub while HF_HUB_OFFLINE=1"):
        m.push_to_hub("owner/new@dev", token="hf_x")


def test_registering_an_architecture_name_twice_is_refused():
    with pytest.raises(TypeError, match="'unet' is already taken by UNet"):
        class Other(UNet, architecture="unet"):
            pass
    assert hub.ARCHITECTURES["unet"] is UNet


# ----------------------------------------------------------------------------------------------
# What huggingface_hub's PyTorchModelHubMixin (2.x) does with the same cases


class MixinNet(nn.Module, PyTorchModelHubMixin):
    def __init__(self, in_channels: int = 3, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.head = nn.Conv2d(width, 10, 1)


def test_upstream_mixin_config_is_constructor_arguments_only(tmp_path):
    MixinNet(width=8).save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == {"in_channels": 3, "width": 8}
    # Our config.json nests the constructor arguments beside bands/normalisation/thresholds: the
    # mixin does not read them and builds the default module, whose shapes then do not match.
    ours = config_for(UNet(in_channels=3, base_width=4)).to_dict()
    ours["model_args"] = {"in_channels": 3, "width": 8}
    (tmp_path / "m" / "config.json").write_text(json.dumps(ours))
    with pytest.raises(RuntimeError, match="size mismatch"):
        MixinNet.from_pretrained(tmp_path / "m")


def test_upstream_mixin_loads_non_strictly_by_default(tmp_path, capsys):
    m = MixinNet()
    m.save_pretrained(tmp_path / "m")
    sd = safetensors.torch.load_file(str(tmp_path / "m" / "model.safetensors"))
    sd.pop("head.bias")
    safetensors.torch.save_file(sd, str(tmp_path / "m" / "model.safetensors"))
    loaded = MixinNet.from_pretrained(tmp_path / "m")  # no error: head.bias keeps its random values
    assert not torch.equal(loaded.head.bias, m.head.bias)
    assert "Loading weights from local directory" in capsys.readouterr().out  # printed, not logged
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "head.bias"'):
        MixinNet.from_pretrained(tmp_path / "m", strict=True)


def test_upstream_mixin_has_no_revision_syntax_and_falls_back_to_pickle(hub_offline, tmp_path):
    with pytest.raises(HFValidationError):
        MixinNet.from_pretrained("owner/name@v1")
    m = MixinNet()
    torch.save(m.state_dict(), tmp_path / "pytorch_model.bin")
    hub_offline.add("owner/pickled", COMMIT_A, {"config.json": b"{}", "pytorch_model.bin":
                                                (tmp_path / "pytorch_model.bin").read_bytes()}, refs=["main"])
    loaded = MixinNet.from_pretrained("owner/pickled")  # no model.safetensors: torch.load of the pickle
    assert torch.equal(loaded.head.weight, m.head.weight)
    with pytest.raises(WeightsError, match="has no model.safetensors"):
        load_model("owner/pickled")  # ours never reads a pickle

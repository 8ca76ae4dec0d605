"""Fixtures for the demo's logic: tiny randomly initialised models saved in Hub layout, and
tiny DSTL-layout folders (the root conftest's `make_dstl_folder`).

The models are real `UNet`s (base width 4, tiles of 64 px) written by `dstl.models.save_pretrained`,
so loading goes through the real strict loader; their predictions are meaningless on purpose —
no test depends on the quality of any weights.
"""

from pathlib import Path

import pytest

from dstl.bands import ALL_BANDS, RGB_BANDS


def save_tiny_model(folder: Path, bands=ALL_BANDS, seed: int = 0, **fields) -> Path:
    """A randomly initialised UNet(len(bands) -> 10, base width 4) saved in Hub layout at `folder`."""
    import torch

    from dstl.models import UNet, config_for, save_pretrained

    torch.manual_seed(seed)
    module = UNet(in_channels=len(bands), base_width=4, dropout=0.0)
    fields.setdefault("tile_size", 64)
    return save_pretrained(module, config_for(module, bands=tuple(bands), **fields), folder)


SYNTHETIC_TRAINING = {
    "synthetic": True,
    "data_description": "Synthetic DSTL-layout scenes from `python -m dstl synth` (seeds 1-8).",
    "holdout": {"description": "seeds 100-101", "scores": {"jaccard_mean": 0.4321}},
}


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> dict[str, Path]:
    """{"m20": 20-band untrained, "rgb": RGB-only "trained on synthetic" (metadata only)} folders."""
    root = tmp_path_factory.mktemp("weights")
    return {
        "m20": save_tiny_model(root / "m20", ALL_BANDS, seed=1),
        "rgb": save_tiny_model(root / "rgb", RGB_BANDS, seed=2, training=SYNTHETIC_TRAINING,
                               thresholds=(0.4,) * 10),
    }


@pytest.fixture
def dstl_folder(tmp_path, make_dstl_folder) -> Path:
    """Three tiny images (odd sizes); 9001_0_0 and 9001_1_2 labelled, 9002_3_4 not."""
    return make_dstl_folder(tmp_path / "data")

"""dstl/train/checks.py: options that cannot train the model are refused before any work, in one line."""

import subprocess
import sys

import pytest

from dstl.train.checks import check_options, crop_rule
from dstl.train.config import ConfigError, TrainConfig
from tests.cli_runner import REPO, error_line, python_env


def test_the_crop_rules_come_from_the_models_themselves():
    unet = crop_rule(TrainConfig(model="unet"), 20)
    assert (unet.model, unet.multiple, unet.minimum) == ("UNet", 32, 64)  # 32 px: a 1 x 1 bottleneck
    r50 = crop_rule(TrainConfig(model="res50unet"), 20)
    assert (r50.model, r50.multiple, r50.minimum) == ("Res50UNet", 32, 32)  # deepest stage at 1/16: 2 x 2
    assert unet.largest_fitting(100) == 96 and unet.largest_fitting(63) is None


@pytest.mark.parametrize("batch, effect", [(1, "training fails"), (4, "too few for meaningful statistics")])
def test_a_unet_crop_with_a_1x1_bottleneck_is_refused_whatever_the_batch(batch, effect):
    cfg = TrainConfig(model="unet", crop_size=32, batch_size=batch)
    with pytest.raises(ConfigError, match=rf"crop_size 32 leaves UNet 1 x 1 px feature maps.*= {batch} "
                                          rf"values? per channel \({effect}\); use --crop-size 64 or larger"):
        check_options(cfg, 3)


def test_what_trains_passes():
    check_options(TrainConfig(model="unet", crop_size=64, batch_size=1), 20)
    check_options(TrainConfig(model="res50unet", crop_size=32, batch_size=1), 3)
    check_options(TrainConfig(model="unet", crop_size=64, batch_size=4), 20, world_size=4)  # 1 crop each


def test_the_batch_must_split_over_the_processes():
    with pytest.raises(ConfigError, match=r"batch_size 4 does not split over the 3 processes; use a multiple "
                                          r"of 3 \(--batch-size\)"):
        check_options(TrainConfig(batch_size=4), 20, world_size=3)


def test_the_command_refuses_crop_32_batch_1_in_one_line_before_reading_any_data(tmp_path):
    """The case of issue 14: it ended in a traceback from BatchNorm after the data was loaded."""
    args = ["--data", str(tmp_path / "none"), "--out", str(tmp_path / "w"), "--model", "unet",
            "--crop-size", "32", "--batch-size", "1"]
    res = subprocess.run([sys.executable, str(REPO / "train" / "train.py"), *args], cwd=REPO,
                         env=python_env(OMP_NUM_THREADS="1"), capture_output=True, timeout=300)
    res.stdout, res.stderr = res.stdout.decode(), res.stderr.decode()
    line = error_line(res, exit_code=2)  # one line, no traceback; the missing --data is not reached
    assert line.startswith("error: config: crop_size 32 leaves UNet 1 x 1 px feature maps")
    assert "use --crop-size 64 or larger" in line
    assert not (tmp_path / "w").exists()

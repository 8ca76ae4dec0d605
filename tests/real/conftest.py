"""Fixtures of the tests of the real DSTL files in ../shared/real (never copied into the repository).

Every test here skips, with the reason, when that folder is absent (CI has it beside the clone).
"""

import json
from pathlib import Path

import pytest

#: The real files (../shared/real/README.md): grid_sizes.csv, sample_submission.csv, cls-stats.json,
#: sixteen_band/<id>_A.tif x 26, train_geojson_v3/<id>/ x 25.
REAL = Path(__file__).resolve().parents[2].parent / "shared" / "real"

#: The 25 training images (the folders of train_geojson_v3/).
TRAIN_IDS = sorted(p.name for p in (REAL / "train_geojson_v3").iterdir()) if REAL.is_dir() else []


@pytest.fixture(scope="session")
def real() -> Path:
    """The folder of the real files; skips the test when it is absent."""
    if not (REAL / "train_geojson_v3").is_dir():
        pytest.skip(f"the real DSTL files are not at {REAL} (../shared/real beside the clone)")
    return REAL


@pytest.fixture(scope="session")
def cls_stats(real) -> dict:
    """cls-stats.json: {image id: {"0".."9" (= class - 1): {"number", "area", "perimeter"}}}."""
    return json.loads((real / "cls-stats.json").read_text())

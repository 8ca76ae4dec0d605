"""dstl.geojson_labels against the real train_geojson_v3 layers and the known answers of cls-stats.json."""

import json
from pathlib import Path

import pytest

from dstl.geojson_labels import LAYER_CLASSES, layer_files, read_geojson_labels

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real"
pytestmark = pytest.mark.skipif(not (REAL / "train_geojson_v3").is_dir(),
                                reason=f"the real DSTL label layers are not at {REAL} (../shared/real)")


def test_every_real_layer_name_is_mapped():
    names = {name for folder in (REAL / "train_geojson_v3").iterdir() for name in layer_files(folder)}
    assert names == set(LAYER_CLASSES)


@pytest.mark.parametrize("image_id", ["6120_2_2", "6110_1_2"])
def test_polygon_counts_match_the_real_wkt(image_id):
    stats = json.loads((REAL / "cls-stats.json").read_text())[image_id]
    labels = read_geojson_labels(REAL / "train_geojson_v3" / image_id)
    counts = {c: len(g.geoms) for c, g in labels.items()}
    expected = {c: stats[str(c - 1)]["number"] for c in labels}
    if image_id == "6120_2_2":  # GeoJSON v3 has one structure fewer than WKT v4 here
        expected[2] -= 1
    assert counts == expected

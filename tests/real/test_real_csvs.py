"""The real grid_sizes.csv and sample_submission.csv through the project's readers."""

import csv
from collections import Counter

from dstl.dataset import DstlDataset
from dstl.labels import WktIndex, iter_wkt_rows, read_grid_sizes
from tests.real.conftest import TRAIN_IDS


def test_grid_sizes_has_450_rows_and_an_empty_first_header_cell(real):
    with open(real / "grid_sizes.csv", newline="") as f:
        assert next(csv.reader(f)) == ["", "Xmax", "Ymin"]
    sizes = read_grid_sizes(real / "grid_sizes.csv")
    assert len(sizes) == 450
    assert sizes["6120_2_2"] == (0.009188, -0.00904) and sizes["6010_1_2"] == (0.009169, -0.009042)
    assert all(0.0089 < x < 0.0093 and -0.0091 < y < -0.0089 for x, y in sizes.values())
    regions = {i.split("_")[0] for i in sizes}
    assert len(regions) == 18 and all(0 <= int(r) <= 4 and 0 <= int(c) <= 4
                                      for r, c in (i.split("_")[1:] for i in sizes))


def test_sample_submission_has_4290_quoted_whole_image_polygons(real):
    rows = list(iter_wkt_rows(real / "sample_submission.csv"))
    assert len(rows) == 4290
    ids = list(dict.fromkeys(r.image_id for r in rows))
    assert len(ids) == 429
    assert [(r.image_id, r.class_id) for r in rows] == [(i, k) for i in ids for k in range(1, 11)]
    for r in rows:  # each row: one rectangle from (0, 0) to about a grid's (Xmax, Ymin)
        x0, y0, x1, y1 = r.geometry.bounds
        assert len(r.geometry.geoms) == 1 and not r.repaired
        assert r.geometry.area == r.geometry.envelope.area and (x0, y1) == (0.0, 0.0)
        assert 0.0089 < x1 < 0.0093 and -0.0091 < y0 < -0.0089
    # Not the image's own grid size: 4,000 of the rows hold the same (0.009188, -0.00904) rectangle.
    common = Counter(r.geometry.bounds for r in rows).most_common(1)[0]
    assert common == ((0.0, -0.00904, 0.009188, 0.0), 4000)
    with open(real / "sample_submission.csv", newline="") as f:
        assert f.readline().strip() == "ImageId,ClassType,MultipolygonWKT"
        assert f.readline().split(",", 2)[2].startswith('"POLYGON ((')


def test_the_index_reads_the_sample_submission_like_the_full_reader(real):
    index = WktIndex(real / "sample_submission.csv")
    rows = list(iter_wkt_rows(real / "sample_submission.csv"))
    assert index.image_ids == list(dict.fromkeys(r.image_id for r in rows))
    last = index.rows(index.image_ids[-1])
    assert [(r.line, r.class_id) for r in last] == [(r.line, r.class_id) for r in rows[-10:]]
    assert all(a.geometry.equals(b.geometry) for a, b in zip(last, rows[-10:], strict=True))


def test_25_plus_429_minus_4_is_450(real):
    ds = DstlDataset(real)  # labels only: train_geojson_v3/, no three_band/
    assert ds.label_source == "train_geojson_v3" and not ds.has_three_band
    assert ds.train_ids == TRAIN_IDS and len(TRAIN_IDS) == 25
    assert len(ds.test_ids) == 429 and len(ds.image_ids) == 450
    both = sorted(set(ds.train_ids) & set(ds.test_ids))
    assert both == ["6010_1_2", "6040_4_4", "6070_2_3", "6100_2_2"]
    assert set(ds.train_ids) | set(ds.test_ids) == set(ds.image_ids)

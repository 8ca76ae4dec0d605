"""The demo's default dataset when real layouts are at hand: real-layout crops of the held-out images."""

from pathlib import Path

import pytest

from dstl.demo import data
from dstl.errors import DataError
from dstl.splits import REAL_HOLDOUT_IDS, is_held_out

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "real"
needs_real = pytest.mark.skipif(not (REAL / "train_geojson_v3").is_dir(), reason="../shared/real not present")


def test_find_layouts_explicit_env_beside_or_none(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="--layouts"):
        data.find_layouts(str(tmp_path), env={})
    with pytest.raises(DataError, match="DSTL_LAYOUTS"):
        data.find_layouts(None, env={"DSTL_LAYOUTS": str(tmp_path)})
    (tmp_path / "real" / "train_geojson_v3").mkdir(parents=True)
    assert data.find_layouts(None, env={"DSTL_LAYOUTS": str(tmp_path / "real")}) == tmp_path / "real"
    monkeypatch.setattr(data, "_REPO", tmp_path / "nowhere" / "clone")
    assert data.find_layouts(None, env={}) is None
    (tmp_path / "nowhere" / "shared" / "real" / "train_geojson_v3").mkdir(parents=True)
    assert data.find_layouts(None, env={}) == tmp_path / "nowhere" / "shared" / "real"


def test_resolve_data_prefers_real_layouts_and_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "ensure_real_layout_demo", lambda layouts: tmp_path / "rl")
    monkeypatch.setattr(data, "ensure_demo_dataset", lambda: tmp_path / "bundled")
    monkeypatch.setattr(data, "find_layouts", lambda layouts=None: Path(layouts) if layouts else None)
    assert data.resolve_data(None, layouts=str(tmp_path)) == tmp_path / "rl"
    assert data.resolve_data(None) == tmp_path / "bundled"


def test_data_world_says_which(tmp_path):
    (tmp_path / "grid_sizes.csv").write_text(",Xmax,Ymin\nsynth_rl_6100_2_2_r0_c0,0.001,-0.001\n")
    assert "real-layout" in data.data_world(tmp_path) and "not real imagery" in data.data_world(tmp_path)
    (tmp_path / "grid_sizes.csv").write_text(",Xmax,Ymin\nsynth_9100_0_0,0.009,-0.009\n")
    assert "rule-based" in data.data_world(tmp_path)


@needs_real
def test_real_layout_demo_set_is_held_out_crops_made_once(tmp_path, monkeypatch):
    from dstl.dataset import DstlDataset

    monkeypatch.setitem(data.REAL_LAYOUT_DEMO, "window", 160)
    monkeypatch.setitem(data.REAL_LAYOUT_DEMO, "per_image", 1)
    lines = []
    folder = data.ensure_real_layout_demo(REAL, tmp_path / "demo", log=lines.append)
    ds = DstlDataset(folder)
    assert len(ds.image_ids) == len(REAL_HOLDOUT_IDS)
    assert all(i.startswith("synth_rl_") and is_held_out(i) for i in ds.image_ids)
    assert all(ds.image_size(i) == (160, 160) for i in ds.image_ids)
    assert all(ds.has_labels(i) for i in ds.image_ids)
    assert "real-layout" in data.data_world(folder)
    lines.clear()
    assert data.ensure_real_layout_demo(REAL, folder, log=lines.append) == folder and not lines  # cached


@needs_real
def test_demo_windows_show_many_classes_and_do_not_overlap():
    from dstl.synthetic.real_layout import load_real_source

    source = load_real_source(REAL, "6100_2_2")
    wins = data.demo_windows(source, 640, 2)
    assert wins == data.demo_windows(source, 640, 2) and len(wins) == 2
    (r1, c1, _, _), (r2, c2, _, _) = wins
    assert abs(r1 - r2) >= 640 or abs(c1 - c2) >= 640
    assert all(r + 640 <= source.height and c + 640 <= source.width for r, c, _, _ in wins)

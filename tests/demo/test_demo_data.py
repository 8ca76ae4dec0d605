"""The dataset served: a folder, a Hub dataset id, or the bundled synthetic set made on first run."""

from pathlib import Path

import pytest

from dstl.dataset import DstlDataset
from dstl.demo import data
from dstl.demo.data import DEMO_SPEC, ensure_demo_dataset, resolve_data
from dstl.errors import DataError
from dstl.synthetic import generate_dataset


def _small_generate(calls):
    def generate(out, **kw):
        calls.append(kw)
        return generate_dataset(out, **{**kw, "n_train": 1, "n_test": 1, "size": (64, 64)})
    return generate


def test_first_run_generates_the_demo_set_once_with_progress(tmp_path):
    calls, lines = [], []
    folder = ensure_demo_dataset(tmp_path / "demo", generate=_small_generate(calls), log=lines.append)
    assert folder == tmp_path / "demo"
    ds = DstlDataset(folder)
    assert len(ds.train_ids) == 1 and len(ds.test_ids) == 1
    assert calls[0]["seed"] == DEMO_SPEC["seed"] and calls[0]["size"] == DEMO_SPEC["size"]
    assert "first run" in lines[0] and lines[1].startswith("dstl demo:   [1/")
    again = ensure_demo_dataset(folder, generate=_small_generate(calls), log=lines.append)
    assert again == folder and len(calls) == 1  # not regenerated
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no temporary folders left


def test_an_interrupted_first_run_leaves_nothing_and_a_leftover_is_replaced(tmp_path):
    def failing(out, **kw):
        (Path(out) / "three_band").mkdir()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_demo_dataset(tmp_path / "demo", generate=failing, log=lambda s: None)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "demo" / "three_band").mkdir(parents=True)  # incomplete: no grid_sizes.csv
    ensure_demo_dataset(tmp_path / "demo", generate=_small_generate([]), log=lambda s: None)
    assert (tmp_path / "demo" / "grid_sizes.csv").is_file()


def test_resolve_data(tmp_path, dstl_folder, monkeypatch):
    assert resolve_data(str(dstl_folder)) == dstl_folder
    with pytest.raises(DataError, match="no such folder, and not a Hub dataset id"):
        resolve_data(str(tmp_path / "missing"))
    monkeypatch.setattr(data, "ensure_demo_dataset", lambda: tmp_path / "bundled")
    monkeypatch.setattr(data, "find_layouts", lambda layouts=None: None)  # no real layouts at hand
    assert resolve_data(None) == tmp_path / "bundled"


def test_hub_dataset_offline_and_not_cached_is_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"data 'nobody/no-data@v1': cannot get the Hub dataset"):
        resolve_data("nobody/no-data@v1")


def test_default_folder_is_in_the_repository_or_else_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_writable", lambda folder: True)
    if data._REPO is not None:  # a checkout (None when the suite runs against the installed wheel)
        assert data.default_data_dir() == data._REPO / "data" / "synthetic-demo"
    monkeypatch.setattr(data, "_writable", lambda folder: False)
    monkeypatch.setattr(data, "_REPO", tmp_path / "read-only-repo")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.default_data_dir() == tmp_path / "cache" / "dstl" / "synthetic-demo"

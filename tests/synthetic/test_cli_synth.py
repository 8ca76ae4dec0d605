"""`python -m dstl synth OUT [--train N] [--test M] [--size HxW] [--seed S]`, run as a user runs it."""

import pytest

from dstl.cli import main
from dstl.dataset import DstlDataset
from tests.cli_runner import dstl
from tests.cli_runner import error_line as any_error_line


def error_line(res) -> str:
    """The one-line message of a command that failed with exit status 2 (bad input)."""
    return any_error_line(res, exit_code=2)


def test_synth_writes_a_readable_dataset_with_progress(tmp_path):
    out = tmp_path / "data"
    res = dstl("synth", out, "--train", 2, "--test", 1, "--size", "96x100", "--seed", 3)
    assert res.returncode == 0, res.stderr
    assert "wrote 2 training and 1 test images" in res.stdout
    assert "synth" in res.stderr and "3/3" in res.stderr  # the tqdm bar
    ds = DstlDataset(out)
    assert len(ds.train_ids) == 2 and len(ds.test_ids) == 1
    assert not (out / ".partial").exists()
    # Running again needs --overwrite; with it the dataset is replaced.
    assert "--overwrite" in error_line(dstl("synth", out, "--train", 1, "--size", "96"))
    res = dstl("synth", out, "--train", 1, "--test", 0, "--size", "96", "--overwrite")
    assert res.returncode == 0, res.stderr
    assert len(DstlDataset(out).image_ids) == 1


def test_help_explains_every_argument():
    res = dstl("synth", "--help")
    assert res.returncode == 0
    for arg in ("OUT", "--train", "--test", "--size", "--seed", "--overwrite"):
        assert arg in res.stdout
    assert "3350x3400" in res.stdout  # the default size is stated


def in_process_error(capsys, *args) -> str:
    """Run the CLI in this process (fast) and return its one-line error."""
    assert main(["synth", *map(str, args)]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("size, match", [("10x20", "64 to 8192"), ("12by3", "expected HxW"),
                                         ("0x0", "64 to 8192"), ("100x", "expected HxW"),
                                         ("9000x100", "64 to 8192")])
def test_bad_size_is_a_one_line_error(tmp_path, capsys, size, match):
    msg = in_process_error(capsys, tmp_path / "d", "--size", size)
    assert match in msg and "--size" in msg
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("args, match", [(("--train", "-1"), "training images"),
                                         (("--train", "0", "--test", "0"), "at least one"),
                                         (("--seed", "-2"), "seed")])
def test_bad_counts_and_seed_are_one_line_errors(tmp_path, capsys, args, match):
    assert match in in_process_error(capsys, tmp_path / "d", "--size", "64", *args)
    assert not (tmp_path / "d").exists()


def test_a_bad_size_as_a_user_types_it(tmp_path):
    assert "--size" in error_line(dstl("synth", tmp_path / "d", "--size", "3350X"))


def test_refuses_a_non_empty_folder_that_is_not_a_synthetic_dataset(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    msg = error_line(dstl("synth", tmp_path, "--size", "64", "--train", "1", "--test", "0"))
    assert "not empty" in msg and str(tmp_path) in msg
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]

"""Synthetic datasets shared by the tests of `dstl.synthetic`, written once per session by the
generator itself (small sizes keep them fast)."""

import pytest

from dstl.synthetic import generate_dataset

#: A small dataset: 3 labelled + 2 test images of ~320 x 352 px.
SMALL = {"n_train": 3, "n_test": 2, "size": (320, 352), "seed": 7}


@pytest.fixture(scope="session")
def small_config():
    """The arguments the `small_dataset` was generated with."""
    return dict(SMALL)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """(root Path, DatasetSummary) of the SMALL dataset."""
    root = tmp_path_factory.mktemp("synth") / "small"
    summary = generate_dataset(root, **SMALL)
    return root, summary

"""`dstl.progress.print_error`: the error line starts at column 0, whatever progress bars are open."""

import io

import pytest
from tqdm import tqdm

from dstl.progress import close_progress_bars, print_error
from tests.cli_runner import assert_error_on_its_own_line, screen


@pytest.fixture(autouse=True)
def no_bars_left():
    yield
    close_progress_bars()  # a failed test must not leave bars drawing into the next one


def _bars(stream, leave_outer: bool):
    """An outer bar half done and an inner bar started, both drawn on `stream` as a terminal sees them."""
    kw = dict(file=stream, ascii=True, ncols=60, mininterval=0, miniters=1)
    outer = tqdm(total=4, desc="loading training images", leave=leave_outer, **kw)
    outer.update(2)
    inner = tqdm(total=10, desc="tiles", leave=False, **kw)
    inner.update(3)
    return outer, inner


def test_the_terminal_model_sees_an_error_printed_mid_bar():
    """Without the helper the error lands after the bar's text: what the issue reported."""
    stream = io.StringIO()
    outer = tqdm(total=4, desc="loading training images", file=stream, ascii=True, ncols=60)
    print("error: boom", file=stream)
    shown = [line for line in screen(stream.getvalue()) if "error: " in line]
    assert shown and not shown[0].startswith("error: ") and shown[0].startswith("loading training images")
    outer.close()


@pytest.mark.parametrize("leave_outer", [False, True])
def test_print_error_closes_every_open_bar_first(leave_outer):
    stream = io.StringIO()
    outer, inner = _bars(stream, leave_outer)
    print_error("boom: a file is corrupt", file=stream)
    assert_error_on_its_own_line(stream.getvalue())
    shown = [line for line in screen(stream.getvalue()) if line]
    assert shown[-1] == "error: boom: a file is corrupt"
    # A bar that asked to stay stays, finished on its own line; a transient one is gone.
    assert any(line.startswith("loading training images:  50%") for line in shown) == leave_outer
    assert not any(line.startswith("tiles") for line in shown)
    before = stream.getvalue()
    outer.close()  # closed bars never draw again (e.g. a generator finalised at exit)
    inner.update(1)
    assert stream.getvalue() == before


def test_nothing_open_is_just_the_line():
    stream = io.StringIO()
    print_error("interrupted", file=stream)
    assert stream.getvalue() == "error: interrupted\n"

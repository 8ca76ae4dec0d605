"""Progress bars and the error line: an error never starts in the middle of a bar.

tqdm draws a bar by rewriting one line of stderr (carriage returns, no newline) until the bar is
closed. A message printed while a bar is open lands on the bar's line, after its text
(``loading training images:   0%|...|error: ...``), and a bar that is closed later (a suspended
generator, garbage collection at exit) redraws itself after the message. So every command line
entry point (`python -m dstl`, `train/train.py`, `app.py`) reports a failure through
`print_error`, which first closes every open bar: tqdm's own registry of live bars, so bars made
anywhere (our commands, training, huggingface_hub downloads) are covered, not only ours.

    try:
        ...
    except DstlError as e:
        print_error(e)          # bars closed (cleared, or left finished on their own line), then
        return 2                # "error: ..." at the start of a line
"""

import sys

from tqdm import tqdm

__all__ = ["close_progress_bars", "print_error"]


def close_progress_bars() -> None:
    """Close every open tqdm bar of this process, innermost (highest position) first.

    A bar made with ``leave=False`` is cleared; one with ``leave=True`` is drawn once more and
    ended with a newline. Either way the cursor is at the start of an empty line afterwards, and
    a closed bar never draws again.
    """
    # tqdm keeps every live bar (of every subclass) in this class-level WeakSet; tqdm.write and
    # the bars' own positioning rely on it. Copy it: closing a bar removes it from the set.
    bars = list(getattr(tqdm, "_instances", ()))
    for bar in sorted(bars, key=lambda b: abs(getattr(b, "pos", 0) or 0), reverse=True):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a broken bar must not hide the error being reported
            pass


def print_error(message, file=None) -> None:
    """Close the open progress bars, then print ``error: <message>`` on a line of its own.

    `file` defaults to the current `sys.stderr`.
    """
    close_progress_bars()
    stream = sys.stderr if file is None else file
    print(f"error: {message}", file=stream, flush=True)

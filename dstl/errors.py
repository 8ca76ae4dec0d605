"""Exceptions raised by the library.

Library code raises these with a message that names the file, row or argument at fault and says
what is wrong (and, where it helps, how to fix it). The CLI turns any `DstlError` into a one-line
message on stderr and a non-zero exit; the app turns it into a `gr.Error`.
"""


class DstlError(Exception):
    """Base class of every error that is the user's input's fault, not a bug."""


class DataError(DstlError):
    """A data file is missing, unreadable, malformed or inconsistent (TIFF, CSV, WKT)."""


class UnknownImageError(DstlError):
    """An image id is not in the dataset."""


class WeightsError(DstlError):
    """A weights source cannot be resolved, or its files do not match the model."""


class BandMismatchError(DstlError):
    """A model's band list does not match the scene's bands."""


def one_line(e: BaseException) -> str:
    """`e`'s message on one line (whitespace runs collapsed), or its type name if it has none."""
    return " ".join(str(e).split()) or type(e).__name__


def short_list(items, n: int = 5) -> str:
    """The first `n` of `items` (strings, sorted) joined by ", ", then "... (K more)" if any are left."""
    items = sorted(items)
    more = f", ... ({len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more

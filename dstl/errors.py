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

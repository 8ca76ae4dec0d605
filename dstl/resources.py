"""Files shipped inside the `dstl` package, and the source checkout it may be imported from.

The package carries data files (declared as package data in pyproject.toml, so a wheel holds
them too): the bundled weights (``dstl/weights/<name>/``: config.json, model.safetensors,
README.md, curves.png, metrics.csv), the training recipes (``dstl/train/recipes/*.toml``) and the
demo's sample picture (``dstl/demo/samples/``). They are found through `importlib.resources`,
wherever the package is installed, never by walking up from a module's file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from dstl.errors import DstlError

#: The distribution name on the package index (`pip install dstl-segmentation`); the import name is `dstl`.
DISTRIBUTION = "dstl-segmentation"


def package_path(*parts: str) -> Path:
    """The file or folder `parts` (e.g. ``"weights"``) inside the installed `dstl` package, as a path.

    The package is installed as plain files (pip unpacks wheels), so this is a real folder; a
    zip-imported copy has none and is refused in one line.
    """
    resource = files("dstl").joinpath(*parts)
    if not isinstance(resource, Path):
        raise DstlError(f"dstl is imported from an archive ({resource}); install it as files "
                        f"(pip install {DISTRIBUTION}) to use its bundled data")
    return resource


def checkout_root() -> Path | None:
    """The source checkout the `dstl` package is imported from (a clone, or an editable install of
    one: the folder holding pyproject.toml beside the package), or None for an installed wheel."""
    root = package_path().parent
    return root if (root / "pyproject.toml").is_file() else None

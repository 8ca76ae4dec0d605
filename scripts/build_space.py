"""Assemble exactly what a Hugging Face Space needs to run the demo into one folder.

    python scripts/build_space.py OUT            # CPU Space (the free "CPU basic" hardware)
    python scripts/build_space.py OUT --gpu      # GPU or ZeroGPU Space: requirements.txt unchanged
    hf upload OWNER/SPACE OUT . --repo-type space    # or HfApi().upload_folder(..., repo_type="space")

(`dstl` must be importable: installed, or ``PYTHONPATH=.`` from the repository root.)

OUT (must not exist, or be empty) receives:

    README.md        the repository README's Space front matter (sdk, sdk_version, app_file, ...),
                     checked with huggingface_hub's SpaceCardData, and a short description
    app.py           the Gradio app, unchanged
    dstl/            the package (every file but __pycache__), so the Space imports this code
    weights/NAME/    config.json and model.safetensors of each bundled weights folder (where
                     `dstl.models.BUNDLED_DIR` finds them; nothing else of the weights folders)
    requirements.txt the repository's pins; for a CPU Space with PyTorch's CPU wheel index first and
                     torch==X+cpu, which keeps the ~GB of CUDA wheels off the Space
    .gitattributes   the repository's LFS rules (*.safetensors), for git pushes of OUT

Uploading the folder (rather than pushing this repository's git history) matters: the history holds
the weights as plain blobs, which the Hub refuses. Nothing else (tests, docs, bench, train, data)
goes into the Space.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import dstl
from dstl.errors import DstlError
from dstl.models import BUNDLED_DIR, list_bundled
from dstl.models.config import CONFIG_FILE, WEIGHTS_FILE

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "dstl"
#: Where the bundled weights sit relative to the folder that holds the package ("weights" today):
#: the Space keeps that layout, so its own `dstl.models.BUNDLED_DIR` finds them.
WEIGHTS_REL = BUNDLED_DIR.relative_to(Path(dstl.__file__).resolve().parents[1])
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Hub limits checked on the front matter (https://huggingface.co/docs/hub/spaces-config-reference).
SPACE_COLOURS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
SHORT_DESCRIPTION_MAX = 60


class SpaceError(DstlError):
    """The repository cannot be assembled into a Space (a file missing, bad front matter, OUT in use)."""


def space_card(readme: Path = REPO / "README.md"):
    """The repository README's front matter as a huggingface_hub `SpaceCard`, checked against what a
    Space needs (gradio SDK at the installed version, an existing app file, Hub colour names and the
    60-character short description); `SpaceError` naming the field otherwise."""
    import gradio
    from huggingface_hub import SpaceCard

    card = SpaceCard.load(readme)
    d = card.data
    problems = []
    if d.sdk != "gradio":
        problems.append(f"sdk is {d.sdk!r}, not 'gradio'")
    if str(d.sdk_version) != gradio.__version__:
        problems.append(f"sdk_version {d.sdk_version} differs from the installed gradio {gradio.__version__}")
    if not d.app_file or not (readme.parent / d.app_file).is_file():
        problems.append(f"app_file {d.app_file!r} does not exist")
    for key in ("colorFrom", "colorTo"):
        if d.get(key) not in SPACE_COLOURS:
            problems.append(f"{key} {d.get(key)!r} is not one of {', '.join(SPACE_COLOURS)}")
    if len(d.get("short_description") or "") > SHORT_DESCRIPTION_MAX:
        problems.append(f"short_description is over {SHORT_DESCRIPTION_MAX} characters")
    if not d.title:
        problems.append("no title")
    if problems:
        raise SpaceError(f"{readme}: Space front matter: {'; '.join(problems)}")
    return card


def space_readme(card) -> str:
    d = card.data
    front = str(card).split("\n---\n", 1)[0]  # the YAML block in the README's own key order
    return (f"{front}\n---\n\n# {d.title}\n\n{d.get('short_description', '')}.\n\n"
            "The demo of the dstl toolkit (Kaggle DSTL Satellite Imagery Feature Detection: ten object "
            "classes in 20-band WorldView-3 imagery). The bundled weights were trained on SYNTHETIC scenes "
            "only. This folder was assembled by `scripts/build_space.py`; the toolkit's own README "
            "documents it.\n")


def requirements(gpu: bool) -> str:
    text = (REPO / "requirements.txt").read_text(encoding="utf-8")
    if gpu:
        return text
    lines = []
    for line in text.splitlines():
        name, sep, version = line.partition("==")
        lines.append(f"torch=={version}+cpu" if sep and name.strip() == "torch" and "+" not in version
                     else line)
    return f"--extra-index-url {CPU_INDEX}\n" + "\n".join(lines) + "\n"


def space_files() -> dict[str, Path]:
    """Relative path in the Space -> source file, for the app, the package and the bundled weights."""
    files = {"app.py": REPO / "app.py", ".gitattributes": REPO / ".gitattributes"}
    for p in sorted(PACKAGE_DIR.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
            files[str(p.relative_to(REPO))] = p
    names = list_bundled()
    if not names:
        raise SpaceError(f"no bundled weights under {BUNDLED_DIR}: the Space would have no model")
    for name in names:
        for f in (CONFIG_FILE, WEIGHTS_FILE):
            files[str(WEIGHTS_REL / name / f)] = REPO / WEIGHTS_REL / name / f
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise SpaceError(f"missing for the Space: {', '.join(missing)}")
    return files


def build(out: Path, *, gpu: bool = False) -> list[str]:
    """Write the Space folder `out` (atomically: a sibling temporary folder renamed at the end);
    returns the relative paths written, sorted."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SpaceError(f"{out}: exists and is not an empty folder; give a new folder")
    card = space_card()
    files = space_files()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for rel, src in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, tmp / rel)
        (tmp / "README.md").write_text(space_readme(card), encoding="utf-8")
        (tmp / "requirements.txt").write_text(requirements(gpu), encoding="utf-8")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted([*files, "README.md", "requirements.txt"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="the folder to write (new or empty)")
    p.add_argument("--gpu", action="store_true", help="keep requirements.txt as is (GPU / ZeroGPU Space)")
    args = p.parse_args(argv)
    try:
        written = build(args.out, gpu=args.gpu)
    except (DstlError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = sum((args.out / f).stat().st_size for f in written)
    print(f"wrote {len(written)} files ({size / 1e6:.1f} MB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

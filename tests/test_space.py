"""Space-deployable: the README's Space front matter read by huggingface_hub (`SpaceCard` /
`SpaceCardData`) and checked against what a Space needs, the LFS rules the Hub requires for large
binaries, and scripts/build_space.py assembling a folder that runs on its own.
"""

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gradio
import pytest
from huggingface_hub import SpaceCard

REPO = Path(__file__).resolve().parents[1]
HUB_BINARY_LIMIT = 1_000_000  # the Hub refuses binary files over 1 MB outside LFS/Xet


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build_space():
    return load_script("build_space")


def test_readme_front_matter_is_a_valid_space_config(build_space):
    card = build_space.space_card(REPO / "README.md")  # SpaceCard.load + the Space checks
    d = card.data
    assert (d.sdk, d.app_file, str(d.python_version)) == ("gradio", "app.py", "3.11")
    assert d.sdk_version == gradio.__version__
    pinned = [line for line in (REPO / "requirements.txt").read_text().splitlines()
              if line.startswith("gradio==")]
    assert pinned == [f"gradio=={d.sdk_version}"]
    assert d.get("colorFrom") in build_space.SPACE_COLOURS and d.get("colorTo") in build_space.SPACE_COLOURS
    assert 0 < len(d.get("short_description")) <= 60
    assert all(isinstance(t, str) for t in d.tags)


def test_bad_front_matter_is_named(build_space, tmp_path):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    bad = text.replace("colorTo: blue", "colorTo: teal").replace("app_file: app.py", "app_file: main.py")
    (tmp_path / "README.md").write_text(bad, encoding="utf-8")
    with pytest.raises(build_space.SpaceError, match=r"README.md: Space front matter: app_file 'main.py' "
                                                     r"does not exist; colorTo 'teal' is not one of"):
        build_space.space_card(tmp_path / "README.md")
    assert isinstance(SpaceCard.load(tmp_path / "README.md").data.to_dict(), dict)  # parses, but wrong


def git_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the LFS rules apply to git pushes")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    return [f for f in out.stdout.decode().split("\0") if f and (REPO / f).is_file()]


def is_binary(path: Path) -> bool:
    return b"\0" in path.read_bytes()[:8192]


def test_every_large_binary_is_stored_with_lfs():
    large = [f for f in git_files() if (REPO / f).stat().st_size > HUB_BINARY_LIMIT and is_binary(REPO / f)]
    assert any(f.endswith(".safetensors") for f in large)
    out = subprocess.run(["git", "check-attr", "filter", "--", *large], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    not_lfs = [line.split(":")[0] for line in out.splitlines() if not line.endswith(": lfs")]
    assert not_lfs == [], f"binary files over 1 MB the Hub refuses; add them to .gitattributes: {not_lfs}"


def test_build_space_assembles_a_folder_that_runs_on_its_own(build_space, tmp_path):
    out = tmp_path / "space"
    written = build_space.build(out)
    top = sorted({f.split("/")[0] for f in written})
    assert top == [".gitattributes", "README.md", "app.py", "dstl", "requirements.txt"]
    weights = {f for f in written if f.startswith("dstl/weights/")}  # package data: the folders whole
    assert weights >= {f"dstl/weights/{n}/{f}" for n in ("unet-20band", "unet-rgb")
                       for f in ("config.json", "model.safetensors")}
    assert not [f for f in written if "__pycache__" in f or f.endswith((".pyc", ".pt", ".bin"))]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == written
    assert (out / "app.py").read_bytes() == (REPO / "app.py").read_bytes()
    card = build_space.space_card(out / "README.md")  # the Space's README passes the same checks
    assert card.data.sdk_version == gradio.__version__
    reqs = (out / "requirements.txt").read_text().splitlines()
    assert reqs[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert [r for r in reqs if r.startswith("torch==")] == ["torch==2.13.0+cpu"]
    assert not [p for p in tmp_path.iterdir() if p.name != "space"]  # no temporary folder left

    # The folder alone: its own dstl is imported, finds its own weights, and has every dstl module
    # app.py imports.
    app_imports = sorted({n.module for n in ast.walk(ast.parse((out / "app.py").read_text()))
                          if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("dstl")})
    code = ("import importlib, dstl\n"
            f"for m in {app_imports!r}: importlib.import_module(m)\n"
            "from dstl.models import load_model, list_bundled\n"
            "print(dstl.__file__); print(list_bundled()); print(load_model().source)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    env["PYTHONPATH"] = str(out)
    res = subprocess.run([sys.executable, "-c", code], cwd=out, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    file, bundled, source = res.stdout.strip().splitlines()[-3:]
    assert Path(file).resolve().is_relative_to(out.resolve())
    assert bundled == "['unet-20band', 'unet-rgb']" and source == "bundled weights/unet-20band"


def test_build_space_refuses_a_folder_in_use_and_keeps_gpu_requirements(build_space, tmp_path, capsys):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    assert build_space.main([str(tmp_path / "used")]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "used" / "keep.txt").read_text() == "mine"
    assert build_space.requirements(gpu=True) == (REPO / "requirements.txt").read_text()

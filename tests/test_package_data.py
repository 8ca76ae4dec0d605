"""The installable package (pyproject.toml): its data files, its commands, its dependencies.

CI (scripts/test.sh) runs the suite against a wheel built from the checkout and installed into a
fresh virtualenv, with DSTL_TEST_INSTALLED=1: there the tests below check that `dstl` really is
the installed copy and that it holds every file tracked under dstl/ (a missing package-data entry
fails CI). The static checks run everywhere.
"""

import fnmatch
import os
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest
from packaging.requirements import Requirement

import dstl
from dstl.resources import DISTRIBUTION, checkout_root, package_path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
INSTALLED = os.environ.get("DSTL_TEST_INSTALLED") == "1"
installed_only = pytest.mark.skipif(not INSTALLED, reason="checks the installed wheel: runs under "
                                    "scripts/test.sh (CI), which sets DSTL_TEST_INSTALLED=1")


def tracked_package_files() -> list[str]:
    """Files under dstl/ in the checkout, relative to it (git's list; every file if git is absent)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "dstl"], cwd=REPO, capture_output=True, check=True)
        files = [f for f in out.stdout.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = [str(p.relative_to(REPO)) for p in (REPO / "dstl").rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts]
    assert files, "no files found under dstl/"
    return sorted(PurePosixPath(f).relative_to("dstl").as_posix() for f in files)


def test_every_data_file_of_the_package_is_declared_as_package_data():
    """A file under dstl/ that is not Python must match a [tool.setuptools.package-data] pattern."""
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]
    undeclared = []
    for rel in tracked_package_files():
        if rel.endswith(".py"):
            continue
        covered = False
        for package, globs in patterns.items():
            prefix = package.removeprefix("dstl").strip(".").replace(".", "/")
            if prefix and not rel.startswith(prefix + "/"):
                continue
            inside = rel.removeprefix(prefix + "/") if prefix else rel
            covered = covered or any(fnmatch.fnmatch(inside, g) for g in globs)
        if not covered:
            undeclared.append(rel)
    assert not undeclared, f"add to [tool.setuptools.package-data] in pyproject.toml: {undeclared}"


def test_requirements_pin_exactly_the_declared_dependencies():
    """requirements.txt pins one version of each dependency in pyproject.toml (runtime and demo),
    inside the declared range, and nothing else: the dependencies are declared once."""
    declared = {}
    project = PYPROJECT["project"]
    for text in project["dependencies"] + [d for ds in project["optional-dependencies"].values() for d in ds]:
        req = Requirement(text)
        declared[req.name.lower().replace("_", "-")] = req
    pins = {}
    for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"requirements.txt: {line!r} is not an exact pin"
            pins[req.name.lower().replace("_", "-")] = spec.version
    assert sorted(pins) == sorted(declared)
    outside = {name: v for name, v in pins.items() if not declared[name].specifier.contains(v)}
    assert not outside, f"pins outside pyproject.toml's ranges: {outside}"


def test_console_scripts_are_the_module_entry_points():
    scripts = PYPROJECT["project"]["scripts"]
    assert scripts == {"dstl": "dstl.cli:main", "dstl-train": "dstl.train.train:cli"}
    assert PYPROJECT["project"]["name"] == DISTRIBUTION


def test_bundled_data_is_found_inside_the_package():
    assert (package_path("weights", "unet-20band", "config.json")).is_file()
    assert (package_path("train", "recipes", "unet_real.toml")).is_file()
    assert package_path() == Path(dstl.__file__).parent


@installed_only
def test_the_tests_import_the_installed_wheel_not_the_checkout():
    here = Path(dstl.__file__).resolve()
    assert here.parent != REPO / "dstl", f"dstl imported from the checkout ({here}), not the wheel"
    assert checkout_root() is None
    from importlib.metadata import distribution

    dist = distribution(DISTRIBUTION)
    assert dist.version == dstl.__version__
    assert Path(dist.locate_file("dstl/__init__.py")).resolve() == here


@installed_only
def test_the_installed_package_holds_every_file_of_the_checkouts_package():
    installed = package_path()
    missing = [rel for rel in tracked_package_files() if not (installed / rel).is_file()]
    assert not missing, f"not in the installed wheel (pyproject.toml package data?): {missing}"


@installed_only
def test_the_console_scripts_run():
    bindir = Path(sys.executable).parent
    r = subprocess.run([str(bindir / "dstl"), "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"dstl {dstl.__version__}", r.stderr
    r = subprocess.run([str(bindir / "dstl-train"), "--data", "x", "--out", "y", "--recipe",
                        "unet_synth_quick", "--print-config"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '"crop_size"' in r.stdout, r.stderr

#!/usr/bin/env bash
# Lints the checkout, then runs the whole test suite against the INSTALLED package, exactly as CI
# does: a wheel is built from this checkout (`pip wheel .`) and installed into a fresh virtualenv
# (.venv-wheel) that reuses .venv's pinned dependencies, so `import dstl` (and the `dstl`,
# `dstl-train` commands) resolve to the wheel, never to the checkout: a file missing from the
# package data fails the tests (tests/test_package_data.py). Extra arguments go to pytest,
# e.g. `bash scripts/test.sh -m "not slow"`. To test the checkout itself while developing:
# `.venv/bin/python -m pytest tests/...` (pyproject.toml puts the checkout first on sys.path).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
.venv/bin/ruff check .

# The wheel, built in an isolated environment from pyproject.toml alone (as `pip install .` does);
# build/ goes first: setuptools would otherwise pack stale files left in build/lib by an earlier build.
rm -rf build .venv-wheel
.venv/bin/python -m pip wheel --quiet --disable-pip-version-check --no-deps -w build/wheel .
# A fresh, light venv: the wheel only; its dependencies come from .venv (a .pth line), and the
# checkout's root is appended AFTER them so that `tests` (helpers) and app.py are importable
# while `dstl` comes from the wheel.
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -m venv --without-pip .venv-wheel
purelib() { "$1" -c 'import sysconfig; print(sysconfig.get_path("purelib"))'; }
printf '%s\n%s\n' "$(purelib .venv/bin/python)" "$PWD" > "$(purelib .venv-wheel/bin/python)/_dstl_test_paths.pth"
.venv/bin/python -m pip --quiet --disable-pip-version-check --python .venv-wheel/bin/python \
  install --no-deps build/wheel/dstl_segmentation-*.whl

# PYTHONSAFEPATH: neither `python -m pytest` nor the scripts and `python -m dstl` that tests start
# put the working directory (the checkout) first on sys.path; `-o pythonpath=` drops pyproject's
# "." for the same reason. DSTL_TEST_INSTALLED tells tests/test_package_data.py to check the wheel.
export PYTHONSAFEPATH=1 DSTL_TEST_INSTALLED=1
export PATH="$PWD/.venv-wheel/bin:$PWD/.venv/bin:$PATH"
exec .venv-wheel/bin/python -m pytest -o pythonpath= "$@"

#!/usr/bin/env bash
# Creates .venv (Python 3.11) with the pinned dependencies and the dstl package itself installed
# in editable mode (`pip install -e .`: the `dstl` and `dstl-train` commands, and
# `python train/train.py`, then run this checkout's code). Idempotent: a second run only installs
# what changed. Usage: bash scripts/setup.sh [dev]
#   dev  also installs the test tools and, for the browser test, Debian's Chromium (needs root/apt).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --quiet --disable-pip-version-check)
"${PIP[@]}" install --upgrade pip >/dev/null
if [ "${1:-}" = "dev" ]; then
  "${PIP[@]}" install -r requirements-dev.txt
  if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Debian's chromium for the browser test ..." >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
else
  "${PIP[@]}" install -r requirements.txt
fi
# The package itself; its dependencies are the pins just installed (pyproject.toml declares them).
"${PIP[@]}" install --no-deps -e .

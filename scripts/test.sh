#!/usr/bin/env bash
# Sets up .venv with the test tools and runs the linter and the whole test suite
# (this is exactly what CI runs). Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"

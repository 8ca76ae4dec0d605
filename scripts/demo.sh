#!/usr/bin/env bash
# Sets up .venv and starts the Gradio demo on http://127.0.0.1:7860 (bundled weights on a
# bundled synthetic dataset, created on first run). Extra arguments go to app.py,
# e.g. `bash scripts/demo.sh --data /path/to/dstl --share`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python app.py "$@"

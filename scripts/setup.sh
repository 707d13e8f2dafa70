#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with everything the
# project needs: the CPU build of PyTorch when torch is missing (an unpinned torch
# would pull a multi-GB CUDA build), then stochhom itself with its test and docs extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
fi
.venv/bin/python -m pip install --quiet -e ".[test,docs]"

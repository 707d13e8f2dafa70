#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with everything the
# project needs: the CPU build of PyTorch when torch is missing (an unpinned torch
# would pull a multi-GB CUDA build), then stochhom itself with its test and docs extras,
# and finally compiles the numba kernels once (stochhom warmup).
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
# Compile the numba kernels once, into numba's cache (__pycache__ next to the sources, or
# $NUMBA_CACHE_DIR), so that no run and no sweep worker waits for the compiler (about
# 1.5 min on 2 cores, once; STOCHHOM_SKIP_WARMUP=1 skips it). See docs/performance.md.
if [ "${STOCHHOM_SKIP_WARMUP:-0}" != "1" ]; then
  if ! .venv/bin/stochhom warmup; then
    echo "setup: the kernel warm-up failed (see above); the kernels compile in the first run that needs them" >&2
  fi
fi

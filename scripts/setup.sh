#!/usr/bin/env bash
# Create ./.venv and install the project with its exact pins (pyproject.toml). Idempotent.
# Needs Python 3.11 or 3.12 and access to the package registry (or a pip cache / wheelhouse:
# PIP_FIND_LINKS=/path/to/wheels PIP_NO_INDEX=1 bash scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/python -c "import mat, torch, transformers; print('mat', mat.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__)"

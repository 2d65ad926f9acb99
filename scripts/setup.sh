#!/usr/bin/env bash
# Create .venv with Python 3.11 and install fitlens with everything the tests need.
# Idempotent and quick when nothing changed (a stamp keyed on pyproject.toml skips pip).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON=$candidate
      break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "fitlens needs Python 3.11 (torch 2.14.1 wheels); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

VENV=${FITLENS_VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

stamp="$VENV/.fitlens-installed"
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing fitlens and its dependencies into $VENV (torch takes a minute or two)..."
  "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
  "$VENV/bin/python" -m pip install --quiet -e ".[dev]" 2>&1 | grep -v "is ignored" || true
  "$VENV/bin/python" -c 'import torch, torchvision, sklearn, trainer'
  echo "$want" > "$stamp"
fi

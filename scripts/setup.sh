#!/usr/bin/env bash
# Create .venv with Python 3.11 and install fitlens with everything the tests need: the client
# distribution (./pyproject.toml) and the server's (server/pyproject.toml), both editable.
# Idempotent and quick when nothing changed (a stamp keyed on both pyproject.toml skips pip).
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
want=$(cat pyproject.toml server/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing fitlens and its dependencies into $VENV (torch takes a minute or two)..."
  "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
  # One command, so pip takes the server's "fitlens" requirement from this checkout.
  "$VENV/bin/python" -m pip install --quiet -e ".[client,plot,parquet,tensorboard]" -e "./server[dev]" 2>&1 |
    grep -v "is ignored" || true
  "$VENV/bin/python" -c 'import torch, torchvision, sklearn, trainer'
  echo "$want" > "$stamp"
fi

# With --tests (scripts/test.sh): MLflow's own server, which the import test reads from and
# bench.ingest measures (on SQLite, and on PostgreSQL through psycopg2), in a venv of its own
# (mlflow's pins, pyarrow<26 among them, cannot share .venv's).
MLFLOW_VENV=${FITLENS_MLFLOW_VENV:-.venv-mlflow}
mlflow_want="mlflow==3.17.2 psycopg2-binary==2.9.13"
if [ "${1:-}" = "--tests" ] &&
   [ "$(cat "$MLFLOW_VENV/.fitlens-installed" 2>/dev/null)" != "$mlflow_want" ]; then
  echo "installing MLflow's own server into $MLFLOW_VENV (for the import test and a benchmark)..."
  [ -x "$MLFLOW_VENV/bin/python" ] || "$PYTHON" -m venv "$MLFLOW_VENV"
  # shellcheck disable=SC2086 # the packages, one word each
  "$MLFLOW_VENV/bin/python" -m pip install --quiet $mlflow_want 2>&1 | grep -v "is ignored" || true
  "$MLFLOW_VENV/bin/mlflow" --version >/dev/null
  echo "$mlflow_want" > "$MLFLOW_VENV/.fitlens-installed"
fi

# The dashboard's ECharts, from the npm registry (served by the API; never from a CDN).
npm_stamp="api/dashboard/node_modules/.fitlens-installed"
npm_want=$(sha256sum api/dashboard/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_want" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "the dashboard needs Node.js and npm (e.g. apt-get install -y nodejs npm)" >&2
    exit 1
  fi
  echo "installing the dashboard's ECharts from npm..."
  npm ci --prefix api/dashboard --no-audit --no-fund --silent
  echo "$npm_want" > "$npm_stamp"
fi

# The browser tests drive Debian's Chromium (Playwright never downloads a browser here).
if [ ! -x /usr/bin/chromium ] && [ "${FITLENS_SKIP_BROWSER:-}" != "1" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver for the browser tests..."
    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null; }
  else
    echo "note: /usr/bin/chromium is missing; the browser tests need it" \
      "(apt-get install -y chromium chromium-driver)" >&2
  fi
fi

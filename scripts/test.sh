#!/usr/bin/env bash
# The test command: set up, start local services if they are not answering, lint, test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
VENV=${FITLENS_VENV:-.venv}
. scripts/services.sh
ensure_services

"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy" trainer api worker stack fitlens bench tests
exec "$VENV/bin/python" -m pytest "$@"

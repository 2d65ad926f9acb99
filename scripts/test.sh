#!/usr/bin/env bash
# The test command: set up, start local services if they are not answering, lint, test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --tests
VENV=${FITLENS_VENV:-.venv}
. scripts/services.sh
ensure_services

"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy" trainer api worker stack fitlens bench tests
# In parallel (pytest-xdist): each worker has its own Redis database, PostgreSQL databases, ports
# and folders; tests/conftest.py shares the work out. FITLENS_TEST_WORKERS=0 runs one by one.
exec "$VENV/bin/python" -m pytest -n "${FITLENS_TEST_WORKERS:-4}" --dist loadgroup \
  --no-loadscope-reorder "$@"

#!/usr/bin/env bash
# The main job: set up, then run seed 001's comparison through the whole pipeline on this
# machine (API on SQLite, a Celery worker with an on-disk broker, or Redis when REDIS_URL is set).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec "${FITLENS_VENV:-.venv}/bin/python" -m stack.demo "$@"

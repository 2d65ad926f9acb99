#!/usr/bin/env bash
# The main job: set up, then train seed 001's comparison (no regularization, dropout, L1, L2,
# ReduceLROnPlateau) on the bundled digits data, one progress line per epoch, then a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec "${FITLENS_VENV:-.venv}/bin/python" -m trainer compare \
  examples/seed001_no_regularization.json examples/seed001_dropout.json \
  examples/seed001_l1.json examples/seed001_l2.json examples/seed001_reduce_lr_on_plateau.json

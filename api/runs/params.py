"""A client run's params (free-form, flat) and the columns those named like spec fields fill,
so that ``where`` filters client runs as it filters spec runs (lr, epochs, dropout...)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any


def _as_number(value: object) -> float | None:
    """A param's value as a number: a number, or text that is one (MLflow's params are text);
    None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and len(value) < 50:
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def param_columns(params: dict[str, Any], epochs: int | None) -> dict[str, Any]:
    """A client run's params, and those of them that fill the columns ``where`` filters."""
    number = {k: n for k, v in params.items() if (n := _as_number(v)) is not None}
    params_json = json.dumps(params, sort_keys=True, allow_nan=False)
    return {
        "params_json": params_json,
        "spec_hash": hashlib.sha256(params_json.encode()).hexdigest(),
        "task": str(params.get("task", ""))[:20],
        "dataset": str(params.get("dataset", ""))[:40],
        "model_kind": str(params.get("model", ""))[:20],
        "optimizer": str(params.get("optimizer", ""))[:20],
        "lr_schedule": str(params.get("lr_schedule", ""))[:40],
        "early_stopping": bool(params.get("early_stopping", False)),
        **{c: number.get(c, 0.0) for c in ("lr", "weight_decay", "dropout", "l1", "l2")},
        "epochs": int(number.get("epochs", epochs or 0)),
        "batch_size": int(number.get("batch_size", 0)),
        "seed": int(number.get("seed", 0)),
        "progress_total": epochs or int(number.get("epochs", 0)),
    }

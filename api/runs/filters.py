"""Which runs a listing shows: filters (spec columns with ``where``), sort orders and cursors."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.core.exceptions import Invalid
from api.runs.models import Run


@dataclass(frozen=True)
class RunFilter:
    project: str | None = None
    status: Sequence[str] = ()
    tags: Sequence[str] = ()
    name: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    spec_hash: str | None = None
    where: str | None = None  # e.g. "dataset=digits,dropout>0,weight_decay>=1e-4"
    created_by: str | None = None  # user name
    # Only runs of projects these teams own: the caller's visibility. None means no limit.
    teams: Sequence[int] | None = None


# Spec columns that ``where`` may test, and whether they hold numbers.
FILTERABLE: dict[str, bool] = {
    "task": False,
    "dataset": False,
    "model_kind": False,
    "optimizer": False,
    "lr_schedule": False,
    "lr": True,
    "weight_decay": True,
    "dropout": True,
    "l1": True,
    "l2": True,
    "epochs": True,
    "batch_size": True,
    "seed": True,
    "early_stopping": True,
}
_WHERE = re.compile(r"^\s*([a-z_0-9]+)\s*(>=|<=|!=|=|>|<)\s*(.+?)\s*$")
SORTS = {"created_at", "-created_at", "name", "-name", "id", "-id"}


def parse_where(where: str | None) -> list[Any]:
    if not where:
        return []
    clauses = []
    for part in where.split(","):
        if not part.strip():
            continue
        m = _WHERE.match(part)
        if not m:
            raise Invalid("where", f"cannot read {part!r}; use e.g. dropout>0,dataset=digits")
        field, op, raw = m.groups()
        if field not in FILTERABLE:
            raise Invalid("where", f"unknown field {field!r}; one of {sorted(FILTERABLE)}")
        column = getattr(Run, field)
        value: Any = raw
        if FILTERABLE[field]:
            if field == "early_stopping":
                value = raw.lower() in ("1", "true", "yes")
            else:
                try:
                    value = float(raw)
                except ValueError:
                    raise Invalid("where", f"{field} needs a number, not {raw!r}") from None
        elif op not in ("=", "!="):
            raise Invalid("where", f"{field} takes = or != only")
        clauses.append(
            {
                "=": column == value,
                "!=": column != value,
                ">": column > value,
                ">=": column >= value,
                "<": column < value,
                "<=": column <= value,
            }[op]
        )
    return clauses


def encode_cursor(value: Any, run_id: int | None) -> str:
    raw = json.dumps([value.isoformat() if isinstance(value, datetime) else value, run_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, field: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, run_id = json.loads(base64.urlsafe_b64decode(padded))
        if field == "created_at":
            value = datetime.fromisoformat(value)
        elif field == "id":
            value = int(value)
        elif not isinstance(value, str):
            raise TypeError
        return value, int(run_id)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise Invalid("cursor", "not a cursor this endpoint returned") from None

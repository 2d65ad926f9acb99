"""Which runs a listing shows: filters (spec columns with ``where``), sort orders and cursors."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, tuple_
from sqlmodel import col

from api.core.exceptions import Invalid
from api.diagnosis.models import RunDiagnosis
from api.runs.models import Run, Verdict


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
    verdicts: Sequence[Verdict] = ()  # what the run's diagnosis says
    study: int | None = None  # a study's members only


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
# Diagnosis values runs sort on (api.diagnosis.models.RunDiagnosis); runs without one (not
# diagnosed yet, or no onset found) come last, whichever the direction.
SUMMARY_SORTS = (
    "min_val_loss",
    "best_epoch",
    "onset_epoch",
    "gap_at_best",
    "final_gap",
    "gap_slope",
    "final_train_loss",
    "final_val_loss",
    "val_accuracy",
    "epochs",
)
SORTS = {d + f for f in ("created_at", "name", "id", *SUMMARY_SORTS) for d in ("", "-")}


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


def sort_column(field: str) -> Any:
    if field in SUMMARY_SORTS:
        return getattr(RunDiagnosis, field)
    return {"created_at": Run.created_at, "name": Run.name, "id": Run.id}[field]


def order_and_after(
    field: str, descending: bool, cursor: str | None
) -> tuple[list[Any], list[Any]]:
    """ORDER BY terms for ``field``, and the WHERE terms that start the page after ``cursor``
    (keyset pagination: the sort value and the run id of the last run shown)."""
    column = sort_column(field)
    nullable = field in SUMMARY_SORTS

    def after(a: Any, b: Any) -> Any:
        return a < b if descending else a > b

    ids = col(Run.id).desc() if descending else col(Run.id)
    order = [column.desc() if descending else column, ids]
    if nullable:
        order.insert(0, column.is_(None))
    if not cursor:
        return order, []
    value, last_id = decode_cursor(cursor, field)
    if not nullable:
        return order, [after(tuple_(column, Run.id), (value, last_id))]
    if value is None:
        return order, [column.is_(None), after(Run.id, last_id)]
    return order, [or_(column.is_(None), after(tuple_(column, Run.id), (value, last_id)))]


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
        elif field in SUMMARY_SORTS:
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise TypeError
        elif not isinstance(value, str):
            raise TypeError
        return value, int(run_id)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise Invalid("cursor", "not a cursor this endpoint returned") from None

"""Which runs a listing shows: filters (spec columns with ``where``), sort orders and cursors."""

from __future__ import annotations

import base64
import json
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from sqlalchemy import JSON, cast, literal, or_, tuple_, type_coerce
from sqlmodel import col

from api.core.exceptions import Invalid
from api.diagnosis.models import RunDiagnosis
from api.runs.models import Run, Verdict
from trainer.spec import JobSpec


@dataclass(frozen=True)
class RunFilter:
    project: str | None = None
    status: Sequence[str] = ()
    tags: Sequence[str] = ()
    name: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    spec_hash: str | None = None
    where: str | None = None  # e.g. "optimizer.name=adam,dropout>0,val_accuracy>0.95"
    text: str | None = None  # free-text search over names, notes and tags
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
_WHERE = re.compile(r"^\s*([a-z_0-9.]+)\s*(>=|<=|!=|=|>|<)\s*(.+?)\s*$")
# Diagnosis values ``where`` may test (the run's results), and whether they hold numbers.
RESULTS: dict[str, bool] = {
    "verdict": False,
    "min_val_loss": True,
    "best_epoch": True,
    "onset_epoch": True,
    "gap_at_best": True,
    "final_gap": True,
    "gap_slope": True,
    "final_train_loss": True,
    "final_val_loss": True,
    "val_accuracy": True,
    "early_stopped": True,
}
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


def where_needs_results(where: str | None) -> bool:
    """Whether ``where`` tests a result (the diagnosis table must be joined)."""
    return any(m and m.group(1) in RESULTS for m in map(_WHERE.match, (where or "").split(",")))


def parse_where(where: str | None, dialect: str = "sqlite") -> list[Any]:
    """SQL terms for ``where``: a spec column (``dropout>0``), a result (``val_accuracy>0.95``,
    ``verdict=overfitting``) or any dotted spec path (``optimizer.name=adam``), comma-joined
    (all must hold)."""
    clauses = []
    for part in (where or "").split(","):
        if not part.strip():
            continue
        m = _WHERE.match(part)
        if not m:
            raise Invalid("where", f"cannot read {part!r}; use e.g. dropout>0,dataset=digits")
        field, op, raw = m.groups()
        if field in RESULTS:
            column, kind = getattr(RunDiagnosis, field), _kind(RESULTS[field], field)
        elif field in FILTERABLE:
            column, kind = getattr(Run, field), _kind(FILTERABLE[field], field)
        elif "." in field:
            kind = spec_path_kind(field)
            column = _spec_value(field, kind, dialect)
        else:
            known = sorted([*FILTERABLE, *RESULTS])
            raise Invalid("where", f"unknown field {field!r}; one of {known} or a dotted spec path")
        clauses.append(_compare(column, op, _value(field, kind, op, raw)))
    return clauses


def _kind(numeric: bool, field: str) -> str:
    if field in ("early_stopping", "early_stopped"):
        return "bool"
    return "number" if numeric else "text"


def _value(field: str, kind: str, op: str, raw: str) -> Any:
    if kind == "bool":
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise Invalid("where", f"{field} is true or false, not {raw!r}")
        if op not in ("=", "!="):
            raise Invalid("where", f"{field} takes = or != only")
        return raw.lower() in ("1", "true", "yes")
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            raise Invalid("where", f"{field} needs a number, not {raw!r}") from None
    if op not in ("=", "!="):
        raise Invalid("where", f"{field} takes = or != only")
    return raw


_OPERATORS = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _compare(column: Any, op: str, value: Any) -> Any:
    return _OPERATORS[op](column, literal(value) if isinstance(value, bool) else value)


def _spec_value(path: str, kind: str, dialect: str) -> Any:
    """The value at ``path`` in a run's stored spec (canonical JSON: every field spelled
    out), read by the database's own JSON functions."""
    # PostgreSQL reads JSON from a cast; SQLite's json_extract reads the text as it is.
    text = col(Run.spec_json)
    doc = cast(text, JSON) if dialect == "postgresql" else type_coerce(text, JSON)
    element = doc[tuple(path.split("."))]
    if kind == "number":
        return element.as_float()
    if kind == "bool":
        return element.as_boolean()
    return element.as_string()


def spec_path_kind(path: str) -> str:
    """ "number", "text" or "bool": what the job spec holds at ``path``; Invalid (naming
    ``where``) for a path the spec does not have or one that holds an object or a list."""
    types: list[Any] = [JobSpec]
    for i, part in enumerate(path.split(".")):
        models = [t for t in types if isinstance(t, type) and issubclass(t, BaseModel)]
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        if not fields:
            where = ".".join(path.split(".")[:i]) or "the spec"
            raise Invalid("where", f"{path!r}: {where} has no field {part!r}")
        types = [t for f in fields for t in _leaf_types(f.annotation)]
    if any(isinstance(t, type) and issubclass(t, BaseModel | list | dict) for t in types):
        raise Invalid("where", f"{path!r} is not a single value: name a field inside it")
    if all(t is bool for t in types):
        return "bool"
    if all(t in (int, float) for t in types):
        return "number"
    return "text"


def _leaf_types(annotation: Any) -> list[Any]:
    """The concrete types a field may hold: Annotated, Optional, unions and Literals opened."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _leaf_types(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return [t for a in get_args(annotation) if a is not type(None) for t in _leaf_types(a)]
    if origin is Literal:
        return [type(v) for v in get_args(annotation)]
    if origin in (list, dict):
        return [origin]
    return [annotation]


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

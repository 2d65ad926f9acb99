"""MLflow's search syntax for runs and experiments: a filter of clauses joined by AND
(``metrics.val_loss < 0.5 and params.lr = '0.01' and tags.`my tag` LIKE 'a%'``) and order_by
terms (``metrics.val_loss ASC``), evaluated on each run's latest metrics, params, tags and
attributes. A clause on something the run lacks is false, and runs lacking an order_by value
come last, as in MLflow. Anything else is INVALID_PARAMETER_VALUE naming what was not understood.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from api.core.exceptions import Invalid

ENTITIES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time", "created", "Created"})
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<ident>[A-Za-z_][\w]*\.(?:`[^`]+`|"[^"]+"|[\w./:-]+))
      | (?P<name>[A-Za-z_][\w]*)
      | (?P<op>!=|<=|>=|=|<|>|,|\(|\))
      | (?P<string>'(?:[^']|'')*')
      | (?P<number>-?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
    )""",
    re.VERBOSE,
)
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Clause:
    entity: str  # metrics, params, tags or attributes
    key: str
    op: str  # =, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN
    value: Any  # a float for metrics and times, a string, or a tuple of strings for IN

    def holds(self, view: dict[str, dict[str, Any]]) -> bool:
        found = view[self.entity].get(self.key)
        if found is None or (isinstance(found, float) and math.isnan(found)):
            return False
        if self.op in ("IN", "NOT IN"):
            return (str(found) in self.value) == (self.op == "IN")
        if self.op in ("LIKE", "ILIKE"):
            flags = re.IGNORECASE if self.op == "ILIKE" else 0
            return re.fullmatch(_like(self.value), str(found), flags | re.DOTALL) is not None
        if isinstance(self.value, float):
            try:
                return COMPARISONS[self.op](float(found), self.value)
            except (TypeError, ValueError):
                return False
        return COMPARISONS[self.op](str(found), self.value)


def _like(pattern: str) -> str:
    return "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)


def _tokens(text: str, field: str) -> list[tuple[str, str]]:
    found, at = [], 0
    text = text.rstrip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise Invalid(field, f"cannot read {text[at : at + 30].strip()!r} in {text!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        at = match.end()
    return found


def _identifier(raw: str, field: str) -> tuple[str, str]:
    entity, _, key = raw.partition(".")
    if entity.lower() not in ENTITIES:
        raise Invalid(field, f"{entity!r} is not metrics, params, tags or attributes")
    if key[:1] in '`"' and key[-1:] == key[:1]:
        key = key[1:-1]
    return ENTITIES[entity.lower()], key


def _string(raw: str) -> str:
    return raw[1:-1].replace("''", "'")


def parse_filter(text: str, field: str = "filter") -> list[Clause]:
    """The clauses of ``text`` (all must hold); an empty filter has none."""
    tokens = _tokens(text, field)
    clauses: list[Clause] = []
    at = 0
    while at < len(tokens):
        if clauses:
            kind, word = tokens[at]
            if kind != "name" or word.upper() != "AND":
                raise Invalid(field, f"expected AND before {word!r} (OR is not supported)")
            at += 1
        clause, at = _clause(tokens, at, field)
        clauses.append(clause)
    return clauses


def _clause(tokens: list[tuple[str, str]], at: int, field: str) -> tuple[Clause, int]:
    def take() -> tuple[str, str]:
        nonlocal at
        if at >= len(tokens):
            raise Invalid(field, "the filter ends in the middle of a clause")
        at += 1
        return tokens[at - 1]

    kind, raw = take()
    if kind == "name":  # a bare attribute, as MLflow allows for a few (status, run_name)
        raw = f"attributes.{raw}"
    elif kind != "ident":
        raise Invalid(field, f"expected e.g. metrics.<key>, found {raw!r}")
    entity, key = _identifier(raw, field)
    kind, op = take()
    if kind == "name" and op.upper() == "NOT":
        kind, op = take()
        op = "NOT " + op
    op = op.upper()
    if op in ("IN", "NOT IN"):
        return Clause(entity, key, op, _string_list(take, field)), at
    if op not in COMPARISONS and op not in ("LIKE", "ILIKE"):
        raise Invalid(field, f"{op!r} is not a comparison")
    kind, value = take()
    numeric = entity == "metrics" or (entity == "attributes" and key in NUMERIC_ATTRIBUTES)
    if numeric:
        if kind != "number":
            raise Invalid(field, f"{entity}.{key} compares with a number, not {value!r}")
        return Clause(entity, key, op, float(value)), at
    if kind != "string":
        raise Invalid(field, f"{entity}.{key} compares with a quoted string, not {value!r}")
    if op not in ("=", "!=", "LIKE", "ILIKE"):
        raise Invalid(field, f"{entity}.{key} takes =, !=, LIKE, ILIKE or IN, not {op}")
    return Clause(entity, key, op, _string(value)), at


def _string_list(take: Callable[[], tuple[str, str]], field: str) -> tuple[str, ...]:
    if take() != ("op", "("):
        raise Invalid(field, "IN takes a list: IN ('a', 'b')")
    values = []
    while True:
        kind, value = take()
        if kind != "string":
            raise Invalid(field, f"IN lists quoted strings, not {value!r}")
        values.append(_string(value))
        kind, value = take()
        if value == ")":
            return tuple(values)
        if value != ",":
            raise Invalid(field, f"expected , or ) in an IN list, not {value!r}")


@dataclass(frozen=True)
class Order:
    entity: str
    key: str
    descending: bool


def parse_order(terms: Sequence[str], field: str = "order_by") -> list[Order]:
    orders = []
    for term in terms:
        words = term.strip().rsplit(None, 1)
        if not words:
            raise Invalid(field, "an empty order_by term")
        direction = words[-1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            words, direction = [term.strip()], "ASC"
        raw = words[0]
        entity, key = _identifier(raw if "." in raw else f"attributes.{raw}", field)
        orders.append(Order(entity, key, direction == "DESC"))
    return orders


def ordered(
    views: list[dict[str, dict[str, Any]]], orders: Sequence[Order]
) -> list[dict[str, dict[str, Any]]]:
    """``views`` sorted by ``orders`` (stable, last term first); missing values last."""
    result = list(views)
    for order in reversed(orders):
        present = [v for v in result if _sortable(v[order.entity].get(order.key))]
        missing = [v for v in result if not _sortable(v[order.entity].get(order.key))]
        numeric = all(isinstance(v[order.entity][order.key], int | float) for v in present)

        def key(v: dict[str, dict[str, Any]], order: Order = order, numeric: bool = numeric) -> Any:
            value = v[order.entity][order.key]
            return value if numeric else str(value)

        result = sorted(present, key=key, reverse=order.descending) + missing
    return result


def _sortable(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))

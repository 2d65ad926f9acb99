"""MLflow's reads of runs: a run as MLflow's client reads it (info, latest metrics, params,
tags), a metric's history page by page, and runs/search. Each reads the fitlens run's own rows:
an MLflow run is a client run, nothing is copied."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from api.core.exceptions import NotFound
from api.core.store import StoreBase
from api.metrics.blocks import MAX_STEP
from api.metrics.models import MetricSeries
from api.metrics.points import read_points
from api.mlflow.experiments import ExperimentStore, number_id
from api.mlflow.models import MlflowTag
from api.mlflow.pages import page_of
from api.mlflow.schemas import SearchRuns
from api.mlflow.search import Order, ordered, parse_filter, parse_order
from api.people.auth import Principal
from api.people.models import User
from api.runs.access import RunAccess
from api.runs.models import Run

# fitlens's statuses in MLflow's words (mlflow.entities.RunStatus).
STATUSES = {
    "queued": "SCHEDULED",
    "running": "RUNNING",
    "succeeded": "FINISHED",
    "failed": "FAILED",
    "cancelled": "KILLED",
}
RUN_NAME_TAG = "mlflow.runName"
NOTE_TAG = "mlflow.note.content"
# runs/search looks at the newest runs of the experiments, this many at most.
SEARCH_SCAN = 10_000
HISTORY_PAGE = 25_000  # MLflow's client asks for pages of this size (GET_METRIC_HISTORY_...)
DEFAULT_ORDER = [Order("attributes", "start_time", True), Order("attributes", "run_id", False)]


def millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _value(value: float | None) -> float:
    return math.nan if value is None else value  # a summary's NaN is NULL (api.metrics.models)


class MlflowReads(StoreBase):
    """Built with the runs' access (who may read a run) and the experiments (projects)."""

    def __init__(self, access: RunAccess, experiments: ExperimentStore) -> None:
        super().__init__(access.engine)
        self.access = access
        self.experiments = experiments

    def run_id_for(self, principal: Principal, raw: str, need: str) -> int:
        """The run an MLflow run id names, if the caller may ``need`` it; else NotFound
        (RESOURCE_DOES_NOT_EXIST), whether it is missing or another team's."""
        run_id = number_id(raw)
        if run_id is None:
            raise NotFound(f"Run with id={raw} not found")
        self.access.grant_run(principal, run_id, need)
        return run_id

    def run_json(self, principal: Principal, raw: str) -> dict[str, Any]:
        run_id = self.run_id_for(principal, raw, "read")
        return self._views([run_id])[0]["json"]

    def metric_history(
        self, principal: Principal, raw: str, key: str, max_results: int | None, token: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A metric's points by step, a page at a time (the token: the next page's first
        step)."""
        run_id = self.run_id_for(principal, raw, "read")
        size = min(max_results or HISTORY_PAGE, HISTORY_PAGE)
        start = int(token) if token.isascii() and token.isdigit() else 0
        with self.engine.connect() as conn:
            page = read_points(conn, run_id, key, start, MAX_STEP, size + 1, walls=True)
        rows = list(zip(page.steps, page.values, page.walls, strict=True))
        more = len(rows) > size
        points = [
            {"key": key, "value": _value(v), "timestamp": int(w * 1000), "step": s}
            for s, v, w in rows[:size]
        ]
        return points, str(rows[size][0]) if more else None

    def search(
        self, principal: Principal, body: SearchRuns
    ) -> tuple[list[dict[str, Any]], str | None]:
        clauses = parse_filter(body.filter)
        orders = parse_order(body.order_by) + DEFAULT_ORDER
        if body.run_view_type == "DELETED_ONLY":
            return [], None  # fitlens deletes a run for good: none is kept deleted
        projects = []
        for experiment_id in body.experiment_ids:
            try:
                project_id, _ = self.experiments.project_of(principal, experiment_id)
            except NotFound:
                continue  # another team's experiment, or none: nothing of it to find
            if project_id is not None:
                projects.append(project_id)
        if not projects:
            return [], None
        with Session(self.engine) as session:
            run_ids = (
                session.execute(
                    select(col(Run.id))
                    .where(col(Run.project_id).in_(projects))
                    .order_by(col(Run.id).desc())
                    .limit(SEARCH_SCAN)
                )
                .scalars()
                .all()
            )
        views = [v for v in self._views(run_ids) if all(c.holds(v) for c in clauses)]
        page, token = page_of(ordered(views, orders), body.max_results, body.page_token)
        return [v["json"] for v in page], token

    def _views(self, run_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Each run as MLflow's client reads it ("json") and as a search filters it (its
        metrics, params, tags and attributes), in three queries."""
        if not run_ids:
            return []
        with Session(self.engine) as session:
            runs = session.execute(
                select(Run, col(User.name))
                .outerjoin(User, col(User.id) == col(Run.created_by_id))
                .where(col(Run.id).in_(run_ids))
                .order_by(col(Run.id).desc())
            ).all()
            tags: dict[int, dict[str, str]] = {}
            for tag in session.execute(
                select(MlflowTag).where(col(MlflowTag.run_id).in_(run_ids))
            ).scalars():
                tags.setdefault(tag.run_id, {})[tag.key] = tag.value
            latest = _latest_metrics(session, run_ids)
        return [
            _view(run, user, tags.get(run.id or 0, {}), latest.get(run.id or 0, []))
            for run, user in runs
        ]


def _latest_metrics(session: Session, run_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Each run's metrics at their last step (MLflow's "latest" value)."""
    rows = session.execute(
        select(
            col(MetricSeries.run_id),
            col(MetricSeries.key),
            col(MetricSeries.last_step),
            col(MetricSeries.last_value),
            col(MetricSeries.last_wall_time),
        ).where(col(MetricSeries.run_id).in_(run_ids))
    ).all()
    found: dict[int, list[dict[str, Any]]] = {}
    for run_id, key, step, value, wall in rows:
        found.setdefault(run_id, []).append(
            {"key": key, "value": _value(value), "timestamp": int(wall * 1000), "step": step}
        )
    return found


def _view(
    run: Run, user: str | None, tags: dict[str, str], metrics: list[dict[str, Any]]
) -> dict[str, Any]:
    params = {k: _text(v) for k, v in json.loads(run.params_json or "{}").items()}
    tags = {**tags, RUN_NAME_TAG: run.name}
    if run.notes:
        tags[NOTE_TAG] = run.notes
    info = {
        "run_id": str(run.id),
        "run_uuid": str(run.id),
        "run_name": run.name,
        "experiment_id": str(run.project_id),
        "user_id": user or "",
        "status": STATUSES.get(run.status, "RUNNING"),
        "start_time": millis(run.started_at or run.created_at),
        "artifact_uri": f"mlflow-artifacts:/{run.project_id}/{run.id}/artifacts",
        "lifecycle_stage": "active",
    }
    if run.finished_at is not None:
        info["end_time"] = millis(run.finished_at)
    return {
        "json": {
            "info": info,
            "data": {
                "metrics": metrics,
                "params": [{"key": k, "value": v} for k, v in params.items()],
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
            },
            "inputs": {},
        },
        "metrics": {m["key"]: m["value"] for m in metrics},
        "params": params,
        "tags": tags,
        "attributes": {
            "run_id": run.id,  # a number: ordered as one
            **{k: info.get(k) for k in ("run_name", "status", "user_id")},
            "start_time": info["start_time"],
            "end_time": info.get("end_time"),
            "experiment_id": info["experiment_id"],
        },
    }


def _text(value: Any) -> str:
    """A param as MLflow's text: strings as they are, other values as Python writes them."""
    return value if isinstance(value, str) else str(value)

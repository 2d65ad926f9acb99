"""MLflow's writes on fitlens runs: runs/create starts a client run, runs/update ends it,
log-batch (and log-metric, log-parameter, set-tag, which are batches of one) adds its params,
tags and metric points, runs/delete deletes it.

Params are MLflow's: text, logged once (the same value again is a repeat; another value is
INVALID_PARAMETER_VALUE, as MLflow says); those that are numbers also fill the run's columns
(lr, epochs...) that ``where`` filters. Every write from an MLflow client is also a sign of
life (MLflow's client sends no heartbeats), so a run logging steadily is never judged silent.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from api.core.db import rows_changed, utcnow
from api.core.exceptions import Conflict, Invalid, NotFound
from api.metrics.schemas import MetricPointDict
from api.metrics.service import MetricStore
from api.mlflow.experiments import ExperimentStore
from api.mlflow.models import MlflowTag
from api.mlflow.reads import NOTE_TAG, RUN_NAME_TAG, MlflowReads
from api.mlflow.schemas import CreateRun, MetricDict, ParamDict, TagDict, UpdateRun
from api.people.auth import Principal
from api.runs.lifecycle import RunLifecycle
from api.runs.models import FINISHED, Run
from api.runs.params import param_columns
from api.runs.schemas import RunStart, StatusUpdate
from api.runs.service import RunStore

MAX_PARAMS = 200  # a client run's, as POST /runs allows
MAX_TAGS = 1000
TOUCH_EVERY = 1.0  # seconds: how often a run logging by MLflow's protocol is marked alive


class MlflowStore(MlflowReads):
    """Built with the experiments (projects), the runs' store and lifecycle (a run's start and
    end) and the metrics' store (its points, through the same ingest as POST .../metrics)."""

    def __init__(
        self,
        experiments: ExperimentStore,
        runs: RunStore,
        lifecycle: RunLifecycle,
        metrics: MetricStore,
    ) -> None:
        super().__init__(runs.access, experiments)
        self.runs = runs
        self.lifecycle = lifecycle
        self.metrics = metrics
        self._touched: dict[int, float] = {}  # run id -> when this process marked it alive

    def create_run(self, principal: Principal, body: CreateRun) -> dict[str, Any]:
        project_id, project = self.experiments.project_of(principal, body.experiment_id)
        tags = {t.key: t.value for t in body.tags}
        name = body.run_name or tags.pop(RUN_NAME_TAG, "")
        tags.pop(RUN_NAME_TAG, None)
        notes = tags.pop(NOTE_TAG, "")
        start = RunStart(project=project, name=name[:200] or None, notes=notes[:10_000])
        started = datetime.fromtimestamp(body.start_time / 1000, UTC) if body.start_time else None
        run = self.runs.start_client_run(start, principal, project_id, started)
        if tags:
            with Session(self.engine) as session:
                self._set_tags(session, run.id, tags)
                session.commit()
        return self._views([run.id])[0]["json"]

    def update_run(self, principal: Principal, body: UpdateRun) -> dict[str, Any]:
        run_id = self.run_id_for(principal, body.run, "write")
        if body.run_name:
            self.log_batch(
                principal, body.run, tags=[{"key": RUN_NAME_TAG, "value": body.run_name}]
            )
        if body.status == "FINISHED":
            self.lifecycle.set_status(run_id, StatusUpdate(status="succeeded"))
        elif body.status == "FAILED":
            reason = "its MLflow client ended it as FAILED"
            self.lifecycle.set_status(run_id, StatusUpdate(status="failed", reason=reason))
        elif body.status == "KILLED":
            self.runs.cancel_run(run_id)
        elif body.status == "SCHEDULED":
            raise Invalid("status", "a run that has started cannot be SCHEDULED again")
        if body.end_time and body.status not in (None, "RUNNING"):
            self._set_end_time(run_id, body.end_time)
        return self._views([run_id])[0]["json"]["info"]

    def _set_end_time(self, run_id: int, end_time: int) -> None:
        """The client's own end time (MLflow's), for a run it ended."""
        with Session(self.engine) as session:
            run = self.access.run_row(session, run_id, lock=True)
            if run.status in FINISHED:
                run.finished_at = datetime.fromtimestamp(end_time / 1000, UTC)
                run.revision += 1
            session.commit()

    def delete_run(self, principal: Principal, raw: str) -> None:
        """Deleted for good, as the API's DELETE /runs/{id} (MLflow's restore cannot undo it);
        only the team's owners may."""
        self.runs.delete_run(self.run_id_for(principal, raw, "owner"))

    def log_batch(
        self,
        principal: Principal,
        raw: str,
        metrics: Sequence[MetricDict] = (),
        params: Sequence[ParamDict] = (),
        tags: Sequence[TagDict] = (),
        max_keys: int = 1_000,
    ) -> None:
        run_id = self.run_id_for(principal, raw, "write")
        if params or tags or not self._lately_touched(run_id):
            with Session(self.engine) as session:
                run = self.access.writable_run(session, run_id, lock=True)
                if run.source != "client":
                    raise Conflict(
                        f"run {run_id} is trained by a fitlens worker from its spec; MLflow's "
                        "client logs only to runs it created"
                    )
                run.heartbeat_at = utcnow()  # MLflow's client sends no heartbeats: this is one
                if params:
                    self._add_params(run, params)
                if tags:
                    self._set_tags(
                        session, run_id, {t["key"]: t.get("value", "") for t in tags}, run
                    )
                if params or tags:
                    run.revision += 1
                session.commit()
            self._touched[run_id] = time.monotonic()
        if metrics:
            points: list[MetricPointDict] = [
                {
                    "key": m["key"],
                    "step": m.get("step", 0),
                    "value": m["value"],
                    "wall_time": m["timestamp"] / 1000,
                }
                for m in metrics
            ]
            self.metrics.add_metrics(run_id, points, None, max_keys)

    def _lately_touched(self, run_id: int) -> bool:
        """Whether this process checked the run (a client run) and marked it alive within
        TOUCH_EVERY: a stream of log-batches then pays for one such write a second, not one
        each (add_metrics still refuses a run that has ended)."""
        if len(self._touched) > 10_000:
            self._touched.clear()
        return time.monotonic() - self._touched.get(run_id, -math.inf) < TOUCH_EVERY

    def _add_params(self, run: Run, params: Sequence[ParamDict]) -> None:
        held: dict[str, Any] = json.loads(run.params_json or "{}")
        merged = dict(held)
        for param in params:
            key, value = param["key"], param["value"]
            before = merged.get(key)
            if before is not None and str(before) != value:
                raise Invalid(
                    "params",
                    f"Changing param values is not allowed. Param with key='{key}' was "
                    f"already logged with value='{before}' for run ID='{run.id}'. Attempted "
                    f"logging new value '{value}'.",
                )
            merged[key] = value
        if len(merged) > MAX_PARAMS:
            raise Invalid("params", f"a run has at most {MAX_PARAMS} params")
        if merged != held:
            for column, value in param_columns(merged, run.progress_total or None).items():
                setattr(run, column, value)

    def _set_tags(
        self, session: Session, run_id: int, tags: dict[str, str], run: Run | None = None
    ) -> None:
        """MLflow's tags, kept as they are, but for the run's name and notes, which are the
        run's own (what the dashboard and every list show)."""
        run = run or self.access.run_row(session, run_id)
        if RUN_NAME_TAG in tags:
            run.name = tags.pop(RUN_NAME_TAG)[:200] or run.name
        if NOTE_TAG in tags:
            run.notes = tags.pop(NOTE_TAG)[:10_000]
        for key, value in tags.items():
            session.merge(MlflowTag(run_id=run_id, key=key, value=value))
        session.flush()
        count = session.execute(
            select(func.count()).select_from(MlflowTag).where(col(MlflowTag.run_id) == run_id)
        ).scalar_one()
        if count > MAX_TAGS:
            raise Invalid("tags", f"a run has at most {MAX_TAGS} tags")

    def delete_tag(self, principal: Principal, raw: str, key: str) -> None:
        run_id = self.run_id_for(principal, raw, "write")
        with Session(self.engine) as session:
            self.access.writable_run(session, run_id, lock=True)
            gone = session.execute(
                delete(MlflowTag).where(col(MlflowTag.run_id) == run_id, col(MlflowTag.key) == key)
            )
            if not rows_changed(gone):
                raise NotFound(f"No tag with name: {key} in run with id {run_id}")
            self.access.bump_revision(session, run_id)
            session.commit()

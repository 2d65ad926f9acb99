"""Every run's diagnosis, kept up to date as its data arrives, and on request with other rules.

The stored one is remade in the writer's transaction (``refresh_diagnosis``, which api.store
registers as a listener of the runs' data): after an epoch's losses arrive (while the run is
short enough to judge live: ``LIVE_EPOCHS``), after an early stop or a divergence is reported,
and when the run finishes. Past ``EAGER_EPOCHS`` a run's new
epochs are judged at most once every ``LIVE_INTERVAL`` seconds, by the post or the heartbeat
that comes after it: re-reading every curve on every epoch of a long run cost its writer three
times the rest of the post, and a second of lag in a live verdict costs nobody anything. It
lives in ``run_diagnosis`` (api.diagnosis.models), where listings filter and sort on it and
every run carries it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection
from dataclasses import asdict
from datetime import UTC
from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel import Session, col

from api.core.db import utcnow
from api.core.exceptions import NotFound
from api.core.store import StoreBase
from api.diagnosis.models import RunDiagnosis
from api.diagnosis.per_class import ClassCurves, class_curves, class_onsets, summary
from api.diagnosis.rules import Chance, Diagnosis, DiagnosisRules, EarlyStop, diagnose
from api.diagnosis.schemas import PerClassOut
from api.evaluation.service import EvaluationStore
from api.metrics.models import MetricSeries, per_batch
from api.metrics.reads import MetricReads
from api.runs.access import RunAccess
from api.runs.models import Run, RunEvent
from api.runs.schemas import ClassOnsetOut, DiagnosisOut

LOSSES = frozenset({"train_loss", "val_loss"})
# Past this many points of val_loss the run logs per step, not per epoch: it is diagnosed when
# it finishes (or on request), not on every batch.
LIVE_EPOCHS = 2_000
EAGER_EPOCHS = 100
LIVE_INTERVAL = 1.0  # seconds
# The metrics reported at the best, evaluated and last epochs: these first, then others by name.
FIRST = frozenset(
    {*LOSSES, "gap", "train_accuracy", "val_accuracy", "accuracy_gap", "lr"}
    | {"test_loss", "test_accuracy", "test_rmse", "val_rmse"}  # optimism
)
MAX_KEYS = 50
# Longer series are read downsampled (each bucket's minimum and maximum), enough for the rules.
MAX_POINTS = 20_000


def _loss_count(key: str) -> Any:
    return (
        select(col(MetricSeries.count))
        .where(col(MetricSeries.run_id) == bindparam("run_id"), col(MetricSeries.key) == key)
        .scalar_subquery()
    )


def _judged(column: Any) -> Any:
    return select(column).where(col(RunDiagnosis.run_id) == bindparam("run_id")).scalar_subquery()


# What _due needs, in one row of one statement (each read is a round trip on PostgreSQL, on
# every post of losses), built once (building a select cost more than running it).
_DUE_FACTS = select(
    _loss_count("train_loss").label("train_loss"),
    _loss_count("val_loss").label("val_loss"),
    _judged(col(RunDiagnosis.epochs)).label("epochs"),
    _judged(col(RunDiagnosis.computed_at)).label("computed_at"),
)


class DiagnosisStore(StoreBase):
    """Reads a run's curves through the metrics' store and its per-class evaluations through
    the evaluations' store; writes only its own table."""

    def __init__(
        self, access: RunAccess, metrics: MetricReads, evaluations: EvaluationStore
    ) -> None:
        super().__init__(access.engine)
        self.access = access
        self.metrics = metrics
        self.evaluations = evaluations
        self._onset_listeners: list[Callable[[Session, int], None]] = []

    def on_onset(self, listener: Callable[[Session, int], None]) -> None:
        """Call ``listener`` in the writer's transaction when a run's stored diagnosis first
        finds an onset of overfitting (api.store wires the webhooks here)."""
        self._onset_listeners.append(listener)

    def per_class(self, run_id: int, rules: DiagnosisRules | None = None) -> PerClassOut:
        """The class x epoch table of the run's per-class evaluations, with each class's
        onset."""
        rules = rules or DiagnosisRules()
        with Session(self.engine) as session:
            self.access.run_row(session, run_id)
            curves = self._class_curves(session, run_id)
        if curves is None:
            raise NotFound(f"run {run_id} has no per-class evaluation of both splits yet")
        onsets = class_onsets(curves, rules)
        return PerClassOut(
            run_id=run_id,
            labels=curves.labels,
            epochs=curves.epochs,
            gap=curves.gap(),
            accuracy_gap=curves.accuracy_gap(),
            train_loss=curves.train_loss,
            val_loss=curves.val_loss,
            onsets=[ClassOnsetOut(**asdict(o)) for o in onsets],
            summary=summary(onsets),
            method=PER_CLASS_METHOD.format(rules=rules),
        )

    def status_news(self, session: Session, run_id: int) -> dict[str, Any]:
        """What a status post's answer tells the run's reporter: the stored onset (a listener of
        RunLifecycle.on_status_answer, wired by api.store)."""
        onset = session.execute(
            select(col(RunDiagnosis.onset_epoch)).where(col(RunDiagnosis.run_id) == run_id)
        ).scalar()
        return {"onset_epoch": onset}

    def _class_curves(self, session: Session, run_id: int) -> ClassCurves | None:
        return class_curves(self.evaluations.class_payloads(session, run_id))

    def diagnosis(self, run_id: int, rules: DiagnosisRules | None = None) -> DiagnosisOut:
        """The stored diagnosis, or a fresh one made with ``rules``."""
        with Session(self.engine) as session:
            self.access.run_row(session, run_id)
            if rules is None:
                stored = session.get(RunDiagnosis, run_id)
                if stored is not None:
                    return DiagnosisOut.model_validate_json(stored.detail_json)
            rules = rules or DiagnosisRules()
            found = self._diagnose(session, run_id, rules, live=False)
        if found is None:
            raise NotFound(f"run {run_id} has no epoch with both a train_loss and a val_loss yet")
        return _out(found, rules)

    def refresh_diagnosis(
        self, session: Session, run_id: int, kind: str, keys: Collection[str] = ()
    ) -> None:
        """Remake the run's stored diagnosis after new data, when that data can change it (a
        listener of RunAccess.on_run_data_changed, registered by api.store)."""
        if kind == "metrics" and not LOSSES.intersection(keys):
            return
        if kind == "events" and not {"early_stopped", "diverged", "baseline"}.intersection(keys):
            return
        if kind == "evaluation" and "per_class" not in keys:
            return
        if kind in ("metrics", "heartbeat") and not self._due(session, run_id, kind):
            return
        rules = DiagnosisRules()
        stored = session.get(RunDiagnosis, run_id)
        # Per-class onsets change only when evaluations arrive (or the run ends): an epoch's
        # losses or a heartbeat carry them over instead of re-reading every evaluation.
        carry = stored is not None and stored.detail_json and kind in ("metrics", "heartbeat")
        found = self._diagnose(session, run_id, rules, live=kind == "metrics", classes=not carry)
        if found is None:
            return
        if carry and stored is not None:
            found.per_class = json.loads(stored.detail_json).get("per_class", [])
        out = _out(found, rules)
        row = stored or RunDiagnosis(
            run_id=run_id, verdict=out.verdict, epochs=out.epochs, detail_json=""
        )
        onset_found = row.onset_epoch is None and out.onset_epoch is not None
        row.verdict, row.epochs = out.verdict, out.epochs
        row.best_epoch, row.min_val_loss = out.best_epoch, out.min_val_loss
        row.onset_epoch, row.gap_at_best = out.onset_epoch, out.gap_at_best
        row.final_gap, row.gap_slope = out.final_gap, out.gap_slope
        row.final_train_loss = out.final.get("train_loss")
        row.final_val_loss = out.final.get("val_loss")
        row.evaluated_epoch = out.evaluated_epoch
        row.val_accuracy = out.at_evaluated.get("val_accuracy")
        row.early_stopped = out.early_stopped
        row.detail_json = out.model_dump_json()
        row.computed_at = utcnow()
        session.add(row)
        if onset_found:
            session.flush()  # the listeners read the diagnosis as it is now
            for listener in self._onset_listeners:
                listener(session, run_id)

    def _due(self, session: Session, run_id: int, kind: str) -> bool:
        """Whether new epochs should be judged now (see the module's docstring)."""
        facts = session.execute(_DUE_FACTS, {"run_id": run_id}).one()
        # At most this many epochs have both losses; the stored diagnosis judged ``epochs``.
        epochs = min(facts.train_loss or 0, facts.val_loss or 0)
        if kind == "metrics" and (facts.val_loss or 0) > LIVE_EPOCHS:
            return False  # too long to judge live (_diagnose): the heartbeat's or the end's turn
        if facts.epochs is None:
            return epochs > 0
        if facts.epochs >= epochs:
            return False  # no epoch came since
        if epochs <= EAGER_EPOCHS:
            return True
        judged = facts.computed_at
        judged = judged if judged.tzinfo is not None else judged.replace(tzinfo=UTC)
        return (utcnow() - judged).total_seconds() >= LIVE_INTERVAL

    def _diagnose(
        self,
        session: Session,
        run_id: int,
        rules: DiagnosisRules,
        live: bool,
        classes: bool = True,
    ) -> Diagnosis | None:
        series = {
            s.key: s
            for s in session.execute(
                select(MetricSeries).where(col(MetricSeries.run_id) == run_id)
            ).scalars()
        }
        val = series.get("val_loss")
        if val is None or "train_loss" not in series or (live and val.count > LIVE_EPOCHS):
            return None
        curves = {}
        per_epoch = [k for k in series if not per_batch(k)]  # their steps count batches
        wanted = sorted(per_epoch, key=lambda k: (k not in FIRST, k))[:MAX_KEYS]
        for key in wanted:
            s = series[key]
            read = self.metrics.series(session.connection(), run_id, s, MAX_POINTS, None, None)
            curves[key] = dict(zip(read.steps, read.values, strict=True))
        diverged = session.execute(
            select(col(Run.diverged_epoch)).where(col(Run.id) == run_id)
        ).scalar()
        early_stop = _early_stop(_last_event(session, run_id, "early_stopped"))
        chance = _chance(_last_event(session, run_id, "baseline"))
        found = diagnose(curves, rules, early_stop, diverged, chance)
        per_class = self._class_curves(session, run_id) if classes else None
        if found is not None and per_class is not None:
            found.per_class = class_onsets(per_class, rules)
        return found


PER_CLASS_METHOD = (
    "per class, the onset rule of the run's diagnosis (tolerance {rules.tolerance}, min_delta "
    "{rules.min_delta}) on the class's mean training and validation loss at the epochs both "
    "splits were evaluated per class, its patience of {rules.patience} epochs counted in "
    "evaluations and never fewer than two"
)


def _last_event(session: Session, run_id: int, kind: str) -> RunEvent | None:
    return session.execute(
        select(RunEvent)
        .where(col(RunEvent.run_id) == run_id, col(RunEvent.kind) == kind)
        .order_by(col(RunEvent.id).desc())
        .limit(1)
    ).scalar()


def _early_stop(event: RunEvent | None) -> EarlyStop | None:
    if event is None:
        return None
    payload = json.loads(event.payload_json)
    restored = payload.get("restored_epoch")
    return EarlyStop(
        epoch=event.step or 0,
        reason=str(payload.get("reason", "")),
        restored_epoch=restored if _is_epoch(restored) else None,
    )


def _chance(event: RunEvent | None) -> Chance | None:
    """The trainer's baseline (what a model that learnt nothing scores), as its worker, or a
    client, posted it: trusted only when it is plausible."""
    if event is None:
        return None
    payload = json.loads(event.payload_json)
    n_val, loss, accuracy = (
        payload.get("n_val"),
        payload.get("val_loss"),
        payload.get("val_accuracy"),
    )
    if not (_is_count(n_val) and _is_number(loss) and math.isfinite(loss) and loss >= 0):
        return None
    if accuracy is not None and not (_is_number(accuracy) and 0 <= accuracy <= 1):
        accuracy = None
    return Chance(n_val=n_val, val_loss=float(loss), val_accuracy=accuracy)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2**62


def _is_epoch(value: object) -> bool:
    # The payload is what the worker posted: trust only a plausible epoch number.
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2**62


def _out(d: Diagnosis, rules: DiagnosisRules) -> DiagnosisOut:
    return DiagnosisOut(**asdict(d), rules={k: float(v) for k, v in asdict(rules).items()})

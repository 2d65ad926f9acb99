"""A run's evaluations, per split and epoch: the final ones (confusion matrix, per-class
metrics, ROC and precision-recall curves, mistakes, weight heat-maps) and the per-class ones
made while training, read back one at a time or as a class x epoch table."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from api.core.exceptions import NotFound
from api.core.store import StoreBase
from api.evaluation.models import Evaluation
from api.runs.access import RunAccess
from trainer.events import Evaluation as EvaluationBody


class EvaluationStore(StoreBase):
    def __init__(self, access: RunAccess) -> None:
        super().__init__(access.engine)
        self.access = access

    def set_evaluation(
        self, run_id: int, evaluation: EvaluationBody, attempt: int | None = None
    ) -> None:
        """Keep ``evaluation`` at its split and epoch. A split has one final evaluation: a new
        one makes the one before an ordinary per-epoch evaluation; a per-epoch one never
        replaces the final one at its epoch (the final one holds the same numbers, and more)."""
        key = (run_id, evaluation.split, evaluation.epoch)
        payload = evaluation.model_dump_json()
        with Session(self.engine) as session:
            self.access.writable_run(session, run_id, attempt=attempt)
            existing = session.get(Evaluation, key)
            if existing is not None and existing.final and not evaluation.final:
                return
            if evaluation.final:
                session.execute(
                    update(Evaluation)
                    .where(
                        col(Evaluation.run_id) == run_id,
                        col(Evaluation.split) == evaluation.split,
                        col(Evaluation.final),
                    )
                    .values(final=False)
                )
            if existing is None:
                existing = Evaluation(
                    run_id=run_id, split=evaluation.split, epoch=evaluation.epoch, payload_json=""
                )
                session.add(existing)
            existing.final, existing.payload_json = evaluation.final, payload
            self.access.bump_revision(session, run_id)
            kinds = {"per_class"} if evaluation.per_class and evaluation.split != "test" else set()
            self.access.data_changed(session, run_id, "evaluation", kinds)
            session.commit()

    def get_evaluation(
        self, run_id: int, split: str = "val", epoch: int | None = None
    ) -> EvaluationBody:
        """The split's evaluation at ``epoch``; without one, its final evaluation, else its
        latest."""
        with Session(self.engine) as session:
            self.access.run_row(session, run_id)
            query = select(Evaluation).where(
                col(Evaluation.run_id) == run_id, col(Evaluation.split) == split
            )
            if epoch is not None:
                query = query.where(col(Evaluation.epoch) == epoch)
            query = query.order_by(col(Evaluation.final).desc(), col(Evaluation.epoch).desc())
            row = session.exec(query.limit(1)).first()
            if row is None:
                at = f" at epoch {epoch}" if epoch is not None else ""
                raise NotFound(f"run {run_id} has no {split} evaluation{at}")
            body = EvaluationBody.model_validate_json(row.payload_json)
            # A final evaluation a later one replaced is an ordinary one now (its document
            # still says what it was posted as).
            return body.model_copy(update={"final": row.final})

    def epochs(self, run_id: int) -> dict[str, list[int]]:
        """The epochs each split was evaluated at."""
        with Session(self.engine) as session:
            self.access.run_row(session, run_id)
            rows = session.exec(
                select(Evaluation.split, Evaluation.epoch)
                .where(col(Evaluation.run_id) == run_id)
                .order_by(col(Evaluation.epoch))
            ).all()
        out: dict[str, list[int]] = {}
        for split, epoch in rows:
            out.setdefault(split, []).append(epoch)
        return out

    def class_payloads(self, session: Session, run_id: int) -> list[dict[str, Any]]:
        """Every training and validation evaluation of the run, parsed but not validated
        (api.diagnosis.per_class reads what it needs), by epoch; for a caller that has checked
        the run already, in its own session (the diagnosis's writer)."""
        rows = session.exec(
            select(Evaluation.payload_json)
            .where(col(Evaluation.run_id) == run_id, col(Evaluation.split).in_(("train", "val")))
            .order_by(col(Evaluation.epoch))
        ).all()
        return [json.loads(p) for p in rows]

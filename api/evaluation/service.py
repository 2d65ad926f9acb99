"""The end-of-run evaluation: confusion matrix, per-class metrics, ROC curves, weight heat-maps."""

from __future__ import annotations

from sqlmodel import Session

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
        payload = evaluation.model_dump_json()
        with Session(self.engine) as session:
            self.access.writable_run(session, run_id, attempt=attempt)
            existing = session.get(Evaluation, run_id)
            if existing is None:
                session.add(Evaluation(run_id=run_id, payload_json=payload))
            else:
                existing.payload_json = payload
            self.access.bump_revision(session, run_id)
            session.commit()

    def get_evaluation(self, run_id: int) -> EvaluationBody:
        with Session(self.engine) as session:
            self.access.run_row(session, run_id)
            row = session.get(Evaluation, run_id)
            if row is None:
                raise NotFound(f"run {run_id} has no evaluation yet")
            return EvaluationBody.model_validate_json(row.payload_json)

"""What the evaluation endpoints answer (the body itself is trainer.events.Evaluation)."""

from __future__ import annotations

from pydantic import BaseModel

from trainer.events import Evaluation as EvaluationBody


class EvaluationOut(BaseModel):
    run_id: int
    evaluation: EvaluationBody
    evaluated: dict[str, list[int]]  # the epochs each split was evaluated at

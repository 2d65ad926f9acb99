"""The diagnosis's table: one row per run, remade as its data arrives (api.diagnosis.service)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from api.core.db import BigId, attempt_data, utcnow


class RunDiagnosis(SQLModel, table=True):
    """A run's diagnosis (api.diagnosis computes it from the run's curves and events as they
    arrive): the summary values runs are filtered and sorted on, and the whole diagnosis."""

    __tablename__ = "run_diagnosis"
    __table_args__ = (attempt_data(),)
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    verdict: str = Field(max_length=20, index=True)
    epochs: int
    best_epoch: int | None = None
    min_val_loss: float | None = None
    onset_epoch: int | None = None
    gap_at_best: float | None = None
    final_gap: float | None = None
    gap_slope: float | None = None
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    # At the epoch whose weights were evaluated: the restored one after an early stop, else
    # the last.
    evaluated_epoch: int | None = None
    val_accuracy: float | None = None
    early_stopped: bool = False
    detail_json: str = Field(sa_column=Column(Text, nullable=False))  # the whole diagnosis
    computed_at: datetime = Field(default_factory=utcnow)

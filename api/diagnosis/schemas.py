"""What the per-class read answers: a class x epoch table, ready for a heat-map."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from api.runs.schemas import ClassOnsetOut

Table = list[list[float | None]]


class PerClassOut(BaseModel):
    # NaN and infinities as the API's JSON writes them (strings).
    model_config = ConfigDict(ser_json_inf_nan="strings")

    run_id: int
    labels: list[str]  # rows of every table
    epochs: list[int]  # columns: the epochs both splits were evaluated per class
    gap: Table  # validation minus training loss
    accuracy_gap: Table  # training minus validation accuracy (recall)
    train_loss: Table
    val_loss: Table
    onsets: list[ClassOnsetOut]
    summary: str  # "class 8: onset epoch 6, gap +0.21; class 1: no onset"
    method: str  # the rule the onsets were found by

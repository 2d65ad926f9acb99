"""What the checkpoint endpoints take (in the query: the body is the file) and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.core.schemas import Step

CheckpointName = Literal["best", "last", "onset"]


class CheckpointIn(BaseModel):
    name: CheckpointName
    epoch: Step
    size: int = Field(ge=1, le=1 << 40)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    why: str = Field(default="", max_length=200)


class CheckpointOut(BaseModel):
    name: str
    epoch: int
    why: str  # e.g. "the best val_loss, 0.1234"
    size: int  # bytes
    sha256: str
    created_at: datetime


class CheckpointList(BaseModel):
    run_id: int
    checkpoints: list[CheckpointOut]

"""A run read from elsewhere (TensorBoard's event files, an MLflow server), as fitlens would
store it: what the readers make and fitlens.importer (or the API's upload) writes. Plain data:
no HTTP, no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Ending = Literal["succeeded", "failed", "cancelled"]


@dataclass
class ImportedRun:
    identity: str  # the source's own id of the run, e.g. "mlflow:<run id>"
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    points: list[tuple[str, int, float, float]] = field(default_factory=list)  # key, step...
    histograms: list[dict[str, Any]] = field(default_factory=list)  # the API's shape
    ending: Ending = "succeeded"
    reason: str | None = None  # why it failed, for a failed one
    renamed: dict[str, str] = field(default_factory=dict)  # source's name -> metric key
    warnings: list[str] = field(default_factory=list)  # what reading it changed, said

    @property
    def tag(self) -> str:
        return f"imported:{self.identity}"[:100]

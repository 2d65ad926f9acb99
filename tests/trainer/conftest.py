from __future__ import annotations

import copy
from typing import Any

import pytest

from trainer.callbacks import Callback
from trainer.events import EpochEnd, Evaluation, RunEnded, RunStarted
from trainer.loop import RunResult, train
from trainer.spec import JobSpec


class Recorder(Callback):
    """Keeps every event, in order."""

    def __init__(self) -> None:
        self.started: RunStarted | None = None
        self.epochs: list[EpochEnd] = []
        self.evaluation: Evaluation | None = None  # the validation split's final one
        self.evaluations: list[Evaluation] = []
        self.ended: RunEnded | None = None
        self.order: list[str] = []

    def on_run_start(self, event: RunStarted) -> None:
        self.started = event
        self.order.append(event.event)

    def on_epoch_end(self, event: EpochEnd) -> None:
        self.epochs.append(event)
        self.order.append(event.event)

    def on_evaluation(self, event: Evaluation) -> None:
        self.evaluations.append(event)
        if event.split == "val":
            self.evaluation = event
        self.order.append(event.event)

    def on_run_end(self, event: RunEnded) -> None:
        self.ended = event
        self.order.append(event.event)


def merge(base: dict[str, Any], **over: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def run(data: dict[str, Any], **kwargs: Any) -> tuple[RunResult, Recorder]:
    recorder = Recorder()
    result = train(JobSpec.model_validate({"device": "cpu", **data}), [recorder], **kwargs)
    return result, recorder


@pytest.fixture
def recorder_cls() -> type[Recorder]:
    return Recorder

"""When a run ends before its last epoch: a loss that is no longer finite, the early-stopping
rule, the onset of overfitting the API's diagnosis found (``diagnosis.stop_on``), or a caller
that asks it to stop; and whose weights the run then keeps."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from trainer.spec import MAXIMISED_METRICS, JobSpec

State = dict[str, torch.Tensor]


class EarlyStopper:
    def __init__(self, spec: JobSpec) -> None:
        assert spec.early_stopping is not None
        es = spec.early_stopping
        self.monitor, self.patience, self.min_delta = es.monitor, es.patience, es.min_delta
        self.restore = es.restore_best
        self.sign = -1.0 if es.monitor in MAXIMISED_METRICS else 1.0  # minimise sign * value
        self.best = math.inf
        self.best_epoch = 0
        self.best_state: State | None = None
        self.wait = 0

    def update(self, epoch: int, metrics: dict[str, float], model: nn.Module) -> bool:
        """Record this epoch; True when training should stop."""
        value = self.sign * metrics[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore:
                self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.wait += 1
        return self.wait >= self.patience


class OnsetStopper:
    """Keeps the weights of the lowest validation loss; stops ``patience`` epochs after the
    diagnosis first reports an onset."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best, self.best_epoch = math.inf, 0
        self.best_state: State | None = None
        self.onset: int | None = None
        self.known_at: int | None = None  # the epoch the onset was first known after

    def update(
        self, epoch: int, metrics: dict[str, float], model: nn.Module, onset: int | None
    ) -> bool:
        if metrics["val_loss"] < self.best:
            self.best, self.best_epoch = metrics["val_loss"], epoch
            self.best_state = copy.deepcopy(model.state_dict())
        if onset is not None and self.known_at is None:
            self.onset, self.known_at = onset, epoch
        return self.known_at is not None and epoch >= self.known_at + self.patience


class Stopping:
    """Every reason a run may end early, asked after each epoch."""

    def __init__(
        self,
        spec: JobSpec,
        should_stop: Callable[[], bool] | None,
        onset: Callable[[], int | None] | None,
    ) -> None:
        self.spec, self.should_stop, self.onset = spec, should_stop, onset
        self.early = EarlyStopper(spec) if spec.early_stopping else None
        at_onset = spec.diagnosis.stop_on == "onset" and onset is not None
        self.at_onset = OnsetStopper(spec.diagnosis.patience) if at_onset else None
        self.fired: EarlyStopper | OnsetStopper | None = None

    def reason(
        self, epoch: int, metrics: dict[str, float], model: nn.Module
    ) -> tuple[str, str] | None:
        """Why the run ends after this epoch (status, reason), or None to go on."""
        blown = [k for k in ("train_loss", "val_loss") if not math.isfinite(metrics[k])]
        if blown:
            return "diverged", f"{blown[0]} became {metrics[blown[0]]} at epoch {epoch}"
        early = self.early
        if early is not None and early.update(epoch, metrics, model):
            self.fired = early
            return "early_stopped", (
                f"{early.monitor} did not improve by more than {early.min_delta} "
                f"for {early.patience} epochs after epoch {early.best_epoch}"
            )
        at_onset = self.at_onset
        if at_onset is not None and at_onset.update(epoch, metrics, model, self.onset_epoch()):
            self.fired = at_onset
            return "early_stopped", (
                f"the diagnosis found the onset of overfitting after epoch {at_onset.onset} "
                f"(known after epoch {at_onset.known_at}; stop_on onset, patience "
                f"{at_onset.patience}); best val_loss at epoch {at_onset.best_epoch}"
            )
        if self.should_stop is not None and epoch < self.spec.epochs and self.should_stop():
            return "cancelled", f"cancelled after epoch {epoch}"
        return None

    def onset_epoch(self) -> int | None:
        """The epoch the diagnosis found the onset after, once it is known (else None)."""
        return self.onset() if self.onset is not None else None

    def restore(self) -> tuple[State, int] | None:
        """The weights the run keeps, if not its last epoch's, and their epoch: those of the
        stopper that fired, else early stopping's best (its restore_best)."""
        keeper = self.fired or self.early
        if keeper is None or keeper.best_state is None:
            return None
        return keeper.best_state, keeper.best_epoch

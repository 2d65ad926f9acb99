"""Reporters: the loop calls these hooks; each reporter decides where the events go.

Like Lightning's callbacks: the loop knows nothing of files, consoles or HTTP. The CLI uses
``JsonLinesWriter`` and ``ConsoleProgress``; the worker adds an HTTP poster of its own.
"""

from __future__ import annotations

import sys
from typing import IO

from trainer.events import EpochEnd, Evaluation, RunEnded, RunStarted


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_run_start(self, event: RunStarted) -> None: ...

    def on_epoch_end(self, event: EpochEnd) -> None: ...

    def on_evaluation(self, event: Evaluation) -> None: ...

    def on_run_end(self, event: RunEnded) -> None: ...


class JsonLinesWriter(Callback):
    """Every event as one JSON object per line (non-finite floats as "NaN"/"Infinity")."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def _write(self, event: RunStarted | EpochEnd | Evaluation | RunEnded) -> None:
        self.stream.write(event.model_dump_json() + "\n")
        self.stream.flush()

    on_run_start = _write
    on_epoch_end = _write
    on_evaluation = _write
    on_run_end = _write


class ConsoleProgress(Callback):
    """One human-readable line per epoch: losses, accuracies, gap, lr, time and ETA."""

    def __init__(self, stream: IO[str] | None = None, prefix: str = "") -> None:
        self.stream = stream or sys.stdout
        self.prefix = prefix

    def _print(self, text: str) -> None:
        print(f"{self.prefix}{text}", file=self.stream, flush=True)

    def on_run_start(self, event: RunStarted) -> None:
        self._print(
            f"training {event.task} on {event.device_name}: {event.n_train} train / "
            f"{event.n_val} val examples, {event.n_parameters:,} parameters, "
            f"{event.epochs} epochs"
        )

    def on_epoch_end(self, event: EpochEnd) -> None:
        m = event.metrics
        width = len(str(event.epochs))
        parts = [f"epoch {event.epoch:>{width}}/{event.epochs}"]
        parts.append(f"train_loss {m['train_loss']:.4f}  val_loss {m['val_loss']:.4f}")
        if "val_accuracy" in m:
            parts.append(
                f"train_acc {100 * m['train_accuracy']:5.1f}%  "
                f"val_acc {100 * m['val_accuracy']:5.1f}%"
            )
        else:
            parts.append(f"val_rmse {m['val_rmse']:.4g}  val_mae {m['val_mae']:.4g}")
        parts.append(f"gap {m['gap']:+.4f}  lr {m['lr']:.2e}")
        parts.append(f"{m['epoch_seconds']:.2f}s  ETA {event.eta_seconds:.0f}s")
        self._print("  ".join(parts))
        for change in event.lr_changes:
            self._print(f"  lr {change.old_lr:.3g} -> {change.new_lr:.3g} ({change.reason})")

    def on_evaluation(self, event: Evaluation) -> None:
        if event.accuracy is not None:
            auc = f"{event.macro_auc:.4f}" if event.macro_auc is not None else "n/a"
            self._print(
                f"evaluation (epoch {event.epoch}): accuracy {100 * event.accuracy:.2f}%  "
                f"macro F1 {event.macro_f1:.4f}  macro AUC {auc}  best epoch {event.best_epoch}"
            )
        else:
            self._print(
                f"evaluation (epoch {event.epoch}): RMSE {event.rmse:.4g}  MAE {event.mae:.4g}  "
                f"R2 {event.r2:.4f}  best epoch {event.best_epoch}"
            )

    def on_run_end(self, event: RunEnded) -> None:
        self._print(
            f"{event.status} after {event.epochs_run} epochs in {event.seconds:.1f}s: "
            f"{event.reason}"
        )

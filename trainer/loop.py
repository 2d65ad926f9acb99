"""The training loop: short, fast, and honest about generalisation.

Speed rules (after Keller Jordan's airbench): the data sit on the device; each epoch shuffles with
a device-side permutation; per-batch losses stay on the device and everything the epoch reports
(scalars and histogram bins) crosses to the host in one copy, i.e. one sync per epoch, never one
per batch.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from trainer.augment import Augmenter
from trainer.baseline import baseline
from trainer.callbacks import Callback
from trainer.checkpoints import Checkpoints
from trainer.data import load_data
from trainer.environment import use_configured_threads
from trainer.evaluation import evaluate
from trainer.events import EpochEnd, Evaluation, LRChange, ParamHistogram, RunEnded, RunStarted
from trainer.measure import (
    Scorer,
    batch_points,
    class_counts_width,
    epoch_values,
    split_evaluation,
)
from trainer.models import build_loss, build_model, build_optimizer, build_scheduler
from trainer.recent import BestState, RecentStates
from trainer.snapshots import Snapshots
from trainer.spec import JobSpec, ReduceOnPlateauSpec
from trainer.stats import histogram_width, pack_histograms, penalty, unpack_histograms
from trainer.stopping import Stopping
from trainer.weights import WeightWatch


@dataclass
class RunResult:
    status: str
    epochs_run: int
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    evaluation: Evaluation | None = None  # the final one of the validation split
    evaluations: list[Evaluation] = field(default_factory=list)  # every split's final one


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was requested but no CUDA device is available")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def train(
    spec: JobSpec,
    callbacks: Sequence[Callback] = (),
    should_stop: Callable[[], bool] | None = None,
    onset: Callable[[], int | None] | None = None,
) -> RunResult:
    """Run ``spec`` to completion (or early stop, or cancellation), reporting to ``callbacks``.

    ``should_stop`` is polled between epochs; when it answers True the run ends as cancelled.
    ``onset`` (polled too) answers the epoch the API's diagnosis found overfitting's onset
    after, or None: with ``diagnosis.stop_on: "onset"`` the run then stops early.
    """
    started = time.perf_counter()
    run = _Training(spec)

    def emit(hook: str, event: object) -> None:
        for cb in callbacks:
            getattr(cb, hook)(event)

    emit("on_run_start", run.started_event())
    progress = _Progress(spec.epochs)
    stopping = Stopping(spec, should_stop, onset)
    recent = RecentStates(run.model) if onset is not None else None
    status, reason = "completed", f"ran all {spec.epochs} epochs"
    for epoch in range(1, spec.epochs + 1):
        ended = _train_epoch(run, epoch, progress)
        emit("on_epoch_end", ended)
        if recent is not None:
            recent.after_epoch(epoch, run.model, stopping.onset_epoch())
        stop = stopping.reason(epoch, ended.metrics, run.model)
        if stop is not None:
            status, reason = stop
            break

    evaluations: list[Evaluation] = []
    restored_epoch: int | None = None
    last_epoch = len(progress.history)
    run.checkpoints.training_ended(last_epoch, run.model)  # before any restore
    run.snapshots.training_ended(last_epoch, run.model)
    at_onset = recent.onset if recent is not None else None
    best = run.best.kept() if run.best is not None else None
    if status != "cancelled":
        evaluations, restored_epoch = _final_evaluation(run, progress, stopping)
        for evaluation in evaluations:
            emit("on_evaluation", evaluation)
    epochs_run, best_epoch = len(progress.history), progress.best_epoch
    emit(
        "on_run_end",
        RunEnded(
            status=status,
            epochs_run=epochs_run,
            best_epoch=best_epoch,
            reason=reason,
            seconds=time.perf_counter() - started,
            restored_epoch=restored_epoch if status == "early_stopped" else None,
            steps=epochs_run * len(run.starts),
            snapshots=run.snapshots.at_end(best, at_onset),
            checkpoints=run.checkpoints.kept(run.best, at_onset) if status != "cancelled" else [],
        ),
    )
    result = RunResult(status, epochs_run, best_epoch, progress.history, evaluations=evaluations)
    result.evaluation = next((e for e in evaluations if e.split == "val"), None)
    return result


def _train_epoch(run: _Training, epoch: int, progress: _Progress) -> EpochEnd:
    """One epoch trained and measured: its metrics (the learning rate it trained with and its
    speed included), histograms, per-class evaluations, learning-rate changes and the ETA."""
    spec = run.spec
    t0 = time.perf_counter()
    lr = run.optimizer.param_groups[0]["lr"]
    measured = run.measure(epoch, run.train_epoch())
    metrics = measured.metrics
    seconds = time.perf_counter() - t0
    metrics["lr"] = lr
    metrics["epoch_seconds"] = seconds
    metrics["samples_per_second"] = run.n_train / seconds if seconds > 0 else math.inf
    eta = progress.record(epoch, metrics)
    best = progress.best_epoch == epoch
    if best and run.best is not None:
        run.best.update(epoch, metrics["val_loss"], run.model)
    snapshots = run.snapshots.after_epoch(epoch, best)
    lr_changes = _step_scheduler(spec, run.scheduler, run.optimizer, metrics, epoch)
    return EpochEnd(
        epoch=epoch,
        epochs=spec.epochs,
        metrics=metrics,
        histograms=measured.histograms,
        lr_changes=lr_changes,
        eta_seconds=eta,
        evaluations=measured.evaluations,
        snapshots=snapshots,
        batch_losses=measured.batch_losses,
    )


def _final_evaluation(
    run: _Training, progress: _Progress, stopping: Stopping
) -> tuple[list[Evaluation], int | None]:
    """The evaluations at the end (validation, training per class, and the test split once,
    here, if there is one): of the weights a stopping rule restored (and their epoch), else of
    the last epoch's."""
    eval_epoch, restored_epoch = len(progress.history), None
    if (restored := stopping.restore()) is not None:
        run.model.load_state_dict(restored[0])
        eval_epoch = restored_epoch = restored[1]
    common = dict(
        epoch=eval_epoch,
        best_epoch=progress.best_epoch or None,
        best_val_loss=progress.best_val_loss if math.isfinite(progress.best_val_loss) else None,
        last_finite_epoch=progress.last_finite_epoch,
    )
    splits: list[Literal["val", "test"]] = (
        ["val", "test"] if run.data.y_test is not None else ["val"]
    )
    evaluations = [evaluate(run.model, run.scorer, run.data, split, **common) for split in splits]
    if run.classification:
        train = run.scorer.outputs(run.data.x_train)
        counts = run.scorer.class_counts(train, run.data.y_train, run.n_classes)
        labels = run.data.class_names or []
        evaluations.append(
            split_evaluation(counts.tolist(), labels, "train", eval_epoch, final=True)
        )
    return evaluations, restored_epoch


@dataclass
class _Progress:
    """The epochs so far: their metrics, the best validation loss and when, the pace."""

    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    last_finite_epoch: int | None = None  # the last epoch whose losses were both finite
    seconds: float = 0.0

    def record(self, epoch: int, metrics: dict[str, float]) -> float:
        """Keep this epoch's metrics; the seconds the remaining epochs should take."""
        if metrics["val_loss"] < self.best_val_loss:
            self.best_epoch, self.best_val_loss = epoch, metrics["val_loss"]
        if math.isfinite(metrics["val_loss"]) and math.isfinite(metrics["train_loss"]):
            self.last_finite_epoch = epoch
        self.history.append(metrics)
        self.seconds += metrics["epoch_seconds"]
        return self.seconds / len(self.history) * (self.epochs - epoch)


class _Training:
    """Everything one run trains with, built in a fixed order (seeds, data, model, optimizer)
    so that a spec always trains the same way; then one epoch's steps."""

    def __init__(self, spec: JobSpec) -> None:
        use_configured_threads()
        self.spec = spec
        self.device = device = resolve_device(spec.device)
        torch.manual_seed(spec.seed)  # model init and dropout masks
        self.shuffle = torch.Generator(device=device).manual_seed(spec.seed)
        self.data = data = load_data(spec, device)
        augmentation = spec.dataset.augmentation
        self.augment = Augmenter(augmentation, device) if augmentation else None
        self.classification = data.n_classes is not None
        self.model = build_model(spec, data.input_shape, data.n_classes or 1).to(device)
        self.loss_fn = build_loss(spec)
        named = [(n, p) for n, p in self.model.named_parameters()]
        self.params = [p for _, p in named]
        self.optimizer = build_optimizer(spec, self.params)
        self.scheduler = build_scheduler(spec, self.optimizer)
        self.scorer = Scorer(self.model, self.loss_fn, self.classification)
        self.n_classes = data.n_classes or 0
        self.evaluated_epochs = spec.evaluation.epochs(spec.epochs)
        reg = spec.regularization
        self.penalised = [p for n, p in named if reg.apply_to == "all" or n.endswith("weight")]
        include = spec.histograms.include
        self.hist_params = [(n, p) for n, p in named if n.rsplit(".", 1)[-1] in include]
        self.watch = WeightWatch(named)
        self.snapshots = Snapshots(spec.snapshots, spec.epochs, named)
        self.checkpoints = Checkpoints(spec.checkpoints)
        # One copy of the best epoch's weights, for its snapshot and its checkpoint.
        wanted = spec.snapshots.enabled or "best" in spec.checkpoints.keep
        self.best = BestState() if wanted else None
        self.n_train, batch = len(data.y_train), spec.batch_size
        self.starts = range(0, self.n_train, batch)
        # Weight of each batch's mean loss in the epoch mean (the last batch may be short).
        self.batch_weights = torch.tensor(
            [min(batch, self.n_train - s) / self.n_train for s in self.starts], device=device
        )

    def started_event(self) -> RunStarted:
        spec, data = self.spec, self.data
        return RunStarted(
            spec_hash=spec.spec_hash(),
            task=spec.task,
            device=self.device.type,
            device_name=device_name(self.device),
            epochs=spec.epochs,
            n_train=self.n_train,
            n_val=len(data.y_val),
            n_classes=data.n_classes,
            class_names=data.class_names,
            input_shape=list(data.input_shape),
            n_parameters=sum(p.numel() for p in self.params),
            baseline=baseline(self.loss_fn, data),
            fingerprints=data.fingerprints,
        )

    def train_epoch(self) -> torch.Tensor:
        """One pass over the training split; the batch losses stay on the device (no sync)."""
        reg, batch, data = self.spec.regularization, self.spec.batch_size, self.data
        self.model.train()
        batch_losses = torch.empty(len(self.starts), device=self.device)
        perm = torch.randperm(self.n_train, device=self.device, generator=self.shuffle)
        for i, start in enumerate(self.starts):
            idx = perm[start : start + batch]
            inputs = data.x_train[idx]
            out = self.model(self.augment(inputs) if self.augment else inputs)
            loss = self.loss_fn(out, data.y_train[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if reg.l1 or reg.l2:
                _add_penalty_grads(self.penalised, reg.l1, reg.l2, reg.l2_form)
            self.optimizer.step()
            batch_losses[i] = loss.detach()
        return batch_losses

    def measure(self, epoch: int, batch_losses: torch.Tensor) -> _Measured:
        """Both splits scored in eval mode, the penalty, the histograms, the per-class counts
        and the per-batch losses, packed for the epoch's one device->host copy."""
        spec, reg, hist = self.spec, self.spec.regularization, self.spec.histograms
        names, values, outputs = epoch_values(
            spec, self.scorer, self.data, batch_losses, self.batch_weights
        )
        if reg.l1 or reg.l2:
            names.append("reg_penalty")
            values.append(penalty(self.penalised, reg.l1, reg.l2, reg.l2_form))
        moved, movement = self.watch.metrics()
        names += moved
        values += movement
        packed = [torch.stack([v.double() for v in values])]
        want_hist = hist.enabled and (epoch % hist.every == 0 or epoch == spec.epochs)
        shown = self.watch.histogram_tensors(self.hist_params, hist.include) if want_hist else []
        if want_hist:
            packed.append(pack_histograms(shown, hist.bins, hist.near_zero))
        self.watch.advance()
        per_class = self.classification and epoch in self.evaluated_epochs
        labelled = {"train": self.data.y_train, "val": self.data.y_val}
        for split, y in labelled.items() if per_class else ():
            packed.append(self.scorer.class_counts(outputs[split], y, self.n_classes))
        ends, points = batch_points(batch_losses, spec.evaluation.batch_points)
        packed.append(points.double())
        host = _Cursor(torch.cat(packed).tolist())  # the epoch's single device->host sync

        metrics = dict(zip(names, host.take(len(names)), strict=True))
        metrics["gap"] = metrics["val_loss"] - metrics["train_loss"]
        if self.classification:
            metrics["accuracy_gap"] = metrics["train_accuracy"] - metrics["val_accuracy"]
        measured = _Measured(metrics)
        if want_hist:
            width = histogram_width(len(shown), hist.bins)
            measured.histograms = unpack_histograms(host.take(width), shown, hist.bins, epoch)
        labels = self.data.class_names or []
        for split in labelled if per_class else ():
            counts = host.take(class_counts_width(self.n_classes))
            measured.evaluations.append(split_evaluation(counts, labels, split, epoch))
        first = (epoch - 1) * len(self.starts)
        losses = host.take(len(ends))
        measured.batch_losses = [(first + e, v) for e, v in zip(ends, losses, strict=True)]
        return measured


@dataclass
class _Measured:
    metrics: dict[str, float]
    histograms: list[ParamHistogram] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    batch_losses: list[tuple[int, float]] = field(default_factory=list)


class _Cursor:
    """Reads a packed host list front to back, in the order it was packed."""

    def __init__(self, values: list[float]) -> None:
        self.values, self.at = values, 0

    def take(self, n: int) -> list[float]:
        chunk = self.values[self.at : self.at + n]
        self.at += n
        return chunk


def _add_penalty_grads(
    params: Sequence[torch.Tensor], l1: float, l2: float, l2_form: str = "squared"
) -> None:
    """Gradient of l1*sum|w| + l2*sum w^2 (or, ``l2_form`` "norm", l2 * each tensor's
    ||w||_2: gradient l2 * w / ||w||), added straight to .grad.

    Same update as adding the penalty to the loss (seed 001), without building its autograd
    graph every step; the penalty's value is computed once per epoch for reporting.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if l1:
        torch._foreach_add_(grads, torch._foreach_sign(list(params)), alpha=l1)
    if l2 and l2_form == "norm":
        norms = torch._foreach_norm(list(params), 2)
        for grad, param, norm in zip(grads, params, norms, strict=True):
            grad.add_(param / norm.clamp_min(1e-12), alpha=l2)  # no host sync
    elif l2:
        torch._foreach_add_(grads, list(params), alpha=2 * l2)


def _step_scheduler(
    spec: JobSpec,
    scheduler: object,
    optimizer: torch.optim.Optimizer,
    metrics: dict[str, float],
    epoch: int,
) -> list[LRChange]:
    if scheduler is None:
        return []
    old = optimizer.param_groups[0]["lr"]
    sched = spec.lr_schedule
    if isinstance(sched, ReduceOnPlateauSpec):
        scheduler.step(metrics[sched.monitor])  # type: ignore[attr-defined]
        why = f"{sched.monitor} plateaued (reduce_on_plateau, factor {sched.factor})"
    else:
        scheduler.step()  # type: ignore[attr-defined]
        why = f"{sched.kind} schedule"
    new = optimizer.param_groups[0]["lr"]
    if new == old:
        return []
    return [LRChange(epoch=epoch, old_lr=old, new_lr=new, reason=why)]

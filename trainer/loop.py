"""The training loop: short, fast, and honest about generalisation.

Speed rules (after Keller Jordan's airbench): the data sit on the device; each epoch shuffles with
a device-side permutation; per-batch losses stay on the device and everything the epoch reports
(scalars and histogram bins) crosses to the host in one copy, i.e. one sync per epoch, never one
per batch.
"""

from __future__ import annotations

import copy
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from trainer.baseline import baseline
from trainer.callbacks import Callback
from trainer.config import get_settings
from trainer.data import DataBundle, load_data
from trainer.evaluation import evaluate
from trainer.events import EpochEnd, Evaluation, LRChange, ParamHistogram, RunEnded, RunStarted
from trainer.models import build_loss, build_model, build_optimizer, build_scheduler
from trainer.spec import MAXIMISED_METRICS, JobSpec, ReduceOnPlateauSpec
from trainer.stats import histogram_width, pack_histograms, penalty, unpack_histograms


@dataclass
class RunResult:
    status: str
    epochs_run: int
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    evaluation: Evaluation | None = None


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


class _Scorer:
    """No-grad passes over a whole split, in large batches, returning device tensors."""

    def __init__(self, model: nn.Module, loss_fn: nn.Module, classification: bool) -> None:
        self.model, self.loss_fn, self.classification = model, loss_fn, classification
        self.batch = get_settings().eval_batch_size

    @torch.no_grad()
    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        return torch.cat([self.model(x[i : i + self.batch]) for i in range(0, len(x), self.batch)])

    @torch.no_grad()
    def score(self, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """[loss, accuracy] or [loss, rmse, mae] (standardised units), plus the raw outputs."""
        out = self.outputs(x)
        loss = self.loss_fn(out, y)
        if self.classification:
            return [loss, (out.argmax(1) == y).float().mean()], out
        err = out - y
        return [loss, err.square().mean().sqrt(), err.abs().mean()], out


def train(
    spec: JobSpec,
    callbacks: Sequence[Callback] = (),
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Run ``spec`` to completion (or early stop, or cancellation), reporting to ``callbacks``.

    ``should_stop`` is polled between epochs; when it answers True the run ends as cancelled.
    """
    started = time.perf_counter()
    run = _Training(spec)

    def emit(hook: str, event: object) -> None:
        for cb in callbacks:
            getattr(cb, hook)(event)

    emit("on_run_start", run.started_event())
    progress = _Progress(spec.epochs)
    stopper = _EarlyStopper(spec) if spec.early_stopping else None
    status, reason = "completed", f"ran all {spec.epochs} epochs"
    for epoch in range(1, spec.epochs + 1):
        ended = _train_epoch(run, epoch, progress)
        emit("on_epoch_end", ended)
        stop = _stop_reason(spec, epoch, ended.metrics, stopper, run.model, should_stop)
        if stop is not None:
            status, reason = stop
            break

    evaluation: Evaluation | None = None
    restored_epoch: int | None = None
    if status != "cancelled":
        evaluation, restored_epoch = _final_evaluation(run, progress, stopper)
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
        ),
    )
    return RunResult(status, epochs_run, best_epoch, progress.history, evaluation)


def _train_epoch(run: _Training, epoch: int, progress: _Progress) -> EpochEnd:
    """One epoch trained and measured: its metrics (the learning rate it trained with and its
    speed included), histograms, learning-rate changes and the run's ETA."""
    spec = run.spec
    t0 = time.perf_counter()
    lr = run.optimizer.param_groups[0]["lr"]
    metrics, histograms = run.measure(epoch, run.train_epoch())
    seconds = time.perf_counter() - t0
    metrics["lr"] = lr
    metrics["epoch_seconds"] = seconds
    metrics["samples_per_second"] = run.n_train / seconds if seconds > 0 else math.inf
    eta = progress.record(epoch, metrics)
    lr_changes = _step_scheduler(spec, run.scheduler, run.optimizer, metrics, epoch)
    return EpochEnd(
        epoch=epoch,
        epochs=spec.epochs,
        metrics=metrics,
        histograms=histograms,
        lr_changes=lr_changes,
        eta_seconds=eta,
    )


def _final_evaluation(
    run: _Training, progress: _Progress, stopper: _EarlyStopper | None
) -> tuple[Evaluation, int | None]:
    """The evaluation at the end: of the weights early stopping restored (and their epoch),
    else of the last epoch's."""
    eval_epoch, restored_epoch = len(progress.history), None
    if stopper is not None and stopper.best_state is not None:
        run.model.load_state_dict(stopper.best_state)
        eval_epoch = restored_epoch = stopper.best_epoch
    evaluation = run.evaluate(eval_epoch, progress.best_epoch, progress.best_val_loss)
    return evaluation, restored_epoch


@dataclass
class _Progress:
    """The epochs so far: their metrics, the best validation loss and when, the pace."""

    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    seconds: float = 0.0

    def record(self, epoch: int, metrics: dict[str, float]) -> float:
        """Keep this epoch's metrics; the seconds the remaining epochs should take."""
        if metrics["val_loss"] < self.best_val_loss:
            self.best_epoch, self.best_val_loss = epoch, metrics["val_loss"]
        self.history.append(metrics)
        self.seconds += metrics["epoch_seconds"]
        return self.seconds / len(self.history) * (self.epochs - epoch)


class _Training:
    """Everything one run trains with, built in a fixed order (seeds, data, model, optimizer)
    so that a spec always trains the same way; then one epoch's steps."""

    def __init__(self, spec: JobSpec) -> None:
        if threads := get_settings().torch_threads:
            torch.set_num_threads(threads)
        self.spec = spec
        self.device = device = resolve_device(spec.device)
        torch.manual_seed(spec.seed)  # model init and dropout masks
        self.shuffle = torch.Generator(device=device).manual_seed(spec.seed)
        self.data = data = load_data(spec, device)
        self.classification = data.n_classes is not None
        self.model = build_model(spec, data.input_shape, data.n_classes or 1).to(device)
        self.loss_fn = build_loss(spec)
        named = [(n, p) for n, p in self.model.named_parameters()]
        self.params = [p for _, p in named]
        self.optimizer = build_optimizer(spec, self.params)
        self.scheduler = build_scheduler(spec, self.optimizer)
        self.scorer = _Scorer(self.model, self.loss_fn, self.classification)
        reg = spec.regularization
        self.penalised = [p for n, p in named if reg.apply_to == "all" or n.endswith("weight")]
        include = spec.histograms.include
        self.hist_params = [(n, p) for n, p in named if n.rsplit(".", 1)[-1] in include]
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
        )

    def train_epoch(self) -> torch.Tensor:
        """One pass over the training split; the batch losses stay on the device (no sync)."""
        reg, batch, data = self.spec.regularization, self.spec.batch_size, self.data
        self.model.train()
        batch_losses = torch.empty(len(self.starts), device=self.device)
        perm = torch.randperm(self.n_train, device=self.device, generator=self.shuffle)
        for i, start in enumerate(self.starts):
            idx = perm[start : start + batch]
            out = self.model(data.x_train[idx])
            loss = self.loss_fn(out, data.y_train[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if reg.l1 or reg.l2:
                _add_penalty_grads(self.penalised, reg.l1, reg.l2, reg.l2_form)
            self.optimizer.step()
            batch_losses[i] = loss.detach()
        return batch_losses

    def measure(
        self, epoch: int, batch_losses: torch.Tensor
    ) -> tuple[dict[str, float], list[ParamHistogram]]:
        """Both splits scored in eval mode, the penalty and the histograms, packed for the
        epoch's one device->host copy."""
        spec, reg, hist = self.spec, self.spec.regularization, self.spec.histograms
        names, values = _epoch_values(
            spec, self.scorer, self.data, batch_losses, self.batch_weights
        )
        if reg.l1 or reg.l2:
            names.append("reg_penalty")
            values.append(penalty(self.penalised, reg.l1, reg.l2, reg.l2_form))
        packed = [torch.stack([v.double() for v in values])]
        want_hist = hist.enabled and (epoch % hist.every == 0 or epoch == spec.epochs)
        if want_hist:
            packed.append(pack_histograms(self.hist_params, hist.bins, hist.near_zero))
        host = torch.cat(packed).tolist()  # the epoch's single device->host sync

        metrics = dict(zip(names, host[: len(names)], strict=True))
        metrics["gap"] = metrics["val_loss"] - metrics["train_loss"]
        if self.classification:
            metrics["accuracy_gap"] = metrics["train_accuracy"] - metrics["val_accuracy"]
        if not want_hist:
            return metrics, []
        assert len(host) == len(names) + histogram_width(len(self.hist_params), hist.bins)
        return metrics, unpack_histograms(host[len(names) :], self.hist_params, hist.bins, epoch)

    def evaluate(self, epoch: int, best_epoch: int, best_val_loss: float) -> Evaluation:
        outputs = self.scorer.outputs(self.data.x_val)
        return evaluate(
            self.model,
            outputs,
            self.data,
            epoch=epoch,
            best_epoch=best_epoch,
            best_val_loss=best_val_loss,
        )


def _stop_reason(
    spec: JobSpec,
    epoch: int,
    metrics: dict[str, float],
    stopper: _EarlyStopper | None,
    model: nn.Module,
    should_stop: Callable[[], bool] | None,
) -> tuple[str, str] | None:
    """Why the run ends after this epoch (status, reason), or None to go on."""
    blown = [k for k in ("train_loss", "val_loss") if not math.isfinite(metrics[k])]
    if blown:
        return "diverged", f"{blown[0]} became {metrics[blown[0]]} at epoch {epoch}"
    if stopper is not None and stopper.update(epoch, metrics, model):
        return "early_stopped", (
            f"{stopper.monitor} did not improve by more than {stopper.min_delta} "
            f"for {stopper.patience} epochs after epoch {stopper.best_epoch}"
        )
    if should_stop is not None and epoch < spec.epochs and should_stop():
        return "cancelled", f"cancelled after epoch {epoch}"
    return None


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


def _epoch_values(
    spec: JobSpec,
    scorer: _Scorer,
    data: DataBundle,
    batch_losses: torch.Tensor,
    batch_weights: torch.Tensor,
) -> tuple[list[str], list[torch.Tensor]]:
    classification = data.n_classes is not None
    suffixes = ["loss", "accuracy"] if classification else ["loss", "rmse", "mae"]
    running_loss = (batch_losses * batch_weights).sum()
    val, _ = scorer.score(data.x_val, data.y_val)
    train, _ = scorer.score(data.x_train, data.y_train)
    names = [f"val_{s}" for s in suffixes] + [f"train_{s}" for s in suffixes]
    names.append("train_loss_running")
    values = [*val, *train, running_loss]
    if spec.train_metrics == "running":
        # train_loss is the batch mean (as the seeds print it); the re-scored one stays visible.
        names[names.index("train_loss")] = "train_loss_eval"
        names[-1] = "train_loss"
    if not classification:
        # Report RMSE/MAE in the target's own units.
        for i, name in enumerate(names):
            if name.endswith(("_rmse", "_mae")):
                values[i] = values[i] * data.target_std
    return names, values


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


class _EarlyStopper:
    def __init__(self, spec: JobSpec) -> None:
        assert spec.early_stopping is not None
        es = spec.early_stopping
        self.monitor, self.patience, self.min_delta = es.monitor, es.patience, es.min_delta
        self.restore = es.restore_best
        self.sign = -1.0 if es.monitor in MAXIMISED_METRICS else 1.0  # minimise sign * value
        self.best = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
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

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

from trainer.callbacks import Callback
from trainer.config import get_settings
from trainer.data import DataBundle, load_data
from trainer.evaluation import evaluate
from trainer.events import EpochEnd, Evaluation, LRChange, RunEnded, RunStarted
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
    if threads := get_settings().torch_threads:
        torch.set_num_threads(threads)
    device = resolve_device(spec.device)
    torch.manual_seed(spec.seed)  # model init and dropout masks
    shuffle = torch.Generator(device=device).manual_seed(spec.seed)
    data = load_data(spec, device)
    classification = data.n_classes is not None

    model = build_model(spec, data.input_shape, data.n_classes or 1).to(device)
    loss_fn = build_loss(spec)
    named = [(n, p) for n, p in model.named_parameters()]
    params = [p for _, p in named]
    optimizer = build_optimizer(spec, params)
    scheduler = build_scheduler(spec, optimizer)
    scorer = _Scorer(model, loss_fn, classification)

    reg = spec.regularization
    penalised = [p for n, p in named if reg.apply_to == "all" or n.endswith("weight")]
    hist = spec.histograms
    hist_params = [(n, p) for n, p in named if n.rsplit(".", 1)[-1] in hist.include]

    n_train, batch = len(data.y_train), spec.batch_size
    starts = range(0, n_train, batch)
    # Weight of each batch's mean loss in the epoch mean (the last batch may be short).
    batch_weights = torch.tensor([min(batch, n_train - s) / n_train for s in starts], device=device)

    def emit(hook: str, event: object) -> None:
        for cb in callbacks:
            getattr(cb, hook)(event)

    emit(
        "on_run_start",
        RunStarted(
            spec_hash=spec.spec_hash(),
            task=spec.task,
            device=device.type,
            device_name=device_name(device),
            epochs=spec.epochs,
            n_train=n_train,
            n_val=len(data.y_val),
            n_classes=data.n_classes,
            class_names=data.class_names,
            input_shape=list(data.input_shape),
            n_parameters=sum(p.numel() for p in params),
        ),
    )

    history: list[dict[str, float]] = []
    best_epoch, best_val_loss = 0, math.inf
    stopper = _EarlyStopper(spec) if spec.early_stopping else None
    status, reason = "completed", f"ran all {spec.epochs} epochs"
    epoch_seconds: list[float] = []

    for epoch in range(1, spec.epochs + 1):
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]

        # --- train: no host sync inside this loop ---
        model.train()
        batch_losses = torch.empty(len(starts), device=device)
        perm = torch.randperm(n_train, device=device, generator=shuffle)
        for i, start in enumerate(starts):
            idx = perm[start : start + batch]
            out = model(data.x_train[idx])
            loss = loss_fn(out, data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if reg.l1 or reg.l2:
                _add_penalty_grads(penalised, reg.l1, reg.l2, reg.l2_form)
            optimizer.step()
            batch_losses[i] = loss.detach()

        # --- score both splits in eval mode, pack everything for one host copy ---
        names, values = _epoch_values(spec, scorer, data, batch_losses, batch_weights)
        if reg.l1 or reg.l2:
            names.append("reg_penalty")
            values.append(penalty(penalised, reg.l1, reg.l2, reg.l2_form))
        packed = [torch.stack([v.double() for v in values])]
        want_hist = hist.enabled and (epoch % hist.every == 0 or epoch == spec.epochs)
        if want_hist:
            packed.append(pack_histograms(hist_params, hist.bins, hist.near_zero))
        host = torch.cat(packed).tolist()  # the epoch's single device->host sync

        metrics = dict(zip(names, host[: len(names)], strict=True))
        metrics["gap"] = metrics["val_loss"] - metrics["train_loss"]
        if classification:
            metrics["accuracy_gap"] = metrics["train_accuracy"] - metrics["val_accuracy"]
        metrics["lr"] = lr
        seconds = time.perf_counter() - t0
        metrics["epoch_seconds"] = seconds
        metrics["samples_per_second"] = n_train / seconds if seconds > 0 else math.inf
        histograms = (
            unpack_histograms(host[len(names) :], hist_params, hist.bins, epoch)
            if want_hist
            else []
        )
        assert not want_hist or len(host) == len(names) + histogram_width(
            len(hist_params), hist.bins
        )

        if metrics["val_loss"] < best_val_loss:
            best_epoch, best_val_loss = epoch, metrics["val_loss"]
        lr_changes = _step_scheduler(spec, scheduler, optimizer, metrics, epoch)
        epoch_seconds.append(seconds)
        history.append(metrics)
        emit(
            "on_epoch_end",
            EpochEnd(
                epoch=epoch,
                epochs=spec.epochs,
                metrics=metrics,
                histograms=histograms,
                lr_changes=lr_changes,
                eta_seconds=sum(epoch_seconds) / len(epoch_seconds) * (spec.epochs - epoch),
            ),
        )

        blown = [k for k in ("train_loss", "val_loss") if not math.isfinite(metrics[k])]
        if blown:
            status = "diverged"
            reason = f"{blown[0]} became {metrics[blown[0]]} at epoch {epoch}"
            break
        if stopper is not None and stopper.update(epoch, metrics, model):
            status = "early_stopped"
            reason = (
                f"{stopper.monitor} did not improve by more than {stopper.min_delta} "
                f"for {stopper.patience} epochs after epoch {stopper.best_epoch}"
            )
            break
        if should_stop is not None and epoch < spec.epochs and should_stop():
            status, reason = "cancelled", f"cancelled after epoch {epoch}"
            break

    evaluation = None
    restored_epoch = None
    if status != "cancelled":
        eval_epoch = len(history)
        if stopper is not None and stopper.best_state is not None:
            model.load_state_dict(stopper.best_state)
            eval_epoch = restored_epoch = stopper.best_epoch
        evaluation = evaluate(
            model,
            scorer.outputs(data.x_val),
            data,
            epoch=eval_epoch,
            best_epoch=best_epoch,
            best_val_loss=best_val_loss,
        )
        emit("on_evaluation", evaluation)
    emit(
        "on_run_end",
        RunEnded(
            status=status,
            epochs_run=len(history),
            best_epoch=best_epoch,
            reason=reason,
            seconds=time.perf_counter() - started,
            restored_epoch=restored_epoch if status == "early_stopped" else None,
        ),
    )
    return RunResult(status, len(history), best_epoch, history, evaluation)


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

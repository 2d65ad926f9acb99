"""What an epoch measures, on the device: both splits scored in eval mode, each class's loss
and confusion counts at the epochs the spec evaluates per class, and the per-batch training
loss thinned to a few points; all of it packed into the epoch's one device->host copy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fitlens.scoring import confusion_report
from trainer.config import get_settings
from trainer.data import DataBundle
from trainer.events import ClassReport, Evaluation
from trainer.spec import JobSpec


class Scorer:
    """No-grad passes over a whole split, in large batches, returning device tensors."""

    def __init__(self, model: nn.Module, loss_fn: nn.Module, classification: bool) -> None:
        self.model, self.loss_fn, self.classification = model, loss_fn, classification
        self.per_example = type(loss_fn)(reduction="none")
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

    @torch.no_grad()
    def class_counts(self, out: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
        """Each class's summed loss, then the k x k confusion counts (rows: true class), as
        one float64 vector still on the device."""
        losses = self.per_example(out, y).double()
        sums = torch.zeros(k, dtype=torch.float64, device=out.device).index_add_(0, y, losses)
        confusion = torch.bincount(y * k + out.argmax(1), minlength=k * k)
        return torch.cat([sums, confusion.double()])


def class_counts_width(k: int) -> int:
    return k + k * k


def split_evaluation(
    counts: list[float], labels: list[str], split: str, epoch: int, final: bool = False
) -> Evaluation:
    """A split's per-class evaluation from ``Scorer.class_counts`` (on the host)."""
    k = len(labels)
    sums = counts[:k]
    confusion = np.rint(np.asarray(counts[k:])).astype(np.int64).reshape(k, k)
    report = confusion_report(confusion, labels)
    report["per_class"] = with_losses(report["per_class"], sums)
    total = int(confusion.sum())
    loss = sum(sums) / total if total else None
    return Evaluation(epoch=epoch, split=split, final=final, loss=loss, **report)


def with_losses(rows: list[dict[str, Any]], sums: list[float]) -> list[ClassReport]:
    """fitlens.scoring's per-class rows, each with its class's mean loss (from the summed
    losses of Scorer.class_counts; None for a class without examples)."""
    return [
        ClassReport(**row, loss=sums[c] / row["support"] if row["support"] else None)
        for c, row in enumerate(rows)
    ]


def epoch_values(
    spec: JobSpec,
    scorer: Scorer,
    data: DataBundle,
    batch_losses: torch.Tensor,
    batch_weights: torch.Tensor,
) -> tuple[list[str], list[torch.Tensor], dict[str, torch.Tensor]]:
    """The epoch's metrics (names, device scalars) and each split's outputs."""
    classification = data.n_classes is not None
    suffixes = ["loss", "accuracy"] if classification else ["loss", "rmse", "mae"]
    running_loss = (batch_losses * batch_weights).sum()
    val, val_out = scorer.score(data.x_val, data.y_val)
    train, train_out = scorer.score(data.x_train, data.y_train)
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
    return names, values, {"val": val_out, "train": train_out}


def batch_points(batch_losses: torch.Tensor, points: int) -> tuple[list[int], torch.Tensor]:
    """At most ``points`` means of consecutive batches' losses: each one's last batch (1-based
    within the epoch) and, on the device, its value."""
    if points <= 0:
        return [], batch_losses[:0]
    chunks = torch.tensor_split(batch_losses, min(points, len(batch_losses)))
    ends = np.cumsum([len(c) for c in chunks]).tolist()
    return ends, torch.stack([c.mean() for c in chunks])

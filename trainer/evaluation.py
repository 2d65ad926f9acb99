"""End-of-run evaluation of the validation (or test) split: regression errors by scikit-learn
with the predictions themselves, the classification report by fitlens.scoring (the one the
client uses too) with each class's loss and the most confident mistakes."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import metrics
from torch import nn

from fitlens.scoring import classification_report
from trainer.data import DataBundle
from trainer.events import Evaluation, Misclassified, Predictions, WeightMatrix
from trainer.measure import Scorer, with_losses

HEATMAP_MAX = 64
MISCLASSIFIED_MAX = 32  # the most confident mistakes kept
PREDICTIONS_MAX = 1000  # regression: actual/predicted pairs kept (an even sample beyond)


def evaluate(
    model: nn.Module,
    scorer: Scorer,
    data: DataBundle,
    split: Literal["val", "test"],
    **common: Any,
) -> Evaluation:
    """The final evaluation of ``split``; ``common``: epoch, best_epoch, best_val_loss,
    last_finite_epoch. The weight heat-maps go with the validation split's."""
    x, y = (data.x_val, data.y_val) if split == "val" else (data.x_test, data.y_test)
    assert x is not None and y is not None
    outputs = scorer.outputs(x)
    common.update(split=split, final=True, loss=float(scorer.loss_fn(outputs, y)))
    if split == "val":
        common["weight_matrices"] = weight_matrices(model)
    if data.n_classes is None:
        return Evaluation(**_regression(outputs, y, data, split), **common)
    probs = F.softmax(outputs.double(), dim=1)
    report = classification_report(y.cpu().numpy(), probs.cpu().numpy(), data.class_names)
    counts = scorer.class_counts(outputs, y, data.n_classes).tolist()
    report["per_class"] = with_losses(report["per_class"], counts)
    if split == "val":
        report["misclassified"] = misclassified(x, y, probs, data)
    return Evaluation(**report, **common)


def _regression(
    outputs: torch.Tensor, y: torch.Tensor, data: DataBundle, split: str
) -> dict[str, Any]:
    pred = outputs.double().cpu().numpy().ravel() * data.target_std + data.target_mean
    true = y.double().cpu().numpy().ravel() * data.target_std + data.target_mean
    if not np.isfinite(pred).all():  # a diverged run: report it as such, do not crash
        return dict(rmse=math.nan, mae=math.nan, r2=math.nan)
    keep = np.unique(np.linspace(0, len(true) - 1, min(len(true), PREDICTIONS_MAX)).astype(int))
    index = data.val_index if split == "val" and data.val_index is not None else np.arange(len(y))
    return dict(
        rmse=float(np.sqrt(metrics.mean_squared_error(true, pred))),
        mae=float(metrics.mean_absolute_error(true, pred)),
        r2=float(metrics.r2_score(true, pred)),
        predictions=Predictions(
            index=[int(i) for i in index[keep]],
            actual=true[keep].tolist(),
            predicted=pred[keep].tolist(),
            residual=(pred[keep] - true[keep]).tolist(),
        ),
    )


def misclassified(
    x: torch.Tensor, y: torch.Tensor, probs: torch.Tensor, data: DataBundle
) -> list[Misclassified]:
    """The validation examples the model got wrong, the most confident first; image data
    carry the example itself, each scaled to [0, 1] for display."""
    confidence, predicted = probs.max(dim=1)
    wrong = torch.nonzero(predicted != y).ravel()
    if not torch.isfinite(probs).all() or len(wrong) == 0:
        return []
    worst = wrong[confidence[wrong].argsort(descending=True)[:MISCLASSIFIED_MAX]].tolist()
    names = data.class_names or []
    images = len(data.input_shape) == 3
    index = data.val_index if data.val_index is not None else np.arange(len(y))
    out = []
    for i in worst:
        image = None
        if images:
            pixels = x[i].double()
            span = (pixels.max() - pixels.min()).clamp_min(1e-12)
            image = ((pixels - pixels.min()) / span).round(decimals=3).cpu().tolist()
        out.append(
            Misclassified(
                index=int(index[i]),
                true=names[int(y[i])],
                predicted=names[int(predicted[i])],
                confidence=float(confidence[i]),
                image=image,
            )
        )
    return out


def weight_matrices(model: nn.Module) -> list[WeightMatrix]:
    """Each linear layer's weights, average-pooled to at most 64x64, for a heat-map."""
    out = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        weight = module.weight.detach().float()
        rows, cols = weight.shape
        pooled = F.adaptive_avg_pool2d(
            weight[None, None], (min(rows, HEATMAP_MAX), min(cols, HEATMAP_MAX))
        )[0, 0]
        out.append(
            WeightMatrix(param=f"{name}.weight", shape=[rows, cols], values=pooled.cpu().tolist())
        )
    return out

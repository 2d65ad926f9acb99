"""End-of-run evaluation on the validation set, with scikit-learn doing the metric maths."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import metrics
from torch import nn

from trainer.data import DataBundle
from trainer.events import ClassReport, Evaluation, ROCCurve, WeightMatrix

ROC_MAX_POINTS = 200
HEATMAP_MAX = 64


def evaluate(
    model: nn.Module,
    outputs: torch.Tensor,
    data: DataBundle,
    *,
    epoch: int,
    best_epoch: int,
    best_val_loss: float,
) -> Evaluation:
    """``outputs`` are the model's validation-set outputs (logits, or standardised targets)."""
    common = dict(
        epoch=epoch,
        best_epoch=best_epoch,
        best_val_loss=best_val_loss,
        weight_matrices=weight_matrices(model),
    )
    if data.n_classes is None:
        pred = outputs.double().cpu().numpy().ravel() * data.target_std + data.target_mean
        true = data.y_val.double().cpu().numpy().ravel() * data.target_std + data.target_mean
        if not np.isfinite(pred).all():  # a diverged run: report it as such, do not crash
            return Evaluation(rmse=math.nan, mae=math.nan, r2=math.nan, **common)
        return Evaluation(
            rmse=float(np.sqrt(metrics.mean_squared_error(true, pred))),
            mae=float(metrics.mean_absolute_error(true, pred)),
            r2=float(metrics.r2_score(true, pred)),
            **common,
        )

    probs = F.softmax(outputs.double(), dim=1).cpu().numpy()
    # A diverged run (NaN/Inf logits) still gets a confusion matrix, but no ROC: the scores
    # that would rank examples are meaningless.
    finite = bool(np.isfinite(probs).all())
    y_true = data.y_val.cpu().numpy()
    y_pred = np.nan_to_num(probs, nan=-1.0).argmax(axis=1)
    labels = list(range(data.n_classes))
    names = data.class_names or [str(i) for i in labels]
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    roc: list[ROCCurve] = []
    for label in labels if finite else []:
        positives = y_true == label
        if positives.all() or not positives.any():
            continue  # ROC is undefined without both positives and negatives
        fpr, tpr, _ = metrics.roc_curve(positives, probs[:, label])
        auc = float(metrics.auc(fpr, tpr))
        keep = _thin(len(fpr), ROC_MAX_POINTS)
        roc.append(
            ROCCurve(label=names[label], fpr=fpr[keep].tolist(), tpr=tpr[keep].tolist(), auc=auc)
        )
    return Evaluation(
        labels=names,
        confusion_matrix=metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        per_class=[
            ClassReport(
                label=names[i],
                precision=float(precision[i]),
                recall=float(recall[i]),
                f1=float(f1[i]),
                support=int(support[i]),
            )
            for i in labels
        ],
        accuracy=float(metrics.accuracy_score(y_true, y_pred)),
        macro_f1=float(np.mean(f1)),
        roc=roc,
        macro_auc=float(np.mean([c.auc for c in roc])) if roc else None,
        **common,
    )


def _thin(n: int, max_points: int) -> np.ndarray:
    """Evenly spaced indices, always keeping the first and last point of the curve."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def weight_matrices(model: nn.Module) -> list[WeightMatrix]:
    """Each linear layer's weights, average-pooled to at most 64x64 for a heat-map."""
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

"""End-of-run evaluation on the validation set: regression errors by scikit-learn, the
classification report by fitlens.scoring (the one the client uses too)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import metrics
from torch import nn

from fitlens.scoring import classification_report
from trainer.data import DataBundle
from trainer.events import Evaluation, WeightMatrix

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
    report = classification_report(data.y_val.cpu().numpy(), probs, data.class_names)
    return Evaluation(**report, **common)


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

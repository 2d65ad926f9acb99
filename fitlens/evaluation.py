"""The end-of-run evaluation of a classifier, from true classes and per-class scores, in the
shape the API stores (what fitlens's trainer posts): scikit-learn computes it."""

from __future__ import annotations

from typing import Any

ROC_MAX_POINTS = 200


def evaluation_body(
    y_true: Any, y_score: Any, labels: list[str] | None, epoch: int
) -> dict[str, Any]:
    import numpy as np
    from sklearn import metrics

    truth = np.asarray(y_true).astype(int).ravel()
    scores = np.asarray(y_score, dtype=float)
    if scores.ndim != 2 or scores.shape[0] != truth.shape[0]:
        raise ValueError("y_score must be (samples, classes), one row per y_true")
    classes = list(range(scores.shape[1]))
    names = labels or [str(c) for c in classes]
    pred = scores.argmax(axis=1)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        truth, pred, labels=classes, zero_division=0
    )
    roc = []
    for c in classes:
        positives = truth == c
        if positives.all() or not positives.any():
            continue
        fpr, tpr, _ = metrics.roc_curve(positives, scores[:, c])
        keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_MAX_POINTS)).astype(int))
        roc.append(
            {
                "label": names[c],
                "fpr": fpr[keep].tolist(),
                "tpr": tpr[keep].tolist(),
                "auc": float(metrics.auc(fpr, tpr)),
            }
        )
    return {
        "epoch": epoch,
        "best_epoch": epoch,
        "best_val_loss": float("nan"),  # unknown here
        "labels": names,
        "confusion_matrix": metrics.confusion_matrix(truth, pred, labels=classes).tolist(),
        "per_class": [
            {
                "label": names[c],
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
            }
            for c in classes
        ],
        "accuracy": float(metrics.accuracy_score(truth, pred)),
        "macro_f1": float(np.mean(f1)),
        "roc": roc,
        "macro_auc": float(np.mean([r["auc"] for r in roc])) if roc else None,
    }

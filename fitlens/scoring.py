"""A classifier's evaluation from its true classes and per-class scores, in numpy alone: the
confusion matrix, per-class precision/recall/F1, accuracy, one-vs-rest ROC curves and AUCs,
precision-recall curves and average precision.

The one implementation behind the trainer's end-of-run evaluation and the client's
``run.log_evaluation``; it follows scikit-learn's definitions (``zero_division=0``; ROC points
where the ranking changes, collinear ones dropped; trapezoidal AUC), and tests/test_scoring.py
checks it against scikit-learn. No torch and no HTTP here: both sides import it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ROC_MAX_POINTS = 200


def classification_report(
    y_true: Any, y_score: Any, labels: list[str] | None = None
) -> dict[str, Any]:
    """The evaluation's classification fields (as the API stores them). ``y_score`` is
    (samples, classes); scores that are not finite (a diverged run) still give a confusion
    matrix, from the finite ones, but no ROC: they cannot rank the examples."""
    truth = np.asarray(y_true).astype(np.int64).ravel()
    scores = np.asarray(y_score, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != truth.shape[0]:
        raise ValueError("y_score must be (samples, classes), one row per y_true")
    k = scores.shape[1]
    if truth.size and (truth.min() < 0 or truth.max() >= k):
        raise ValueError(f"y_true must hold class indices in 0..{k - 1}")
    names = labels or [str(c) for c in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} labels for {k} classes")
    pred = np.nan_to_num(scores, nan=-1.0).argmax(axis=1)
    confusion = np.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
    finite = bool(np.isfinite(scores).all())
    ranked = [c for c in range(k) if finite and 0 < np.count_nonzero(truth == c) < truth.size]
    roc = [{"label": names[c], **roc_curve(truth == c, scores[:, c])} for c in ranked]
    pr = [{"label": names[c], **pr_curve(truth == c, scores[:, c])} for c in ranked]
    return {
        **confusion_report(confusion, names),
        "roc": roc,
        "macro_auc": float(np.mean([r["auc"] for r in roc])) if roc else None,
        "pr": pr,
        "macro_average_precision": (
            float(np.mean([r["average_precision"] for r in pr])) if pr else None
        ),
    }


def confusion_report(confusion: Any, names: list[str]) -> dict[str, Any]:
    """The fields that follow from a confusion matrix alone (rows: true class, columns:
    predicted): per-class precision/recall/F1 and support, accuracy, macro F1."""
    confusion = np.asarray(confusion, dtype=np.int64)
    per_class = _per_class(confusion, names)
    total = int(confusion.sum())
    return {
        "labels": names,
        "confusion_matrix": confusion.tolist(),
        "per_class": per_class,
        "accuracy": float(np.trace(confusion) / total) if total else 0.0,
        "macro_f1": float(np.mean([c["f1"] for c in per_class])),
    }


def _per_class(confusion: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, predicted + support)  # 2TP / (2TP + FP + FN)
    return [
        {
            "label": name,
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "f1": float(f1[c]),
            "support": int(support[c]),
        }
        for c, name in enumerate(names)
    ]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def roc_curve(positive: Any, score: Any, max_points: int = ROC_MAX_POINTS) -> dict[str, Any]:
    """One class's ROC curve against the rest: a point per distinct score, collinear points
    dropped, then thinned to ``max_points`` (first and last kept); AUC from every point."""
    positive = np.asarray(positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(score, kind="mergesort")[::-1]
    ranked, hits = score[order], positive[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    tps = np.cumsum(hits)[last_of_each]
    fps = 1 + last_of_each - tps
    if tps.size > 2:
        corners = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        tps, fps = tps[corners], fps[corners]
    fpr = np.r_[0, fps] / fps[-1]
    tpr = np.r_[0, tps] / tps[-1]
    keep = thin(fpr.size, max_points)
    return {
        "fpr": fpr[keep].tolist(),
        "tpr": tpr[keep].tolist(),
        "auc": float(np.trapezoid(tpr, fpr)),
    }


def pr_curve(positive: Any, score: Any, max_points: int = ROC_MAX_POINTS) -> dict[str, Any]:
    """One class's precision-recall curve against the rest, as scikit-learn's
    precision_recall_curve (a point per distinct score, from the highest threshold down),
    thinned to ``max_points``; average precision from every point, as
    average_precision_score: the sum over thresholds of (R_n - R_(n-1)) * P_n, no
    interpolation."""
    positive = np.asarray(positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(score, kind="mergesort")[::-1]
    ranked, hits = score[order], positive[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    tps = np.cumsum(hits)[last_of_each].astype(np.float64)
    predicted = 1.0 + last_of_each
    precision = tps / predicted
    recall = tps / tps[-1]
    average_precision = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    # From recall 0 up, ending at (1, 0) as scikit-learn does: an easy line to draw.
    precision, recall = np.r_[1.0, precision], np.r_[0.0, recall]
    keep = thin(precision.size, max_points)
    return {
        "precision": precision[keep].tolist(),
        "recall": recall[keep].tolist(),
        "average_precision": average_precision,
    }


def thin(n: int, max_points: int) -> np.ndarray:
    """Evenly spaced indices, always keeping the first and last point of the curve."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))

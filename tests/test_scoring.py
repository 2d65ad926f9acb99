"""fitlens.scoring, the one evaluation the trainer and the client share: by hand on a small
case, and against scikit-learn's definitions on random ones (ties included)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics

from fitlens.scoring import classification_report, pr_curve, roc_curve


def test_a_three_class_case_computed_by_hand() -> None:
    truth = [0, 0, 1, 1, 2, 2]
    # Predicted classes 0, 1, 1, 1, 2, 0 (argmax of each row).
    scores = [
        [0.8, 0.1, 0.1],
        [0.3, 0.6, 0.1],
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1],
        [0.1, 0.1, 0.8],
        [0.5, 0.2, 0.3],
    ]
    report = classification_report(truth, scores, ["a", "b", "c"])
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert report["accuracy"] == pytest.approx(4 / 6)
    a, b, c = report["per_class"]
    # a: 1 of 2 predicted right, 1 of 2 found; b: 2 of 3 predicted, 2 of 2 found; c: 1 of 1, 1 of 2.
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == (0.5, 0.5, 0.5, 2)
    assert (b["precision"], b["recall"]) == (pytest.approx(2 / 3), 1.0)
    assert b["f1"] == pytest.approx(0.8)  # 2*2 / (2*2 + 1 + 0)
    assert (c["precision"], c["recall"], c["f1"]) == (1.0, 0.5, pytest.approx(2 / 3))
    assert report["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # Class a's positives score 0.8 and 0.3, its negatives 0.5, 0.2, 0.1, 0.1: of the 8 pairs,
    # 0.8 outranks all 4 and 0.3 three (not 0.5), so AUC = 7/8.
    roc_a = report["roc"][0]
    assert roc_a["label"] == "a" and roc_a["auc"] == pytest.approx(7 / 8)


def test_a_precision_recall_curve_computed_by_hand() -> None:
    # Ranked by score: +, -, +, -. Thresholds 0.9, 0.8, 0.4, 0.1 keep 1..4 examples:
    # precision 1, 1/2, 2/3, 2/4; recall 1/2, 1/2, 1, 1. AP = 1/2 * 1 + 1/2 * 2/3.
    curve = pr_curve([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1])
    assert curve["average_precision"] == pytest.approx(0.5 + 1 / 3)
    assert curve["recall"] == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert curve["precision"] == pytest.approx([1.0, 1.0, 0.5, 2 / 3, 0.5])


@pytest.mark.parametrize("seed", range(4))
def test_precision_recall_agrees_with_scikit_learn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    positive = rng.random(150) < 0.3
    score = np.round(rng.random(150) + positive * 0.3, 1)  # rounded: many ties
    curve = pr_curve(positive, score, max_points=10_000)
    precision, recall, _ = metrics.precision_recall_curve(positive, score)
    assert curve["precision"] == pytest.approx(precision[::-1].tolist())
    assert curve["recall"] == pytest.approx(recall[::-1].tolist())
    expected = metrics.average_precision_score(positive, score)
    assert curve["average_precision"] == pytest.approx(expected)
    thinned = pr_curve(positive, score, max_points=5)
    assert len(thinned["recall"]) <= 5 and thinned["average_precision"] == pytest.approx(expected)


def test_a_class_never_predicted_scores_zero_not_nan() -> None:
    report = classification_report([0, 1, 2], [[1, 0, 0], [0, 1, 0], [0, 1, 0]])
    c = report["per_class"][2]
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == (0.0, 0.0, 0.0, 1)


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_scikit_learn_on_random_scores_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 300, 4
    truth = rng.integers(0, k, n)
    # Rounded scores: many ties, as a saturated softmax gives.
    scores = np.round(rng.random((n, k)) + np.eye(k)[truth] * rng.random(), 1)
    report = classification_report(truth, scores)
    pred = scores.argmax(axis=1)
    labels = list(range(k))
    assert (
        report["confusion_matrix"] == metrics.confusion_matrix(truth, pred, labels=labels).tolist()
    )
    p, r, f1, support = metrics.precision_recall_fscore_support(
        truth, pred, labels=labels, zero_division=0
    )
    for c, row in enumerate(report["per_class"]):
        assert row["precision"] == pytest.approx(p[c])
        assert row["recall"] == pytest.approx(r[c])
        assert row["f1"] == pytest.approx(f1[c])
        assert row["support"] == support[c]
    assert report["accuracy"] == pytest.approx(metrics.accuracy_score(truth, pred))
    for c, curve in enumerate(report["roc"]):
        fpr, tpr, _ = metrics.roc_curve(truth == c, scores[:, c])
        assert curve["fpr"] == pytest.approx(fpr.tolist())
        assert curve["tpr"] == pytest.approx(tpr.tolist())
        assert curve["auc"] == pytest.approx(metrics.roc_auc_score(truth == c, scores[:, c]))


def test_a_long_curve_is_thinned_keeping_its_ends_and_its_auc() -> None:
    rng = np.random.default_rng(7)
    positive = rng.random(5000) < 0.3
    score = rng.random(5000) + positive * 0.5
    curve = roc_curve(positive, score, max_points=50)
    assert len(curve["fpr"]) <= 50 and len(curve["fpr"]) == len(curve["tpr"])
    assert (curve["fpr"][0], curve["tpr"][0], curve["fpr"][-1], curve["tpr"][-1]) == (0, 0, 1, 1)
    assert curve["auc"] == pytest.approx(metrics.roc_auc_score(positive, score))


def test_scores_that_are_not_finite_give_a_confusion_matrix_and_no_roc() -> None:
    report = classification_report([0, 1, 1], [[math.nan, 0.0], [0.2, math.inf], [0.9, 0.1]])
    assert report["confusion_matrix"] == [[0, 1], [1, 1]]
    assert report["roc"] == [] and report["macro_auc"] is None


def test_a_class_index_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"0\.\.1"):
        classification_report([0, 2], [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="labels"):
        classification_report([0, 1], [[1, 0], [0, 1]], ["only one"])

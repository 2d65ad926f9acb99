"""The end-of-run evaluation of a classifier, from true classes and per-class scores, in the
shape the API stores (what fitlens's trainer posts); fitlens.scoring computes it."""

from __future__ import annotations

from typing import Any

from fitlens.scoring import classification_report


def evaluation_body(
    y_true: Any, y_score: Any, labels: list[str] | None, epoch: int
) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "best_epoch": epoch,
        "best_val_loss": float("nan"),  # unknown here
        **classification_report(y_true, y_score, labels),
    }

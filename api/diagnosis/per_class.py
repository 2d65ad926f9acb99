"""Overfitting class by class: each class's training and validation loss at the epochs a run
evaluated per class (trainer.spec.EvaluationSpec), the onset rule of api.diagnosis.rules
applied to each class, and the class x epoch gap table a heat-map draws.

The evaluations are sparser than the epochs (every few epochs by default), so the climb a
class's onset needs is counted in evaluations: ``patience`` epochs' worth of them, and never
fewer than two (one evaluation above the minimum is noise on a few dozen examples).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from api.diagnosis.rules import DiagnosisRules, onset_epoch

Table = list[list[float | None]]  # [class][epoch]


@dataclass(frozen=True)
class ClassCurves:
    labels: list[str]
    epochs: list[int]  # epochs with both splits evaluated per class
    train_loss: Table
    val_loss: Table
    train_recall: Table
    val_recall: Table

    def gap(self) -> Table:
        """Validation minus training loss of each class at each epoch."""
        return [_minus(v, t) for t, v in zip(self.train_loss, self.val_loss, strict=True)]

    def accuracy_gap(self) -> Table:
        """Training minus validation accuracy (recall) of each class at each epoch."""
        return [_minus(t, v) for t, v in zip(self.train_recall, self.val_recall, strict=True)]


@dataclass(frozen=True)
class ClassOnset:
    label: str
    onset_epoch: int | None  # the class's validation loss climbed after this epoch
    best_epoch: int | None  # the class's lowest validation loss
    gap: float | None  # its validation minus training loss at the last evaluated epoch


def class_curves(evaluations: Iterable[Mapping[str, Any]]) -> ClassCurves | None:
    """From evaluation documents (trainer.events.Evaluation as JSON) of the training and
    validation splits; None without an epoch that has both with the same classes."""
    by_epoch: dict[int, dict[str, Mapping[str, Any]]] = {}
    for ev in evaluations:
        if ev.get("per_class") and ev.get("split") in ("train", "val"):
            by_epoch.setdefault(int(ev["epoch"]), {})[ev["split"]] = ev
    both = [(e, s) for e, s in sorted(by_epoch.items()) if len(s) == 2]
    if not both:
        return None
    labels = [c["label"] for c in both[-1][1]["val"]["per_class"]]

    def same(s: Mapping[str, Any]) -> bool:
        return all([c["label"] for c in s[split]["per_class"]] == labels for split in s)

    both = [(e, s) for e, s in both if same(s)]
    epochs = [e for e, _ in both]

    def table(split: str, field: str) -> Table:
        rows = [[c.get(field) for c in s[split]["per_class"]] for _, s in both]
        return [[_number(row[c]) for row in rows] for c in range(len(labels))]

    return ClassCurves(
        labels,
        epochs,
        table("train", "loss"),
        table("val", "loss"),
        table("train", "recall"),
        table("val", "recall"),
    )


def class_onsets(curves: ClassCurves, rules: DiagnosisRules) -> list[ClassOnset]:
    """The onset rule per class, its patience counted in evaluations (module docstring)."""
    steps = [b - a for a, b in zip(curves.epochs, curves.epochs[1:], strict=False)]
    spacing = statistics.median(steps) if steps else 1
    sparse = replace(rules, patience=max(2, math.ceil(rules.patience / spacing)))
    out = []
    for c, label in enumerate(curves.labels):
        points = [
            (e, t, v)
            for e, t, v in zip(curves.epochs, curves.train_loss[c], curves.val_loss[c], strict=True)
            if t is not None and v is not None
        ]
        epochs = [e for e, _, _ in points]
        train = [t for _, t, _ in points]
        val = [v for _, _, v in points]
        finite = [(v, e) for e, v in zip(epochs, val, strict=True) if math.isfinite(v)]
        gap = val[-1] - train[-1] if points else None
        out.append(
            ClassOnset(
                label=label,
                onset_epoch=onset_epoch(epochs, train, val, sparse) if points else None,
                best_epoch=min(finite)[1] if finite else None,
                gap=gap if gap is None or math.isfinite(gap) else None,
            )
        )
    return out


def summary(onsets: Sequence[ClassOnset]) -> str:
    """ "class 8: onset epoch 6, gap +0.21; class 1: no onset", onsets first, earliest first."""
    ordered = sorted(onsets, key=lambda o: (o.onset_epoch is None, o.onset_epoch or 0))

    def one(o: ClassOnset) -> str:
        gap = f", gap {o.gap:+.2f}" if o.gap is not None else ""
        when = f"onset epoch {o.onset_epoch}" if o.onset_epoch is not None else "no onset"
        return f"class {o.label}: {when}{gap}"

    return "; ".join(one(o) for o in ordered)


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value)  # how the API's JSON spells non-finite numbers
    return None


def _minus(a: list[float | None], b: list[float | None]) -> list[float | None]:
    return [x - y if x is not None and y is not None else None for x, y in zip(a, b, strict=True)]

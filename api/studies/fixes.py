"""A fix study in one call: from a run's own spec, a study of the usual fixes for
overfitting, each against the run itself (the baseline), with k folds. The catalog's values
are documented defaults (docs/api.md "Fix studies"), each replaceable by the caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, field_validator

from api.core.exceptions import Conflict, Invalid
from api.core.schemas import In, Text
from api.studies.design import Design, StudyCreate
from api.studies.design_parts import check_path
from trainer.dataspec import DATASET_SIZES
from trainer.spec import JobSpec

Fix = Literal[
    "dropout",
    "l1",
    "l2",
    "weight_decay",
    "reduce_on_plateau",
    "early_stopping",
    "more_data",
    "augmentation",
    "random_labels",
]
# Each fix's overrides for a spec, or why it does not apply to that spec.
Maker = Callable[[JobSpec], "dict[str, Any] | str"]


def _dropout(spec: JobSpec) -> dict[str, Any] | str:
    if spec.model.dropout >= 0.5:
        return f"the run already has dropout {spec.model.dropout}"
    return {"model.dropout": 0.5}


def _more_data(spec: JobSpec) -> dict[str, Any] | str:
    """Twice the training examples, when the run trained on a part of its training split."""
    data = spec.dataset
    if data.train_fraction is not None and data.train_fraction < 1:
        return {"dataset.train_fraction": min(1.0, 2 * data.train_fraction)}
    if data.train_subset is not None:
        whole = data.model_copy(update={"train_subset": None}).split_sizes()
        available = whole[0] if whole else DATASET_SIZES.get(data.name, 0)
        if available > data.train_subset:
            return {"dataset.train_subset": min(available, 2 * data.train_subset)}
    return "the run already trains on its whole training split"


def _augmentation(spec: JobSpec) -> dict[str, Any] | str:
    if len(spec.input_shape() or []) != 3:  # what JobSpec accepts augmentation for
        return "augmentation shifts, rotates and scales images; this data set has none"
    return {"dataset.augmentation": {"shift": 0.1, "rotate": 10.0, "scale": 0.1}}


CATALOG: dict[Fix, Maker] = {
    "dropout": _dropout,
    "l1": lambda spec: {"regularization.l1": 1e-4},  # seed 001's lambda
    "l2": lambda spec: {"regularization.l2": 1e-3, "regularization.l2_form": "squared"},
    "weight_decay": lambda spec: {"optimizer.weight_decay": 5e-4},  # seed 004's
    "reduce_on_plateau": lambda spec: {
        "lr_schedule": {"kind": "reduce_on_plateau", "factor": 0.5, "patience": 2}
    },
    "early_stopping": lambda spec: {"early_stopping": {"monitor": "val_loss", "patience": 5}},
    "more_data": _more_data,
    "augmentation": _augmentation,
    # A control, not a fix: how fast the network memorizes labels that mean nothing.
    "random_labels": lambda spec: {"dataset.label_noise": 1.0},
}


class FixStudyCreate(In):
    folds: int = Field(default=5, ge=2, le=50)
    fixes: list[Fix] | None = Field(
        default=None, min_length=1, max_length=9, description="a subset; default: every one"
    )
    epochs: int | None = Field(default=None, gt=0, le=10_000, description="default: the run's")
    values: dict[Fix, dict[str, Any]] = Field(
        default_factory=dict, description="a fix's overrides instead of the defaults"
    )
    name: Text | None = Field(default=None, max_length=200)

    @field_validator("values")
    @classmethod
    def _paths(cls, values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for overrides in values.values():
            if not 1 <= len(overrides) <= 20:
                raise ValueError("from 1 to 20 paths a fix")
            for path in overrides:
                check_path(path)
        return values


def fix_study(
    spec_json: str, run_name: str, body: FixStudyCreate
) -> tuple[StudyCreate, dict[str, str]]:
    """The study body for a run's fix study, and the fixes left out with why. A run logged
    from its own loop has no spec to vary: a 409."""
    if spec_json in ("", "{}"):
        raise Conflict(
            "this run was logged from its own training loop: it has no spec for a fix study "
            "to vary (start one with POST /studies and a spec)"
        )
    spec = JobSpec.model_validate_json(spec_json)
    base = spec.model_dump(mode="json")
    base["dataset"].update(folds=None, use_official_test=False)  # the study's folds validate
    if body.epochs is not None:
        base["epochs"] = body.epochs
    names: list[str] = ["baseline"]
    overrides: list[dict[str, Any]] = [{}]
    skipped: dict[str, str] = {}
    for fix in body.fixes or list(CATALOG):
        made = body.values.get(fix) or CATALOG[fix](spec)
        if isinstance(made, str):
            skipped[fix] = made
            continue
        names.append(fix)
        overrides.append(made)
    if len(names) == 1:
        raise Invalid("fixes", "none of them applies to this run: " + "; ".join(skipped.values()))
    design = Design.model_validate(
        {"overrides": overrides, "names": names, "folds": {"k": body.folds}}
    )
    name = body.name or f"fixes for {run_name}"[:200]
    return StudyCreate(spec=base, design=design, name=name), skipped

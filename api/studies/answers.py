"""A study's answers about size and strength: the learning curve (per training-set size, with
the steps each size trained and power laws fitted to it) and the regularization path (per
value of one spec path, with the weights' norm and sparsity, lambda_min and lambda_1se).
The fits are api.studies.fits; this module gathers the members' stored data for them."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from api.core.exceptions import Invalid
from api.histograms.models import Histogram
from api.runs.models import RunEvent
from api.studies.design import stored_sizes
from api.studies.design_parts import SIZE_PATHS
from api.studies.fits import GAP_LAW, VAL_LOSS_LAW, examples_for_gap, path_choice, power_law
from api.studies.reads import StudyReads
from api.studies.schemas import (
    ExamplesNeeded,
    LearningCurve,
    PathPoint,
    PowerLaw,
    RegularizationPath,
    SizePoint,
    Stat,
)
from api.studies.stats import describe

# Learning curves: (name, where in the diagnosis, metric).
LEARNING = (
    ("final_train_loss", "final", "train_loss"),
    ("final_val_loss", "final", "val_loss"),
    ("best_train_loss", "at_best", "train_loss"),
    ("best_val_loss", "at_best", "val_loss"),
    ("final_train_accuracy", "final", "train_accuracy"),
    ("final_val_accuracy", "final", "val_accuracy"),
    ("best_train_accuracy", "at_best", "train_accuracy"),
    ("best_val_accuracy", "at_best", "val_accuracy"),
)
CURVE_METHOD = (
    "budget {budget}: {budget_words}. Fits over every member's value against its n_train: "
    "min_val_loss = {val_law}, final_gap (val_loss - train_loss at the last epoch) = "
    "{gap_law}, n0 the largest size; least squares (scipy.optimize.curve_fit), 95% intervals "
    "from the covariance and Student's t. Examples needed: the fitted gap solved for x, told "
    "only when b's interval excludes 0."
)
BUDGET_WORDS = {
    "steps": "every size trains the whole epochs that reach its largest size's optimizer steps",
    "epochs": "every size trains the spec's epochs, so smaller sizes take fewer steps",
    "early_stop": "every size trains to its own early stop, within the steps budget",
}
PATH_METHOD = (
    "per value: mean and std over the members (folds or seeds) of min_val_loss, final_gap, "
    "onset_epoch, and of the weights at the last histogram: weight_l2 = sqrt(sum of every "
    "weight tensor's ||w||^2), near_zero = the share of weights under the spec's "
    "histograms.near_zero. lambda_min: the lowest mean min_val_loss; lambda_1se: the largest "
    "value (taken as the most regularized) whose mean is at most that minimum plus its "
    "standard error (std / sqrt(n)), as glmnet and scikit-learn report them."
)


class StudyAnswers(StudyReads):
    def learning_curve(self, study_id: int, target_gap: float | None = None) -> LearningCurve:
        with Session(self.engine) as session:
            configs, design, members = self._load(session, study_id, diagnoses=True)
            split_sizes = self._split_sizes(session, members)
            steps = self._steps(session, [m.id for m in members])
        if not stored_sizes(design):
            raise Invalid("study", "this study has no learning curve (design.learning_curve)")
        points, sizes, val_loss, gap = [], [], [], []
        for index, overrides in enumerate(configs):
            size = next((overrides[p] for p in SIZE_PATHS if p in overrides), None)
            mine = [m for m in members if m.config == index and m.diagnosis]
            diagnosed = [m.diagnosis for m in mine if m.diagnosis]
            values = {
                name: Stat(**describe([getattr(d, where).get(metric) for d in diagnosed]))
                for name, where, metric in LEARNING
            }
            values["steps_trained"] = Stat(**describe([steps.get(m.id) for m in mine]))
            n = split_sizes[index][0] if index in split_sizes else None
            points.append(SizePoint(size=size, config=index, n_train=n, values=values))
            for m in mine:
                if n is not None and m.diagnosis is not None:
                    sizes.append(float(n))
                    val_loss.append(m.diagnosis.min_val_loss)
                    gap.append(m.diagnosis.final_gap)
        gap_fit = power_law(sizes, gap, floor=False)
        curve = design["learning_curve"]
        budget = curve.get("budget", "steps") if isinstance(curve, dict) else "epochs"
        return LearningCurve(
            study_id=study_id,
            budget=budget,
            points=points,
            fits={
                "min_val_loss": PowerLaw(**power_law(sizes, val_loss, floor=True)),
                "final_gap": PowerLaw(**gap_fit),
            },
            examples_needed=(
                ExamplesNeeded(**examples_for_gap(gap_fit, target_gap))
                if target_gap is not None
                else None
            ),
            method=CURVE_METHOD.format(
                budget=budget,
                budget_words=BUDGET_WORDS[budget],
                val_law=VAL_LOSS_LAW,
                gap_law=GAP_LAW,
            ),
        )

    def regularization_path(self, study_id: int) -> RegularizationPath:
        with Session(self.engine) as session:
            configs, design, members = self._load(session, study_id, diagnoses=True)
            weights = self._last_weights(session, [m.id for m in members])
        path = design.get("path")
        if not path:
            raise Invalid("study", "this study has no regularization path (design.path)")
        points = []
        for index, overrides in enumerate(configs):
            mine = [m for m in members if m.config == index]
            diagnosed = [m.diagnosis for m in mine if m.diagnosis]
            values = {
                name: Stat(**describe([getattr(d, name) for d in diagnosed]))
                for name in ("min_val_loss", "final_gap", "onset_epoch")
            }
            for name in ("weight_l2", "near_zero"):
                values[name] = Stat(**describe([weights.get(m.id, {}).get(name) for m in mine]))
            value = float(overrides[path["field"]])
            points.append(PathPoint(value=value, config=index, members=len(mine), values=values))
        loss = [(p.value, *_mean_std_n(p.values["min_val_loss"])) for p in points]
        return RegularizationPath(
            study_id=study_id,
            field=path["field"],
            scale=path.get("scale", "log"),
            points=points,
            **path_choice(loss),
            method=PATH_METHOD,
        )

    # ---- gathering ----

    def _steps(self, session: Session, run_ids: list[int]) -> dict[int, float]:
        """The optimizer steps each member trained (its worker's "trained" event)."""
        if not run_ids:
            return {}
        rows = session.execute(
            select(col(RunEvent.run_id), col(RunEvent.payload_json))
            .where(col(RunEvent.run_id).in_(run_ids), col(RunEvent.kind) == "trained")
            .order_by(col(RunEvent.id))
        ).all()
        out = {}
        for run_id, payload in rows:
            steps = json.loads(payload).get("steps")
            if isinstance(steps, int | float) and not isinstance(steps, bool):
                out[int(run_id)] = float(steps)
        return out

    def _last_weights(self, session: Session, run_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Per member, its weight tensors at their last histogram: the overall L2 norm and
        the share of near-zero weights."""
        if not run_ids:
            return {}
        rows = session.execute(
            select(
                col(Histogram.run_id),
                col(Histogram.param),
                col(Histogram.step),
                col(Histogram.numel),
                col(Histogram.l2),
                col(Histogram.near_zero),
            ).where(col(Histogram.run_id).in_(run_ids), col(Histogram.param).like("%weight"))
        ).all()
        last: dict[int, int] = {}
        for run_id, _, step, *_ in rows:
            last[run_id] = max(step, last.get(run_id, step))
        sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for run_id, _, step, numel, l2, near_zero in rows:
            if step == last[run_id] and l2 is not None and near_zero is not None:
                total = sums[run_id]
                total[0] += l2 * l2
                total[1] += near_zero * numel
                total[2] += numel
        return {
            run_id: {"weight_l2": squares**0.5, "near_zero": near / numel if numel else None}
            for run_id, (squares, near, numel) in sums.items()
        }


def _mean_std_n(stat: Stat) -> tuple[float | None, float | None, int]:
    return stat.mean, stat.std, stat.n

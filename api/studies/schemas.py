"""What the study endpoints answer: the study, its bands, its table, its effects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from api.runs.models import Verdict


class _Out(BaseModel):
    # NaN and infinities come back as the strings the rest of the API uses.
    model_config = ConfigDict(ser_json_inf_nan="strings")


class StudyConfig(_Out):
    index: int
    name: str | None  # from design.names
    overrides: dict[str, Any]  # the paths this configuration sets (seeds and folds aside)


class StudyOut(_Out):
    id: int
    project: str
    team_id: int  # the team that owns the project
    name: str
    created_by: str | None
    created_at: datetime
    notes: str
    spec: dict[str, Any]  # the base spec, as submitted
    design: dict[str, Any]
    configs: list[StudyConfig]
    varied: list[str]  # the paths that differ between configurations
    baseline: int
    members: int
    status: dict[str, int]  # members per status
    done: bool  # every member finished (succeeded, failed or cancelled)
    revision: str


class BestConfig(_Out):
    config: int
    name: str
    min_val_loss: float  # the mean over its members with a diagnosis so far


class StudySummary(_Out):
    """A study in the list: what it varies, how far its members are, its best so far."""

    id: int
    project: str
    name: str
    created_by: str | None
    created_at: datetime
    configs: int
    varied: list[str]
    members: int
    status: dict[str, int]  # members per status
    done: bool
    best: BestConfig | None  # lowest mean minimum validation loss; None before any diagnosis


class StudyPage(_Out):
    items: list[StudySummary]
    next_before: int | None  # pass as ``before`` for the next page; None: the last page


class FixStudyOut(StudyOut):
    skipped: dict[str, str]  # the fixes left out, and why they do not apply to the run


class Stat(_Out):
    mean: float | None
    std: float | None  # sample standard deviation (ddof=1); null under two values
    min: float | None
    max: float | None
    n: int


class Band(_Out):
    """One metric of one configuration over its members, per step: a line and its band."""

    key: str
    steps: list[int]
    mean: list[float | None]
    std: list[float | None]
    min: list[float | None]
    max: list[float | None]
    n: list[int]  # members with a value at that step (early stops make it fall)


class ConfigCurves(_Out):
    config: int
    name: str | None
    overrides: dict[str, Any]
    members: int
    curves: list[Band]


class StudyCurves(_Out):
    study_id: int
    revision: str
    configs: list[ConfigCurves]


class TableRow(_Out):
    config: int
    name: str | None
    overrides: dict[str, Any]
    members: int
    status: dict[str, int]
    verdicts: dict[Verdict, int]
    values: dict[str, Stat]  # every summary value over the configuration's members


class StudyTable(_Out):
    study_id: int
    varied: list[str]
    summaries: list[str]
    baseline: int
    rows: list[TableRow]


class Effect(_Out):
    """other - baseline, paired over matching folds and seeds."""

    n: int
    mean: float | None
    ci_low: float | None  # 95% confidence interval (Student's t; StudyEffects.ci_method)
    ci_high: float | None
    p_value: float | None
    p_holm: float | None = None  # adjusted over the read's configurations x summary values
    detectable: bool  # p_holm below 0.05 (without a p-value: the interval excludes zero)


class ConfigEffects(_Out):
    config: int
    name: str | None
    overrides: dict[str, Any]
    effects: dict[str, Effect]


class StudyEffects(_Out):
    study_id: int
    baseline: int
    baseline_name: str | None
    baseline_overrides: dict[str, Any]
    configs: list[ConfigEffects]
    # Per summary value (min_val_loss, final_gap): the configurations from the largest mean
    # fall against the baseline to the largest rise (those without an effect last).
    ranking: dict[str, list[int]] = {}
    ci_method: str = ""  # how the intervals and p-values were made
    adjustment: str = ""  # how the p-values were adjusted for the number of tests


class SizePoint(_Out):
    size: float  # a fraction of the training split, or a count
    config: int
    n_train: int | None  # training examples (from the members' specs)
    values: dict[str, Stat]  # steps_trained among them: optimizer steps, from the runs


class Interval(_Out):
    value: float
    ci_low: float | None  # 95%
    ci_high: float | None


class PowerLaw(_Out):
    law: str  # e.g. "c + a * (n / n0)^(-b)"
    n0: float | None  # the largest training-set size fitted
    fitted: bool
    params: dict[str, Interval]
    dof: int | None = None
    why: str  # what limits the fit, or ""


class ExamplesNeeded(_Out):
    target: float  # the gap asked for (x=)
    examples: int | None  # training examples; null when the fit cannot tell
    extrapolated: bool | None  # beyond the largest size measured
    why: str


class LearningCurve(_Out):
    """Per training-set size (and configuration, when the study sweeps too): final and best
    train and validation loss and accuracy over the folds or seeds, the steps each size
    trained, and power laws fitted to min_val_loss and final_gap against n_train."""

    study_id: int
    budget: str  # steps, epochs or early_stop
    points: list[SizePoint]
    fits: dict[str, PowerLaw]  # min_val_loss and final_gap, fitted over every member
    examples_needed: ExamplesNeeded | None  # with x=
    method: str


class PathPoint(_Out):
    value: float
    config: int
    members: int
    values: dict[str, Stat]  # min_val_loss, final_gap, weight_l2, near_zero, onset_epoch


class RegularizationPath(_Out):
    """Per value of the path: the members' summaries and their weights; the values glmnet
    and scikit-learn's path tools report."""

    study_id: int
    field: str
    scale: str
    points: list[PathPoint]
    lambda_min: float | None  # the lowest mean min_val_loss
    lambda_1se: float | None  # the largest value within one standard error of it
    threshold: float | None  # that mean plus its standard error
    method: str


class Winner(_Out):
    """The configuration validation chose, and what the test split says of that choice."""

    study_id: int
    by: str  # the summary value the winner has the best mean of
    config: int | None  # null until a configuration has a value of it
    name: str | None
    val_accuracy: Stat  # at each member's evaluated epoch
    test_accuracy: Stat  # on the test split, scored once at that epoch
    optimism: Stat  # val_accuracy - test_accuracy, per member
    optimism_mean: float | None
    optimism_ci_low: float | None  # 95%, Student's t over the winner's folds or seeds
    optimism_ci_high: float | None
    method: str

"""A study's answers, shaped for plotting and reading: per-configuration bands of every curve,
the comparison table, effects against the baseline, and the winner (api.studies.answers: the
learning curve and the regularization path). The statistics
are api.studies.stats; this module gathers the members' stored data for them."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from api.core.exceptions import Invalid
from api.diagnosis.models import RunDiagnosis
from api.metrics.models import MetricSeries
from api.metrics.points import whole_series
from api.runs.models import Run
from api.runs.schemas import DiagnosisOut
from api.studies.design import config_names, varied_paths
from api.studies.schemas import (
    Band,
    ConfigCurves,
    ConfigEffects,
    Effect,
    Stat,
    StudyCurves,
    StudyEffects,
    StudyTable,
    TableRow,
    Winner,
)
from api.studies.service import StudyStore
from api.studies.stats import curve_bands, describe, holm, mean_interval, paired_effect
from trainer.spec import JobSpec

# The summary values of a member (its diagnosis) that the table and the effects report.
SUMMARIES = (
    "min_val_loss",
    "best_epoch",
    "val_accuracy",
    "final_gap",
    "gap_at_best",
    "gap_slope",
    "onset_epoch",
    "final_val_loss",
    "final_train_loss",
    "epochs",
    "test_accuracy",  # with a test split (dataset.test_fraction), at the evaluated epoch
    "optimism",  # val_accuracy - test_accuracy there
    "memorization_epochs",  # label-noise controls: epochs to memorize (diagnosis)
)
ALPHA = 0.05
RANKED = ("min_val_loss", "final_gap")  # what fixes for overfitting are ranked by
CORRECTED = (
    "corrected resampled t-test (Nadeau and Bengio 2003): the folds' training sets overlap, so "
    "the variance of the mean difference is s^2 * (1/J + n_test/n_train), J pairs, Student's t "
    "with J - 1 degrees of freedom"
)
PLAIN = "paired t-test over matching seeds on one split (scipy.stats.ttest_rel's formula)"
# A winner is chosen by the highest mean of these, the lowest of the others.
HIGHER_IS_BETTER = frozenset({"val_accuracy", "test_accuracy"})
WINNER_METHOD = (
    "the configuration with the best mean {by} over its members (chosen on validation only); "
    "for it, each member's val_accuracy and test_accuracy at its evaluated epoch, their "
    "difference (optimism), and the mean difference's 95% interval from Student's t over "
    "the members (folds or seeds; fold-overlap makes it somewhat narrow)"
)
MAX_RAW = 20_000  # longer member series are read downsampled, like a curve read
MAX_KEYS = 50  # metrics in one aggregate read


class StudyMember:
    __slots__ = ("config", "diagnosis", "id", "replicate", "status")

    def __init__(self, run_id: int, config: int, replicate: int, status: str) -> None:
        self.id, self.config, self.replicate, self.status = run_id, config, replicate, status
        self.diagnosis: DiagnosisOut | None = None


class StudyReads(StudyStore):
    def study_curves(self, study_id: int, keys: Sequence[str], max_points: int) -> StudyCurves:
        with Session(self.engine) as session:
            configs, design, members = self._load(session, study_id, diagnoses=False)
            if not keys:  # every metric the members logged
                keys = self._member_keys(session, [m.id for m in members])
            series = self._member_series(session, [m.id for m in members], keys, max_points)
        names = config_names(design, configs)
        out = []
        for index, overrides in enumerate(configs):
            mine = [m for m in members if m.config == index]
            bands = [
                Band(key=key, **curve_bands([series.get((m.id, key), {}) for m in mine]))
                for key in keys
            ]
            out.append(
                ConfigCurves(
                    config=index,
                    name=names[index],
                    overrides=overrides,
                    members=len(mine),
                    curves=bands,
                )
            )
        return StudyCurves(study_id=study_id, revision="", configs=out)

    def study_table(self, study_id: int, sort: str | None = None) -> StudyTable:
        with Session(self.engine) as session:
            configs, design, members = self._load(session, study_id, diagnoses=True)
        names = config_names(design, configs)
        rows = []
        for index, overrides in enumerate(configs):
            mine = [m for m in members if m.config == index]
            diagnosed = [m.diagnosis for m in mine if m.diagnosis is not None]
            rows.append(
                TableRow(
                    config=index,
                    name=names[index],
                    overrides=overrides,
                    members=len(mine),
                    status=dict(Counter(m.status for m in mine)),
                    verdicts=dict(Counter(d.verdict for d in diagnosed)),
                    values={
                        name: Stat(**describe([_summary(d, name) for d in diagnosed]))
                        for name in SUMMARIES
                    },
                )
            )
        if sort:
            rows = _sorted(rows, sort)
        return StudyTable(
            study_id=study_id,
            varied=varied_paths(configs),
            summaries=list(SUMMARIES),
            baseline=design.get("baseline", 0),
            rows=rows,
        )

    def study_effects(self, study_id: int, baseline: int | None) -> StudyEffects:
        with Session(self.engine) as session:
            configs, design, members = self._load(session, study_id, diagnoses=True)
            inflation = self._inflation(session, members) if design.get("folds") else {}
        names = config_names(design, configs)
        chosen = design.get("baseline", 0) if baseline is None else baseline
        if not 0 <= chosen < len(configs):
            raise Invalid("baseline", f"the study has configurations 0 to {len(configs) - 1}")

        def by_replicate(config: int, name: str) -> dict[int, float | None]:
            return {
                m.replicate: _summary(m.diagnosis, name)
                for m in members
                if m.config == config and m.diagnosis is not None
            }

        found: list[tuple[int, str, dict[str, Any]]] = []
        for index in range(len(configs)):
            if index != chosen:
                ratio = inflation.get(index) if design.get("folds") else None
                for name in SUMMARIES:
                    e = paired_effect(by_replicate(chosen, name), by_replicate(index, name), ratio)
                    found.append((index, name, e))
        adjusted = holm([e["p_value"] for _, _, e in found])
        effects: dict[int, dict[str, Effect]] = defaultdict(dict)
        for (index, name, e), p_holm in zip(found, adjusted, strict=True):
            low, high = e["ci_low"], e["ci_high"]
            excludes = low is not None and high is not None and (low > 0 or high < 0)
            detectable = p_holm < ALPHA if p_holm is not None else excludes
            effects[index][name] = Effect(**e, p_holm=p_holm, detectable=detectable)
        out = [
            ConfigEffects(
                config=index,
                name=names[index],
                overrides=configs[index],
                effects=effects[index],
            )
            for index in range(len(configs))
            if index != chosen
        ]
        tested = sum(p is not None for p in adjusted)
        ranking = {name: _ranked(out, name) for name in RANKED}
        return StudyEffects(
            study_id=study_id,
            baseline=chosen,
            baseline_name=names[chosen],
            baseline_overrides=configs[chosen],
            configs=out,
            ranking=ranking,
            ci_method=CORRECTED if design.get("folds") else PLAIN,
            adjustment=f"holm over the {tested} p-values of this read (configurations x "
            f"summary values); detectable: adjusted p below {ALPHA}",
        )

    def _inflation(self, session: Session, members: list[StudyMember]) -> dict[int, float]:
        """Per configuration, n_test / n_train of its members: the correction's term for
        training sets that overlap across folds."""
        return {
            config: n_val / n_train
            for config, (n_train, n_val) in self._split_sizes(session, members).items()
            if n_train > 0
        }

    def _split_sizes(
        self, session: Session, members: list[StudyMember]
    ) -> dict[int, tuple[int, int]]:
        """Per configuration, its members' (training, validation) examples, from the first
        member's spec (folds and seeds do not change them), where the spec tells."""
        first: dict[int, int] = {}
        for m in members:
            first.setdefault(m.config, m.id)
        specs = dict(
            session.execute(
                select(col(Run.id), col(Run.spec_json)).where(col(Run.id).in_(first.values()))
            ).all()
        )
        out = {}
        for config, run_id in first.items():
            sizes = JobSpec.model_validate_json(specs[run_id]).dataset.split_sizes()
            if sizes is not None:
                out[config] = sizes
        return out

    def winner(self, study_id: int, by: str = "val_accuracy") -> Winner:
        """The configuration with the best mean ``by``, and its optimism: how much better its
        validation accuracy is than its test accuracy (the test split chose nothing)."""
        if by not in SUMMARIES or by in ("test_accuracy", "optimism"):
            raise Invalid("by", f"a summary value chosen on validation, not {by!r}")
        with Session(self.engine) as session:
            configs, design, members = self._load(session, study_id, diagnoses=True)
        sign = 1.0 if by in HIGHER_IS_BETTER else -1.0
        means = {
            index: describe([_summary(m.diagnosis, by) for m in members if m.config == index])
            for index in range(len(configs))
        }
        ranked = [(sign * d["mean"], -i) for i, d in means.items() if d["mean"] is not None]
        best = -max(ranked)[1] if ranked else None
        mine = [m.diagnosis for m in members if m.config == best and m.diagnosis is not None]

        def stat(name: str) -> Stat:
            return Stat(**describe([_summary(d, name) for d in mine]))

        interval = mean_interval([_summary(d, "optimism") for d in mine])
        return Winner(
            study_id=study_id,
            by=by,
            config=best,
            name=config_names(design, configs)[best] if best is not None else None,
            val_accuracy=stat("val_accuracy"),
            test_accuracy=stat("test_accuracy"),
            optimism=stat("optimism"),
            optimism_mean=interval["mean"],
            optimism_ci_low=interval["ci_low"],
            optimism_ci_high=interval["ci_high"],
            method=WINNER_METHOD.format(by=by),
        )

    # ---- gathering ----

    def _load(
        self, session: Session, study_id: int, diagnoses: bool
    ) -> tuple[list[dict[str, Any]], dict[str, Any], list[StudyMember]]:
        """The study's configurations, its design and its members (with their diagnoses)."""
        study = self._study(session, study_id)
        configs = json.loads(study.configs_json)
        members = self._members(session, study_id, diagnoses)
        return configs, json.loads(study.design_json), members

    def _members(
        self, session: Session, study_id: int, diagnoses: bool = False
    ) -> list[StudyMember]:
        rows = session.execute(
            select(col(Run.id), col(Run.study_config), col(Run.study_replicate), col(Run.status))
            .where(col(Run.study_id) == study_id)
            .order_by(col(Run.id))
        ).all()
        members = [StudyMember(int(i), int(c or 0), int(r or 0), s) for i, c, r, s in rows]
        if diagnoses and members:
            found: dict[int, str] = dict(
                session.execute(
                    select(col(RunDiagnosis.run_id), col(RunDiagnosis.detail_json)).where(
                        col(RunDiagnosis.run_id).in_([m.id for m in members])
                    )
                ).all()
            )
            for m in members:
                if m.id in found:
                    m.diagnosis = DiagnosisOut.model_validate_json(found[m.id])
        return members

    def _member_keys(self, session: Session, run_ids: list[int]) -> list[str]:
        if not run_ids:
            return []
        rows = session.execute(
            select(col(MetricSeries.key))
            .where(col(MetricSeries.run_id).in_(run_ids))
            .distinct()
            .order_by(col(MetricSeries.key))
            .limit(MAX_KEYS)
        )
        return list(rows.scalars())

    def _member_series(
        self, session: Session, run_ids: list[int], keys: Sequence[str], max_points: int
    ) -> dict[tuple[int, str], dict[int, float]]:
        """(run, key) -> step -> value for every member: short (per-epoch) series in one query
        straight from the driver, longer ones downsampled one by one."""
        if not run_ids or not keys:
            return {}
        stored = session.execute(
            select(MetricSeries).where(
                col(MetricSeries.run_id).in_(run_ids), col(MetricSeries.key).in_(keys)
            )
        ).scalars()
        short: list[MetricSeries] = []
        long: list[MetricSeries] = []
        for s in stored:
            (short if s.count <= min(MAX_RAW, max_points) else long).append(s)
        out: dict[tuple[int, str], dict[int, float]] = defaultdict(dict)
        wanted = [(s.run_id, s.key) for s in short]
        for pair, block in whole_series(session.connection(), wanted).items():
            out[pair] = dict(zip(block.steps, block.values, strict=True))
        for s in long:
            read = self.metrics.series(session.connection(), s.run_id, s, max_points, None, None)
            out[(s.run_id, s.key)] = dict(zip(read.steps, read.values, strict=True))
        return out


def _summary(d: DiagnosisOut | None, name: str) -> Any:
    if d is None:
        return None
    if name == "val_accuracy":
        return d.at_evaluated.get("val_accuracy")
    if name == "final_val_loss":
        return d.final.get("val_loss")
    if name == "final_train_loss":
        return d.final.get("train_loss")
    if name == "test_accuracy":
        return d.at_evaluated.get("test_accuracy")
    if name == "optimism":
        return d.optimism.get("accuracy")
    if name == "memorization_epochs":
        return d.memorized_epoch
    return getattr(d, name)


def _ranked(configs: list[ConfigEffects], name: str) -> list[int]:
    """The configurations by their mean effect on ``name``, the largest fall first."""
    having = [c for c in configs if c.effects[name].mean is not None]
    having.sort(key=lambda c: (c.effects[name].mean, c.config))
    return [c.config for c in having] + [c.config for c in configs if c not in having]


def _sorted(rows: list[TableRow], sort: str) -> list[TableRow]:
    name = sort.lstrip("-")
    if name == "config":
        return sorted(rows, key=lambda r: r.config, reverse=sort.startswith("-"))
    if name not in SUMMARIES:
        raise Invalid("sort", f"config or a summary value: {', '.join(SUMMARIES)}")
    have = [r for r in rows if r.values[name].mean is not None]
    none = [r for r in rows if r.values[name].mean is None]
    have.sort(key=lambda r: r.values[name].mean or 0.0, reverse=sort.startswith("-"))
    return have + none  # configurations without the value come last, either way

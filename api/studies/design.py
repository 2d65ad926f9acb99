"""What a study asks, and the member specs that answer it (pure: no database).

A study is a base spec and a design: configurations (a grid ``sweep`` over dotted spec paths,
an explicit list of ``overrides``, or a regularization ``path``: one spec path over a grid),
optionally crossed with learning-curve training-set ``sizes`` (and their training budget); and
replicates of each configuration: ``folds`` (k-fold cross-validation: replicate
i validates on fold i) and ``seeds`` (run-to-run noise). Every member spec is validated as a
whole JobSpec before anything is stored; a bad value is a 422 naming its path and the value.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from api.core.exceptions import Invalid
from api.core.schemas import In, Text
from api.runs.schemas import Tag
from api.studies.design_parts import (
    SIZE_PATHS,
    FoldDesign,
    LearningCurveDesign,
    PathDesign,
    check_path,
)
from trainer.spec import JobSpec

# What a learning curve's budget sets on its members.
BUDGET_PATHS = ("epochs", "early_stopping", "histograms.every", "evaluation.batch_points")
MAX_EPOCHS = 10_000  # JobSpec's own limit
EARLY_STOP = {"monitor": "val_loss", "patience": 10}  # budget early_stop, if the spec has none
Value = Annotated[Any, Field(description="any JSON value the spec accepts at that path")]


class Design(In):
    """How a study varies the base spec; members = configurations x sizes x folds x seeds."""

    sweep: dict[str, list[Value]] | None = Field(
        default=None,
        max_length=8,
        description='a grid: {"model.dropout": [0, 0.5], "optimizer.weight_decay": [0, 1e-4]}',
    )
    overrides: list[dict[str, Value]] | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="an explicit list of configurations, each a {path: value} map",
    )
    seeds: list[Annotated[int, Field(ge=0, lt=2**63)]] | None = Field(
        default=None, min_length=1, max_length=100, description="repeats: one member per seed"
    )
    folds: FoldDesign | None = None
    learning_curve: LearningCurveDesign | None = Field(
        default=None, description="training-set sizes (a list, or {sizes, budget})"
    )
    path: PathDesign | None = None
    # Names of the configurations, in order (with overrides: one per entry), for tables.
    names: list[Annotated[Text, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=200
    )
    # The configuration the effects are measured against (index into the configurations).
    baseline: int = Field(default=0, ge=0)

    @field_validator("learning_curve", mode="before")
    @classmethod
    def _sizes_alone(cls, value: Any) -> Any:
        return {"sizes": value} if isinstance(value, list) else value  # a list: the sizes

    @field_validator("sweep", "overrides")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        maps = [value] if isinstance(value, dict) else value or []
        for mapping in maps:
            for path in mapping:
                check_path(path)
        return value

    @model_validator(mode="after")
    def _one_way(self) -> Design:
        ways = [w for w in ("sweep", "overrides", "path") if getattr(self, w) is not None]
        if len(ways) > 1:
            raise ValueError(f"{ways[1]}: give one of a sweep, overrides or a path, not both")
        if self.path is not None and self.learning_curve is not None:
            raise ValueError("path: a path is not crossed with a learning curve")
        if self.learning_curve is not None:
            for mapping in [self.sweep or {}, *(self.overrides or [])]:
                for path in mapping:
                    try:
                        check_path(path, sizes_too=True)
                    except ValueError as exc:
                        raise ValueError(f"learning_curve: {exc}") from None
        for path, values in (self.sweep or {}).items():
            if not values or len(values) > 100:
                raise ValueError(f"sweep.{path}: from 1 to 100 values")
        if self.names is not None and len(self.names) != len(self.overrides or [None]):
            raise ValueError("names: one per entry of overrides")
        return self

    @property
    def sizes(self) -> list[float]:
        return self.learning_curve.sizes if self.learning_curve else []


@dataclass(frozen=True)
class Member:
    config: int  # index into the configurations
    replicate: int  # fold index and seed index, folded into one number (fold-major)
    fold: int | None
    seed: int
    overrides: dict[str, Any]  # every path the study set, its own included
    spec: JobSpec


@dataclass(frozen=True)
class Expansion:
    configs: list[dict[str, Any]]  # each configuration's overrides (size included)
    members: list[Member]


def count_configs(design: Design) -> int:
    """How many configurations the design makes, from its sizes alone (nothing expanded: a
    sweep of 8 paths x 100 values names 10^16 of them)."""
    if design.sweep:
        configs = math.prod(len(values) for values in design.sweep.values())
    elif design.path:
        configs = len(design.path.values or []) or design.path.count or 0
    else:
        configs = len(design.overrides or [{}])
    return configs * (len(design.sizes) or 1)


def expand(base: dict[str, Any], design: Design, max_members: int) -> Expansion:
    """Every member of the study, validated; Invalid names the first bad path and value. The
    member count is checked before anything is built."""
    n_configs = count_configs(design)
    folds = list(range(design.folds.k)) if design.folds else [None]
    seeds = design.seeds or [int(base.get("seed", 0) or 0)]
    total = n_configs * len(folds) * len(seeds)
    if total > max_members:
        raise Invalid(
            "design",
            f"{total} members ({n_configs} configurations x {len(folds)} folds x "
            f"{len(seeds)} seeds); this server allows {max_members} (FITLENS_MAX_STUDY_MEMBERS)",
        )
    configs = _configs(design)
    if design.baseline >= len(configs):
        raise Invalid("design.baseline", f"there are {len(configs)} configurations")
    budget = design.learning_curve.budget if design.learning_curve else "epochs"
    extras: list[dict[str, Any]] = [{} for _ in configs]
    if budget != "epochs":
        extras = _budgeted(base, design, configs, seeds[0])
    members = []
    for index, config in enumerate(configs):
        for (f, fold), (s, seed) in itertools.product(enumerate(folds), enumerate(seeds)):
            overrides = {**config, **extras[index]}
            overrides["seed"] = seed
            if design.folds is not None and fold is not None:
                overrides["dataset.folds"] = {**design.folds.model_dump(), "index": fold}
            label = _labeller(design, index)
            spec = _spec(base, overrides, config, label)
            members.append(Member(index, f * len(seeds) + s, fold, seed, overrides, spec))
    return Expansion(configs, members)


def _budgeted(
    base: dict[str, Any], design: Design, configs: list[dict[str, Any]], seed: int
) -> list[dict[str, Any]]:
    """A learning curve's step budget: each size of a configuration trains the whole epochs
    that reach the optimizer steps of its largest size (``epochs`` goes into the
    configuration, so tables show it); histograms and per-batch points are spread over those
    epochs as over the spec's. With budget early_stop each member also stops early."""
    assert design.learning_curve is not None
    n_sizes, early = len(design.sizes), design.learning_curve.budget == "early_stop"
    extras: list[dict[str, Any]] = []
    for first in range(0, len(configs), n_sizes):
        group = configs[first : first + n_sizes]
        label = _labeller(design, first)
        specs = [_spec(base, {**c, "seed": seed, **_fold0(design)}, c, label) for c in group]
        batches = [_batches(spec) for spec in specs]
        largest = max(range(n_sizes), key=lambda i: batches[i])
        steps = specs[largest].epochs * batches[largest]
        for config, spec, per_epoch in zip(group, specs, batches, strict=True):
            epochs = math.ceil(steps / per_epoch)
            if epochs > MAX_EPOCHS:
                raise Invalid(
                    "design.learning_curve.budget",
                    f"{steps} steps take {epochs} epochs of {per_epoch} batches, over "
                    f"{MAX_EPOCHS}: a larger smallest size, or budget epochs",
                )
            config["epochs"] = epochs
            if early:
                stopping = spec.early_stopping
                config["early_stopping"] = stopping.model_dump() if stopping else EARLY_STOP
            scale = epochs / spec.epochs
            extras.append(
                {
                    "histograms.every": max(1, round(spec.histograms.every * scale)),
                    "evaluation.batch_points": math.ceil(spec.evaluation.batch_points / scale),
                }
            )
    return extras


def _fold0(design: Design) -> dict[str, Any]:
    return {"dataset.folds": {**design.folds.model_dump(), "index": 0}} if design.folds else {}


def _batches(spec: JobSpec) -> int:
    sizes = spec.dataset.split_sizes()
    if sizes is None:
        raise Invalid(
            "design.learning_curve.budget",
            f"the training-set sizes of {spec.dataset.name!r} with an official split are not "
            "known from the spec: budget epochs",
        )
    return math.ceil(sizes[0] / spec.batch_size)


def config_names(design: dict[str, Any], configs: list[dict[str, Any]]) -> list[str]:
    """Every configuration's name, in order: the design's (learning-curve sizes share their
    base configuration's name, and add the size), else the values that vary between
    configurations ("dropout 0.5, 5% of the training set"), never a bare index. What varies
    is found once for them all."""
    names = design.get("names")
    sizes = len(stored_sizes(design))
    paths = [p for p in varied_paths(configs) if not names or (sizes and p in SIZE_PATHS)]
    leaves = [p.rsplit(".", 1)[-1] for p in paths]
    keys = [p if leaves.count(leaf) > 1 else leaf for p, leaf in zip(paths, leaves, strict=True)]
    out = []
    for index, values in enumerate(configs):
        parts = [
            _describe(key, v)
            for path, key in zip(paths, keys, strict=True)
            if (v := values.get(path)) is not None
        ]
        if names:
            parts.insert(0, str(names[index // (sizes or 1)]))
        out.append(", ".join(parts) or "base spec")
    return out


def member_name(study: str, design: Design, label: str, m: Member) -> str:
    """A member's run name: its study, its configuration's name (``label``), and its fold or
    seed."""
    replicate = []
    if design.folds is not None and m.fold is not None:
        replicate.append(f"fold {m.fold}")
    if len(design.seeds or []) > 1:
        replicate.append(f"seed {m.seed}")
    return ", ".join([f"{study[:80]} · {label}"[:180], *replicate])


def varied_paths(configs: list[dict[str, Any]]) -> list[str]:
    """The paths whose values differ between configurations, in the order first seen."""
    paths = list(dict.fromkeys(p for c in configs for p in c))
    return [p for p in paths if len({json.dumps(c.get(p), sort_keys=True) for c in configs}) > 1]


def _describe(key: str, value: Any) -> str:
    if key == "train_fraction" and isinstance(value, int | float):
        return f"{value * 100:g}% of the training set"
    if key == "train_subset":
        return f"{value} training examples"
    if isinstance(value, dict):  # a sub-spec: its kind says most (lr_schedule, model)
        inner = value.get("kind") or json.dumps(value, sort_keys=True)[:40]
        return f"{key} {inner}"
    if isinstance(value, float):
        return f"{key} {value:g}"
    return f"{key} {json.dumps(value) if isinstance(value, list) else value}"


def stored_sizes(design: dict[str, Any]) -> list[float]:
    """A stored design's learning-curve sizes (stored as a list before budgets existed)."""
    curve = design.get("learning_curve")
    return list(curve.get("sizes", []) if isinstance(curve, dict) else curve or [])


def _configs(design: Design) -> list[dict[str, Any]]:
    if design.sweep:
        paths = list(design.sweep)
        configs = [
            dict(zip(paths, values, strict=True))
            for values in itertools.product(*design.sweep.values())
        ]
    elif design.path:
        configs = [{design.path.field: value} for value in design.path.grid()]
    else:
        configs = [dict(o) for o in design.overrides or [{}]]
    if design.sizes:
        sized = []
        for config in configs:
            for size in design.sizes:
                key = "dataset.train_fraction" if size <= 1 else "dataset.train_subset"
                sized.append({**config, key: size if size <= 1 else int(size)})
        configs = sized
    return configs


def _labeller(design: Design, config: int) -> Callable[[str], str]:
    """Where a configuration's path was written in the request, for the 422's field."""
    sizes = len(design.sizes) or 1

    def label(path: str) -> str:
        if path in SIZE_PATHS:
            return "design.learning_curve.sizes"
        if path in BUDGET_PATHS:
            return "design.learning_curve.budget"
        if design.sweep is not None:
            return f"design.sweep.{path}"
        if design.path is not None:
            return "design.path.values"
        return f"design.overrides.{config // sizes}.{path}"

    return label


def _spec(
    base: dict[str, Any],
    overrides: dict[str, Any],
    config: dict[str, Any],
    label: Callable[[str], str],
) -> JobSpec:
    raw = copy.deepcopy(base)
    for path, value in overrides.items():
        node = raw
        *parents, leaf = path.split(".")
        for i, part in enumerate(parents):
            child = node.get(part)
            if not isinstance(child, dict):
                if child is not None:
                    where = ".".join(parents[: i + 1])
                    raise Invalid(label(path), f"{where} is not an object in the spec")
                child = node[part] = {}
            node = child
        node[leaf] = value
    try:
        return JobSpec.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = [str(p) for p in error["loc"]]
        culprit = next((p for p in config if _covers(p.split("."), loc)), None)
        # A check of several fields fails on their parent; its message names the field.
        culprit = culprit or next(
            (p for p in config if p.startswith(".".join(loc)) and p.split(".")[-1] in error["msg"]),
            None,
        )
        if culprit is None:
            where = ".".join(["spec", *loc])
            raise Invalid(where, error["msg"]) from None
        value = json.dumps(config[culprit], default=str)[:100]
        raise Invalid(label(culprit), f"{value} is not valid here: {error['msg']}") from None


def _covers(path: list[str], loc: list[str]) -> bool:
    """Whether an error at ``loc`` is about ``path`` (or inside it). A union's tag may sit in
    ``loc`` between the parts (model.dropout fails at ("model", "mlp", "dropout"))."""
    if not loc or loc[0] != path[0]:
        return False
    i = 0
    for part in loc:
        if i < len(path) and part == path[i]:
            i += 1
    return i == len(path)


class StudyCreate(In):
    spec: dict[str, Any] = Field(default_factory=dict, description="the base job spec")
    design: Design = Field(default_factory=Design)
    project: Text = Field(default="", max_length=200, description="empty: the default project")
    team: Text | None = Field(default=None, max_length=100)
    name: Text | None = Field(default=None, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=50, description="every member's")
    notes: Text = Field(default="", max_length=10_000)

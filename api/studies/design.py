"""What a study asks, and the member specs that answer it (pure: no database).

A study is a base spec and a design: configurations (a grid ``sweep`` over dotted spec paths,
or an explicit list of ``overrides``), optionally crossed with learning-curve training-set
``sizes``; and replicates of each configuration: ``folds`` (k-fold cross-validation: replicate
i validates on fold i) and ``seeds`` (run-to-run noise). Every member spec is validated as a
whole JobSpec before anything is stored; a bad value is a 422 naming its path and the value.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from api.core.exceptions import Invalid
from api.core.schemas import In, Text
from api.runs.schemas import Tag
from trainer.spec import JobSpec

# A dotted spec path: "model.dropout", "optimizer.weight_decay", "regularization.l2".
PATH = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*){0,5}$")
# The paths a study sets itself on every member.
RESERVED = ("seed", "dataset.folds", "dataset.train_subset", "dataset.train_fraction")
Value = Annotated[Any, Field(description="any JSON value the spec accepts at that path")]


class FoldDesign(In):
    k: int = Field(default=5, ge=2, le=50)
    stratified: bool | None = None  # None: stratified when classifying
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="which examples go in each fold")


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
    learning_curve: list[Annotated[float, Field(gt=0)]] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="training-set sizes: fractions of the training split (up to 1) or counts",
    )
    # Names of the configurations, in order (with overrides: one per entry), for tables.
    names: list[Annotated[Text, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=200
    )
    # The configuration the effects are measured against (index into the configurations).
    baseline: int = Field(default=0, ge=0)

    @field_validator("sweep", "overrides")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        maps = [value] if isinstance(value, dict) else value or []
        for mapping in maps:
            for path in mapping:
                if not PATH.match(path):
                    raise ValueError(f"{path!r} is not a dotted spec path (e.g. model.dropout)")
                # Its parent object would set it too ("dataset": {"folds": ...}).
                if any(
                    path == r or r.startswith(path + ".") or path.startswith(r + ".")
                    for r in RESERVED
                ):
                    raise ValueError(f"{path!r} is set by the study itself (seeds, folds, sizes)")
        return value

    @model_validator(mode="after")
    def _one_way(self) -> Design:
        if self.sweep is not None and self.overrides is not None:
            raise ValueError("overrides: give a sweep or a list of overrides, not both")
        for path, values in (self.sweep or {}).items():
            if not values or len(values) > 100:
                raise ValueError(f"sweep.{path}: from 1 to 100 values")
        if self.names is not None and len(self.names) != len(self.overrides or [None]):
            raise ValueError("names: one per entry of overrides")
        for size in self.learning_curve or []:
            if size > 1 and size != int(size):
                raise ValueError(f"learning_curve: {size:g} is neither a fraction nor a count")
        return self


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
    else:
        configs = len(design.overrides or [{}])
    return configs * (len(design.learning_curve or []) or 1)


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
    members = []
    for index, config in enumerate(configs):
        for (f, fold), (s, seed) in itertools.product(enumerate(folds), enumerate(seeds)):
            overrides = dict(config)
            overrides["seed"] = seed
            if design.folds is not None and fold is not None:
                overrides["dataset.folds"] = {**design.folds.model_dump(), "index": fold}
            label = _labeller(design, index)
            spec = _spec(base, overrides, config, label)
            members.append(Member(index, f * len(seeds) + s, fold, seed, overrides, spec))
    return Expansion(configs, members)


def config_name(design: dict[str, Any], config: int) -> str | None:
    """A configuration's name from the stored design (learning-curve sizes share their base
    configuration's name), or None."""
    names = design.get("names")
    if not names:
        return None
    sizes = len(design.get("learning_curve") or []) or 1
    return str(names[config // sizes])


def _configs(design: Design) -> list[dict[str, Any]]:
    if design.sweep:
        paths = list(design.sweep)
        configs = [
            dict(zip(paths, values, strict=True))
            for values in itertools.product(*design.sweep.values())
        ]
    else:
        configs = [dict(o) for o in design.overrides or [{}]]
    if design.learning_curve:
        sized = []
        for config in configs:
            for size in design.learning_curve:
                key = "dataset.train_fraction" if size <= 1 else "dataset.train_subset"
                sized.append({**config, key: size if size <= 1 else int(size)})
        configs = sized
    return configs


def _labeller(design: Design, config: int) -> Callable[[str], str]:
    """Where a configuration's path was written in the request, for the 422's field."""
    sizes = len(design.learning_curve or []) or 1

    def label(path: str) -> str:
        if path in ("dataset.train_fraction", "dataset.train_subset"):
            return "design.learning_curve"
        if design.sweep is not None:
            return f"design.sweep.{path}"
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

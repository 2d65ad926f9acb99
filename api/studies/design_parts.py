"""The parts of a study's design with rules of their own: folds, a learning curve's sizes
and budget, a regularization path's grid, and which spec paths a design may set."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from api.core.schemas import In

# A dotted spec path: "model.dropout", "optimizer.weight_decay", "regularization.l2".
PATH = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*){0,5}$")
# The paths a study sets itself on every member; and, with a learning curve, the sizes.
RESERVED = ("seed", "dataset.folds")
SIZE_PATHS = ("dataset.train_subset", "dataset.train_fraction")


class FoldDesign(In):
    k: int = Field(default=5, ge=2, le=50)
    stratified: bool | None = None  # None: stratified when classifying
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="which examples go in each fold")


Size = Annotated[float, Field(gt=0)]


class LearningCurveDesign(In):
    """Training-set sizes and how long each trains. ``steps``: every size gets the optimizer
    steps of the largest (whole epochs, so at most one epoch of its own over); ``epochs``: every
    size the spec's epochs (small sizes get fewer steps); ``early_stop``: each size trains to
    its own early stop (the spec's rule, or patience 10 on val_loss) within the steps budget."""

    sizes: list[Size] = Field(
        min_length=1,
        max_length=50,
        description="training-set sizes: fractions of the training split (up to 1) or counts",
    )
    budget: Literal["steps", "epochs", "early_stop"] = "steps"

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, sizes: list[float]) -> list[float]:
        for size in sizes:
            if size > 1 and size != int(size):
                raise ValueError(f"{size:g} is neither a fraction nor a count")
        return sizes


class PathDesign(In):
    """A regularization path: one spec path over a grid, ``values`` or ``start``, ``stop`` and
    ``count`` spaced on the ``scale``; larger values are taken to regularize more."""

    field: str = Field(description="a dotted spec path: regularization.l2, model.dropout, ...")
    scale: Literal["log", "linear"] = "log"
    values: list[float] | None = Field(default=None, description="3 to 50 values, ascending")
    start: float | None = None
    stop: float | None = None
    count: int | None = Field(default=None, ge=3, le=50)

    @field_validator("field")
    @classmethod
    def _field(cls, path: str) -> str:
        check_path(path)
        return path

    @field_validator("values", "start", "stop")
    @classmethod
    def _positive_on_log(cls, value: Any, info: ValidationInfo) -> Any:
        numbers = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not 3 <= len(value) <= 50:
            raise ValueError(f"{len(value)} values; a path takes 3 to 50")
        if info.data.get("scale") == "log" and any(v is not None and v <= 0 for v in numbers):
            raise ValueError("a log grid takes positive values only (use scale linear for 0)")
        return value

    @model_validator(mode="after")
    def _grid(self) -> PathDesign:
        ends = (self.start, self.stop, self.count)
        if (self.values is None) == all(v is None for v in ends):
            raise ValueError("values: give the values, or start, stop and count")
        if self.values is None and any(v is None for v in ends):
            raise ValueError("count: a grid takes start, stop and count")
        return self

    def grid(self) -> list[float]:
        if self.values is not None:
            return sorted(self.values)
        start, stop, count = float(self.start or 0), float(self.stop or 0), int(self.count or 3)
        start, stop = min(start, stop), max(start, stop)
        if self.scale == "log":
            return [start * (stop / start) ** (i / (count - 1)) for i in range(count)]
        return [start + (stop - start) * i / (count - 1) for i in range(count)]


def check_path(path: str, sizes_too: bool = False) -> None:
    if not PATH.match(path):
        raise ValueError(f"{path!r} is not a dotted spec path (e.g. model.dropout)")
    # Its parent object would set it too ("dataset": {"folds": ...}).
    for reserved in (*RESERVED, *SIZE_PATHS) if sizes_too else RESERVED:
        if path == reserved or reserved.startswith(path + ".") or path.startswith(reserved + "."):
            raise ValueError(f"{path!r} is set by the study itself (seeds, folds, sizes)")

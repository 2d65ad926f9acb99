"""What the weight endpoints take and answer: a snapshot in (its values base64-packed), the
run's index of snapshots, one matrix (or its change between two epochs), and images."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from api.core.schemas import In, Step, Text

ITEMSIZE = {"float32": 4, "float16": 2}
MAX_VALUES = 1 << 20  # the trainer's largest snapshot (trainer.spec.SnapshotSpec.max_values)
Why = Literal["first", "every", "last", "best", "onset"]
Dim = Field(ge=1, le=MAX_VALUES)


class SnapshotIn(In):
    param: Text = Field(min_length=1, max_length=200)
    epoch: Step
    shape: list[int] = Field(min_length=1, max_length=4)
    full_shape: list[int] = Field(min_length=1, max_length=4)
    dtype: Literal["float32", "float16"]
    why: list[Why] = Field(min_length=1, max_length=5)
    method: Text = Field(default="whole", max_length=300)
    data: str = Field(max_length=4 * MAX_VALUES * 4 // 3 + 8)
    _packed: bytes = PrivateAttr(default=b"")

    @model_validator(mode="after")
    def _sizes(self) -> SnapshotIn:
        if any(d < 1 for d in (*self.shape, *self.full_shape)):
            raise ValueError("shape: every dimension is at least 1")
        values = math.prod(self.shape)
        if values > MAX_VALUES:
            raise ValueError(f"shape: {values} values; a snapshot holds at most {MAX_VALUES}")
        if values > math.prod(self.full_shape):
            raise ValueError("shape: more values than full_shape holds")
        try:
            self._packed = base64.b64decode(self.data, validate=True)  # decoded once, here
        except (binascii.Error, ValueError):
            raise ValueError("data: not base64") from None
        if len(self._packed) != values * ITEMSIZE[self.dtype]:
            raise ValueError(
                f"data: {len(self._packed)} bytes; shape {self.shape} of {self.dtype} takes "
                f"{values * ITEMSIZE[self.dtype]}"
            )
        return self

    def packed(self) -> bytes:
        """The values' bytes, as the validator decoded them."""
        return self._packed


class SnapshotInfo(BaseModel):
    param: str
    epoch: int
    shape: list[int]
    full_shape: list[int]
    dtype: str
    why: list[str]
    method: str


class SnapshotIndex(BaseModel):
    run_id: int
    # The run's input as channels, height, width (image data sets), else null: which
    # snapshots have an input-shaped view (GET .../weights/images).
    input_shape: list[int] | None = None
    snapshots: list[SnapshotInfo]  # by param, then epoch


class WeightMatrixOut(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="strings")

    param: str
    epoch: int
    diff_from: int | None  # the values are W(epoch) - W(diff_from)
    shape: list[int]
    full_shape: list[int]
    dtype: str  # as stored; a difference is float32
    method: str
    values: Any  # nested lists of the shape (row-major)


class Tile(BaseModel):
    index: int  # the unit, class or filter
    channel: int | None  # a filter's input channel
    label: str | None  # a class's name
    values: list[list[float]]


class WeightImages(BaseModel):
    param: str
    epoch: int
    kind: Literal["units", "classes", "filters"]
    tile_shape: list[int]  # height, width
    tiles: list[Tile]
    method: str

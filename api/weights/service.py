"""Weight snapshots in (one per tensor and epoch; a resend merges its reasons) and out: the
run's index, one matrix or its change between two epochs, raw bytes or .npy, and the
input-shaped views (a first layer's units as images, a linear model's class templates, a
convolution's filters). numpy is imported where it is used: the API starts without it."""

from __future__ import annotations

import io
import json
import math
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from api.core.exceptions import Invalid, NotFound, TooLarge
from api.core.schemas import IngestResult
from api.core.store import StoreBase
from api.runs.access import RunAccess
from api.runs.models import Run
from api.weights.models import WeightSnapshot
from api.weights.schemas import (
    SnapshotIn,
    SnapshotIndex,
    SnapshotInfo,
    Tile,
    WeightImages,
    WeightMatrixOut,
)
from trainer.spec import JobSpec

NUMPY = {"float32": "<f4", "float16": "<f2"}
MAX_TILES = 1024  # images in one answer


class WeightStore(StoreBase):
    def __init__(self, access: RunAccess, max_run_bytes: int) -> None:
        super().__init__(access.engine)
        self.access = access
        self.max_run_bytes = max_run_bytes

    def add_snapshot(self, run_id: int, snapshot: SnapshotIn, attempt: int | None) -> IngestResult:
        """Store it, or merge a resend's reasons; a 413 naming the limit if the run's
        snapshots would then hold more than the run's storage budget."""
        data = snapshot.packed()
        with Session(self.engine) as session:
            self.access.writable_run(session, run_id, attempt=attempt)
            found = session.execute(
                select(WeightSnapshot).where(
                    col(WeightSnapshot.run_id) == run_id,
                    col(WeightSnapshot.param) == snapshot.param,
                    col(WeightSnapshot.epoch) == snapshot.epoch,
                )
            ).scalar()
            if found is not None:
                why = sorted({*json.loads(found.why_json), *snapshot.why})
                found.why_json = json.dumps(why)
                revision = self.access.bump_revision(session, run_id)
                session.commit()
                return IngestResult(accepted=0, duplicates=1, revision=revision)
            held = session.execute(
                select(func.coalesce(func.sum(func.length(WeightSnapshot.data)), 0)).where(
                    col(WeightSnapshot.run_id) == run_id
                )
            ).scalar_one()
            if int(held) + len(data) > self.max_run_bytes:
                raise TooLarge(
                    "data",
                    f"the run's snapshots would hold {int(held) + len(data):,} bytes; a run "
                    f"stores at most {self.max_run_bytes:,} (FITLENS_MAX_RUN_STORAGE_MB)",
                )
            session.add(
                WeightSnapshot(
                    run_id=run_id,
                    param=snapshot.param,
                    epoch=snapshot.epoch,
                    shape_json=json.dumps(snapshot.shape),
                    full_shape_json=json.dumps(snapshot.full_shape),
                    dtype=snapshot.dtype,
                    why_json=json.dumps(sorted(set(snapshot.why))),
                    method=snapshot.method,
                    data=data,
                )
            )
            revision = self.access.bump_revision(session, run_id)
            session.commit()
        return IngestResult(accepted=1, duplicates=0, revision=revision)

    def snapshot_index(self, run_id: int) -> SnapshotIndex:
        with Session(self.engine) as session:
            # Every column but the values (a row's values may be megabytes).
            rows = session.execute(
                select(*(col(getattr(WeightSnapshot, c)) for c in _INFO_COLUMNS))
                .where(col(WeightSnapshot.run_id) == run_id)
                .order_by(col(WeightSnapshot.param), col(WeightSnapshot.epoch))
            ).all()
            snapshots = [_info(r) for r in rows]
            spec_json = session.execute(
                select(col(Run.spec_json)).where(col(Run.id) == run_id)
            ).scalar_one()
        spec = JobSpec.model_validate_json(spec_json) if spec_json not in ("", "{}") else None
        shape = spec.input_shape() if spec is not None else None
        return SnapshotIndex(
            run_id=run_id, input_shape=list(shape) if shape else None, snapshots=snapshots
        )

    def matrix(
        self, run_id: int, param: str, epoch: int, diff_from: int | None = None
    ) -> tuple[SnapshotInfo, Any]:
        """The snapshot's description and its values as a numpy array of its shape (minus the
        one at ``diff_from``, as float32, when given)."""
        with Session(self.engine) as session:
            row = self._row(session, run_id, param, epoch, "epoch")
            values = _array(row)
            if diff_from is not None:
                other = self._row(session, run_id, param, diff_from, "diff_from")
                if other.shape_json != row.shape_json:
                    raise Invalid("diff_from", "the two snapshots have different shapes")
                values = values.astype("float32") - _array(other).astype("float32")
        return _info(row), values

    def matrix_out(
        self, run_id: int, param: str, epoch: int, diff_from: int | None
    ) -> WeightMatrixOut:
        info, values = self.matrix(run_id, param, epoch, diff_from)
        return WeightMatrixOut(
            param=param,
            epoch=epoch,
            diff_from=diff_from,
            shape=info.shape,
            full_shape=info.full_shape,
            dtype="float32" if diff_from is not None else info.dtype,
            method=info.method,
            values=values.astype("float64").tolist(),
        )

    def images(
        self, run_id: int, param: str, epoch: int, input_shape: list[int] | None = None
    ) -> WeightImages:
        """Units, class templates or filters, as the tensor's shape and the run's input say
        (``input_shape``: what a run without a spec was given)."""
        info, values = self.matrix(run_id, param, epoch)
        with Session(self.engine) as session:
            spec_json = session.execute(
                select(col(Run.spec_json)).where(col(Run.id) == run_id)
            ).scalar_one()
        spec = JobSpec.model_validate_json(spec_json) if spec_json not in ("", "{}") else None
        return _images(info, values, spec, input_shape)

    def _row(
        self, session: Session, run_id: int, param: str, epoch: int, field: str
    ) -> WeightSnapshot:
        row = session.execute(
            select(WeightSnapshot).where(
                col(WeightSnapshot.run_id) == run_id,
                col(WeightSnapshot.param) == param,
                col(WeightSnapshot.epoch) == epoch,
            )
        ).scalar()
        if row is None:
            raise NotFound(f"{field}: no snapshot of {param!r} at epoch {epoch}")
        return row


def npy_bytes(values: Any) -> bytes:
    import numpy as np

    out = io.BytesIO()
    np.save(out, values, allow_pickle=False)
    return out.getvalue()


_INFO_COLUMNS = ("param", "epoch", "shape_json", "full_shape_json", "dtype", "why_json", "method")


def _info(row: Any) -> SnapshotInfo:
    """A snapshot's description, from its row (or a row of the _INFO_COLUMNS)."""
    return SnapshotInfo(
        param=row.param,
        epoch=row.epoch,
        shape=json.loads(row.shape_json),
        full_shape=json.loads(row.full_shape_json),
        dtype=row.dtype,
        why=json.loads(row.why_json),
        method=row.method,
    )


def _array(row: WeightSnapshot) -> Any:
    import numpy as np

    return np.frombuffer(row.data, dtype=NUMPY[row.dtype]).reshape(json.loads(row.shape_json))


def _images(
    info: SnapshotInfo, values: Any, spec: JobSpec | None, given: list[int] | None
) -> WeightImages:
    """A 4-D convolution weight: each filter per input channel. A whole 2-D weight whose
    rows are as long as the input: each row as an image of the input's shape, a unit's (or,
    for the output layer of a model without hidden layers, a class's template)."""
    common = {"param": info.param, "epoch": info.epoch, "method": info.method}
    if len(info.shape) == 4:
        out, channels, height, width = info.shape
        tiles = [
            Tile(index=o, channel=c, label=None, values=values[o, c].astype("float64").tolist())
            for o in range(out)
            for c in range(channels)
        ][:MAX_TILES]
        return WeightImages(kind="filters", tile_shape=[height, width], tiles=tiles, **common)
    shape = spec.input_shape() if spec is not None else given
    if len(info.shape) != 2 or info.method != "whole" or not shape or len(shape) != 3:
        raise Invalid(
            "param",
            f"{info.param} ({'x'.join(map(str, info.shape))}, {info.method}) is not a whole "
            "first layer on image data nor a convolution: no input-shaped view",
        )
    channels, height, width = shape
    if info.shape[1] != math.prod(shape):
        raise Invalid("param", f"{info.param}'s rows are not {channels}x{height}x{width} inputs")
    hidden = getattr(spec.model, "hidden", None) if spec is not None else None
    kind = "classes" if hidden == [] else "units"
    images = values.reshape(info.shape[0], channels, height, width)
    tiles = [
        Tile(
            index=u,
            channel=c if channels > 1 else None,
            label=None,
            values=images[u, c].astype("float64").tolist(),
        )
        for u in range(info.shape[0])
        for c in range(channels)
    ][:MAX_TILES]
    return WeightImages(kind=kind, tile_shape=[height, width], tiles=tiles, **common)

"""Weight snapshots in (from workers) and out: the index, one matrix (JSON by default; raw
little-endian bytes for Accept: application/octet-stream, numpy's .npy for
application/x-npy), its change between two epochs, and the input-shaped views."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.core.deps import (
    MAX_ID,
    READ_TAGS,
    WORKER_TAGS,
    AnswersDep,
    AttemptQuery,
    RunId,
    conditional_answer,
    etag,
    not_modified,
    part,
)
from api.core.http import GuardedRoute, before_body
from api.core.schemas import IngestResult
from api.runs.deps import RunRead, RunReport
from api.runs.guard import run_role
from api.weights.schemas import SnapshotIn, SnapshotIndex, WeightImages, WeightMatrixOut
from api.weights.service import WeightStore, npy_bytes

router = APIRouter(route_class=GuardedRoute)
StoreDep = Annotated[WeightStore, part("weights")]
Param = Annotated[str | None, Query(max_length=200, description="e.g. fc1.weight")]
Epoch = Annotated[int | None, Query(ge=0, le=MAX_ID)]
BINARY = {"application/octet-stream": "bin", "application/x-npy": "npy"}


@router.post("/runs/{run_id}/weights", response_model=IngestResult, tags=WORKER_TAGS)
@before_body(run_role("worker"), max_items=1000)
def post_snapshot(
    run_id: RunId, snapshot: SnapshotIn, store: StoreDep, _: RunReport, attempt: AttemptQuery = None
) -> IngestResult:
    """One weight tensor at one epoch (a resend merges its reasons); 413 over the run's
    storage budget."""
    return store.add_snapshot(run_id, snapshot, attempt)


@router.get(
    "/runs/{run_id}/weights",
    response_model=WeightMatrixOut | SnapshotIndex,
    responses={
        200: {"content": {"application/octet-stream": {}, "application/x-npy": {}}},
        304: {},
        404: {},
    },
    tags=READ_TAGS,
)
async def weights(
    run_id: RunId,
    request: Request,
    store: StoreDep,
    answers: AnswersDep,
    grant: RunRead,
    param: Param = None,
    epoch: Epoch = None,
    diff_from: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="W(epoch) - W(this)")
    ] = None,
) -> WeightMatrixOut | SnapshotIndex | Response:
    """Without ``param``: every snapshot (param, epoch, shape, dtype, why kept, method). With
    ``param`` and ``epoch``: the matrix, or with ``diff_from`` its change since that epoch."""
    if param is None or epoch is None:
        return await conditional_answer(
            request,
            answers,
            grant.identity,
            str(grant.revision),
            lambda: store.snapshot_index(run_id),
        )
    accept = request.headers.get("accept", "")
    binary = next((kind for media, kind in BINARY.items() if media in accept), None)
    if binary is None:
        return await conditional_answer(
            request,
            answers,
            grant.identity,
            str(grant.revision),
            lambda: store.matrix_out(run_id, param, epoch, diff_from),
        )
    tag = etag(request, grant.identity, f"{grant.revision}|{binary}")
    if (held := not_modified(request, tag)) is not None:
        return held
    info, values = store.matrix(run_id, param, epoch, diff_from)
    body = npy_bytes(values) if binary == "npy" else values.tobytes()
    media = "application/x-npy" if binary == "npy" else "application/octet-stream"
    dtype = "float32" if diff_from is not None else info.dtype
    headers = {
        "ETag": tag,
        "X-Shape": ",".join(map(str, info.shape)),
        "X-Dtype": f"{dtype} little-endian row-major",
        "X-Method": info.method,
    }
    return Response(body, media_type=media, headers=headers)


@router.get(
    "/runs/{run_id}/weights/images",
    response_model=WeightImages,
    responses={304: {}, 404: {}},
    tags=READ_TAGS,
)
async def weight_images(
    run_id: RunId,
    request: Request,
    store: StoreDep,
    answers: AnswersDep,
    grant: RunRead,
    param: Annotated[str, Query(max_length=200, description="e.g. fc1.weight")],
    epoch: Annotated[int, Query(ge=0, le=MAX_ID)],
    input_shape: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=r"^\d{1,5},\d{1,5},\d{1,5}$",
            description="channels,height,width: for a run logged from your own loop",
        ),
    ] = None,
) -> WeightImages | Response:
    """A first linear layer on image data: each unit's row as an image of the input's shape
    (a model without hidden layers: one template per class); a convolution: its filters, per
    input channel (422 for any other tensor)."""
    given = [int(n) for n in input_shape.split(",")] if input_shape else None
    return await conditional_answer(
        request,
        answers,
        grant.identity,
        str(grant.revision),
        lambda: store.images(run_id, param, epoch, given),
    )

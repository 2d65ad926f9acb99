"""Checkpoints: a worker uploads a state_dict (the body is the file; size and SHA-256 in the
query), readers list and download them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from api.checkpoints.schemas import CheckpointIn, CheckpointList, CheckpointName, CheckpointOut
from api.checkpoints.service import CheckpointStore
from api.core.deps import READ_TAGS, WORKER_TAGS, AttemptQuery, RunId, part
from api.core.http import GuardedRoute, before_body
from api.core.schemas import Step
from api.runs.deps import RunRead, RunReport
from api.runs.guard import run_role

router = APIRouter(route_class=GuardedRoute)
StoreDep = Annotated[CheckpointStore, part("checkpoints")]
Name = Annotated[CheckpointName, Path(description="best, last or onset")]


@router.post(
    "/runs/{run_id}/checkpoints/{name}",
    response_model=CheckpointOut,
    responses={413: {}},
    tags=WORKER_TAGS,
)
@before_body(run_role("worker"))
async def upload_checkpoint(
    run_id: RunId,
    name: Name,
    request: Request,
    store: StoreDep,
    _: RunReport,
    epoch: Annotated[Step, Query()],
    size: Annotated[int, Query(ge=1, le=1 << 40, description="the body's bytes")],
    sha256: Annotated[str, Query(pattern=r"^[0-9a-f]{64}$", description="the body's SHA-256")],
    why: Annotated[str, Query(max_length=200)] = "",
    attempt: AttemptQuery = None,
) -> CheckpointOut:
    """The body is torch.save's file of the model's state_dict, as is. It is refused (413)
    before it is read when the run's or the team's checkpoints would pass their budget, and
    (422) when it is not ``size`` bytes with that ``sha256``; it is listed only once kept."""
    meta = CheckpointIn(name=name, epoch=epoch, size=size, sha256=sha256, why=why)
    return await store.upload(run_id, meta, request.stream(), attempt)


@router.get("/runs/{run_id}/checkpoints", response_model=CheckpointList, tags=READ_TAGS)
def list_checkpoints(run_id: RunId, store: StoreDep, _: RunRead) -> CheckpointList:
    """The run's checkpoints: name, epoch, why kept, size and SHA-256."""
    return store.list_checkpoints(run_id)


@router.get(
    "/runs/{run_id}/checkpoints/{name}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {}},
    tags=READ_TAGS,
)
def download_checkpoint(
    run_id: RunId, name: Name, store: StoreDep, _: RunRead
) -> StreamingResponse:
    """The file, streamed (load it with torch.load(..., weights_only=True))."""
    info, chunks = store.open_checkpoint(run_id, name)
    headers = {
        "Content-Length": str(info.size),
        "ETag": f'"{info.sha256}"',
        "X-Checkpoint-SHA256": info.sha256,
        "X-Checkpoint-Epoch": str(info.epoch),
        "Content-Disposition": f'attachment; filename="run-{run_id}-{name}.pt"',
    }
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)

"""Is the service up: GET /healthz answers 200 when the database does, else 503."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.core.deps import get_store
from api.core.errors import SafeJSONResponse
from api.core.http import GuardedRoute
from api.core.schemas import Health
from api.core.store import StoreBase

router = APIRouter(tags=["health"], route_class=GuardedRoute)
StoreDep = Annotated[StoreBase, Depends(get_store)]


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(store: StoreDep) -> SafeJSONResponse:
    try:
        store.ping()
    except Exception as exc:  # any driver error means the same thing here
        body = Health(status="unavailable", database="unreachable", detail=type(exc).__name__)
        return SafeJSONResponse(status_code=503, content=body.model_dump())
    return SafeJSONResponse(content=Health(status="ok", database="ok").model_dump())

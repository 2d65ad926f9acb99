from __future__ import annotations

from fastapi import APIRouter

from api.core.http import GuardedRoute
from api.deps import StoreDep
from api.errors import SafeJSONResponse
from api.schemas import Health

router = APIRouter(tags=["health"], route_class=GuardedRoute)


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(store: StoreDep) -> SafeJSONResponse:
    try:
        store.ping()
    except Exception as exc:  # any driver error means the same thing here
        body = Health(status="unavailable", database="unreachable", detail=type(exc).__name__)
        return SafeJSONResponse(status_code=503, content=body.model_dump())
    return SafeJSONResponse(content=Health(status="ok", database="ok").model_dump())

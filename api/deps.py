"""FastAPI dependencies: the store, the enqueuer, settings, and ETag handling."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import Principal, Unauthorized
from api.core.config import Settings
from api.core.exceptions import Forbidden
from api.core.http import PRINCIPAL_KEY
from api.queue import Enqueuer
from api.store import TrackingStore


# Dependencies are async on purpose: FastAPI runs sync ones in the threadpool, a thread hop
# per dependency per request (measurable on a 304 poll).
async def get_store(request: Request) -> TrackingStore:
    return request.app.state.store


async def get_enqueuer(request: Request) -> Enqueuer:
    return request.app.state.enqueuer


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


# Ids and steps are 64-bit in the database; anything larger is a 422, never an overflow.
MAX_ID = 2**62
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]

StoreDep = Annotated[TrackingStore, Depends(get_store)]
EnqueuerDep = Annotated[Enqueuer, Depends(get_enqueuer)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def etag(request: Request, revisions: str) -> str:
    """Weak ETag from the data's revision(s) and the exact request (path + query)."""
    digest = hashlib.blake2b(
        f"{request.url.path}?{request.url.query}|{revisions}".encode(), digest_size=12
    ).hexdigest()
    return f'W/"{digest}"'


def not_modified(request: Request, tag: str) -> Response | None:
    """A 304 when the client already holds this version, else None."""
    sent = request.headers.get("if-none-match")
    if sent and (sent.strip() == "*" or tag in [t.strip() for t in sent.split(",")]):
        return Response(status_code=304, headers={"ETag": tag})
    return None


# Declared as a security scheme so the OpenAPI docs offer "Authorize"; errors are ours (401).
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="a user's token (`python -m api admin create-user`, POST /tokens), or a run's "
    "worker token",
)


async def get_principal(
    request: Request,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """Who is asking, from ``Authorization: Bearer <token>``; 401 if nobody usable. A request
    with a body was authenticated already, before its body was read (api.core.http)."""
    known = request.scope.get("state", {}).get(PRINCIPAL_KEY)
    if known is not None:
        return known
    if credentials is None or not credentials.credentials.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    return store.authenticate(credentials.credentials.strip())


async def get_user(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """A user's token. A worker token only reads its run and reports on it (least privilege:
    a leaked one exposes one run's spec, for as long as the run lasts)."""
    if principal.is_worker:
        raise Forbidden("a worker token can only read and report on its run")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
UserDep = Annotated[Principal, Depends(get_user)]

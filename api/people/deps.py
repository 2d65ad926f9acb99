"""Who is asking: the principal behind ``Authorization: Bearer <token>``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.core.deps import part
from api.core.exceptions import Forbidden, Unauthorized
from api.core.http import PRINCIPAL_KEY, credential
from api.people.auth import Principal
from api.people.tokens import TokenStore

# Declared as a security scheme so the OpenAPI docs offer "Authorize"; errors are ours (401).
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="a user's token (`python -m api admin create-user`, POST /tokens), or a run's "
    "worker token",
)


async def get_principal(
    request: Request,
    store: Annotated[TokenStore, part("people")],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """Who is asking, from ``Authorization: Bearer <token>`` (or a browser's session cookie);
    401 if nobody usable. A request with a body was authenticated already, before its body was
    read (api.core.http). ``credentials`` is declared for the OpenAPI docs only."""
    known = request.scope.get("state", {}).get(PRINCIPAL_KEY)
    if known is not None:
        return known
    token = credential(request.scope)  # the bearer token, else the browser's session cookie
    if token is None:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    return store.authenticate(token)


async def get_user(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """A user's token. A worker token only reads its run and reports on it (least privilege:
    a leaked one exposes one run's spec, for as long as the run lasts)."""
    if principal.is_worker:
        raise Forbidden("a worker token can only read and report on its run")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
UserDep = Annotated[Principal, Depends(get_user)]

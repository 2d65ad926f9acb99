"""The browser's sign-in. Browsers cannot put a token in an EventSource's headers, and a token
in a URL lands in logs; so the dashboard exchanges the user's token, once, for a session cookie:

- ``POST /session`` with ``Authorization: Bearer <token>`` mints a short-lived token of the same
  user (listed in GET /tokens as "browser session"), sets it as the ``fitlens_session`` cookie
  (HttpOnly: page scripts cannot read it; SameSite=Strict: no other site's request carries it)
  and sets ``fitlens_csrf``, a readable cookie holding the CSRF token derived from it;
- every request may then authenticate by that cookie; a write (POST, PUT, PATCH, DELETE) must
  also send the CSRF token in ``X-CSRF-Token`` (api.core.http), which another site's page
  cannot read;
- ``GET /session`` says who is signed in (``user`` null if nobody), without an error;
- ``DELETE /session`` revokes that token and clears both cookies;
- ``POST /session`` with the cookie and its CSRF header (no Authorization) renews the session;
  revoking the token a session was signed in with ends the session (api.people.tokens).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from api.core.deps import SettingsDep, part
from api.core.exceptions import Unauthorized
from api.core.http import CSRF_COOKIE, SESSION_COOKIE, GuardedRoute, credential, csrf_for
from api.core.schemas import UtcDatetime
from api.people.deps import UserDep
from api.people.tokens import TokenStore

router = APIRouter(tags=["teams"], route_class=GuardedRoute)
StoreDep = Annotated[TokenStore, part("people")]


class SessionState(BaseModel):
    user: str | None  # None: not signed in (or the session has ended)


class SessionOut(BaseModel):
    user: str
    csrf_token: str  # send it as X-CSRF-Token with every write made by cookie
    expires_at: UtcDatetime


@router.get("/session", response_model=SessionState)
def session_state(request: Request, store: StoreDep) -> SessionState:
    """Who the browser's cookie (or a bearer token) signs in: 200 either way, so that a page
    asks without an error (no token: ``user`` is null)."""
    try:
        token = credential(request.scope)
        principal = store.authenticate(token) if token else None
    except Unauthorized:
        principal = None
    return SessionState(user=principal.user_name if principal else None)


@router.post("/session", response_model=SessionOut)
def sign_in(
    request: Request, response: Response, store: StoreDep, settings: SettingsDep, who: UserDep
) -> SessionOut:
    """Exchange the bearer token for a session cookie (for the dashboard), or renew a session:
    with its cookie and its CSRF token only (no Authorization header), which ends the old
    one; a session never outlives the token it was first signed in with."""
    scheme = request.headers.get("authorization", "").partition(" ")[0].lower()
    if scheme and scheme != "bearer":
        raise Unauthorized("sign in with 'Authorization: Bearer <token>'")
    if not scheme and who.origin_id is None:
        raise Unauthorized("sign in with 'Authorization: Bearer <token>'")
    token, row = store.mint_session(who, settings.session_hours)
    assert row.expires_at is not None and who.user_name is not None
    secure = settings.session_cookie_secure
    if secure is None:
        secure = request.url.scheme == "https"
    max_age = int(settings.session_hours * 3600)
    csrf = csrf_for(token)
    for name, value, http_only in ((SESSION_COOKIE, token, True), (CSRF_COOKIE, csrf, False)):
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=secure,
            httponly=http_only,
            samesite="strict",
        )
    return SessionOut(user=who.user_name, csrf_token=csrf, expires_at=row.expires_at)


@router.delete("/session", status_code=204)
def sign_out(request: Request, store: StoreDep, who: UserDep) -> Response:
    """Revoke the session's token and clear its cookies."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        store.end_session(who, token)
    response = Response(status_code=204)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict")
    return response

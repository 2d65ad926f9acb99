"""Tokens: who is asking (on every request), and each user's own tokens.

Tokens are random (``fl_`` + 43 url-safe characters, 256 bits) and stored only as their SHA-256
(api.people.auth). A user's token acts as that user in all of their teams; only that user lists,
mints or revokes it (the operator's CLI can mint one). A run's worker token reads and reports on
that run only, for as long as the run lasts: the one place where people reads a table of runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from api.core.db import utcnow
from api.core.exceptions import Forbidden, NotFound, Unauthorized
from api.core.store import StoreBase
from api.people.auth import Principal, hash_token, new_token
from api.people.models import ApiToken, Membership, User
from api.people.schemas import TokenOut
from api.runs.models import FINISHED, Run


class TokenStore(StoreBase):
    # ---- authentication: on every request ----

    def authenticate(self, token: str) -> Principal:
        """Who holds this token. Unauthorized, saying why, if it is unknown, revoked, expired,
        or a worker token whose run has ended (a worker learns that way that it must stop).

        One indexed query (token, user, memberships, run status joined): it runs on every
        request, including 304 polls."""
        with self.reader.connect() as conn:
            rows = conn.execute(_AUTHENTICATE, {"token_hash": hash_token(token)}).all()
        if not rows:
            raise Unauthorized("unknown token")
        user_id, run_id, expires_at, revoked_at, handed_over, user_name = rows[0][:6]
        status, token_id, origin_id, origin_expires, origin_revoked = rows[0][8:]
        now = utcnow()
        if revoked_at is not None:
            raise Unauthorized("this token was revoked")
        if expires_at is not None and expires_at <= now:
            raise Unauthorized("this token has expired")
        if origin_id is not None and (
            origin_revoked is not None or (origin_expires is not None and origin_expires <= now)
        ):
            raise Unauthorized("the token this session was signed in with was revoked or expired")
        if run_id is not None:
            if status is None or status in FINISHED:
                raise Unauthorized(
                    f"run {run_id} has ended ({status or 'deleted'}): "
                    "its worker token no longer works"
                )
            return Principal(run_id=run_id)
        roles = {row[6]: row[7] for row in rows if row[6] is not None}
        return Principal(
            user_id=user_id,
            user_name=user_name,
            roles=roles,
            handed_over=bool(handed_over),
            token_id=token_id,
            origin_id=origin_id,
        )

    def admin_mint(self, user_name: str, name: str, expires_days: float | None) -> str:
        """A new token for an existing user, for the operator's CLI (no caller to check)."""
        with Session(self.engine) as session:
            user_id = session.execute(
                select(col(User.id)).where(col(User.name) == user_name)
            ).scalar()
            if user_id is None:
                raise NotFound(f"user {user_name!r} not found")
            token, _ = self._mint(session, user_id, name, expires_days, False)
            session.commit()
            return token

    # ---- tokens: each user's own ----

    def mint_token(
        self, principal: Principal, name: str, expires_days: float | None
    ) -> tuple[TokenOut, str]:
        assert principal.user_id is not None
        if principal.handed_over:
            raise Forbidden(
                "this token was handed to you by a team owner, who has seen it: it cannot mint "
                "tokens (an account of your own comes from the operator: python -m api admin)"
            )
        with Session(self.engine) as session:
            token, row = self._mint(session, principal.user_id, name, expires_days, False)
            session.commit()
            return _token_out(row), token

    def list_tokens(self, principal: Principal) -> list[TokenOut]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(ApiToken)
                .where(col(ApiToken.user_id) == principal.user_id)
                .order_by(col(ApiToken.id))
            ).scalars()
            return [_token_out(t) for t in rows]

    def revoke_token(self, principal: Principal, token_id: int) -> TokenOut:
        with Session(self.engine) as session:
            tok = session.get(ApiToken, token_id)
            if tok is None or tok.user_id is None or tok.user_id != principal.user_id:
                raise NotFound(f"token {token_id} not found")
            if tok.revoked_at is None:
                tok.revoked_at = utcnow()
            session.commit()
            return _token_out(tok)

    # ---- browser sessions: a token exchanged for a cookie (api.people.session) ----

    def mint_session(self, principal: Principal, hours: float) -> tuple[str, ApiToken]:
        """A short-lived token for the browser's HttpOnly cookie. It is one of the user's
        tokens (listed, revocable), carries the hand-over mark of the token it came from, and
        lives no longer than that token (its origin: a renewed session keeps its session's
        origin, and the session it renews ends)."""
        assert principal.user_id is not None
        origin = principal.origin_id or principal.token_id
        with Session(self.engine) as session:
            token, row = self._mint(
                session, principal.user_id, "browser session", hours / 24, principal.handed_over
            )
            row.parent_id = origin
            if principal.origin_id is not None:  # a renewal: the old session ends
                session.execute(
                    update(ApiToken)
                    .where(col(ApiToken.id) == principal.token_id)
                    .values(revoked_at=utcnow())
                )
            session.commit()
            session.refresh(row)
            return token, row

    def end_session(self, principal: Principal, token: str) -> None:
        """Sign out: the session's token stops working (only its own user's, if it is one)."""
        with Session(self.engine) as session:
            session.execute(
                update(ApiToken)
                .where(
                    col(ApiToken.token_hash) == hash_token(token),
                    col(ApiToken.user_id) == principal.user_id,
                    col(ApiToken.revoked_at).is_(None),
                )
                .values(revoked_at=utcnow())
            )
            session.commit()

    def _mint(
        self,
        session: Session,
        user_id: int,
        name: str,
        expires_days: float | None,
        handed_over: bool,
    ) -> tuple[str, ApiToken]:
        """A user's new token: the secret (shown once) and its stored row (hash only)."""
        token = new_token()
        expires = utcnow() + timedelta(days=expires_days) if expires_days is not None else None
        row = ApiToken(
            token_hash=hash_token(token),
            user_id=user_id,
            name=name,
            expires_at=expires,
            handed_over=handed_over,
        )
        session.add(row)
        return token, row


def mint_worker_token(session: Session, run_id: int) -> str:
    """A run's worker token: it reads and reports on that run only, until the run ends."""
    token = new_token()
    session.add(
        ApiToken(token_hash=hash_token(token), run_id=run_id, name=f"worker for run {run_id}")
    )
    return token


def revoke_worker_tokens(session: Session, run_id: int) -> None:
    """The run's workers can no longer write to it (a lost worker that wakes up, say)."""
    session.execute(
        update(ApiToken)
        .where(col(ApiToken.run_id) == run_id, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


def _token_out(tok: ApiToken) -> TokenOut:
    return TokenOut(
        id=tok.id or 0,
        name=tok.name,
        created_at=tok.created_at,
        expires_at=tok.expires_at,
        revoked_at=tok.revoked_at,
        handed_over=tok.handed_over,
    )


# Built once: constructing the statement costs more than running it (it runs on every request).
_ORIGIN = aliased(ApiToken, name="origin")  # a browser session's origin token
_AUTH_COLUMNS: list[Any] = [
    ApiToken.user_id,
    ApiToken.run_id,
    ApiToken.expires_at,
    ApiToken.revoked_at,
    ApiToken.handed_over,
    User.name,
    Membership.team_id,
    Membership.role,
    Run.status,
    ApiToken.id,
    ApiToken.parent_id,
    _ORIGIN.expires_at,
    _ORIGIN.revoked_at,
]
_AUTHENTICATE = (
    select(*_AUTH_COLUMNS)
    .outerjoin(User, col(User.id) == ApiToken.user_id)
    .outerjoin(Membership, col(Membership.user_id) == ApiToken.user_id)
    .outerjoin(Run, col(Run.id) == ApiToken.run_id)
    .outerjoin(_ORIGIN, col(_ORIGIN.id) == col(ApiToken.parent_id))
    .where(col(ApiToken.token_hash) == bindparam("token_hash"))
)

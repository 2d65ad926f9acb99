"""Bearer tokens and who is asking.

Tokens are random (``fl_`` + 43 url-safe characters, 256 bits) and stored only as their SHA-256:
a leaked database does not leak credentials. A plain hash suffices (no bcrypt) because the
tokens are random, not passwords.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

PREFIX = "fl_"
ROLES = ("owner", "member", "viewer")
WRITE_ROLES = frozenset({"owner", "member"})


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """A user (with a role per team) or a worker (allowed one run only)."""

    user_id: int | None = None
    user_name: str | None = None
    roles: dict[int, str] = field(default_factory=dict)  # team id -> role
    run_id: int | None = None  # set for a worker token
    handed_over: bool = False  # a user's token that a team owner minted and saw (POST /users)
    token_id: int | None = None  # the token's own id (a session's origin, when it signs in)
    origin_id: int | None = None  # a browser session's: the token it was signed in with

    @property
    def is_worker(self) -> bool:
        return self.run_id is not None

    def teams(self, write: bool = False) -> list[int]:
        return [t for t, role in self.roles.items() if not write or role in WRITE_ROLES]

"""People's tables: users, teams, memberships, invitations, tokens, and the teams' projects."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint, false
from sqlmodel import Field, SQLModel

from api.core.db import NEVER_REUSED, BigId, utcnow


class User(SQLModel, table=True):
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    name: str = Field(max_length=100, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Team(SQLModel, table=True):
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    name: str = Field(max_length=100, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Membership(SQLModel, table=True):
    team_id: int = Field(sa_type=BigId, foreign_key="team.id", primary_key=True, ondelete="CASCADE")
    user_id: int = Field(
        sa_type=BigId, foreign_key="user.id", primary_key=True, ondelete="CASCADE", index=True
    )
    role: str = Field(max_length=10)  # owner, member, viewer


class ApiToken(SQLModel, table=True):
    """A bearer token, stored only as its SHA-256. Either a user's, or a worker's for one run."""

    __tablename__ = "api_token"
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="user.id", ondelete="CASCADE"
    )
    run_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="run.id", ondelete="CASCADE"
    )
    name: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    # Minted for the user by a team owner (POST /users): the owner has seen it, so it cannot
    # accept an invitation, and accepting one revokes it (it must never reach another team).
    handed_over: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # A browser session's token: the token it was signed in with. Revoking (or expiry of) that
    # one ends the session, and a renewed session keeps the same origin.
    parent_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="api_token.id", ondelete="CASCADE"
    )


class Invitation(SQLModel, table=True):
    """An owner's offer of a role in their team. Kept by user *name*, whether or not such a user
    exists, so inviting reveals nothing. It is for the account that had that name when it was
    made (``user_id``), or, if none had, for an account made later by the operator: never for
    one a team owner made (whose tokens that owner has seen)."""

    __table_args__ = (
        UniqueConstraint("team_id", "user_name", name="uq_invitation_team_user"),
        NEVER_REUSED,
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    team_id: int = Field(sa_type=BigId, foreign_key="team.id", ondelete="CASCADE")
    user_name: str = Field(max_length=100, index=True)
    user_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="user.id", ondelete="CASCADE"
    )
    role: str = Field(max_length=10)
    invited_by_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="user.id", ondelete="SET NULL"
    )
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class Project(SQLModel, table=True):
    """A team's project. Names are unique within a team, so every team has its own "default"."""

    __table_args__ = (
        UniqueConstraint("team_id", "name", name="uq_project_team_id_name"),
        NEVER_REUSED,
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    name: str = Field(max_length=200, index=True)
    team_id: int | None = Field(default=None, sa_type=BigId, foreign_key="team.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)

"""What the people endpoints take and answer: users, teams, members, invitations, tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from api.core.schemas import In, Text

Name = Annotated[Text, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")]
Role = Literal["owner", "member", "viewer"]


class TeamRole(BaseModel):
    id: int
    name: str
    role: Role


class UserOut(BaseModel):
    id: int
    name: str
    teams: list[TeamRole]


class Member(BaseModel):
    user: str
    role: Role


class TeamOut(BaseModel):
    id: int
    name: str
    members: list[Member]
    projects: list[str]
    # Pending invitations, by name: they grant nothing until the user accepts.
    invited: list[Member] = Field(default_factory=list)


class InvitationOut(BaseModel):
    team_id: int
    team: str
    role: Role
    invited_by: str | None
    created_at: datetime
    expires_at: datetime


class TeamCreate(In):
    name: Name


class MemberSet(In):
    user: Name
    role: Role = "member"


class UserCreate(In):
    name: Name
    team_id: int = Field(ge=1, le=2**62, description="a team you own; the user joins it")
    role: Role = "member"


class TokenCreate(In):
    """A new token for yourself: nobody mints tokens for another user."""

    name: Text = Field(default="", max_length=100)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


class TokenOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    # Minted by the team owner who created your account (POST /users): replace it with your own.
    handed_over: bool = False


class TokenCreated(BaseModel):
    token: str  # shown once; only its hash is stored
    info: TokenOut


class UserCreated(BaseModel):
    user: UserOut
    token: str  # the user's first token, shown once

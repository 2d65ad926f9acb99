"""Users, teams and tokens. Owners add members and mint tokens; tokens are shown once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import MAX_ID, StoreDep, UserDep
from api.schemas import (
    MemberSet,
    TeamCreate,
    TeamOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserCreated,
    UserOut,
)

router = APIRouter(tags=["teams"])
TeamId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/me", response_model=UserOut)
def me(store: StoreDep, principal: UserDep) -> UserOut:
    assert principal.user_id is not None
    return store.user_out(principal.user_id)


@router.post("/teams", status_code=201, response_model=TeamOut)
def create_team(body: TeamCreate, store: StoreDep, principal: UserDep) -> TeamOut:
    """A new team, owned by the caller."""
    return store.create_team(principal, body.name)


@router.get("/teams", response_model=list[TeamOut])
def list_teams(store: StoreDep, principal: UserDep) -> list[TeamOut]:
    """The caller's teams, with members and projects."""
    return store.list_teams(principal)


@router.put("/teams/{team_id}/members", response_model=TeamOut)
def set_member(team_id: TeamId, body: MemberSet, store: StoreDep, principal: UserDep) -> TeamOut:
    """Add an existing user to the team, or change their role (owners only)."""
    return store.set_member(principal, team_id, body.user, body.role)


@router.delete("/teams/{team_id}/members/{user}", response_model=TeamOut)
def remove_member(
    team_id: TeamId, user: Annotated[str, Path(max_length=100)], store: StoreDep, principal: UserDep
) -> TeamOut:
    return store.set_member(principal, team_id, user, None)


@router.post("/users", status_code=201, response_model=UserCreated)
def create_user(body: UserCreate, store: StoreDep, principal: UserDep) -> UserCreated:
    """Create a user in a team the caller owns; answers the user's first token (once)."""
    user, token = store.add_user(principal, body.team_id, body.name, body.role)
    return UserCreated(user=user, token=token)


@router.post("/tokens", status_code=201, response_model=TokenCreated)
def mint_token(body: TokenCreate, store: StoreDep, principal: UserDep) -> TokenCreated:
    """A new token for you, or for a member of a team you own. Shown once: only its SHA-256
    is stored."""
    info, token = store.mint_token(principal, body.user, body.name, body.expires_in_days)
    return TokenCreated(token=token, info=info)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(
    store: StoreDep,
    principal: UserDep,
    user: Annotated[
        str | None, Query(max_length=100, description="a member of a team you own; default you")
    ] = None,
) -> list[TokenOut]:
    """Names, dates and ids of tokens (never the secrets): yours, or a member's."""
    return store.list_tokens(principal, user)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=MAX_ID)], store: StoreDep, principal: UserDep
) -> TokenOut:
    """Revoke one of your tokens, or one of a member of a team you own."""
    return store.revoke_token(principal, token_id)

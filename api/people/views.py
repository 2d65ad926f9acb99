"""Users, teams, invitations and tokens. Owners manage their team's members; every user
manages their own tokens and answers their own invitations (rules: api.people.service and
api.people.tokens)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.core.deps import MAX_ID, part
from api.core.http import GuardedRoute
from api.people.deps import UserDep
from api.people.schemas import (
    InvitationOut,
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
from api.people.service import PeopleStore

router = APIRouter(tags=["teams"], route_class=GuardedRoute)
TeamId = Annotated[int, Path(ge=1, le=MAX_ID)]
StoreDep = Annotated[PeopleStore, part("people")]


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


@router.put(
    "/teams/{team_id}/members",
    response_model=TeamOut,
    responses={202: {"model": TeamOut, "description": "invitation made (or renewed)"}},
)
def set_member(
    team_id: TeamId, body: MemberSet, store: StoreDep, principal: UserDep, response: Response
) -> TeamOut:
    """Change a member's role (200), or invite someone who is not a member yet (202): they join
    when they accept (POST /invitations/{team_id}/accept). Owners only. The answer to an
    invitation is the same whether or not the name exists."""
    team, invited = store.set_member(principal, team_id, body.user, body.role)
    if invited:
        response.status_code = 202
    return team


@router.delete("/teams/{team_id}/members/{user}", response_model=TeamOut)
def remove_member(
    team_id: TeamId, user: Annotated[str, Path(max_length=100)], store: StoreDep, principal: UserDep
) -> TeamOut:
    """Remove a member (access ends at once) or withdraw an invitation. Owners only; a team
    keeps at least one owner."""
    return store.remove_member(principal, team_id, user)


@router.get("/invitations", response_model=list[InvitationOut])
def list_invitations(store: StoreDep, principal: UserDep) -> list[InvitationOut]:
    """Your pending invitations."""
    return store.list_invitations(principal)


@router.post("/invitations/{team_id}/accept", response_model=UserOut)
def accept_invitation(team_id: TeamId, store: StoreDep, principal: UserDep) -> UserOut:
    """Join the team with the role you were invited to. Not with a token a team owner handed
    you (mint your own first); accepting revokes such tokens."""
    return store.accept_invitation(principal, team_id)


@router.delete("/invitations/{team_id}", status_code=204, response_class=Response)
def decline_invitation(team_id: TeamId, store: StoreDep, principal: UserDep) -> None:
    store.decline_invitation(principal, team_id)


@router.post("/users", status_code=201, response_model=UserCreated)
def create_user(body: UserCreate, store: StoreDep, principal: UserDep) -> UserCreated:
    """Create a user in a team the caller owns; answers the user's first token (once), to hand
    over. User names are unique on the server, so a taken name answers 409."""
    user, token = store.add_user(principal, body.team_id, body.name, body.role)
    return UserCreated(user=user, token=token)


@router.post("/tokens", status_code=201, response_model=TokenCreated)
def mint_token(body: TokenCreate, store: StoreDep, principal: UserDep) -> TokenCreated:
    """A new token for yourself. Shown once: only its SHA-256 is stored."""
    info, token = store.mint_token(principal, body.name, body.expires_in_days)
    return TokenCreated(token=token, info=info)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(store: StoreDep, principal: UserDep) -> list[TokenOut]:
    """Names, dates and ids of your tokens (never the secrets)."""
    return store.list_tokens(principal)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=MAX_ID)], store: StoreDep, principal: UserDep
) -> TokenOut:
    """Revoke one of your tokens; it stops working at once."""
    return store.revoke_token(principal, token_id)

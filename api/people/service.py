"""Who is who: users, teams, memberships and invitations (tokens: api.people.tokens).

The rules (docs/api.md, "Security"):
- A token acts as exactly one user, in all of that user's teams. Only that user lists, mints or
  revokes it; nobody else can, whatever their role. (The operator's CLI can mint one.)
- An owner creates a user in their team (POST /users) and is answered the new user's first
  token, to hand over. That token is marked ``handed_over``: it cannot mint tokens or accept an
  invitation (its browser sessions carry the mark), so an account an owner made, and whose
  token that owner has seen, never reaches another team; only the operator can vouch for it
  (``admin token``), and accepting an invitation then revokes the handed-over tokens.
- Adding someone who is not yet in the team is an invitation, kept by name whether or not the
  name exists (so nobody can probe for names); it grants nothing until that user accepts it.
  It is for a person, not a name: for the account that had the name when it was made, or, if
  none had, for an account made later whose token is not a handed-over one.
- Every team keeps at least one owner: membership changes take the team's lock first, re-read
  the caller's role under it, and refuse a change that would leave no owner.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from api.core.db import rows_changed, utcnow
from api.core.exceptions import Conflict, Forbidden, NotFound
from api.people.auth import Principal
from api.people.models import ApiToken, Invitation, Membership, Project, Team, User
from api.people.schemas import InvitationOut, Member, TeamOut, TeamRole, UserOut
from api.people.tokens import TokenStore

INVITATION_DAYS = 14
MAX_PENDING_INVITATIONS = 100  # per team: invitations by name must not fill the database


class PeopleStore(TokenStore):
    """Users, teams, memberships and invitations; tokens and authentication from TokenStore."""

    # ---- users ----

    def create_user(
        self,
        name: str,
        team: str | None = None,
        role: str = "owner",
        expires_days: float | None = None,
    ) -> tuple[UserOut, str]:
        """For the operator's CLI: a new user (optionally in ``team``, created if missing) and
        their first token."""
        with Session(self.engine) as session:
            team_id = None
            if team is not None:
                team_id = session.execute(
                    select(col(Team.id)).where(col(Team.name) == team)
                ).scalar()
                if team_id is None:
                    new_team = Team(name=team)
                    session.add(new_team)
                    session.flush()
                    team_id = new_team.id
            user_id, token = self._new_user(session, name, team_id, role, expires_days, False)
            session.commit()
        return self.user_out(user_id), token

    def add_user(
        self, principal: Principal, team_id: int, name: str, role: str
    ) -> tuple[UserOut, str]:
        """A team owner creates a user in their team; returns the user and their first token,
        marked handed over (the owner has seen it)."""
        with Session(self.engine) as session:
            self._lock_team_as_owner(session, principal, team_id)
            user_id, token = self._new_user(session, name, team_id, role, None, True)
            # An invitation the name had to this team is answered: they are in it now.
            session.execute(
                delete(Invitation).where(
                    col(Invitation.team_id) == team_id, col(Invitation.user_name) == name
                )
            )
            session.commit()
        return self.user_out(user_id), token

    def _new_user(
        self,
        session: Session,
        name: str,
        team_id: int | None,
        role: str,
        expires_days: float | None,
        handed_over: bool,
    ) -> tuple[int, str]:
        user = User(name=name)
        try:
            with session.begin_nested():
                session.add(user)
        except IntegrityError:  # the name is taken (unique index), perhaps just now
            raise Conflict(f"user {name!r} already exists") from None
        assert user.id is not None
        if team_id is not None:
            session.add(Membership(team_id=team_id, user_id=user.id, role=role))
        token, _ = self._mint(session, user.id, "first token", expires_days, handed_over)
        return user.id, token

    def user_out(self, user_id: int) -> UserOut:
        with Session(self.engine) as session:
            name = session.execute(
                select(col(User.name)).where(col(User.id) == user_id)
            ).scalar_one()
            teams = session.execute(
                select(col(Team.id), col(Team.name), col(Membership.role))
                .join(Membership, col(Membership.team_id) == col(Team.id))
                .where(col(Membership.user_id) == user_id)
                .order_by(col(Team.name))
            ).all()
        return UserOut(
            id=user_id, name=name, teams=[TeamRole(id=t, name=n, role=r) for t, n, r in teams]
        )

    # ---- teams and memberships ----

    def create_team(self, principal: Principal, name: str) -> TeamOut:
        with Session(self.engine) as session:
            team = Team(name=name)
            try:
                with session.begin_nested():
                    session.add(team)
            except IntegrityError:  # the name is taken (unique index)
                raise Conflict(f"team {name!r} already exists") from None
            assert team.id is not None and principal.user_id is not None
            session.add(Membership(team_id=team.id, user_id=principal.user_id, role="owner"))
            session.commit()
            return self._team_out(session, team.id)

    def list_teams(self, principal: Principal) -> list[TeamOut]:
        with Session(self.engine) as session:
            return [self._team_out(session, t) for t in sorted(principal.roles)]

    def set_member(
        self, principal: Principal, team_id: int, user_name: str, role: str
    ) -> tuple[TeamOut, bool]:
        """Change a member's role, or invite someone who is not a member (owners only). Returns
        the team and whether an invitation was made. The answer to an invitation is the same
        whether or not a user of that name exists."""
        with Session(self.engine) as session:
            self._lock_team_as_owner(session, principal, team_id)
            member = self._membership(session, team_id, user_name)
            invited = member is None
            if member is not None:
                member.role = role
                session.flush()
                self._keep_an_owner(session, team_id)
            else:
                self._invite(session, principal, team_id, user_name, role)
            session.commit()
            return self._team_out(session, team_id), invited

    def remove_member(self, principal: Principal, team_id: int, user_name: str) -> TeamOut:
        """Remove a member (their access ends at once) or withdraw an invitation."""
        with Session(self.engine) as session:
            self._lock_team_as_owner(session, principal, team_id)
            member = self._membership(session, team_id, user_name)
            if member is not None:
                session.delete(member)
                session.flush()
                self._keep_an_owner(session, team_id)
            else:
                gone = session.execute(
                    delete(Invitation).where(
                        col(Invitation.team_id) == team_id, col(Invitation.user_name) == user_name
                    )
                )
                if not rows_changed(gone):
                    raise NotFound(f"{user_name!r} is neither a member of nor invited to this team")
            session.commit()
            return self._team_out(session, team_id)

    def require_owner(
        self, session: Session, principal: Principal, team_id: int, what: str
    ) -> None:
        """Under the team's lock, that the caller owns it (404 for a team that is not theirs,
        403 for a member who is not an owner: "only a team's owners {what}")."""
        self._lock_team_as_owner(session, principal, team_id, what)

    def _lock_team_as_owner(
        self,
        session: Session,
        principal: Principal,
        team_id: int,
        what: str = "manage its members",
    ) -> None:
        """Take the team's lock (a no-op write: the row lock in PostgreSQL, the write lock in
        SQLite), then check, under it, that the caller is still one of its owners: a role read
        at authentication may have changed since."""
        if team_id not in principal.roles:
            raise NotFound(f"team {team_id} not found")
        session.execute(update(Team).where(col(Team.id) == team_id).values(name=Team.name))
        role = session.execute(
            select(col(Membership.role)).where(
                col(Membership.team_id) == team_id, col(Membership.user_id) == principal.user_id
            )
        ).scalar()
        if role is None:
            raise NotFound(f"team {team_id} not found")
        if role != "owner":
            raise Forbidden(f"only a team's owners {what}")

    def _keep_an_owner(self, session: Session, team_id: int) -> None:
        owners = session.execute(
            select(func.count())
            .select_from(Membership)
            .where(col(Membership.team_id) == team_id, col(Membership.role) == "owner")
        ).scalar_one()
        if owners == 0:
            raise Conflict("a team keeps at least one owner: make someone else owner first")

    def _membership(self, session: Session, team_id: int, user_name: str) -> Membership | None:
        return session.execute(
            select(Membership)
            .join(User, col(User.id) == Membership.user_id)
            .where(col(Membership.team_id) == team_id, col(User.name) == user_name)
        ).scalar()

    # ---- invitations ----

    def _invite(
        self, session: Session, principal: Principal, team_id: int, user_name: str, role: str
    ) -> None:
        now = utcnow()
        session.execute(
            delete(Invitation).where(
                col(Invitation.team_id) == team_id, col(Invitation.expires_at) <= now
            )
        )
        existing = session.execute(
            select(Invitation).where(
                col(Invitation.team_id) == team_id, col(Invitation.user_name) == user_name
            )
        ).scalar()
        if existing is None:
            pending = session.execute(
                select(func.count())
                .select_from(Invitation)
                .where(col(Invitation.team_id) == team_id)
            ).scalar_one()
            if pending >= MAX_PENDING_INVITATIONS:
                raise Conflict(
                    f"this team has {pending} pending invitations, the most it may have: "
                    "withdraw some (DELETE /teams/{id}/members/{user})"
                )
            existing = Invitation(team_id=team_id, user_name=user_name, role=role, expires_at=now)
            session.add(existing)
        # The account the name belongs to now (renewing an invitation re-binds it).
        existing.user_id = session.execute(
            select(col(User.id)).where(col(User.name) == user_name)
        ).scalar()
        existing.role = role
        existing.invited_by_id = principal.user_id
        existing.created_at = now
        existing.expires_at = now + timedelta(days=INVITATION_DAYS)

    def list_invitations(self, principal: Principal) -> list[InvitationOut]:
        """The caller's pending invitations."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(Invitation, col(Team.name), col(User.name))
                .join(Team, col(Team.id) == col(Invitation.team_id))
                .outerjoin(User, col(User.id) == col(Invitation.invited_by_id))
                .where(_for(principal), col(Invitation.expires_at) > utcnow())
                .order_by(Team.name)
            ).all()
        return [_invitation_out(inv, team, by) for inv, team, by in rows]

    def accept_invitation(self, principal: Principal, team_id: int) -> UserOut:
        """Join the team with the invited role. Refused to a handed-over token; revokes the
        caller's handed-over tokens (whoever created the account saw them)."""
        if principal.handed_over:
            raise Forbidden(
                "this token was handed to you by a team owner, who has seen it: it cannot "
                "accept invitations (the operator can give you one of your own: admin token)"
            )
        assert principal.user_id is not None
        with Session(self.engine) as session:
            invitation = self._pending(session, principal, team_id)
            session.add(
                Membership(team_id=team_id, user_id=principal.user_id, role=invitation.role)
            )
            session.delete(invitation)
            session.execute(
                update(ApiToken)
                .where(
                    col(ApiToken.user_id) == principal.user_id,
                    col(ApiToken.handed_over).is_(True),
                    col(ApiToken.revoked_at).is_(None),
                )
                .values(revoked_at=utcnow())
            )
            try:
                session.commit()
            except IntegrityError:  # accepted twice at once: the first one counts
                raise NotFound(f"no pending invitation to team {team_id}") from None
        return self.user_out(principal.user_id)

    def decline_invitation(self, principal: Principal, team_id: int) -> None:
        with Session(self.engine) as session:
            session.delete(self._pending(session, principal, team_id))
            session.commit()

    def _pending(self, session: Session, principal: Principal, team_id: int) -> Invitation:
        invitation = session.execute(
            select(Invitation).where(
                col(Invitation.team_id) == team_id,
                _for(principal),
                col(Invitation.expires_at) > utcnow(),
            )
        ).scalar()
        if invitation is None:
            raise NotFound(f"no pending invitation to team {team_id}")
        return invitation

    def _team_out(self, session: Session, team_id: int) -> TeamOut:
        name = session.execute(select(col(Team.name)).where(col(Team.id) == team_id)).scalar_one()
        members = session.execute(
            select(col(User.name), col(Membership.role))
            .join(Membership, col(Membership.user_id) == col(User.id))
            .where(col(Membership.team_id) == team_id)
            .order_by(col(User.name))
        ).all()
        projects = session.execute(
            select(col(Project.name))
            .where(col(Project.team_id) == team_id)
            .order_by(col(Project.name))
        ).scalars()
        invited = session.execute(
            select(col(Invitation.user_name), col(Invitation.role))
            .where(col(Invitation.team_id) == team_id, col(Invitation.expires_at) > utcnow())
            .order_by(col(Invitation.user_name))
        ).all()
        return TeamOut(
            id=team_id,
            name=name,
            projects=list(projects),
            members=[Member(user=u, role=r) for u, r in members],
            invited=[Member(user=u, role=r) for u, r in invited],
        )


def _for(principal: Principal) -> Any:
    """Invitations made for this account: by its name, and either to this very account or
    made before any account had the name."""
    return and_(
        col(Invitation.user_name) == principal.user_name,
        or_(col(Invitation.user_id) == principal.user_id, col(Invitation.user_id).is_(None)),
    )


def _invitation_out(inv: Invitation, team: str, invited_by: str | None) -> InvitationOut:
    return InvitationOut(
        team_id=inv.team_id,
        team=team,
        role=inv.role,
        invited_by=invited_by,
        created_at=inv.created_at,
        expires_at=inv.expires_at,
    )

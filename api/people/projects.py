"""Projects: where a team files its runs and studies. A project belongs to one team; its name
is unique in that team. The runs' and studies' stores ask here which project a new submission
goes to (and may create it), in their own transaction.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from api.core.exceptions import Forbidden, Invalid, NotFound
from api.core.store import StoreBase
from api.people.auth import WRITE_ROLES, Principal
from api.people.models import Project, Team


class ProjectStore(StoreBase):
    def __init__(self, engine: Engine, default_project: str = "default") -> None:
        super().__init__(engine)
        self.default_project = default_project  # where a submission goes when it names none

    def project_to_file_in(
        self, session: Session, name: str | None, principal: Principal, team: str | None
    ) -> int:
        """The project to file a new run or study in: by name (the default project's when
        none) among the projects of the caller's teams (of ``team`` when given), or a new one
        in the caller's team. Names are unique per team, so ``team`` is needed only when
        several of the caller's teams could be meant. The caller must be able to write there."""
        name = name or self.default_project
        team_id: int | None = None
        if team is not None:
            team_id = session.execute(select(col(Team.id)).where(col(Team.name) == team)).scalar()
            if team_id is None or team_id not in principal.roles:
                raise NotFound(f"team {team!r} not found")
        teams = [team_id] if team_id is not None else principal.teams()
        found = session.execute(
            select(col(Project.id), col(Project.team_id)).where(
                col(Project.name) == name, col(Project.team_id).in_(teams)
            )
        ).all()
        if len(found) > 1:
            raise Invalid("team", f"several of your teams have a project {name!r}: name the team")
        team_id = int(found[0][1]) if found else team_id or _only_writable_team(principal, name)
        role = principal.roles[team_id]
        if role not in WRITE_ROLES:
            raise Forbidden(f"you are a {role} of project {name!r}'s team: read only")
        if found:
            return int(found[0][0])
        return _create(session, name, team_id)

    def check_writable(self, session: Session, project_id: int, principal: Principal) -> None:
        """NotFound unless the project is one of the caller's teams'; Forbidden unless the
        caller may write there."""
        team_id = session.execute(
            select(col(Project.team_id)).where(col(Project.id) == project_id)
        ).scalar()
        role = principal.roles.get(team_id) if team_id is not None else None
        if role is None:
            raise NotFound(f"project {project_id} not found")
        if role not in WRITE_ROLES:
            raise Forbidden(f"you are a {role} of this project's team: read only")

    def visible(
        self, principal: Principal, name: str | None = None, project_id: int | None = None
    ) -> list[tuple[int, str, int]]:
        """The projects of the caller's teams, (id, name, team id) by id; of that ``name`` or
        that ``project_id`` only when given."""
        query = select(col(Project.id), col(Project.name), col(Project.team_id)).where(
            col(Project.team_id).in_(principal.teams())
        )
        if name is not None:
            query = query.where(col(Project.name) == name)
        if project_id is not None:
            query = query.where(col(Project.id) == project_id)
        with Session(self.engine) as session:
            rows = session.execute(query.order_by(col(Project.id))).all()
        return [(int(i), str(n), int(t)) for i, n, t in rows]

    def create_project(self, principal: Principal, name: str, team: str | None) -> int:
        """A new project ``name`` in ``team`` (the caller's only writable team when None), or
        the one of that name there already; the caller must be able to write there."""
        with Session(self.engine) as session:
            project_id = self.project_to_file_in(session, name, principal, team)
            session.commit()
        return project_id


def _only_writable_team(principal: Principal, name: str) -> int:
    writable = principal.teams(write=True)
    if not writable:
        raise Forbidden("you are not an owner or member of any team")
    if len(writable) > 1:
        raise Invalid("team", f"name the team for the new project {name!r}")
    return writable[0]


def _create(session: Session, name: str, team_id: int) -> int:
    try:
        with session.begin_nested():
            new = Project(name=name, team_id=team_id)
            session.add(new)
        assert new.id is not None
        return new.id
    except IntegrityError:  # created concurrently by another request: use that one
        return int(
            session.execute(
                select(col(Project.id)).where(
                    col(Project.name) == name, col(Project.team_id) == team_id
                )
            ).scalar_one()
        )

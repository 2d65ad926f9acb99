"""Studies: many runs, one question. A study is stored with its members in one transaction;
every member is an ordinary run (it names its study, configuration, replicate and overrides),
handed to the queue like any other, so every worker shares the study. Cancel reaches every
member still queued or running; retry, every member that failed or was cancelled. One
member's failure is its own: the others go on.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlmodel import Session, col

from api.core.exceptions import Conflict, Forbidden, NotFound
from api.core.store import StoreBase
from api.metrics.reads import MetricReads
from api.people.auth import WRITE_ROLES, Principal
from api.people.models import Project, User
from api.people.projects import ProjectStore
from api.runs.budget import check_team_budget
from api.runs.lifecycle import RunLifecycle
from api.runs.models import FINISHED, Run
from api.runs.service import RunStore
from api.studies.design import Expansion, StudyCreate, config_names, member_name, varied_paths
from api.studies.listing import list_studies
from api.studies.models import Study
from api.studies.schemas import StudyConfig, StudyOut, StudyPage
from trainer.spec import JobSpec


@dataclass(frozen=True)
class StudyGrant:
    revision: str  # the study's, its members' count and the sum of their revisions
    team_id: int
    identity: str  # id, team and creation: what cached answers and streams are keyed by


class StudyStore(StoreBase):
    """Studies in, cancelled and retried; built with the stores a study's members go through:
    projects (where it is filed), runs (its members), their lifecycle (retries) and metrics
    (what api.studies.reads summarises)."""

    def __init__(
        self,
        projects: ProjectStore,
        runs: RunStore,
        lifecycle: RunLifecycle,
        metrics: MetricReads,
    ) -> None:
        super().__init__(runs.engine)
        self.projects = projects
        self.runs = runs
        self.lifecycle = lifecycle
        self.metrics = metrics

    def create_study(
        self,
        body: StudyCreate,
        expansion: Expansion,
        principal: Principal,
        team_budget_mb: int | None = None,
        project_id: int | None = None,
    ) -> tuple[StudyOut, list[tuple[int, JobSpec, str]]]:
        """Store the study and every member, queued, in ``project_id`` (already granted) or
        the project the body names; returns the study and, per member, what the queue needs
        (run id, spec, worker token). A 422 if the team's runs would then store more than
        ``team_budget_mb``."""
        with Session(self.engine) as session:
            if project_id is None:
                project_id = self.projects.project_to_file_in(
                    session, body.project, principal, body.team
                )
            study = Study(
                project_id=project_id,
                created_by_id=principal.user_id,
                name=body.name or "",
                notes=body.notes,
                spec_json=json.dumps(body.spec),
                design_json=body.design.model_dump_json(),
                configs_json=json.dumps(expansion.configs),
            )
            session.add(study)
            session.flush()
            assert study.id is not None
            study.name = study.name or f"study-{study.id}"
            handed = []
            labels = config_names(body.design.model_dump(), expansion.configs)
            for m in expansion.members:
                run, token = self.runs.add_queued_run(
                    session,
                    project_id,
                    m.spec,
                    member_name(study.name, body.design, labels[m.config], m),
                    body.tags,
                    "",
                    principal,
                    study_id=study.id,
                    study_config=m.config,
                    study_replicate=m.replicate,
                    overrides_json=json.dumps(m.overrides),
                )
                assert run.id is not None
                handed.append((run.id, m.spec, token))
            check_team_budget(self.runs.team_storage(session, project_id), team_budget_mb, "design")
            session.commit()
            return self._study_out(session, study), handed

    def run_to_fix(self, run_id: int) -> tuple[str, str, int]:
        """A run's spec, name and project, for a fix study around it (its caller granted)."""
        with Session(self.engine) as session:
            row = session.execute(
                select(col(Run.spec_json), col(Run.name), col(Run.project_id)).where(
                    col(Run.id) == run_id
                )
            ).one()
            return str(row[0]), str(row[1]), int(row[2])

    def list_studies(
        self,
        principal: Principal,
        project: str | None,
        name: str | None,
        before: int | None,
        limit: int,
    ) -> StudyPage:
        """The studies of every team the caller is in, newest first (api.studies.listing)."""
        return list_studies(self.engine, principal.teams(), project, name, before, limit)

    def get_study(self, study_id: int) -> StudyOut:
        with Session(self.engine) as session:
            return self._study_out(session, self._study(session, study_id))

    def authorize_study(self, principal: Principal, study_id: int, need: str) -> str:
        """Check that ``principal`` may ``need`` ("read" or "write") the study; returns its
        revision (the study's own, its members' count and the sum of their revisions: any
        change to any member changes it). Outside your teams a study is NotFound."""
        return self.grant_study(principal, study_id, need).revision

    def grant_study(self, principal: Principal, study_id: int, need: str) -> StudyGrant:
        """``authorize_study``, answering also the study's team and identity (as a run's)."""
        with self.engine.connect() as conn:
            row = conn.execute(_STUDY_ACCESS, {"study_id": study_id}).first()
            if row is None or principal.is_worker or row[1] not in principal.roles:
                raise NotFound(f"study {study_id} not found")
            role = principal.roles[row[1]]
            if need != "read" and role not in WRITE_ROLES:
                raise Forbidden(f"you are a {role} of this study's team: read only")
            count, total = conn.execute(_MEMBER_REVISIONS, {"study_id": study_id}).one()
        identity = f"study {study_id} of team {row[1]} made {row[2]}"
        return StudyGrant(f"{row[0]}.{count}.{total or 0}", row[1], identity)

    def cancel_study(self, study_id: int) -> StudyOut:
        """Cancel every member still queued or running (their workers stop at their next
        heartbeat)."""
        for run_id in self._member_ids(study_id, ("queued", "running")):
            with contextlib.suppress(Conflict):  # it finished meanwhile: nothing to cancel
                self.runs.cancel_run(run_id)
        self._bump_study(study_id)
        return self.get_study(study_id)

    def retry_study(self, study_id: int, who: str) -> list[int]:
        """Put every failed or cancelled member back in the queue; returns their ids (the
        caller hands them over)."""
        retried = []
        for run_id in self._member_ids(study_id, ("failed", "cancelled")):
            try:
                self.lifecycle.retry_run(run_id, who)
            except Conflict:
                continue
            retried.append(run_id)
        self._bump_study(study_id)
        return retried

    # ---- helpers ----

    def _study(self, session: Session, study_id: int) -> Study:
        study = session.get(Study, study_id)
        if study is None:
            raise NotFound(f"study {study_id} not found")
        return study

    def _member_ids(self, study_id: int, statuses: tuple[str, ...]) -> list[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(col(Run.id))
                .where(col(Run.study_id) == study_id, col(Run.status).in_(statuses))
                .order_by(col(Run.id))
            )
            return [r for r in rows.scalars() if r is not None]  # ids: never None

    def _bump_study(self, study_id: int) -> None:
        with Session(self.engine) as session:
            study = self._study(session, study_id)
            study.revision += 1
            session.commit()

    def _study_out(self, session: Session, study: Study) -> StudyOut:
        assert study.id is not None
        configs: list[dict[str, Any]] = json.loads(study.configs_json)
        design = json.loads(study.design_json)
        status: Counter[str] = Counter(
            dict(
                session.execute(
                    select(col(Run.status), func.count())
                    .where(col(Run.study_id) == study.id)
                    .group_by(col(Run.status))
                ).all()
            )
        )
        members = sum(status.values())
        project, team_id = session.execute(
            select(col(Project.name), col(Project.team_id)).where(
                col(Project.id) == study.project_id
            )
        ).one()
        creator = session.execute(
            select(col(User.name)).where(col(User.id) == study.created_by_id)
        ).scalar()
        count, total = session.execute(_MEMBER_REVISIONS, {"study_id": study.id}).one()
        return StudyOut(
            id=study.id,
            project=project,
            team_id=team_id,
            name=study.name,
            created_by=creator,
            created_at=study.created_at,
            notes=study.notes,
            spec=json.loads(study.spec_json),
            design=design,
            configs=[
                StudyConfig(index=i, name=name, overrides=c)
                for i, (c, name) in enumerate(
                    zip(configs, config_names(design, configs), strict=True)
                )
            ],
            varied=varied_paths(configs),
            baseline=design.get("baseline", 0),
            members=members,
            status=dict(status),
            done=members > 0 and sum(status[s] for s in FINISHED) == members,
            revision=f"{study.revision}.{count}.{total or 0}",
        )


# Built once: they run on every study request (ETag checks included).
_STUDY_ACCESS = (
    select(col(Study.revision), col(Project.team_id), col(Study.created_at))
    .join(Project, col(Project.id) == col(Study.project_id))
    .where(col(Study.id) == bindparam("study_id"))
)
_MEMBER_REVISIONS = select(func.count(), func.sum(Run.revision)).where(
    col(Run.study_id) == bindparam("study_id")
)

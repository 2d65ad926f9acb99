"""The team's studies, newest first: what each asks (its name and what varies), how far its
members are, and its best configuration so far by mean minimum validation loss."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from api.diagnosis.models import RunDiagnosis
from api.people.models import Project, User
from api.runs.models import FINISHED, Run
from api.studies.design import config_names, varied_paths
from api.studies.models import Study
from api.studies.schemas import BestConfig, StudyPage, StudySummary


def list_studies(
    engine: Engine,
    teams: Sequence[int],
    project: str | None,
    name: str | None,
    before: int | None,
    limit: int,
) -> StudyPage:
    """At most ``limit`` studies of ``teams``' projects with ids below ``before``; the page's
    ``next_before`` is the id to ask from next (keyset: new studies never shift a page)."""
    query = (
        select(Study, col(Project.name), col(User.name))
        .join(Project, col(Project.id) == col(Study.project_id))
        .outerjoin(User, col(User.id) == col(Study.created_by_id))
        .where(col(Project.team_id).in_(teams))
    )
    if project:
        query = query.where(col(Project.name) == project)
    if name:
        query = query.where(func.lower(Study.name).contains(name.lower()))
    if before is not None:
        query = query.where(col(Study.id) < before)
    query = query.order_by(col(Study.id).desc()).limit(limit + 1)
    with Session(engine) as session:
        rows = session.execute(query).all()
        page = rows[:limit]
        ids = [study.id for study, _, _ in page]
        status = _statuses(session, ids)
        losses = _mean_losses(session, ids)
    items = [
        _summary(study, project_name, creator, status[study.id], losses[study.id])
        for study, project_name, creator in page
    ]
    more = len(rows) > limit and items
    return StudyPage(items=items, next_before=items[-1].id if more else None)


def _statuses(session: Session, ids: list[Any]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = defaultdict(dict)
    query = (
        select(col(Run.study_id), col(Run.status), func.count())
        .where(col(Run.study_id).in_(ids))
        .group_by(col(Run.study_id), col(Run.status))
    )
    for study_id, status, n in session.execute(query).all():
        out[study_id][status] = int(n)
    return out


def _mean_losses(session: Session, ids: list[Any]) -> dict[int, dict[int, float]]:
    """Per study and configuration, the mean of its members' minimum validation losses."""
    out: dict[int, dict[int, float]] = defaultdict(dict)
    query = (
        select(col(Run.study_id), col(Run.study_config), func.avg(RunDiagnosis.min_val_loss))
        .join(RunDiagnosis, col(RunDiagnosis.run_id) == col(Run.id))
        .where(col(Run.study_id).in_(ids), col(RunDiagnosis.min_val_loss).is_not(None))
        .group_by(col(Run.study_id), col(Run.study_config))
    )
    for study_id, config, loss in session.execute(query).all():
        out[study_id][int(config)] = float(loss)
    return out


def _summary(
    study: Study,
    project: str,
    creator: str | None,
    status: dict[str, int],
    losses: dict[int, float],
) -> StudySummary:
    assert study.id is not None
    configs: list[dict[str, Any]] = json.loads(study.configs_json)
    design = json.loads(study.design_json)
    members = sum(status.values())
    best = None
    if losses:
        config = min(losses, key=lambda c: losses[c])
        best = BestConfig(
            config=config, name=config_names(design, configs)[config], min_val_loss=losses[config]
        )
    return StudySummary(
        id=study.id,
        project=project,
        name=study.name,
        created_by=creator,
        created_at=study.created_at,
        configs=len(configs),
        varied=varied_paths(configs),
        members=members,
        status=status,
        done=members > 0 and sum(status.get(s, 0) for s in FINISHED) == members,
        best=best,
    )

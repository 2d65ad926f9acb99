"""Checkpoints in (a worker's state_dict, streamed to a temporary file, checked against its
declared size and SHA-256, then kept in the artifact store; only then listed) and out (the
list, one streamed back). Budgets per run and per team are checked before a byte is read."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select
from sqlmodel import Session, col

from api.checkpoints.models import RunCheckpoint
from api.checkpoints.schemas import CheckpointIn, CheckpointList, CheckpointOut
from api.core.artifacts import ArtifactStore
from api.core.exceptions import Invalid, NotFound, TooLarge
from api.core.store import StoreBase
from api.people.models import Project
from api.runs.access import RunAccess
from api.runs.models import Run

MiB = 1 << 20


@dataclass(frozen=True)
class Budgets:
    run_bytes: int
    team_bytes: int


class CheckpointStore(StoreBase):
    def __init__(self, access: RunAccess, artifacts: ArtifactStore, budgets: Budgets) -> None:
        super().__init__(access.engine)
        self.access = access
        self.artifacts = artifacts
        self.budgets = budgets

    async def upload(
        self, run_id: int, meta: CheckpointIn, body: AsyncIterator[bytes], attempt: int | None
    ) -> CheckpointOut:
        await run_in_threadpool(self._check_room, run_id, meta, attempt)
        fd, name = tempfile.mkstemp(prefix="fitlens-checkpoint-")
        staged = Path(name)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as f:
                async for chunk in body:
                    size += len(chunk)
                    if size > meta.size:
                        raise Invalid("size", f"the body is longer than the {meta.size} declared")
                    digest.update(chunk)
                    f.write(chunk)
            if size != meta.size:
                raise Invalid("size", f"{size} bytes came; {meta.size} were declared")
            if digest.hexdigest() != meta.sha256:
                raise Invalid("sha256", f"the body's SHA-256 is {digest.hexdigest()}")
            return await run_in_threadpool(self._keep, run_id, meta, staged, attempt)
        finally:
            staged.unlink(missing_ok=True)

    def _check_room(self, run_id: int, meta: CheckpointIn, attempt: int | None) -> None:
        with Session(self.engine) as session:
            run = self.access.writable_run(session, run_id, attempt=attempt)
            mine = select(func.coalesce(func.sum(RunCheckpoint.size), 0)).where(
                col(RunCheckpoint.run_id) == run_id, col(RunCheckpoint.name) != meta.name
            )
            team_id = select(col(Project.team_id)).where(col(Project.id) == run.project_id)
            replaced = (col(RunCheckpoint.run_id) == run_id) & (
                col(RunCheckpoint.name) == meta.name
            )
            team = (
                select(func.coalesce(func.sum(RunCheckpoint.size), 0))
                .join(Run, col(Run.id) == RunCheckpoint.run_id)
                .join(Project, col(Project.id) == Run.project_id)
                .where(col(Project.team_id) == team_id.scalar_subquery())
                .where(~replaced)
            )
            for used, limit, what, setting in (
                (session.execute(mine).scalar_one(), self.budgets.run_bytes, "run", "RUN"),
                (session.execute(team).scalar_one(), self.budgets.team_bytes, "team", "TEAM"),
            ):
                if int(used) + meta.size > limit:
                    raise TooLarge(
                        "size",
                        f"the {what}'s checkpoints would hold {int(used) + meta.size:,} bytes; "
                        f"at most {limit:,} (FITLENS_MAX_{setting}_CHECKPOINT_MB)",
                    )

    def _keep(
        self, run_id: int, meta: CheckpointIn, staged: Path, attempt: int | None
    ) -> CheckpointOut:
        key = f"runs/{run_id}/checkpoints/{meta.name}"  # from ids and a fixed name only
        # Whole before the row that lists it, and outside the run's lock (a bucket is slow).
        self.artifacts.put(key, staged)
        with Session(self.engine) as session:
            self.access.writable_run(session, run_id, lock=True, attempt=attempt)
            row = session.execute(
                select(RunCheckpoint).where(
                    col(RunCheckpoint.run_id) == run_id, col(RunCheckpoint.name) == meta.name
                )
            ).scalar()
            if row is None:
                row = RunCheckpoint(
                    run_id=run_id,
                    name=meta.name,
                    key=key,
                    epoch=meta.epoch,
                    why=meta.why,
                    size=meta.size,
                    sha256=meta.sha256,
                )
            row.epoch, row.why, row.size, row.sha256 = meta.epoch, meta.why, meta.size, meta.sha256
            session.add(row)
            self.access.bump_revision(session, run_id)
            session.commit()
            return _out(row)

    def list_checkpoints(self, run_id: int) -> CheckpointList:
        with Session(self.engine) as session:
            rows = session.execute(
                select(RunCheckpoint)
                .where(col(RunCheckpoint.run_id) == run_id)
                .order_by(col(RunCheckpoint.name))
            ).scalars()
            return CheckpointList(run_id=run_id, checkpoints=[_out(r) for r in rows])

    def open_checkpoint(self, run_id: int, name: str) -> tuple[CheckpointOut, Iterator[bytes]]:
        with Session(self.engine) as session:
            row = session.execute(
                select(RunCheckpoint).where(
                    col(RunCheckpoint.run_id) == run_id, col(RunCheckpoint.name) == name
                )
            ).scalar()
            if row is None:
                raise NotFound(f"run {run_id} has no checkpoint {name!r}")
            return _out(row), self.artifacts.read(row.key)

    def forget_run(self, run_id: int) -> None:
        """A deleted run's files (a listener of RunStore.on_run_deleted)."""
        self.artifacts.delete_prefix(f"runs/{run_id}/")


def _out(row: RunCheckpoint) -> CheckpointOut:
    return CheckpointOut(
        name=row.name,
        epoch=row.epoch,
        why=row.why,
        size=row.size,
        sha256=row.sha256,
        created_at=row.created_at,
    )

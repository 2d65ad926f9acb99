"""Who may do what to the path's run, said in a route's signature (as Dispatch's
``PermissionsDependency``): a route that takes ``RunRead`` only runs for a caller who may read
``{run_id}``, and gets the grant (the run's revision, team and identity) for its ETag.

A run the caller cannot see is NotFound, never Forbidden (RunAccess.grant_run). A worker token
reads and reports on its own run only: ``RunRead``, ``RunWrite`` and ``RunOwner`` refuse it
(403), ``RunReadByWorker`` and ``RunReport`` let it in.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from api.core.deps import RunId, part
from api.people.deps import PrincipalDep, UserDep
from api.runs.access import RunAccess, RunGrant
from api.runs.lifecycle import RunLifecycle
from api.runs.queue import Enqueuer


async def get_enqueuer(request: Request) -> Enqueuer:
    return request.app.state.enqueuer


AccessDep = Annotated[RunAccess, part("access")]
LifecycleDep = Annotated[RunLifecycle, part("lifecycle")]
EnqueuerDep = Annotated[Enqueuer, Depends(get_enqueuer)]


def _grant(need: str, users_only: bool) -> Any:
    if users_only:

        async def grant(run_id: RunId, access: AccessDep, principal: UserDep) -> RunGrant:
            return access.grant_run(principal, run_id, need)

    else:

        async def grant(run_id: RunId, access: AccessDep, principal: PrincipalDep) -> RunGrant:
            return access.grant_run(principal, run_id, need)

    return Depends(grant)


RunRead = Annotated[RunGrant, _grant("read", users_only=True)]
RunReadByWorker = Annotated[RunGrant, _grant("read", users_only=False)]
RunWrite = Annotated[RunGrant, _grant("write", users_only=True)]
RunOwner = Annotated[RunGrant, _grant("owner", users_only=True)]
RunReport = Annotated[RunGrant, _grant("worker", users_only=False)]  # its worker, or a writer

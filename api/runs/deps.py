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

from api.core.deps import MAX_ID, part
from api.core.exceptions import Invalid
from api.people.auth import Principal
from api.people.deps import PrincipalDep, UserDep
from api.runs.access import RunAccess, RunGrant
from api.runs.guard import GRANT_KEY
from api.runs.lifecycle import RunLifecycle
from api.runs.queue import Enqueuer


async def get_enqueuer(request: Request) -> Enqueuer:
    return request.app.state.enqueuer


AccessDep = Annotated[RunAccess, part("access")]
LifecycleDep = Annotated[RunLifecycle, part("lifecycle")]
EnqueuerDep = Annotated[Enqueuer, Depends(get_enqueuer)]


def _grant(need: str, users_only: bool) -> Any:
    # The access store is read off the app, not taken as a dependency of its own: every poll
    # of every read route resolves this one, and each dependency costs its own call.
    if users_only:

        async def grant(request: Request, principal: UserDep) -> RunGrant:
            return _granted(request, principal, need)

    else:

        async def grant(request: Request, principal: PrincipalDep) -> RunGrant:
            return _granted(request, principal, need)

    return Depends(grant)


def _granted(request: Request, principal: Principal, need: str) -> RunGrant:
    """The guard's grant when it checked the same before the body was read, else a fresh one.
    The path's run id is read here, not declared (the route declares it, for its docs and its
    422): a second declaration would validate it twice on every poll."""
    run_id = _path_run_id(request)
    held = request.scope.get("state", {}).get(GRANT_KEY)
    if held is not None and held[0] == run_id and held[1] == need:
        grant: RunGrant = held[2]
        return grant
    access: RunAccess = request.app.state.store.access
    return access.grant_run(principal, run_id, need)


RunRead = Annotated[RunGrant, _grant("read", users_only=True)]
RunReadByWorker = Annotated[RunGrant, _grant("read", users_only=False)]
RunWrite = Annotated[RunGrant, _grant("write", users_only=True)]
RunOwner = Annotated[RunGrant, _grant("owner", users_only=True)]
RunReport = Annotated[RunGrant, _grant("worker", users_only=False)]  # its worker, or a writer


def _path_run_id(request: Request) -> int:
    raw = str(request.path_params.get("run_id", ""))
    if not (raw.isascii() and raw.isdigit()):
        raise Invalid("run_id", "a run id, an integer")
    run_id = int(raw)
    if not 1 <= run_id <= MAX_ID:
        raise Invalid("run_id", f"run ids are between 1 and {MAX_ID}")
    return run_id

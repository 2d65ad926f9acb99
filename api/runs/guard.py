"""A run's role checked before a body is read (api.core.http.before_body): a viewer's or an
outsider's post to a run is refused before a byte of it is parsed."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from api.core.deps import MAX_ID
from api.core.exceptions import Forbidden
from api.core.http import PRINCIPAL_KEY, BeforeBody

GRANT_KEY = "fitlens.run_grant"  # (run id, need, RunGrant): what the guard found


def run_role(need: str) -> BeforeBody:
    """Check that the caller may ``need`` the path's run (RunAccess.authorize_run's rules).
    Requests the door did not authenticate (no body, or the database was away) are left to
    the route's own dependencies (api.runs.deps), which reuse what this found otherwise."""

    async def check(request: Request) -> None:
        principal = request.scope.get("state", {}).get(PRINCIPAL_KEY)
        raw = request.path_params.get("run_id")
        if principal is None or raw is None:
            return
        if need != "worker" and principal.is_worker:  # as the route's UserDep answers
            raise Forbidden("a worker token can only read and report on its run")
        try:
            run_id = int(raw)
        except ValueError:
            return  # the route's own validation names the field
        if 1 <= run_id <= MAX_ID:
            access = request.app.state.store.access
            grant = await run_in_threadpool(access.grant_run, principal, run_id, need)
            # Kept for the route's own check (api.runs.deps), which then costs no second query.
            request.scope["state"][GRANT_KEY] = (run_id, need, grant)

    return check

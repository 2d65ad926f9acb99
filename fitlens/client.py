"""The client: the API's runs, studies and your own loop's runs, over one session (fitlens.http),
every call typed, every error an exception."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fitlens.config import ClientSettings, resolve
from fitlens.environment import client_environment
from fitlens.http import Http, number
from fitlens.logger import LoggedRun
from fitlens.runs import Run, Study, list_runs

if TYPE_CHECKING:
    import pandas as pd


class Client(Http):
    """``Client(url, token)``; without them, ``FITLENS_URL``/``FITLENS_TOKEN`` or the file
    ``fitlens login`` wrote. ``team`` (else ``FITLENS_TEAM``): where new runs and studies go
    when you are in several teams."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 30,
        team: str | None = None,
    ):
        url, token = resolve(url, token)
        super().__init__(url, token, timeout)
        self.team = team or ClientSettings().team

    # ---- runs ----

    def me(self) -> dict[str, Any]:
        return dict(self.call("GET", "/me"))

    def submit(
        self,
        spec: dict[str, Any] | None = None,
        project: str = "",
        tags: Sequence[str] = (),
        name: str | None = None,
        team: str | None = None,
        notes: str = "",
    ) -> Run:
        """A job spec to train on the workers (validated by the API: a 422 names the field)."""
        body = {"spec": spec or {}, "project": project, "tags": list(tags), "notes": notes}
        team = team or self.team
        body |= {k: v for k, v in (("name", name), ("team", team)) if v is not None}
        return Run(self, self.call("POST", "/jobs", json=body))

    def run(self, run_id: int) -> Run:
        return Run(self, self.call("GET", f"/runs/{int(run_id)}"))

    def list_runs(self, limit: int = 100, **filters: Any) -> list[Run]:
        """Runs as objects: the API's filters (``where``, ``status``, ``tag``, ``project``,
        ``created_by``, ``verdict``, ``study``...) and ``sort``; follows the cursor up to
        ``limit``."""
        return list_runs(self, limit, **filters)

    def runs(self, limit: int = 100, **filters: Any) -> pd.DataFrame:
        """One row per run: status, progress, and its diagnosis's summary values."""
        import pandas as pd

        rows = [r.summary() for r in self.list_runs(limit, **filters)]
        return pd.DataFrame(rows).set_index("id") if rows else pd.DataFrame()

    def compare(
        self, runs: Sequence[int | Run], keys: Sequence[str] = ("val_loss", "train_loss")
    ) -> pd.DataFrame:
        """One row per run: best epoch, min val loss, final gap, accuracies, onset, verdict."""
        import pandas as pd

        ids = ",".join(str(getattr(r, "id", r)) for r in runs)
        data = self.get("/compare", runs=ids, keys=",".join(keys))
        rows = [
            {"id": r["run"]["id"], "name": r["run"]["name"]}
            | {
                k: (v if isinstance(v, str | None) and k == "verdict" else number(v))
                for k, v in r["summary"].items()
            }
            for r in data["runs"]
        ]
        return pd.DataFrame(rows).set_index("id")

    # ---- studies ----

    def submit_study(self, body: dict[str, Any]) -> Study:
        if self.team and not body.get("team"):
            body = {**body, "team": self.team}
        return Study(self, self.call("POST", "/studies", json=body))

    def study(self, study_id: int) -> Study:
        return Study(self, self.call("GET", f"/studies/{int(study_id)}"))

    # ---- your own loop ----

    def start_run(
        self,
        project: str = "",
        name: str | None = None,
        params: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        epochs: int | None = None,
        team: str | None = None,
        **options: Any,
    ) -> LoggedRun:
        """A run you train yourself: ``with client.start_run(...) as run: run.log(...)``."""
        body: dict[str, Any] = {"project": project, "params": params or {}, "tags": list(tags)}
        body["environment"] = client_environment()
        team = team or self.team
        body |= {k: v for k, v in (("name", name), ("team", team), ("epochs", epochs)) if v}
        return LoggedRun(self, self.call("POST", "/runs", json=body), **options)

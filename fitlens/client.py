"""The client: one HTTP session to the API, every call typed, every error an exception."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from fitlens.config import ClientSettings, resolve
from fitlens.errors import FitlensError, NotFound
from fitlens.sse import frames

if TYPE_CHECKING:
    import pandas as pd

    from fitlens.logger import LoggedRun
    from fitlens.runs import Run, Study


def number(value: Any) -> float:
    """The API's numbers as floats: "NaN", "Infinity", "-Infinity" (and null) included."""
    if isinstance(value, int | float):
        return float(value)
    if value == "Infinity":
        return math.inf
    if value == "-Infinity":
        return -math.inf
    return math.nan


class Client:
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
        self.url, token = resolve(url, token)
        self.team = team or ClientSettings().team
        self.api = f"{self.url}/api/v1"
        self.http = httpx.Client(
            base_url=self.api, timeout=timeout, headers={"Authorization": f"Bearer {token}"}
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- HTTP ----

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON of a successful answer (None for 204); FitlensError with the API's message."""
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise error_of(response)
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def events(self, path: str, last_id: str | None = None) -> Iterator[tuple[str, Any, str]]:
        """A Server-Sent Events stream: (event, data, id) as they come; ends after ``end``."""
        headers = {"Last-Event-ID": last_id} if last_id else {}
        with self.http.stream("GET", path, headers=headers, timeout=None) as response:
            if response.status_code == 204:
                return
            if response.status_code >= 400:
                response.read()
                raise error_of(response)
            for frame in frames(response.iter_lines()):
                if frame.comment is not None:
                    continue
                yield frame.event, frame.data, frame.id or ""
                if frame.event == "end":
                    return

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
        from fitlens.runs import Run

        body = {"spec": spec or {}, "project": project, "tags": list(tags), "notes": notes}
        team = team or self.team
        body |= {k: v for k, v in (("name", name), ("team", team)) if v is not None}
        return Run(self, self.call("POST", "/jobs", json=body))

    def run(self, run_id: int) -> Run:
        from fitlens.runs import Run

        return Run(self, self.call("GET", f"/runs/{int(run_id)}"))

    def list_runs(self, limit: int = 100, **filters: Any) -> list[Run]:
        """Runs as objects: the API's filters (``where``, ``status``, ``tag``, ``project``,
        ``created_by``, ``verdict``, ``study``...) and ``sort``; follows the cursor up to
        ``limit``."""
        from fitlens.runs import Run

        out: list[Run] = []
        cursor = None
        while len(out) < limit:
            page = self.get("/runs", limit=min(500, limit - len(out)), cursor=cursor, **filters)
            out += [Run(self, r) for r in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return out

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
        from fitlens.runs import Study

        if self.team and not body.get("team"):
            body = {**body, "team": self.team}
        return Study(self, self.call("POST", "/studies", json=body))

    def study(self, study_id: int) -> Study:
        from fitlens.runs import Study

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
        from fitlens.logger import LoggedRun

        body: dict[str, Any] = {"project": project, "params": params or {}, "tags": list(tags)}
        team = team or self.team
        body |= {k: v for k, v in (("name", name), ("team", team), ("epochs", epochs)) if v}
        return LoggedRun(self, self.call("POST", "/runs", json=body), **options)


def error_of(response: httpx.Response) -> FitlensError:
    try:
        body = response.json()
        message, errors = str(body.get("detail", response.reason_phrase)), body.get("errors")
    except ValueError:
        message, errors = response.text[:500] or response.reason_phrase, None
    kind = NotFound if response.status_code == 404 else FitlensError
    return kind(response.status_code, message, errors)

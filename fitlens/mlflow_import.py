"""Past runs on an MLflow tracking server, read through its REST API (no ``mlflow`` package
needed): an experiment's runs with their params, tags and every metric's history.

An MLflow run becomes a client run of fitlens: its params as they are, its name and note
(``mlflow.runName``, ``mlflow.note.content``), its other tags that fit a fitlens tag as
``key=value`` (MLflow's own ``mlflow.*`` tags left out), every metric point by step (keys
with characters a fitlens key has not, such as spaces, get ``_``), and its end: FINISHED is
succeeded, FAILED failed, KILLED cancelled; a run still RUNNING is imported as failed, saying
so (its own client still logs to MLflow, not here).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import httpx

from fitlens.imported import Ending, ImportedRun

_NOT_KEY = re.compile(r"[^A-Za-z0-9_./:-]")
HISTORY_PAGE = 25_000
ENDINGS: dict[str, Ending] = {"FINISHED": "succeeded", "FAILED": "failed", "KILLED": "cancelled"}
MAX_PARAM_VALUE = 1000  # a fitlens param's (MLflow allows 6,000)


def mlflow_http(tracking_uri: str, timeout: float = 60) -> httpx.Client:
    """A session to the server, with MLflow's own credentials from the environment
    (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and _PASSWORD), as its client uses."""
    headers, auth = {}, None
    if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    elif user := os.environ.get("MLFLOW_TRACKING_USERNAME"):
        auth = httpx.BasicAuth(user, os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
    base = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow"
    return httpx.Client(base_url=base, headers=headers, auth=auth, timeout=timeout)


class SourceError(Exception):
    """The MLflow server refused, or could not be reached."""


# MLflow's server closes idle keep-alive connections; a request sent on one as it closes comes
# back as "Server disconnected" (or a read or write error). Every call here only reads, so it
# is sent again, on a fresh connection, at once.
_STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
_TRIES = 3


def send_again_if_dropped(http: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response:
    """``http.request``, sent again (``_TRIES`` times in all) while the server drops the
    connection unanswered. Only for a request that may arrive twice: a read, or a write that
    stores the same thing once (MLflow's log-batch of the same metrics)."""
    for _ in range(_TRIES - 1):
        try:
            return http.request(method, path, **kw)
        except _STALE_CONNECTION:
            continue
    return http.request(method, path, **kw)


def _call(http: httpx.Client, method: str, path: str, **kw: Any) -> dict[str, Any]:
    try:
        response = send_again_if_dropped(http, method, path, **kw)
    except httpx.TransportError as exc:
        raise SourceError(f"cannot reach MLflow at {http.base_url}: {exc}") from None
    if response.status_code >= 400:
        try:
            said = response.json()
            message = f"{said.get('error_code')}: {said.get('message')}"
        except ValueError:
            message = response.text[:300]
        raise SourceError(f"MLflow answered {response.status_code} to {path}: {message}")
    result: dict[str, Any] = response.json()
    return result


def read_experiment(http: httpx.Client, name: str) -> Iterator[ImportedRun]:
    """Each run of the experiment ``name``, oldest first."""
    experiment = _call(http, "GET", "/experiments/get-by-name", params={"experiment_name": name})
    experiment_id = experiment["experiment"]["experiment_id"]
    token = None
    infos: list[dict[str, Any]] = []
    while True:
        body: dict[str, Any] = {"experiment_ids": [experiment_id], "max_results": 1000}
        if token:
            body["page_token"] = token
        page = _call(http, "POST", "/runs/search", json=body)
        infos += [r["info"] for r in page.get("runs", [])]
        token = page.get("next_page_token")
        if not token:
            break
    for info in sorted(infos, key=lambda i: int(i.get("start_time") or 0)):
        yield read_run(http, info["run_id"])


def read_run(http: httpx.Client, run_id: str) -> ImportedRun:
    found = _call(http, "GET", "/runs/get", params={"run_id": run_id})["run"]
    info, data = found["info"], found.get("data", {})
    tags = {t["key"]: t.get("value", "") for t in data.get("tags", [])}
    status = info.get("status", "RUNNING")
    run = ImportedRun(
        identity=f"mlflow:{run_id}",
        name=(info.get("run_name") or tags.get("mlflow.runName") or run_id)[:200],
        params=_params(data.get("params", [])),
        notes=tags.get("mlflow.note.content", "")[:10_000],
        tags=[
            f"{k}={v}"
            for k, v in sorted(tags.items())
            if not k.startswith("mlflow.") and _fits_tag(f"{k}={v}")
        ],
        ending=ENDINGS.get(status, "failed"),
    )
    cut = [p["key"] for p in data.get("params", []) if len(p.get("value", "")) > MAX_PARAM_VALUE]
    if cut:
        run.warnings.append(f"params cut to {MAX_PARAM_VALUE} characters: {', '.join(cut)}")
    if status == "FAILED":
        run.reason = "failed in MLflow (imported)"
    elif status not in ENDINGS:
        run.reason = f"imported from MLflow while it was still {status}"
    for key in sorted({m["key"] for m in data.get("metrics", [])}):
        ours = _NOT_KEY.sub("_", key)[:100]
        run.renamed[key] = ours
        for point in _history(http, run_id, key):
            step = int(point.get("step") or 0)
            if step >= 0:
                value = float(point.get("value", "NaN"))
                run.points.append((ours, step, value, int(point.get("timestamp") or 0) / 1000))
    return run


def _history(http: httpx.Client, run_id: str, key: str) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        params: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": HISTORY_PAGE}
        if token:
            params["page_token"] = token
        page = _call(http, "GET", "/metrics/get-history", params=params)
        yield from page.get("metrics", [])
        token = page.get("next_page_token")
        if not token:
            return


def _params(params: list[dict[str, str]]) -> dict[str, str]:
    return {p["key"][:100]: p.get("value", "")[:MAX_PARAM_VALUE] for p in params[:200]}


def _fits_tag(tag: str) -> bool:
    """A fitlens tag: at most 100 characters, no comma, not starting with a space."""
    return len(tag) <= 100 and "," not in tag and not tag[:1].isspace()

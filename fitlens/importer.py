"""Runs from elsewhere (TensorBoard logs, an MLflow server) written into fitlens as client runs,
idempotently: each imported run is tagged with who it was (``imported:<source>:<id>``), so a
second import of the same run finds it and adds nothing, and an import cut short is resumed
(the API stores each (key, step) once, so resending is safe)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from fitlens.http import Http
from fitlens.imported import ImportedRun

POINTS_PER_POST = 10_000  # the API's FITLENS_MAX_METRIC_BATCH default
HISTOGRAMS_PER_POST = 200
Outcome = Literal["new", "resumed", "unchanged"]


@dataclass
class Imported:
    run_id: int
    name: str
    outcome: Outcome
    points: int  # points the source has (each stored once)
    added: int  # points this import stored
    histograms: int
    warnings: list[str] = field(default_factory=list)


def write_run(http: Http, run: ImportedRun, project: str, team: str | None = None) -> Imported:
    """Store ``run`` as a client run of ``project`` (or find it stored already)."""
    found = http.get("/runs", tag=run.tag, limit=1)["items"]
    warnings = _warnings(run)
    if found and found[0]["status"] in ("succeeded", "failed", "cancelled"):
        stored = _stored_points(http, int(found[0]["id"]))
        if stored < len(_unique(run)):
            warnings.append(
                f"the source now has {len(_unique(run)) - stored} points more than run "
                f"{found[0]['id']} holds; it ended, so they were not added (delete the run "
                "to import it anew)"
            )
        return Imported(
            int(found[0]["id"]), found[0]["name"], "unchanged", len(run.points), 0, 0, warnings
        )
    outcome: Outcome
    if found:
        data, outcome = found[0], "resumed"
    else:
        body: dict[str, Any] = {
            "project": project,
            "name": run.name,
            "params": run.params,
            "tags": [run.tag, *run.tags][:50],
            "notes": run.notes,
        }
        if team:
            body["team"] = team
        data, outcome = http.call("POST", "/runs", json=body), "new"
    run_id = int(data["id"])
    added = _send_points(http, run_id, run.points)
    for start in range(0, len(run.histograms), HISTOGRAMS_PER_POST):
        chunk = run.histograms[start : start + HISTOGRAMS_PER_POST]
        http.call("POST", f"/runs/{run_id}/histograms?attempt=1", json={"histograms": chunk})
    _end(http, run_id, run)
    return Imported(
        run_id, data["name"], outcome, len(run.points), added, len(run.histograms), warnings
    )


def _unique(run: ImportedRun) -> set[tuple[str, int]]:
    return {(key, step) for key, step, _, _ in run.points}


def _warnings(run: ImportedRun) -> list[str]:
    said = list(run.warnings)
    repeats = Counter((k, s) for k, s, _, _ in run.points)
    doubled = sum(n - 1 for n in repeats.values() if n > 1)
    if doubled:
        said.append(
            f"{doubled} points share a (key, step) with another: fitlens keeps one value per "
            "step, the first (log with distinct steps to keep them all)"
        )
    changed = {src: key for src, key in run.renamed.items() if src != key}
    if changed:
        shown = ", ".join(f"{a} -> {b}" for a, b in sorted(changed.items())[:8])
        said.append(f"keys renamed: {shown}{' ...' if len(changed) > 8 else ''}")
    return said


def _send_points(http: Http, run_id: int, points: list[tuple[str, int, float, float]]) -> int:
    added = 0
    for start in range(0, len(points), POINTS_PER_POST):
        chunk = [
            {"key": k, "step": s, "value": _json_number(v), "wall_time": w}
            for k, s, v, w in points[start : start + POINTS_PER_POST]
        ]
        answer = http.call("POST", f"/runs/{run_id}/metrics?attempt=1", json={"points": chunk})
        added += int(answer["accepted"])
    return added


def _json_number(value: float) -> float | str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _stored_points(http: Http, run_id: int) -> int:
    curves = http.get(f"/runs/{run_id}/curves", max_points=2)
    return sum(int(s["total_points"]) for s in curves["series"])


def _end(http: Http, run_id: int, run: ImportedRun) -> None:
    if run.ending == "cancelled":
        http.call("POST", f"/runs/{run_id}/cancel")
        return
    body: dict[str, Any] = {"status": run.ending, "attempt": 1}
    if run.ending == "failed":
        body["reason"] = run.reason or "failed where it was imported from"
    http.call("POST", f"/runs/{run_id}/status", json=body)

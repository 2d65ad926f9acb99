"""Who may do what: an isolation matrix over every endpoint, and how tokens are kept.

The world: team "lab" (alice owner, bob member, vera viewer) owns project "vision"; team "other"
(olga owner) owns her runs. Every endpoint is called with every credential below and must
answer exactly the expected status: a run outside your teams is 404 (its existence does not
leak), a viewer's write is 403, a revoked, expired, missing or unknown token is 401.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update
from sqlmodel import col

from api.core.db import utcnow
from api.people.auth import Principal
from api.people.models import ApiToken, User
from api.runs.queue import RecordingQueue
from api.store import TrackingStore
from api.webhooks.schemas import WebhookIn
from tests.api.conftest import API, TABLES, bearer
from tests.tb_events import event_file

USERS = ("owner", "member", "viewer", "outsider")
TB_FILE = event_file(epochs=3)  # an uploaded TensorBoard file
WORKERS = ("own_worker", "other_worker")
DEAD = ("revoked", "expired", "missing", "unknown")


@dataclass
class World:
    http: TestClient  # sends no token of its own: each request names its credential
    store: TrackingStore
    queue: RecordingQueue
    tokens: dict[str, str] = field(default_factory=dict, repr=False)  # credential -> token
    team_ids: dict[str, int] = field(default_factory=dict)

    def call(self, method: str, path: str, credential: str | None, **kw: Any) -> Any:
        headers = bearer(self.tokens[credential]) if credential else {}
        return self.http.request(method, f"{API}{path}", headers=headers, **kw)

    def submit(self, credential: str = "owner", **job: Any) -> int:
        response = self.call(
            "POST", "/jobs", credential, json={"spec": {"epochs": 3}, "project": "vision", **job}
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def running_run(self) -> tuple[int, str]:
        """A fresh running run of "vision", and its worker token (as the queue got it)."""
        run_id = self.submit()
        worker = self.queue.tokens[run_id]
        response = self.http.post(
            f"{API}/runs/{run_id}/status", json={"status": "running"}, headers=bearer(worker)
        )
        assert response.status_code == 200, response.text
        return run_id, worker

    def principal(self, credential: str) -> Principal:
        return self.store.people.authenticate(self.tokens[credential])


@pytest.fixture
def world(client: TestClient, queue: RecordingQueue) -> World:
    store: TrackingStore = client.app.state.store  # type: ignore[attr-defined]
    w = World(TestClient(client.app), store, queue)
    w.tokens["owner"] = client.headers["authorization"].removeprefix("Bearer ")  # alice
    w.tokens["member"] = store.people.create_user("bob", team="lab", role="member")[1]
    w.tokens["viewer"] = store.people.create_user("vera", team="lab", role="viewer")[1]
    w.tokens["outsider"] = store.people.create_user("olga", team="other", role="owner")[1]
    w.tokens["zed"] = store.people.create_user("zed")[1]  # in no team: someone to add to one
    w.tokens["revoked"] = store.people.create_user("rex", team="lab", role="owner")[1]
    store.people.revoke_token(
        w.principal("revoked"), store.people.list_tokens(w.principal("revoked"))[0].id
    )
    w.tokens["expired"] = store.people.create_user("ed", team="lab", role="owner", expires_days=1)[
        1
    ]
    with store.engine.begin() as conn:  # a day later
        conn.execute(
            update(ApiToken)
            .where(col(ApiToken.token_hash) == sha256(w.tokens["expired"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    w.tokens["unknown"] = "fl_" + "x" * 43
    with store.engine.connect() as conn:
        w.team_ids = dict(conn.execute(text("SELECT name, id FROM team")).all())
    # A live worker token of another run (queued, so it is not finished).
    w.tokens["other_worker"] = queue.tokens[w.submit()]
    return w


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---- the matrix ----

POINT = {"points": [{"key": "val_loss", "step": 1, "value": 0.5}]}
LOSSES = {"points": [{"key": k, "step": 1, "value": 0.5} for k in ("train_loss", "val_loss")]}
HIST = {"histograms": [{"param": "w", "step": 1, "edges": [0, 1], "counts": [3]}]}
# The default spec's fc1 (128 units x 64 inputs), zeros, as a worker posts a snapshot.
SNAPSHOT = {
    "param": "fc1.weight",
    "epoch": 1,
    "shape": [128, 64],
    "full_shape": [128, 64],
    "dtype": "float32",
    "why": ["first"],
    "data": base64.b64encode(bytes(128 * 64 * 4)).decode(),
}
EVALUATION = {
    "epoch": 1,
    "best_epoch": 1,
    "best_val_loss": 0.5,
    "labels": ["a", "b"],
    "confusion_matrix": [[1, 0], [0, 1]],
}
CLASSES = [
    {"label": c, "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1, "loss": 0.1}
    for c in ("a", "b")
]


def _per_class(w: World, run_id: int) -> dict[str, Any]:
    for split in ("train", "val"):
        body = {**EVALUATION, "split": split, "final": False, "per_class": CLASSES}
        _post("evaluation", body)(w, run_id)
    return {}


EVENT = {"events": [{"kind": "lr_change", "step": 1, "payload": {"new_lr": 0.1}}]}

NO_WORKERS = {"own_worker": 403, "other_worker": 403}  # user endpoints refuse worker tokens
READ = {"owner": 200, "member": 200, "viewer": 200, "outsider": 404, **NO_WORKERS}
WRITE = {"owner": 200, "member": 200, "viewer": 403, "outsider": 404, **NO_WORKERS}
ANY_USER = {"owner": 200, "member": 200, "viewer": 200, "outsider": 200, **NO_WORKERS}
OWNER = {**WRITE, "member": 403}
# Worker posts: the run's own worker token, or a user who may write (a script logging itself).
REPORT = {**WRITE, "own_worker": 200, "other_worker": 404}
# Vera's tokens are hers alone: nobody else, whatever their role, finds them.
VERAS_ONLY = {**WRITE, "owner": 404, "member": 404, "viewer": 200}


def created(expect: dict[str, int]) -> dict[str, int]:
    return {k: 201 if v == 200 else v for k, v in expect.items()}


@dataclass
class Case:
    method: str
    # {run}: a fresh running run of "vision"; {lab}: the team's id; {token}: from prepare
    path: str
    expect: dict[str, int]
    body: Any = None
    # Puts the world in the state the call needs; gets the run id, returns path values.
    prepare: Callable[[World, int], dict[str, Any]] | None = None
    raw: bytes | None = None  # a body sent as is (a checkpoint's file), instead of ``body``


def _post(what: str, body: Any) -> Callable[[World, int], dict[str, Any]]:
    def prepare(w: World, run_id: int) -> dict[str, Any]:
        response = w.http.post(
            f"{API}/runs/{run_id}/{what}", json=body, headers=bearer(w.queue.tokens[run_id])
        )
        assert response.status_code < 300, response.text
        return {}

    return prepare


ABC_SHA256 = hashlib.sha256(b"abc").hexdigest()


def _checkpoint(w: World, run_id: int) -> dict[str, Any]:
    """The run's worker uploads a (three-byte) last checkpoint."""
    response = w.http.post(
        f"{API}/runs/{run_id}/checkpoints/last",
        params={"epoch": 1, "size": 3, "sha256": ABC_SHA256},
        content=b"abc",
        headers=bearer(w.queue.tokens[run_id]),
    )
    assert response.status_code == 200, response.text
    return {}


def _cancelled(w: World, run_id: int) -> dict[str, Any]:
    response = w.call("POST", f"/runs/{run_id}/cancel", "owner")
    assert response.status_code == 200, response.text
    return {}


def _zed_in_lab(w: World, _: int) -> dict[str, Any]:
    _team, invited = w.store.people.set_member(
        w.principal("owner"), w.team_ids["lab"], "zed", "viewer"
    )
    if invited:  # else he is in lab still: an earlier credential could not remove him
        w.store.people.accept_invitation(w.principal("zed"), w.team_ids["lab"])
    return {}


def _spare_token_of_vera(w: World, _: int) -> dict[str, Any]:
    info, _secret = w.store.people.mint_token(w.principal("viewer"), "spare", None)
    return {"token": info.id}


HOOK = {"url": "http://93.184.216.34/hook"}  # an address literal: nothing to resolve


def _hook_in_lab(w: World, _: int) -> dict[str, Any]:
    made = w.store.webhooks.create(w.principal("owner"), w.team_ids["lab"], WebhookIn(**HOOK))
    return {"hook": made.id}


def _vera_invited_to(team: str) -> Callable[[World, int], dict[str, Any]]:
    def prepare(w: World, _: int) -> dict[str, Any]:
        if team not in w.team_ids:  # olga's second team, made late: she files runs in "other"
            w.team_ids[team] = w.store.people.create_team(w.principal("outsider"), team).id
        w.store.people.set_member(w.principal("outsider"), w.team_ids[team], "vera", "viewer")
        return {team: w.team_ids[team]}

    return prepare


def _study(design: dict[str, Any]) -> Callable[[World, int], dict[str, Any]]:
    def prepare(w: World, _: int) -> dict[str, Any]:
        body = {"spec": {"epochs": 2}, "project": "vision", "team": "lab", "design": design}
        response = w.call("POST", "/studies", "owner", json=body)
        assert response.status_code == 201, response.text
        return {"study": response.json()["id"]}

    return prepare


def _cancelled_study(w: World, run_id: int) -> dict[str, Any]:
    """A study whose members are all cancelled: its stream ends at once (a finite answer)."""
    values = _study(STUDY)(w, run_id)
    response = w.call("POST", f"/studies/{values['study']}/cancel", "owner")
    assert response.status_code == 200, response.text
    return values


STUDY = {"seeds": [1, 2]}
_names = itertools.count()


def _unique_name(w: World, _: int) -> dict[str, Any]:
    return {"name": f"name-{next(_names)}"}


CASES = [
    Case("POST", "/jobs", created(WRITE), {"project": "vision", "team": "lab"}),
    Case("GET", "/runs", ANY_USER),
    Case("GET", "/jobs/defaults", ANY_USER),
    Case("GET", "/studies", ANY_USER),
    Case("POST", "/runs", created(WRITE), {"project": "vision", "team": "lab"}),
    Case(
        "POST",
        "/imports/tensorboard?project=vision&team=lab&name={name}",
        created(WRITE),
        raw=TB_FILE,
        prepare=_unique_name,
    ),
    Case("GET", "/runs/{run}", {**READ, "own_worker": 200, "other_worker": 404}),
    Case("PATCH", "/runs/{run}", WRITE, {"notes": "checked"}),
    Case("DELETE", "/runs/{run}", {**OWNER, "owner": 204}),
    Case("POST", "/runs/{run}/cancel", WRITE),
    Case("POST", "/runs/{run}/fix_study", created(WRITE), {"folds": 2, "fixes": ["l1"]}),
    # The run is cancelled first, so its own worker token has died with it (401).
    Case("POST", "/runs/{run}/retry", {**WRITE, "own_worker": 401}, prepare=_cancelled),
    Case("POST", "/runs/{run}/status", REPORT, {"status": "heartbeat", "attempt": 1}),
    Case("POST", "/runs/{run}/metrics?attempt=1", REPORT, POINT),
    Case("POST", "/runs/{run}/histograms?attempt=1", REPORT, HIST),
    Case(
        "POST",
        "/runs/{run}/evaluation?attempt=1",
        {k: 204 if v == 200 else v for k, v in REPORT.items()},
        EVALUATION,
    ),
    Case("POST", "/runs/{run}/events?attempt=1", REPORT, EVENT),
    Case("GET", "/runs/{run}/curves", READ, prepare=_post("metrics", POINT)),
    Case("GET", "/runs/{run}/histograms", READ, prepare=_post("histograms", HIST)),
    Case("POST", "/runs/{run}/weights?attempt=1", REPORT, SNAPSHOT),
    Case("GET", "/runs/{run}/weights", READ, prepare=_post("weights", SNAPSHOT)),
    Case(
        "POST",
        f"/runs/{{run}}/checkpoints/last?attempt=1&epoch=1&size=3&sha256={ABC_SHA256}",
        REPORT,
        raw=b"abc",
    ),
    Case("GET", "/runs/{run}/checkpoints", READ),
    Case("GET", "/runs/{run}/checkpoints/last", READ, prepare=_checkpoint),
    Case(
        "GET",
        "/runs/{run}/weights/images?param=fc1.weight&epoch=1",
        READ,
        prepare=_post("weights", SNAPSHOT),
    ),
    Case("GET", "/runs/{run}/evaluation", READ, prepare=_post("evaluation", EVALUATION)),
    Case("GET", "/runs/{run}/per_class", READ, prepare=_per_class),
    Case("GET", "/runs/{run}/events", READ),
    Case("GET", "/runs/{run}/diagnosis", READ, prepare=_post("metrics", LOSSES)),
    Case("GET", "/runs/{run}/metrics.csv", READ, prepare=_post("metrics", POINT)),
    Case("GET", "/runs/{run}/metrics.jsonl", READ, prepare=_post("metrics", POINT)),
    Case("GET", "/histograms/overlay?runs={run}&param=w", READ, prepare=_post("histograms", HIST)),
    Case("GET", "/compare?runs={run}", READ),
    # Streams of finished runs and studies end at once (live ones: tests/e2e/test_streams.py).
    Case(
        "GET",
        "/runs/{run}/stream",
        {**READ, "own_worker": 401, "other_worker": 404},
        prepare=_cancelled,
    ),
    Case("GET", "/studies/{study}/stream", READ, prepare=_cancelled_study),
    Case(
        "POST",
        "/studies",
        created(WRITE),
        {"spec": {"epochs": 2}, "project": "vision", "team": "lab", "design": STUDY},
    ),
    Case("GET", "/studies/{study}", READ, prepare=_study(STUDY)),
    Case("POST", "/studies/{study}/cancel", WRITE, prepare=_study(STUDY)),
    Case("POST", "/studies/{study}/retry", WRITE, prepare=_study(STUDY)),
    Case("GET", "/studies/{study}/curves", READ, prepare=_study(STUDY)),
    Case("GET", "/studies/{study}/table", READ, prepare=_study(STUDY)),
    Case("GET", "/studies/{study}/table.csv", READ, prepare=_study(STUDY)),
    Case("GET", "/studies/{study}/report.html", READ, prepare=_study(STUDY)),
    Case("GET", "/studies/{study}/effects", READ, prepare=_study({"sweep": {"epochs": [1, 2]}})),
    Case("GET", "/studies/{study}/winner", READ, prepare=_study(STUDY)),
    Case(
        "GET",
        "/studies/{study}/learning_curve",
        READ,
        prepare=_study({"learning_curve": [0.5, 1.0]}),
    ),
    Case(
        "GET",
        "/studies/{study}/path",
        READ,
        prepare=_study(
            {"path": {"field": "model.dropout", "scale": "linear", "values": [0, 0.2, 0.4]}}
        ),
    ),
    Case("GET", "/me", ANY_USER),
    Case("GET", "/teams", ANY_USER),
    Case("POST", "/teams", created(ANY_USER), {"name": "{name}"}, prepare=_unique_name),
    # zed is not in lab: an owner's PUT invites him (202), which grants nothing yet.
    Case("PUT", "/teams/{lab}/members", {**OWNER, "owner": 202}, {"user": "zed", "role": "viewer"}),
    Case("DELETE", "/teams/{lab}/members/zed", OWNER, prepare=_zed_in_lab),
    Case("POST", "/teams/{lab}/webhooks", created(OWNER), HOOK),
    Case("GET", "/teams/{lab}/webhooks", OWNER),
    Case(
        "DELETE",
        "/teams/{lab}/webhooks/{hook}",
        {k: 204 if v == 200 else v for k, v in OWNER.items()},
        prepare=_hook_in_lab,
    ),
    Case("GET", "/teams/{lab}/webhooks/{hook}/deliveries", OWNER, prepare=_hook_in_lab),
    Case(
        "POST",
        "/users",
        created(OWNER),
        {"name": "{name}", "team_id": "{lab}", "role": "viewer"},
        prepare=_unique_name,
    ),
    Case("GET", "/tokens", ANY_USER),
    # Anyone may ask who they are signed in as (nobody: user null); only users sign in.
    Case("GET", "/session", {c: 200 for c in (*USERS, *WORKERS, *DEAD)}),
    Case("POST", "/session", ANY_USER),
    Case("DELETE", "/session", {k: 204 if v == 200 else v for k, v in ANY_USER.items()}),
    Case("POST", "/tokens", created(ANY_USER), {"name": "ci"}),
    Case("DELETE", "/tokens/{token}", VERAS_ONLY, prepare=_spare_token_of_vera),
    # Olga invites vera to her teams: only vera may answer (last: vera joins "other").
    Case("GET", "/invitations", ANY_USER),
    Case(
        "DELETE",
        "/invitations/{third}",
        {**VERAS_ONLY, "viewer": 204},
        prepare=_vera_invited_to("third"),
    ),
    Case("POST", "/invitations/{other}/accept", VERAS_ONLY, prepare=_vera_invited_to("other")),
]


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in values:
            return values[value[1:-1]]  # keeps ints ints
        return value.format(**values)
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


def _call(w: World, case: Case, credential: str) -> int:
    run_id, own_worker = w.running_run() if "{run}" in case.path else (0, w.tokens["other_worker"])
    values: dict[str, Any] = {"run": run_id, **w.team_ids}
    if case.prepare:
        values.update(case.prepare(w, run_id))
    tokens = {**w.tokens, "own_worker": own_worker}
    headers = bearer(tokens[credential]) if credential != "missing" else {}
    body = _fill(case.body, values)
    response = w.http.request(
        case.method,
        f"{API}{_fill(case.path, values)}",
        json=body if case.raw is None else None,
        content=case.raw,
        headers=headers,
    )
    w.http.cookies.clear()  # POST /session sets a cookie: the next credential must not send it
    return response.status_code


def test_every_endpoint_answers_each_credential_as_its_role_allows(world: World) -> None:
    wrong = []
    for case in CASES:
        for credential in (*USERS, *WORKERS, *DEAD):
            want = case.expect.get(credential, 401)
            got = _call(world, case, credential)
            if got != want:
                wrong.append(f"{case.method} {case.path} as {credential}: {got}, want {want}")
    assert wrong == []


def test_the_matrix_covers_every_endpoint(client: TestClient) -> None:
    documented = {
        (method.upper(), path.removeprefix(API))
        for path, operations in client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        for method in operations
        if path.startswith(API)
    }
    names = {
        "{run}": "{run_id}",
        "{lab}": "{team_id}",
        "{other}": "{team_id}",
        "{third}": "{team_id}",
        "/zed": "/{user}",
        "{token}": "{token_id}",
        "{study}": "{study_id}",
        "{hook}": "{webhook_id}",
        "/checkpoints/last": "/checkpoints/{name}",
    }
    covered = set()
    for case in CASES:
        path = case.path.split("?")[0]
        for ours, theirs in names.items():
            path = path.replace(ours, theirs)
        covered.add((case.method, path))
    assert documented - covered == set()
    assert covered - documented == set()


def test_no_token_is_a_401_that_says_how_to_authenticate(client: TestClient) -> None:
    anonymous = TestClient(client.app)
    response = anonymous.get(f"{API}/runs")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]
    for scheme in ("Basic abc", "Bearer ", "fl_abc"):
        assert anonymous.get(f"{API}/runs", headers={"Authorization": scheme}).status_code == 401
    # Health and the OpenAPI document need none; the docs pages (scripts from a CDN) are off.
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/docs").status_code == 404
    assert anonymous.get("/redoc").status_code == 404
    schema = anonymous.get("/openapi.json").json()
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_a_worker_token_dies_with_its_run_and_with_its_attempt(world: World) -> None:
    run_id, worker = world.running_run()
    status = f"{API}/runs/{run_id}/status"
    ok = world.http.post(status, json={"status": "succeeded", "attempt": 1}, headers=bearer(worker))
    assert ok.status_code == 200
    late = world.http.get(f"{API}/runs/{run_id}", headers=bearer(worker))
    assert late.status_code == 401 and "has ended (succeeded)" in late.json()["detail"]

    # A reaped attempt: the old worker's token is revoked, the new worker gets a new one.
    run_id, worker = world.running_run()
    assert world.store.lifecycle.reap_stale(timeout_s=-1, max_attempts=3) == [run_id]
    delivered = world.store.lifecycle.claim_delivery(run_id, redeliver_after_s=600)
    assert delivered is not None
    fresh = delivered[1]
    assert fresh != worker
    assert world.http.get(f"{API}/runs/{run_id}", headers=bearer(worker)).status_code == 401
    assert world.http.get(f"{API}/runs/{run_id}", headers=bearer(fresh)).status_code == 200


def test_tokens_are_stored_only_as_hashes(world: World) -> None:
    live_workers = list(world.queue.tokens.values())
    secrets = [t for t in world.tokens.values() if t.startswith("fl_")] + live_workers
    assert len(secrets) > 8
    dumped = []
    with world.store.engine.connect() as conn:
        for table in TABLES:
            dumped += [repr(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {table}"))]
        hashes = set(conn.execute(select(col(ApiToken.token_hash))).scalars())
    everything = "\n".join(dumped)
    assert all(secret not in everything for secret in secrets)
    # ... and each (except the made-up one) is there as its SHA-256.
    assert {sha256(s) for s in secrets if "xxxx" not in s} <= hashes


def test_revoking_and_expiring_take_effect_at_once(world: World) -> None:
    minted = world.call("POST", "/tokens", "member", json={"name": "laptop"}).json()
    assert minted["token"].startswith("fl_") and "token" not in minted["info"]
    laptop = {"Authorization": f"Bearer {minted['token']}"}
    assert world.http.get(f"{API}/me", headers=laptop).json()["name"] == "bob"
    listed = world.call("GET", "/tokens", "member").json()
    assert [t["name"] for t in listed] == ["first token", "laptop"]
    assert all("token" not in t and "hash" not in str(t) for t in listed)
    # Tokens are bob's alone: alice, who owns his team, can neither list nor revoke them.
    assert minted["info"]["id"] not in [
        t["id"] for t in world.call("GET", "/tokens", "owner").json()
    ]
    assert world.call("DELETE", f"/tokens/{minted['info']['id']}", "owner").status_code == 404
    revoked = world.call("DELETE", f"/tokens/{minted['info']['id']}", "member").json()
    assert revoked["revoked_at"] is not None
    assert world.http.get(f"{API}/me", headers=laptop).status_code == 401

    short = world.call("POST", "/tokens", "member", json={"expires_in_days": 1}).json()
    assert short["info"]["expires_at"] is not None
    bad = world.call("POST", "/tokens", "member", json={"expires_in_days": -1})
    assert bad.status_code == 422 and "expires_in_days" in bad.json()["detail"]


def test_shared_history_across_projects_with_who_submitted(world: World) -> None:
    mine = world.submit("owner", project="vision", name="alice-1", tags=["h"])
    bobs = world.submit("member", project="audio", name="bob-1", tags=["h"])
    world.submit("outsider", project="vision", name="olga-1", tags=["h"])  # her own "vision"

    def names(credential: str, **params: Any) -> list[str]:
        query = {"limit": 100, "tag": "h", **params}
        page = world.call("GET", "/runs", credential, params=query).json()
        return sorted(r["name"] for r in page["items"])

    assert names("viewer") == ["alice-1", "bob-1"]  # every project of the team, both submitters
    assert names("viewer", created_by="bob") == ["bob-1"]
    assert names("viewer", project="vision") == ["alice-1"]  # not olga's "vision"
    assert names("outsider") == ["olga-1"]
    run = world.call("GET", f"/runs/{bobs}", "viewer").json()
    assert (run["created_by"], run["project"]) == ("bob", "audio")

    compared = world.call("GET", "/compare", "viewer", params={"runs": f"{mine},{bobs}"})
    assert compared.status_code == 200
    assert [r["run"]["created_by"] for r in compared.json()["runs"]] == ["alice", "bob"]
    olgas = world.call("GET", "/runs", "outsider").json()["items"][0]["id"]
    leaked = world.call("GET", "/compare", "viewer", params={"runs": f"{mine},{olgas}"})
    assert leaked.status_code == 404


def test_project_names_are_per_team(world: World) -> None:
    # bob joins olga's team too; "vision" now could mean either team's.
    world.store.people.set_member(
        world.principal("outsider"), world.team_ids["other"], "bob", "member"
    )
    world.store.people.accept_invitation(world.principal("member"), world.team_ids["other"])
    world.submit("outsider", project="vision")
    ambiguous = world.call("POST", "/jobs", "member", json={"project": "vision"})
    assert ambiguous.status_code == 422 and "team" in ambiguous.json()["detail"]
    run_id = world.submit("member", project="vision", team="other")
    assert world.call("GET", f"/runs/{run_id}", "outsider").status_code == 200
    assert world.call("GET", f"/runs/{run_id}", "owner").status_code == 404
    # A viewer cannot file runs, and an outsider cannot file into a team not theirs.
    viewer = world.call("POST", "/jobs", "viewer", json={"project": "vision"})
    assert viewer.status_code == 403 and "read only" in viewer.json()["detail"]
    assert world.call("POST", "/jobs", "outsider", json={"team": "lab"}).status_code == 404


def test_owners_bring_people_in_and_out(world: World) -> None:
    lab = world.team_ids["lab"]
    made = world.call("POST", "/users", "owner", json={"name": "nina", "team_id": lab})
    assert made.status_code == 201
    nina = {"Authorization": f"Bearer {made.json()['token']}"}
    assert made.json()["user"]["teams"] == [{"id": lab, "name": "lab", "role": "member"}]
    run_id = world.submit()
    assert world.http.get(f"{API}/runs/{run_id}", headers=nina).status_code == 200
    again = world.call("POST", "/users", "owner", json={"name": "nina", "team_id": lab})
    assert again.status_code == 409

    # Removed from the team, her token still works but sees nothing of it.
    assert world.call("DELETE", f"/teams/{lab}/members/nina", "owner").status_code == 200
    assert world.http.get(f"{API}/runs/{run_id}", headers=nina).status_code == 404
    assert world.http.get(f"{API}/runs", headers=nina).json()["items"] == []

    # A team keeps an owner.
    solo = world.call("POST", "/teams", "owner", json={"name": "solo"}).json()
    assert solo["members"] == [{"user": "alice", "role": "owner"}] and solo["projects"] == []
    last = world.call("DELETE", f"/teams/{solo['id']}/members/alice", "owner")
    assert last.status_code == 409 and "owner" in last.json()["detail"]
    teams = world.call("GET", "/teams", "viewer").json()
    assert [t["name"] for t in teams] == ["lab"]
    assert {m["user"]: m["role"] for m in teams[0]["members"]}["vera"] == "viewer"
    with world.store.engine.connect() as conn:
        assert (
            conn.execute(select(col(User.name)).where(col(User.name) == "nina")).scalar() == "nina"
        )

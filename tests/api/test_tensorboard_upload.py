"""POST /imports/tensorboard: an event file SummaryWriter wrote, posted as it is, becomes a
run with every scalar and histogram step; posting it again stores nothing twice; a file that
is not one is a 422 naming the body."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import API, bearer
from tests.tb_events import event_file

OCTETS = {"content-type": "application/octet-stream"}


def test_an_event_file_becomes_a_run_once(client: TestClient) -> None:
    data = event_file()
    params = {"project": "tb", "name": "uploaded", "map": "Accuracy/val=val_acc"}
    made = client.post(f"{API}/imports/tensorboard", params=params, content=data, headers=OCTETS)
    assert made.status_code == 201, made.text
    run = made.json()
    assert run["status"] == "succeeded" and run["project"] == "tb" and run["name"] == "uploaded"
    curves = client.get(f"{API}/runs/{run['id']}/curves").json()
    series = {s["key"]: s for s in curves["series"]}
    assert sorted(series) == ["train_loss", "val_acc", "val_loss"]
    assert series["val_loss"]["steps"] == list(range(1, 11))
    assert series["train_loss"]["values"][:2] == [1.0, 0.5]
    index = client.get(f"{API}/runs/{run['id']}/histograms").json()
    assert index["params"] == {"fc.weight": [5, 10]}
    assert client.get(f"{API}/runs/{run['id']}").json()["diagnosis"]["onset_epoch"] == 5
    again = client.post(f"{API}/imports/tensorboard", params=params, content=data, headers=OCTETS)
    assert again.status_code == 200 and again.json()["id"] == run["id"]
    assert again.json()["revision"] == client.get(f"{API}/runs/{run['id']}").json()["revision"]
    listed = client.get(f"{API}/runs", params={"project": "tb"}).json()["items"]
    assert [r["id"] for r in listed] == [run["id"]]


def test_what_is_not_an_event_file_is_refused_and_nothing_is_made(client: TestClient) -> None:
    for body in (b"", b"not an event file at all" * 100, event_file()[:40]):
        answer = client.post(f"{API}/imports/tensorboard", content=body, headers=OCTETS)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "body"
    bad_map = client.post(
        f"{API}/imports/tensorboard", params={"map": "a=has space"}, content=b"x", headers=OCTETS
    )
    assert bad_map.status_code == 422 and bad_map.json()["errors"][0]["field"] == "map"
    assert client.get(f"{API}/runs").json()["items"] == []


def test_another_team_s_upload_of_the_same_file_is_its_own_run(client: TestClient) -> None:
    data = event_file()
    mine = client.post(f"{API}/imports/tensorboard", content=data, headers=OCTETS).json()
    people = client.app.state.store.people  # type: ignore[attr-defined]
    other = bearer(people.create_user("olga", team="other", role="owner")[1])
    theirs = client.post(f"{API}/imports/tensorboard", content=data, headers={**OCTETS, **other})
    assert theirs.status_code == 201 and theirs.json()["id"] != mine["id"]
    assert client.get(f"{API}/runs/{theirs.json()['id']}").status_code == 404
    viewer = bearer(people.create_user("vera", team="lab", role="viewer")[1])
    refused = client.post(f"{API}/imports/tensorboard", content=data, headers={**OCTETS, **viewer})
    assert refused.status_code == 403

"""The dashboard answers the question (issue 27), in real headless Chromium against a real API
and two real workers: each defect a new user met, reproduced and now covered (the compare
button, names from the values that vary, the filter box's own example, the deep link lost at
sign-in, tables wider than the window, no way to act); the study page's forest plot, small
multiples, learning curve with its fit and regularization path; the run page's spec, weights
and per-class views; a viewer sees no buttons and an owner's retry works; the study report
opens from a file:// URL with the network off and draws every figure."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack import launch
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_dashboard import CHARTS_DRAWN, Tab, signed_in
from tests.e2e.conftest import Worker
from tests.e2e.test_pipeline import finished
from tests.waits import wait_for

SMALL = {
    "dataset": {"normalize": "unit", "train_subset": 300},
    "model": {"hidden": [32]},
    "batch_size": 32,
    "epochs": 4,
    "histograms": {"enabled": False},
}
# The README's overfitting example, evaluated per class every 4 epochs: it overfits.
OVERFIT = {
    "dataset": {"name": "digits", "normalize": "unit", "train_subset": 300},
    "model": {"kind": "mlp", "hidden": [1000]},
    "optimizer": {"name": "adam", "lr": 0.003},
    "epochs": 20,
    "batch_size": 16,
    "evaluation": {"every": 4},
}
TABLES = ["runs-table", "studies-table", "study-table", "members-table", "compare-table"]


def study_done(api: httpx.Client, study_id: int) -> dict[str, Any] | None:
    study = api.get(f"/studies/{study_id}").json()
    return study if study["done"] else None


@pytest.fixture(scope="module")
def world(api: httpx.Client, pipeline_env: dict[str, str], worker: Worker) -> Iterator[Any]:
    """An overfitting run; a dropout sweep, a learning curve and an L2 path, two seeds each."""
    second = Worker(pipeline_env, "w-answers-2")
    run = api.post("/jobs", json={"spec": OVERFIT, "name": "overfit"}).json()
    stopping = {**OVERFIT, "early_stopping": {"patience": 3}, "evaluation": {}}
    early = api.post("/jobs", json={"spec": stopping, "name": "early stop"}).json()
    designs = {
        "sweep": {"sweep": {"model.dropout": [0, 0.5]}, "seeds": [1, 2]},
        "curve": {"learning_curve": {"sizes": [30, 90, 300], "budget": "epochs"}, "seeds": [1, 2]},
        "path": {
            "path": {"field": "regularization.l2", "values": [1e-4, 1e-2, 1e-1]},
            "seeds": [1, 2],
        },
    }
    studies = {}
    for name, design in designs.items():
        spec = {**SMALL, "histograms": {"enabled": True, "every": 4}} if name == "path" else SMALL
        made = api.post("/studies", json={"spec": spec, "design": design, "name": name})
        assert made.status_code == 201, made.text
        studies[name] = made.json()
    done = wait_for(partial(finished, api, run["id"]), 300, "the overfitting run")
    assert done["status"] == "succeeded", done["failure_reason"]
    stopped = wait_for(partial(finished, api, early["id"]), 300, "the early-stopping run")
    assert stopped["status"] == "succeeded", stopped["failure_reason"]
    for name, study in studies.items():
        studies[name] = wait_for(partial(study_done, api, study["id"]), 300, f"study {name}")
    yield {"run": done, "early": stopped, **studies}
    second.stop()


def as_owner(api: httpx.Client, env: dict[str, str], browser: Any) -> Tab:
    """A page signed in as the team's owner, in a 1,400 x 900 window."""
    tab = signed_in(api, env, browser, "e2e", "e2e-team")
    tab.page.set_viewport_size({"width": 1400, "height": 900})
    return tab


def leave(tab: Tab) -> None:
    """No page error met on the way; signed out (the next test signs in as it needs)."""
    assert tab.errors == [], "\n".join(tab.errors)
    tab.page.click("#sign-out")
    tab.page.close()


def drawn_offline(browser: Any, saved: Path, name: str) -> tuple[list[str], int]:
    """Open a saved report from its file:// URL with the network off: the figures it drew
    (each a canvas) and its table's rows; no request may fail and no script may err."""
    page = browser.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("pageerror", lambda error: failed.append(str(error)))
    browser.set_offline(True)
    try:
        page.goto(saved.as_uri())
        done = "window.fitlensReport && window.fitlensReport.drawn"
        wait_for(lambda: page.evaluate(done), 30, f"the {name} report's figures")
        drawn: list[str] = page.evaluate("window.fitlensReport.drawn")
        assert page.locator("canvas").count() >= len(drawn)
        rows = page.locator("#table tr").count()
        page.screenshot(path=str(ARTIFACTS / f"report-{name}.png"), full_page=True)
    finally:
        browser.set_offline(False)
    assert failed == []
    page.close()
    return drawn, rows


def no_horizontal_scroll(tab: Tab, where: str) -> None:
    """At 1,400 x 900 the page, and every main table on it, fits the window's width."""
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1400, f"{where}: the page is {width} px wide"
    for table in TABLES:
        right = tab.page.evaluate(
            "id => { const t = document.getElementById(id);"
            " return t ? t.getBoundingClientRect().right : 0; }",
            table,
        )
        assert right <= 1400, f"{where}: #{table} ends at {right} px"


def test_navigation_names_filters_and_widths(
    api: httpx.Client, pipeline_env: dict[str, str], browser: Any, world: dict[str, Any]
) -> None:
    base = str(api.base_url).rstrip("/").removesuffix("/api/v1")
    tab = Tab(browser, base)
    tab.page.set_viewport_size({"width": 1400, "height": 900})
    sweep = world["sweep"]
    # Signing in from a deep link (the one the demo prints) lands on it, not on Runs.
    tab.page.goto(f"{base}/#/studies/{sweep['id']}")
    tab.page.fill("#token", launch.user_token(pipeline_env, "e2e", "e2e-team"))
    tab.page.click("button[type=submit]")
    tab.wait(CHARTS_DRAWN, 30)
    assert tab.page.evaluate("location.hash") == f"#/studies/{sweep['id']}"
    # Configurations and members named by the values that vary, never "config 1".
    names = tab.page.locator("#study-table tr td:first-child").all_inner_texts()
    assert names == ["dropout 0", "dropout 0.5"]
    members = tab.page.locator("#members-table tr[data-run] td:nth-child(2)").all_inner_texts()
    assert "sweep · dropout 0.5, seed 2" in members
    no_horizontal_scroll(tab, "study")
    tab.shot("answers-study-sweep")

    # Compare from the study's members: only the paths that differ are listed.
    boxes = tab.page.locator("#members-table tr[data-run] input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(1).check()  # the first configuration's two seeds
    tab.page.click("#compare-members")
    tab.wait(CHARTS_DRAWN, 30)
    paths = tab.page.locator("#compare-diff tr[data-path]").evaluate_all(
        "rows => rows.map(r => r.dataset.path)"
    )
    assert paths == ["seed"]
    no_horizontal_scroll(tab, "compare")
    tab.shot("answers-compare-members")

    # Compare from the runs list: the button sat inside the filter form and submitted it.
    tab.page.goto(f"{base}/#/runs")
    tab.page.wait_for_selector("#runs-table tr[data-run]")
    rows = tab.page.locator("#runs-table tr[data-run] input[type=checkbox]")
    rows.nth(0).check()
    rows.nth(1).check()
    tab.page.click("#compare-selected")
    tab.wait("location.hash.startsWith('#/compare?runs=')", 10)
    tab.wait(CHARTS_DRAWN, 30)
    assert tab.page.locator("#compare-diff tr.result").count() == 4

    # The filter box's own example (a 422 before), results, free text, and a refusal named.
    def filtered(where: str = "", q: str = "") -> set[int]:
        tab.page.goto(f"{base}/#/runs")
        tab.page.wait_for_selector("#runs-table[data-loaded]")
        tab.page.fill("input[name=where]", where)
        tab.page.fill("input[name=q]", q)
        tab.page.press("input[name=where]", "Enter")
        tab.wait(
            "(document.querySelector('#runs-table') || {dataset: {}}).dataset.loaded"
            " === location.hash && location.hash.includes('?')",
            10,
        )
        rows = tab.page.locator("#runs-table tr[data-run]")
        return {int(r) for r in rows.evaluate_all("rows => rows.map(r => r.dataset.run)")}

    listed = {r["id"] for r in api.get("/runs", params={"limit": 500}).json()["items"]}
    assert filtered("optimizer.name=adam") == listed
    assert tab.page.inner_text("#runs-error") == ""
    overfitting = api.get("/runs", params={"verdict": "overfitting"}).json()["items"]
    assert filtered("verdict=overfitting") == {r["id"] for r in overfitting}
    assert world["run"]["id"] in {r["id"] for r in overfitting}
    assert len(filtered(q="dropout 0.5")) == 2
    tab.errors.clear()
    filtered("optimizer.colour=red")
    assert "where" in tab.page.inner_text("#runs-error")
    assert tab.errors and all("422" in e for e in tab.errors)  # the refusal, and nothing else
    tab.errors.clear()

    # The Studies list; every page at 1,400 px wide.
    tab.page.goto(f"{base}/#/studies")
    tab.page.wait_for_selector("#studies-table tr[data-study]")
    assert tab.page.locator("#studies-table tr[data-study]").count() >= 3
    best = tab.page.locator(f"#studies-table tr[data-study='{sweep['id']}'] td").nth(4)
    assert best.inner_text().startswith("dropout")
    no_horizontal_scroll(tab, "studies")
    tab.shot("answers-studies")
    tab.page.goto(f"{base}/#/runs")
    tab.page.wait_for_selector("#runs-table tr[data-run]")
    no_horizontal_scroll(tab, "runs")
    # More columns are one click away, spec paths among them.
    tab.page.click("#column-chooser summary")
    tab.page.fill("#param-columns", "model.dropout")
    tab.page.click("#param-apply")
    assert "model.dropout" in tab.page.locator("#runs-table th").all_inner_texts()
    tab.shot("answers-runs")
    tab.open(f"/runs/{world['run']['id']}")
    no_horizontal_scroll(tab, "run")
    leave(tab)


def test_the_run_page_says_what_the_run_is_shows_its_weights_and_acts(
    api: httpx.Client, pipeline_env: dict[str, str], browser: Any, world: dict[str, Any]
) -> None:
    tab = as_owner(api, pipeline_env, browser)
    run = world["run"]
    charts = tab.open(f"/runs/{run['id']}")
    # What the run is: its spec with the defaults greyed, and its environment.
    assert tab.page.locator("#spec li.set[data-path='batch_size']").inner_text() == "batch_size: 16"
    assert tab.page.locator("#spec li.default[data-path='epochs']").count() == 1  # 20 is it
    assert tab.page.locator("#spec li.default[data-path='optimizer.momentum']").count() == 1
    assert tab.page.locator("#environment").count() == 1
    # Seed 003's figures: the whole first layer, its units as images, and per-class overfitting.
    tab.wait("window.fitlens.charts()['weights-matrix'] !== undefined", 30)
    charts = tab.charts()
    assert charts["weights-matrix"][0]["points"] == 64 * 1000
    tiles = tab.page.locator("#weight-images").get_attribute("data-tiles")
    assert tiles is not None and int(tiles) > 0
    assert charts["per-class-gap"][0]["points"] > 0
    assert len(charts["pr"]) == 10 and int(tab.page.get_attribute("#mistakes", "data-tiles") or 0)
    assert "accgap" not in charts or all("accuracy" in s["name"] for s in charts["accgap"])
    assert all(s["name"] == "gap" for s in charts["gap"])  # loss units only
    snapshots = api.get(f"/runs/{run['id']}/weights").json()["snapshots"]
    first = min(s["epoch"] for s in snapshots if s["param"] == "fc1.weight")
    tab.page.select_option("#weights-since", str(first))
    tab.wait("window.fitlens.charts()['weights-matrix'] !== undefined", 10)
    tab.shot("answers-run")
    # An early stop is marked where the rule fired, with the epoch whose weights it kept.
    early = tab.open(f"/runs/{world['early']['id']}")
    event = next(
        e
        for e in api.get(f"/runs/{world['early']['id']}/events").json()
        if e["kind"] == "early_stopped"
    )
    restored = event["payload"]["restored_epoch"]
    assert f"early stop (restored {restored})" in early["loss"][0]["marks"]

    # Run again with a change: the diff is shown before it is sent.
    tab.open(f"/runs/{run['id']}")
    tab.page.click("#action-again")
    spec = tab.page.input_value("#again-spec").replace('"epochs": 20', '"epochs": 2')
    tab.page.fill("#again-spec", spec)
    assert tab.page.inner_text("#again-diff li[data-path='epochs']") == "epochs: 20 → 2"
    assert tab.page.locator("#again-diff li").count() == 1
    tab.page.click("#again-submit")
    tab.wait(f"location.hash.startsWith('#/runs/') && location.hash !== '#/runs/{run['id']}'", 10)
    again = int(tab.page.evaluate("location.hash").split("/")[-1])
    assert api.get(f"/runs/{again}").json()["spec"]["epochs"] == 2

    # A fix study from the overfitting run, in one click.
    tab.open(f"/runs/{run['id']}")
    tab.page.click("#action-fix-study")
    tab.wait("location.hash.startsWith('#/studies/')", 30)
    study_id = int(tab.page.evaluate("location.hash").split("/")[-1])
    assert api.get(f"/studies/{study_id}").json()["members"] > 0
    api.post(f"/studies/{study_id}/cancel").raise_for_status()  # the workers have more to do
    wait_for(partial(finished, api, again), 120, "the run made again")
    leave(tab)


def test_a_viewer_sees_no_buttons_and_an_owners_retry_works(
    api: httpx.Client, pipeline_env: dict[str, str], browser: Any, world: dict[str, Any]
) -> None:
    stopped = api.post("/jobs", json={"spec": {**SMALL, "epochs": 2}, "name": "to retry"}).json()
    api.post(f"/runs/{stopped['id']}/cancel").raise_for_status()
    owner = signed_in(api, pipeline_env, browser, "e2e", "e2e-team")
    owner.open(f"/runs/{stopped['id']}")
    assert owner.page.locator("#action-cancel").count() == 0  # nothing to cancel
    owner.page.click("#action-retry")
    wait_for(
        lambda: api.get(f"/runs/{stopped['id']}").json()["status"] != "cancelled", 10, "the retry"
    )
    wait_for(partial(finished, api, stopped["id"]), 120, "the retried run")
    again = api.get(f"/runs/{stopped['id']}").json()
    assert (again["status"], again["attempt"]) == ("succeeded", 1), again
    owner.page.wait_for_selector("#run-header .status.succeeded", timeout=30_000)
    leave(owner)

    # A viewer of the same team: the same pages, no action offered.
    viewer_token = launch.user_token(pipeline_env, "dash-viewer", "dash-viewer-own")
    team = next(t for t in api.get("/teams").json() if t["name"] == "e2e-team")
    invited = api.put(
        f"/teams/{team['id']}/members", json={"user": "dash-viewer", "role": "viewer"}
    )
    assert invited.status_code == 202, invited.text
    as_viewer = {"Authorization": f"Bearer {viewer_token}"}
    accepted = api.post(f"/invitations/{team['id']}/accept", headers=as_viewer)
    assert accepted.status_code == 200, accepted.text
    viewer = signed_in(api, pipeline_env, browser, "dash-viewer", "dash-viewer-own")
    viewer.open(f"/runs/{world['run']['id']}")
    assert viewer.page.locator("#actions button").count() == 0
    assert viewer.page.locator("#actions").is_hidden()
    viewer.open(f"/studies/{world['sweep']['id']}")
    assert viewer.page.locator("#study-actions").count() == 0
    assert viewer.page.locator("#study-report").count() == 1  # reading is theirs
    viewer.shot("answers-viewer")
    leave(viewer)


def test_the_study_pages_answer_and_the_report_opens_offline(
    api: httpx.Client, pipeline_env: dict[str, str], browser: Any, world: dict[str, Any]
) -> None:
    tab = as_owner(api, pipeline_env, browser)
    sweep = tab.open(f"/studies/{world['sweep']['id']}")
    # A forest plot per summary chosen: one row per configuration against the baseline.
    effects = api.get(f"/studies/{world['sweep']['id']}/effects").json()
    assert [s["points"] for s in sweep["forest-min_val_loss"]] == [1, 1]  # interval, mean
    assert "forest-final_gap" in sweep and "forest-val_accuracy" not in sweep
    tab.page.check("text=val_accuracy")
    tab.wait("window.fitlens.charts()['forest-val_accuracy'] !== undefined", 10)
    # Small multiples: each configuration over the baseline's band.
    assert [s["name"] for s in sweep["multiple-1"]][2::3] == ["dropout 0.5", "dropout 0"]
    assert effects["configs"][0]["name"] == "dropout 0.5"
    tab.shot("answers-study-forest")

    curve = tab.open(f"/studies/{world['curve']['id']}")
    answer = api.get(f"/studies/{world['curve']['id']}/learning_curve", params={"x": 0.05}).json()
    names = [s["name"] for s in curve["learning-min_val_loss"]]
    fitted = answer["fits"]["min_val_loss"]["fitted"]
    assert any(n.startswith("fit: ") for n in names) == fitted
    measured = next(
        (s for s in curve["learning-min_val_loss"] if s["type"] == "line"), {"points": curve}
    )
    assert measured["points"] == 3, curve.get("learning-min_val_loss")  # 30, 90 and 300
    needed = tab.page.inner_text("#examples-needed")
    examples = answer["examples_needed"]["examples"]
    assert (
        (f"{examples:,}" in needed)
        if examples is not None
        else answer["examples_needed"]["why"] in needed
    )
    tab.shot("answers-study-learning-curve")

    path = tab.open(f"/studies/{world['path']['id']}")
    answer = api.get(f"/studies/{world['path']['id']}/path").json()
    assert path["path"][0]["points"] == 3
    assert f"λ_min = {answer['lambda_min']:g}" in tab.page.inner_text("#path-lambdas")
    tab.shot("answers-study-path")
    assert tab.errors == []

    # The report: one file, opened from disk with the network off, draws every figure.
    for name, figures in [
        ("sweep", ["band-val_loss", "forest-min_val_loss", "forest-final_gap"]),
        ("curve", ["band-val_loss", "learning-min_val_loss", "learning-final_gap"]),
        ("path", ["band-val_loss", "forest-min_val_loss", "path"]),
    ]:
        report = api.get(f"/studies/{world[name]['id']}/report.html")
        assert report.status_code == 200, report.text
        saved = ARTIFACTS / f"report-{name}.html"
        saved.write_text(report.text, encoding="utf-8")
        drawn, rows = drawn_offline(browser, saved, name)
        assert set(figures) <= set(drawn), drawn
        table = api.get(f"/studies/{world[name]['id']}/table").json()
        assert rows == len(table["rows"]) + 1
    leave(tab)

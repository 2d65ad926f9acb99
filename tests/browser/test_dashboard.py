"""The dashboard in a real browser (issue 13): sign in; the runs list shows the team's runs; a
run page draws every chart with the series expected and no console error; a running job's
curves gain epochs without a reload; the compare page overlays two runs; a study page draws
its bands; another team's user sees nothing of it. Each page's screenshot is saved."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any

import httpx
import pytest

from stack import launch
from tests.browser.conftest import ARTIFACTS
from tests.e2e.conftest import Worker
from tests.e2e.test_pipeline import finished
from tests.waits import wait_for

CHARTS_DRAWN = "performance.getEntriesByName('fitlens:charts-drawn').length > 0"


class Tab:
    """One signed-in page, with every console error and page error it meets."""

    def __init__(self, browser: Any, base: str) -> None:
        self.page = browser.new_page()
        self.base = base
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"{e} {e.stack or ''}"[:2000]))
        self.page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.errors.append(f"{response.status} {response.url}")

    def sign_in(self, token: str) -> None:
        self.page.goto(f"{self.base}/")
        self.page.fill("#token", token)
        self.page.click("button[type=submit]")
        self.page.wait_for_selector("#runs-table")

    def open(self, route: str) -> dict[str, list[dict[str, Any]]]:
        self.page.goto(f"{self.base}/#{route}")
        self.wait(CHARTS_DRAWN, 30)
        return self.charts()

    def wait(self, expression: str, timeout: float) -> None:
        """Poll ``expression`` in the page. (Playwright's wait_for_function evaluates strings
        with eval, which the dashboard's Content-Security-Policy rightly refuses.)"""
        try:
            wait_for(lambda: self.page.evaluate(expression), timeout, expression)
        except AssertionError as exc:  # what the page met says why, more often than not
            raise AssertionError(f"{exc}; the page's errors: {self.errors}") from None

    def charts(self) -> dict[str, list[dict[str, Any]]]:
        return self.page.evaluate("window.fitlens.charts()")

    def shot(self, name: str) -> None:
        """The page as a person sees it, once every chart is painted (a large heat-map takes
        several frames); after 15 s, as it is."""
        painted = "Object.values(window.fitlens.charts()).every(c => c.every(s => s.painted))"
        with contextlib.suppress(AssertionError):
            wait_for(lambda: self.page.evaluate(painted), 15, "every chart painted")
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def signed_in(api: httpx.Client, env: dict[str, str], browser: Any, user: str, team: str) -> Tab:
    """A new page signed in as ``user`` (an owner of ``team``; made on first use)."""
    tab = Tab(browser, str(api.base_url).rstrip("/").removesuffix("/api/v1"))
    tab.sign_in(launch.user_token(env, user, team))
    return tab


@pytest.fixture(scope="module")
def trained(api: httpx.Client, worker: Worker) -> dict[str, dict[str, Any]]:
    """Two finished runs (with and without L2) and a two-seed study."""
    specs = {
        "plain": {"epochs": 5},
        "l2": {"epochs": 5, "regularization": {"l2": 0.01}},
    }
    ids = {n: api.post("/jobs", json={"spec": s, "name": n}).json()["id"] for n, s in specs.items()}
    study = api.post(
        "/studies", json={"spec": {"epochs": 3}, "name": "seeds", "design": {"seeds": [1, 2]}}
    ).json()
    runs = {n: wait_for(partial(finished, api, i), 240, n) for n, i in ids.items()}
    assert all(r["status"] == "succeeded" for r in runs.values())
    wait_for(lambda: api.get(f"/studies/{study['id']}").json()["done"], 240, "the study")
    return {**runs, "study": study}


def test_the_dashboard_shows_the_teams_runs_live(
    api: httpx.Client,
    pipeline_env: dict[str, str],
    browser: Any,
    trained: dict[str, dict[str, Any]],
) -> None:
    tab = signed_in(api, pipeline_env, browser, "e2e", "e2e-team")
    rows = tab.page.locator("#runs-table tr[data-run]")
    listed = {int(rows.nth(i).get_attribute("data-run") or 0) for i in range(rows.count())}
    assert {trained["plain"]["id"], trained["l2"]["id"]} <= listed
    tab.shot("runs")

    plain = trained["plain"]["id"]
    charts = tab.open(f"/runs/{plain}")
    series = {name: [s["name"] for s in found] for name, found in charts.items()}
    assert {"train_loss", "val_loss"} <= set(series["loss"])
    assert all(s["points"] == 5 for s in charts["loss"])
    assert {"train_accuracy", "val_accuracy"} <= set(series["accuracy"])
    assert "gap" in series["gap"] and series["lr"] == ["lr"]
    assert charts["hist-heat"][0]["points"] > 0 and charts["hist-epoch"][0]["points"] > 0
    assert charts["confusion"][0]["points"] == 100  # digits: 10 x 10
    assert series["per-class"] == ["precision", "recall", "f1"]
    assert len(series["roc"]) == 11  # a curve per class, and chance
    assert any(name.startswith("weights-") for name in charts)
    tab.shot("run")

    l2 = trained["l2"]["id"]
    compared = tab.open(f"/compare?runs={plain},{l2}")
    assert len(compared["compare-loss"]) == 4  # two runs x (train, validation)
    assert len(compared["compare-hist"]) == 2  # one parameter, two runs, shared bins
    assert tab.page.locator("#compare-table tr").count() == 3
    tab.shot("compare")

    study = tab.open(f"/studies/{trained['study']['id']}")
    assert len(study["band-val_loss"]) == 3  # one configuration: lower, width, mean
    tab.wait("document.querySelector('#study-status').textContent.includes('2 succeeded')", 30)
    tab.shot("study")
    assert tab.errors == []

    # A run logged from someone's own loop, with no evaluation: drawn, and no error asked.
    own = api.post("/runs", json={"name": "own loop", "params": {"lr": 0.1}}).json()["id"]
    points = [{"key": k, "step": s, "value": 1 / s} for s in (1, 2, 3) for k in ("val_loss", "x")]
    api.post(f"/runs/{own}/metrics?attempt=1", json={"points": points}).raise_for_status()
    api.post(f"/runs/{own}/status", json={"status": "succeeded", "attempt": 1}).raise_for_status()
    drawn = tab.open(f"/runs/{own}")
    assert drawn["loss"][0]["points"] == 3 and "confusion" not in drawn
    assert tab.errors == []

    # A job that trains while the page is open: its curves grow without a reload.
    long = api.post("/jobs", json={"spec": {"epochs": 400}, "name": "live"}).json()["id"]
    wait_for(lambda: api.get(f"/runs/{long}").json()["progress"]["epoch"] >= 2, 120, "training")
    tab.open(f"/runs/{long}")
    tab.page.evaluate("window.__sameDocument = true")
    before = tab.charts()["loss"][0]["points"]
    tab.wait(f"window.fitlens.charts().loss[0].points >= {before + 3}", 60)
    assert tab.page.evaluate("window.__sameDocument") is True  # no reload happened
    assert tab.page.locator("#run-header .status.running").count() == 1
    tab.shot("run-live")
    api.post(f"/runs/{long}/cancel")
    tab.page.wait_for_selector("#run-header .status.cancelled", timeout=30_000)
    assert tab.errors == []

    # Sign out: the cookie's token is revoked and the pages ask to sign in again.
    tab.page.click("#sign-out")
    tab.page.wait_for_selector("#token")
    assert api.get("/tokens").json()[-1]["revoked_at"] is not None


def test_another_team_sees_nothing(
    api: httpx.Client,
    pipeline_env: dict[str, str],
    browser: Any,
    trained: dict[str, dict[str, Any]],
) -> None:
    tab = signed_in(api, pipeline_env, browser, "dash-outsider", "dash-other-team")
    assert tab.page.locator("#runs-table tr[data-run]").count() == 0
    tab.page.goto(f"{tab.base}/#/runs/{trained['plain']['id']}")
    tab.page.wait_for_selector("main .error")
    assert tab.page.locator("main .error").inner_text() == "Not found."
    assert tab.page.locator("canvas").count() == 0
    status = tab.page.evaluate(
        f"fetch('/api/v1/runs/{trained['plain']['id']}/stream').then(r => r.status)"
    )
    assert status == 404
    tab.shot("outsider")
    tab.page.click("#sign-out")

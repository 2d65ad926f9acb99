"""The browser's sign-in: a token exchanged once for an HttpOnly, SameSite=Strict cookie, with
a CSRF token required on every write made by cookie."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import API, bearer, submit


def _sign_in(client: TestClient) -> tuple[TestClient, str]:
    """A browser-like client holding only the session cookie (no Authorization header)."""
    response = client.post(f"{API}/session")
    assert response.status_code == 200, response.text
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("fitlens_session="))
    csrf = next(c for c in cookies if c.startswith("fitlens_csrf="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/" in session
    assert "HttpOnly" not in csrf and "SameSite=strict" in csrf
    body = response.json()
    assert body["user"] == "alice" and csrf.split(";")[0] == f"fitlens_csrf={body['csrf_token']}"
    browser = TestClient(client.app)
    browser.cookies.set("fitlens_session", session.split(";")[0].split("=", 1)[1])
    return browser, body["csrf_token"]


def test_the_cookie_reads_and_writes_only_with_the_csrf_header(client: TestClient) -> None:
    run = submit(client)
    assert TestClient(client.app).get(f"{API}/session").json() == {"user": None}
    browser, csrf = _sign_in(client)
    assert browser.get(f"{API}/session").json() == {"user": "alice"}
    assert browser.get(f"{API}/me").json()["name"] == "alice"
    assert browser.get(f"{API}/runs/{run['id']}").status_code == 200
    # A write by cookie without the CSRF token (what a forged cross-site form would send).
    patch = browser.patch(f"{API}/runs/{run['id']}", json={"notes": "x"})
    assert patch.status_code == 403 and "x-csrf-token" in patch.json()["detail"]
    assert browser.delete(f"{API}/runs/{run['id']}").status_code == 403
    wrong = browser.patch(
        f"{API}/runs/{run['id']}", json={"notes": "x"}, headers={"X-CSRF-Token": "0" * 32}
    )
    assert wrong.status_code == 403
    right = browser.patch(
        f"{API}/runs/{run['id']}", json={"notes": "by cookie"}, headers={"X-CSRF-Token": csrf}
    )
    assert right.status_code == 200 and right.json()["notes"] == "by cookie"


def test_signing_out_revokes_the_session_and_a_session_is_one_of_your_tokens(
    client: TestClient,
) -> None:
    browser, csrf = _sign_in(client)
    names = [t["name"] for t in client.get(f"{API}/tokens").json()]
    assert "browser session" in names
    cookie = browser.cookies.get("fitlens_session") or ""
    assert browser.delete(f"{API}/session").status_code == 403  # sign-out is a write: CSRF
    out = browser.delete(f"{API}/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert any(c.startswith('fitlens_session=""') for c in out.headers.get_list("set-cookie"))
    # The cookie's token is dead even if a client kept it.
    stale = TestClient(client.app)
    stale.cookies.set("fitlens_session", cookie)
    assert stale.get(f"{API}/me").status_code == 401
    kept = [t for t in client.get(f"{API}/tokens").json() if t["name"] == "browser session"]
    assert kept and all(t["revoked_at"] for t in kept)


def test_sign_in_needs_a_bearer_token_and_tokens_never_ride_in_urls(client: TestClient) -> None:
    anonymous = TestClient(client.app)
    assert anonymous.post(f"{API}/session").status_code == 401
    token = client.headers["authorization"].split(" ", 1)[1]
    assert anonymous.get(f"{API}/me", params={"token": token}).status_code == 401
    assert anonymous.get(f"{API}/me", params={"access_token": token}).status_code == 401
    assert anonymous.get(f"{API}/me", headers=bearer(token)).status_code == 200

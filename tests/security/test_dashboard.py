"""The dashboard's sign-in on the real receiver app and a real Redis, no browser:
cookie flags, CSRF refusals, the Content-Security-Policy, tenant scoping, escaping at the source."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from dialer.core.settings import load_settings
from dialer.receiver.app import create_app
from dialer.receiver.ui import sessions
from dialer.receiver.ui.views import CSP, PAGES
from tests.support.signing import API_KEY, SECRET

KEY = API_KEY
ADMIN = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(receiver: TestClient) -> TestClient:
    return receiver  # tests/security/conftest.py: the receiver app with known keys


async def add_account(client: TestClient, sid: str) -> None:
    body = {"sid": sid, "api_key": "k", "api_token": "t", "caller_id": "0800"}
    body["api_url"] = "http://127.0.0.1:9"
    resp = await client.post("/v1/accounts", headers=ADMIN, json=body)
    assert resp.status == 200, await resp.text()


async def tenant_key(client: TestClient, sid: str) -> str:
    resp = await client.post("/v1/keys", headers=ADMIN, json={"accounts": [sid]})
    assert resp.status == 201
    return str((await resp.json())["key"])


async def create(client: TestClient, sid: str, csv: str = "to\n+919876543210\n") -> str:
    resp = await client.post("/v1/campaigns", headers=ADMIN, json={"account": sid, "csv": csv})
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def sign_in(client: TestClient, key: str) -> str:
    """Signs the client's cookie jar in; the CSRF token of the session."""
    resp = await client.post("/ui/session", json={"key": key})
    assert resp.status == 200, await resp.text()
    me = await (await client.get("/ui/api/me")).json()
    return str(me["csrf"])


async def test_cookie_is_httponly_samesite_strict_and_never_the_key(client: TestClient) -> None:
    resp = await client.post("/ui/session", json={"key": KEY})
    assert resp.status == 200
    header = resp.headers["Set-Cookie"]
    assert header.startswith(f"{sessions.COOKIE}=")
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/" in header
    assert KEY not in header and KEY not in await resp.text()


async def test_a_wrong_key_gets_no_session(client: TestClient) -> None:
    for given in ("", "wrong", KEY + "x", SECRET):
        resp = await client.post("/ui/session", json={"key": given})
        assert resp.status == 401
        assert "Set-Cookie" not in resp.headers
    assert (await client.get("/ui/api/me")).status == 401


async def test_cross_origin_sign_in_is_refused(client: TestClient) -> None:
    resp = await client.post(
        "/ui/session", json={"key": KEY}, headers={"Origin": "https://evil.example"}
    )
    assert resp.status == 403 and "Set-Cookie" not in resp.headers


async def test_state_changes_need_the_csrf_token(client: TestClient) -> None:
    await add_account(client, "acme")
    cid = await create(client, "acme")
    csrf = await sign_in(client, KEY)
    # reads need only the cookie
    assert (await client.get(f"/v1/campaigns/{cid}")).status == 200
    wrong = csrf[:-1] + ("1" if csrf.endswith("0") else "0")  # never the token itself
    for headers in ({}, {sessions.CSRF_HEADER: ""}, {sessions.CSRF_HEADER: wrong}):
        resp = await client.post(f"/v1/campaigns/{cid}/pause", headers=headers)
        assert resp.status == 403, headers
        assert "CSRF" in (await resp.json())["error"]
    status = await (await client.get(f"/v1/campaigns/{cid}")).json()
    assert status["state"] == "running"  # nothing changed
    resp = await client.post(f"/v1/campaigns/{cid}/pause", headers={sessions.CSRF_HEADER: csrf})
    assert resp.status == 200 and (await resp.json())["state"] == "paused"
    # sign-out too is a state change
    assert (await client.post("/ui/api/signout")).status == 403


async def test_a_token_of_another_session_is_refused(client: TestClient) -> None:
    await add_account(client, "acme")
    cid = await create(client, "acme")
    earlier = await sign_in(client, KEY)
    client.session.cookie_jar.clear()
    now = await sign_in(client, KEY)  # a new session: its own cookie and token
    assert now != earlier
    resp = await client.post(f"/v1/campaigns/{cid}/cancel", headers={sessions.CSRF_HEADER: earlier})
    assert resp.status == 403


async def test_an_api_key_header_is_never_rescued_by_the_cookie(client: TestClient) -> None:
    csrf = await sign_in(client, KEY)
    resp = await client.get(
        "/v1/campaigns", headers={"Authorization": "Bearer wrong", sessions.CSRF_HEADER: csrf}
    )
    assert resp.status == 401


async def test_a_forged_or_tampered_cookie_is_refused(client: TestClient) -> None:
    await sign_in(client, KEY)
    value = next(c.value for c in client.session.cookie_jar if c.key == sessions.COOKIE)
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({sessions.COOKIE: value})
    assert (await client.get("/ui/api/me")).status == 200  # the jar itself is not the test
    key_id, expires, nonce, mac = value.split(".")
    for forged in (
        f"{key_id}.{int(expires) + 999}.{nonce}.{mac}",  # longer life
        f"{key_id}.{expires}.{nonce}.{'0' * 40}",
        f"someone.{expires}.{nonce}.{mac}",
        "x",
    ):
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({sessions.COOKIE: forged})
        assert (await client.get("/ui/api/me")).status == 401, forged
        assert (await client.get("/v1/campaigns")).status == 401


async def test_revoking_the_key_ends_its_sessions(client: TestClient) -> None:
    await add_account(client, "acme")
    key = await tenant_key(client, "acme")
    await sign_in(client, key)
    assert (await client.get("/v1/campaigns")).status == 200
    key_id = key.split("_")[1]
    assert (await client.delete(f"/v1/keys/{key_id}", headers=ADMIN)).status == 200
    assert (await client.get("/v1/campaigns")).status == 401
    assert (await client.get("/ui/api/me")).status == 401


async def test_csp_and_headers_on_every_page_and_file(client: TestClient) -> None:
    await sign_in(client, KEY)
    for path in [*PAGES, "/ui/signin", "/ui/static/common.js", "/ui/static/dashboard.css"]:
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 200, path
        assert resp.headers["Content-Security-Policy"] == CSP
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP
    assert "default-src 'none'" in CSP


async def test_pages_have_no_inline_script_or_style(client: TestClient) -> None:
    await sign_in(client, KEY)
    for path in [*PAGES, "/ui/signin"]:
        html = await (await client.get(path)).text()
        assert not re.search(r"<script(?![^>]*\ssrc=)", html), path
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", html), path  # no onclick= and the like


async def test_no_script_of_ours_writes_html(client: TestClient) -> None:
    for name in ("common.js", "charts.js", "campaign.js", "campaigns.js", "new.js", "accounts.js"):
        js = await (await client.get(f"/ui/static/{name}")).text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in js, (name, sink)


async def test_pages_need_a_session_and_static_files_no_traversal(client: TestClient) -> None:
    resp = await client.get("/ui/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ui/signin"
    for path in ("/ui/static/..%2fviews.py", "/ui/static/views.py", "/ui/static/__init__.py"):
        assert (await client.get(path)).status == 404, path


async def test_a_tenant_session_sees_only_its_accounts(client: TestClient) -> None:
    await add_account(client, "acme")
    await add_account(client, "other")
    mine = await create(client, "acme")
    theirs = await create(client, "other")
    csrf = await sign_in(client, await tenant_key(client, "acme"))
    me = await (await client.get("/ui/api/me")).json()
    assert me["accounts"] == ["acme"] and not me["admin"]
    listed = await (await client.get("/v1/campaigns")).json()
    assert [c["id"] for c in listed["campaigns"]] == [mine]
    for path in (
        f"/v1/campaigns/{theirs}",
        f"/ui/api/campaigns/{theirs}/contacts",
        f"/ui/api/campaigns/{theirs}/events",
    ):
        assert (await client.get(path)).status == 404, path
    resp = await client.post(f"/v1/campaigns/{theirs}/cancel", headers={sessions.CSRF_HEADER: csrf})
    assert resp.status == 404
    resp = await client.post("/v1/accounts/other/resume", headers={sessions.CSRF_HEADER: csrf})
    assert resp.status == 404
    page = await (await client.get(f"/ui/api/campaigns/{mine}/contacts")).json()
    assert page["total"] == 1


async def test_the_live_view_streams_the_status(client: TestClient) -> None:
    await add_account(client, "acme")
    cid = await create(client, "acme", "to,name\n+919876543210,<script>alert(1)</script>\n")
    await sign_in(client, KEY)
    resp = await client.get(f"/ui/api/campaigns/{cid}/events")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    line = await resp.content.readline()
    assert line.startswith(b"data: {")
    resp.close()
    page = await (await client.get(f"/ui/api/campaigns/{cid}/contacts?q=script")).json()
    # JSON carries the text as it is; the page shows it with textContent (tests/browser)
    assert page["calls"][0]["vars"]["name"] == "<script>alert(1)</script>"


async def test_a_session_is_rate_limited_like_a_key(redis_url: str, aiohttp_client: Any) -> None:
    settings = load_settings(
        REDIS_URL=redis_url, DIALER_API_KEY=KEY, DIALER_SECRET=SECRET, DIALER_API_RATE_PER_MIN=5
    )
    client = await aiohttp_client(create_app(settings))
    await sign_in(client, KEY)  # /ui/api/me counts: 1
    statuses = [(await client.get("/v1/campaigns")).status for _ in range(6)]
    assert statuses[:4] == [200] * 4 and statuses[-1] == 429

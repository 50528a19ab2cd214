"""Every ``/v1`` route needs ``Authorization: Bearer <DIALER_API_KEY>``.

Routes are enumerated from the app itself, so a route added later is covered
without touching this file. ``/v1/openapi.json`` is the one public document.
Also: the request size limit answers 413 and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import pytest
import redis

from dialer.receiver.app import MAX_BODY, create_app
from tests.support.seed import ACCOUNT, exotel_sid, make_campaign, place_calls, setup_account
from tests.support.signing import API_KEY, AUTH, SECRET, cb, make_settings

PUBLIC = {"/v1/openapi.json"}


def v1_routes() -> list[tuple[str, str]]:
    """(method, concrete path) for every /v1 route of the receiver, HEAD included."""
    app = create_app(make_settings("redis://127.0.0.1:6379/9"))
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if not path.startswith("/v1/") or path in PUBLIC:
            continue
        concrete = re.sub(r"\{sid\}", ACCOUNT, path)
        concrete = re.sub(r"\{id\}", "abcd12345678", concrete)
        concrete = re.sub(r"\{[^}]+\}", "x", concrete)
        found.add((route.method, concrete))
    return sorted(found)


ROUTES = v1_routes()


def test_the_route_list_is_not_empty_and_covers_every_verb() -> None:
    methods = {m for m, _ in ROUTES}
    assert {"GET", "POST"} <= methods
    assert len(ROUTES) >= 9  # accounts (3), campaigns (6): a sanity floor, not the list


def _bad_headers() -> dict[str, dict[str, str]]:
    basic = base64.b64encode(f"{API_KEY}:".encode()).decode()
    return {
        "none": {},
        "empty": {"Authorization": ""},
        "bearer_no_token": {"Authorization": "Bearer"},
        "bearer_empty": {"Authorization": "Bearer "},
        "wrong_key": {"Authorization": "Bearer wrong-key"},
        "key_prefix": {"Authorization": f"Bearer {API_KEY[:-1]}"},
        "key_suffix": {"Authorization": f"Bearer {API_KEY}x"},
        "secret_instead_of_key": {"Authorization": f"Bearer {SECRET}"},
        "bare_key": {"Authorization": API_KEY},
        "token_scheme": {"Authorization": f"Token {API_KEY}"},
        "basic_scheme": {"Authorization": f"Basic {basic}"},
        "key_in_other_header": {"X-API-Key": API_KEY},
        "non_ascii_key": {"Authorization": "Bearer clé-é"},
    }


BAD = _bad_headers()


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_v1_route_refuses_without_the_right_key(
    receiver: Any, method: str, path: str
) -> None:
    for name, headers in BAD.items():
        resp = await receiver.request(method, path, headers=headers, params={"api_key": API_KEY})
        assert resp.status == 401, (name, resp.status)
        assert resp.headers.get("WWW-Authenticate") == "Bearer"
        if method != "HEAD":
            body = await resp.json()
            assert "error" in body
            assert API_KEY not in await resp.text()


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_v1_route_lets_the_right_key_through(
    receiver: Any, r: redis.Redis, method: str, path: str
) -> None:
    setup_account(r)
    resp = await receiver.request(method, path, headers=AUTH)
    assert resp.status != 401
    assert resp.status < 500, await resp.text()


async def test_public_routes_need_no_key(receiver: Any) -> None:
    for path in ("/v1/openapi.json", "/healthz"):
        resp = await receiver.get(path)
        assert resp.status == 200, path


async def raw_status(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    return data.split(b"\r\n", 1)[0]


async def test_a_non_utf8_authorization_header_is_401_not_500(receiver: Any) -> None:
    line = await raw_status(
        receiver.server.port,
        b"GET /v1/accounts/" + ACCOUNT.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n",
    )
    assert b" 401 " in line, line


async def test_a_latin1_authorization_header_is_401(receiver: Any) -> None:
    line = await raw_status(
        receiver.server.port,
        b"GET /v1/accounts/" + ACCOUNT.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer \xc3\xa9\r\nConnection: close\r\n\r\n",
    )
    assert b" 401 " in line, line


# --- request size limit -----------------------------------------------------------


def test_the_app_limit_is_the_documented_one() -> None:
    app = create_app(make_settings("redis://127.0.0.1:6379/9"))
    assert app._client_max_size == MAX_BODY  # what the oversize bodies below exceed


async def _still_serving(receiver: Any) -> None:
    assert (await receiver.get("/healthz")).status == 200
    resp = await receiver.get(f"/v1/accounts/{ACCOUNT}", headers=AUTH)
    assert resp.status == 200


async def test_oversize_json_campaign_is_413_and_server_keeps_serving(
    receiver: Any, r: redis.Redis
) -> None:
    setup_account(r)
    pad = "x" * (MAX_BODY + 1024)
    body = ('{"account": "' + ACCOUNT + '", "name": "' + pad + '"}').encode()
    resp = await receiver.post(
        "/v1/campaigns", data=body, headers=AUTH | {"Content-Type": "application/json"}
    )
    assert resp.status == 413
    await _still_serving(receiver)


async def test_oversize_csv_campaign_is_413_and_server_keeps_serving(
    receiver: Any, r: redis.Redis
) -> None:
    setup_account(r)
    row = b"+919876543210,hello\n"
    body = b"to,name\n" + row * (MAX_BODY // len(row) + 10)
    resp = await receiver.post(
        "/v1/campaigns",
        data=body,
        params={"account": ACCOUNT},
        headers=AUTH | {"Content-Type": "text/csv"},
    )
    assert resp.status == 413
    assert not r.hkeys("dl:campaigns")  # nothing was created
    await _still_serving(receiver)


@pytest.mark.parametrize("ctype", ["application/json", "application/x-www-form-urlencoded"])
async def test_oversize_callback_is_413_and_changes_nothing(
    receiver: Any, r: redis.Redis, ctype: str
) -> None:
    setup_account(r)
    cid = make_campaign(r, 1, max_attempts=1)
    (call_id,) = place_calls(r, cid)
    before = r.hgetall(f"dl:{{{ACCOUNT}}}:call:{call_id}")
    pad = "x" * (MAX_BODY + 1)
    body = (
        f'{{"CallSid": "{exotel_sid(r, call_id)}", "Status": "completed", "x": "{pad}"}}'
        if ctype == "application/json"
        else f"CallSid={exotel_sid(r, call_id)}&Status=completed&x={pad}"
    ).encode()
    resp = await receiver.post(
        f"/exotel/status/{call_id}",
        params=cb(call_id),
        data=body,
        headers={"Content-Type": ctype},
    )
    assert resp.status == 413
    assert r.hgetall(f"dl:{{{ACCOUNT}}}:call:{call_id}") == before
    await _still_serving(receiver)


async def test_unauthenticated_oversize_body_is_refused(receiver: Any) -> None:
    body = b"x" * (MAX_BODY + 1)
    resp = await receiver.post(
        "/v1/campaigns", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 401  # who asks is checked before the body is read
    assert (await receiver.get("/healthz")).status == 200


TRICKS = [
    b"//v1/accounts/" + ACCOUNT.encode(),
    b"/v1//accounts/" + ACCOUNT.encode(),
    b"/V1/accounts/" + ACCOUNT.encode(),
    b"/%76%31/accounts/" + ACCOUNT.encode(),
    b"/v1/openapi.json/../accounts/" + ACCOUNT.encode(),
    b"/v1/openapi.json/%2e%2e/accounts/" + ACCOUNT.encode(),
    b"/x/../v1/accounts/" + ACCOUNT.encode(),
    b"/v1/accounts/" + ACCOUNT.encode() + b"?/v1/openapi.json",
    b"/v1/accounts/" + ACCOUNT.encode() + b"#/v1/openapi.json",
    b"http://x/v1/accounts/" + ACCOUNT.encode(),
]


@pytest.mark.parametrize("target", TRICKS)
async def test_path_tricks_do_not_bypass_the_key(
    receiver: Any, r: redis.Redis, target: bytes
) -> None:
    setup_account(r)
    line = await raw_status(
        receiver.server.port,
        b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    status = int(line.split()[1])
    assert status in (400, 401, 404), (target, line)

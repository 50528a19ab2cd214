"""Secrets never leave the process: not in responses, not in logs, not in reprs.

Three secrets are configured with distinctive values (the Exotel token of
the environment's account, the signing secret and the API key) and a fourth
arrives over the API (a registered account's token). The receiver is then
exercised through every public surface, with logging captured at DEBUG.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from dialer.cli.client import DialerClient
from dialer.core.errors import ConfigError
from dialer.core.settings import load_settings
from dialer.net.exotel import ExotelClient
from dialer.receiver.app import create_app
from dialer.services.accounts import load_account, make_account
from dialer.store import keys
from tests.support.signing import API_KEY, KEYRING, SECRET, cb, make_settings

ENV_TOKEN = "tok-ENVTOKEN-91b7c3e5d2"
REST_TOKEN = "tok-RESTTOKEN-5c2e8a0f7d"
SECRETS = (ENV_TOKEN, REST_TOKEN, SECRET, API_KEY)
ENV_SID, REST_SID = "AC_env", "AC_rest"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
async def app_client(redis_url: str, aiohttp_client: Callable[..., Awaitable[Any]]) -> Any:
    settings = make_settings(
        redis_url,
        EXOTEL_ACCOUNT_SID=ENV_SID,
        EXOTEL_API_KEY="envkey",
        EXOTEL_API_TOKEN=ENV_TOKEN,
        EXOTEL_CALLER_ID="08000000001",
        EXOTEL_API_URL="http://127.0.0.1:9",
    )
    return await aiohttp_client(create_app(settings))


async def test_no_response_and_no_log_line_carries_a_secret(
    app_client: Any, r: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[tuple[str, int, str]] = []

    async def hit(method: str, path: str, **kw: Any) -> Any:
        resp = await app_client.request(method, path, **kw)
        text = await resp.text()
        seen.append((f"{method} {path}", resp.status, text + str(dict(resp.headers))))
        return resp, text

    account = {
        "sid": REST_SID,
        "api_key": "restkey",
        "api_token": REST_TOKEN,
        "caller_id": "08000000002",
        "api_url": "http://127.0.0.1:9",
    }
    resp, _ = await hit("POST", "/v1/accounts", json=account, headers=AUTH)
    assert resp.status == 200
    # stored where workers read it, encrypted: the raw hash never holds the token
    assert load_account(r, REST_SID, KEYRING).api_token == REST_TOKEN
    assert load_account(r, ENV_SID, KEYRING).api_token == ENV_TOKEN
    for sid, token in ((REST_SID, REST_TOKEN), (ENV_SID, ENV_TOKEN)):
        raw = r.hgetall(keys.account(sid))
        assert "api_token" not in raw and token not in str(raw)
    resp, text = await hit(
        "POST",
        "/v1/campaigns",
        headers=AUTH,
        json={
            "account": REST_SID,
            "bot": "echo",
            "name": "leak-check",
            "contacts": [{"to": "+919876543210"}, {"to": "+919876543211"}, {"to": "bad"}],
        },
    )
    assert resp.status == 201, text
    cid = (await resp.json())["id"]

    for sid in (ENV_SID, REST_SID):
        await hit("GET", f"/v1/accounts/{sid}", headers=AUTH)
        await hit("POST", f"/v1/accounts/{sid}/resume", headers=AUTH)
    await hit("GET", f"/v1/campaigns/{cid}", headers=AUTH)
    await hit("GET", f"/v1/campaigns/{cid}/calls", headers=AUTH)
    await hit("GET", f"/v1/campaigns/{cid}/calls", headers=AUTH, params={"format": "csv"})
    for action in ("pause", "resume", "cancel", "resume"):
        await hit("POST", f"/v1/campaigns/{cid}/{action}", headers=AUTH)
    await hit("GET", "/metrics")
    await hit("GET", "/healthz")
    await hit("GET", "/v1/openapi.json")

    # Error paths, some of them carrying a secret in the request itself.
    await hit("GET", f"/v1/accounts/{REST_SID}")  # 401
    await hit("GET", f"/v1/accounts/{REST_SID}", headers={"Authorization": f"Bearer {SECRET}"})
    await hit("GET", f"/v1/accounts/{REST_SID}", headers={"Authorization": f"Basic {API_KEY}"})
    await hit("GET", "/v1/accounts/nobody", headers=AUTH)  # 404
    await hit("GET", "/v1/campaigns/nope/calls", headers=AUTH)
    await hit("GET", f"/v1/campaigns/{cid}/calls", headers=AUTH, params={"limit": "x"})
    await hit("POST", "/v1/accounts", headers=AUTH, json=account | {"sid": "bad sid!"})
    await hit("POST", "/v1/accounts", headers=AUTH, json=account | {"region": "sg"})
    await hit("POST", "/v1/accounts", headers=AUTH, json=account | {"api_token": REST_TOKEN * 9})
    await hit("POST", "/v1/accounts", headers=AUTH, json=account | {"extra": ENV_TOKEN})
    await hit("POST", "/v1/accounts", headers=AUTH, json=[REST_TOKEN])
    await hit(
        "POST",
        "/v1/accounts",
        headers=AUTH,
        data=f"{{{REST_TOKEN}",
    )
    await hit("POST", "/v1/campaigns", headers=AUTH, json={"account": REST_SID})
    await hit(
        "POST",
        "/v1/campaigns",
        headers=AUTH,
        json={"account": "nobody", "contacts": [{"to": ENV_TOKEN}]},
    )
    await hit(
        "POST",
        "/v1/campaigns",
        headers=AUTH,
        json={"account": REST_SID, "contacts": [{"to": API_KEY}]},
    )
    await hit("POST", f"/v1/campaigns/{cid}/pause", headers=AUTH)
    await hit("POST", f"/exotel/status/{cid}-0", params={"sig": "0" * 40}, json={})
    await hit(
        "POST",
        f"/exotel/status/{cid}-0",
        params=cb(f"{cid}-0"),
        data=f"{{{SECRET}",
        headers={"Content-Type": "application/json"},
    )
    await hit(
        "POST",
        f"/exotel/status/{cid}-0",
        params=cb(f"{cid}-0"),
        json={"CallSid": API_KEY, "Status": "ringing"},
    )
    await hit("POST", "/exotel/status/zzzz0000-1", params=cb("zzzz0000-1"), json={})

    statuses = {status for _, status, _ in seen}
    assert {200, 201, 401, 404, 422} <= statuses, statuses  # the error paths were reached
    assert max(statuses) < 500, [(w, s) for w, s, _ in seen if s >= 500]
    for what, status, text in seen:
        assert not leaks(text), (what, status, leaks(text))
    logged = caplog.text + "\n".join(
        f"{rec.getMessage()} {rec.exc_text or ''} {rec.__dict__}" for rec in caplog.records
    )
    assert caplog.records  # logging was captured at all
    assert not leaks(logged), leaks(logged)


def test_reprs_never_show_secrets() -> None:
    settings = load_settings(
        REDIS_URL="redis://127.0.0.1:6379/9",
        DIALER_SECRET=SECRET,
        DIALER_API_KEY=API_KEY,
        EXOTEL_ACCOUNT_SID=ENV_SID,
        EXOTEL_API_KEY="envkey",
        EXOTEL_API_TOKEN=ENV_TOKEN,
    )
    account = make_account(REST_SID, "restkey", REST_TOKEN, "0800", api_url="http://127.0.0.1:9")
    client = DialerClient("http://127.0.0.1:9", API_KEY)
    exotel = ExotelClient(
        REST_SID, "restkey", REST_TOKEN, base_url=f"https://restkey:{REST_TOKEN}@api.exotel.com"
    )
    try:
        for obj in (settings, account, client, exotel):
            for text in (repr(obj), str(obj), f"{obj!r:>10}"):
                assert not leaks(text), (type(obj).__name__, leaks(text))
        assert not leaks(str(settings.model_dump()))
        assert not leaks(settings.model_dump_json())
        assert not leaks(str(account.public()))
        assert not leaks(exotel.base_url)
    finally:
        client.close()
        exotel.close()


def test_a_config_error_does_not_echo_secrets() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            DIALER_SECRET=SECRET,
            DIALER_API_KEY=API_KEY,
            EXOTEL_API_TOKEN=ENV_TOKEN,
            DIALER_PORT="not-a-port",
            STREAMER_PUBLIC_URL=f"http://{API_KEY}",
        )
    assert "DIALER_PORT" in str(info.value)
    assert not leaks(str(info.value)), leaks(str(info.value))


async def test_credentials_inside_api_url_are_never_echoed(app_client: Any) -> None:
    account = {
        "sid": REST_SID,
        "api_key": "restkey",
        "api_token": REST_TOKEN,
        "caller_id": "08000000002",
        "api_url": f"https://restkey:{REST_TOKEN}@api.exotel.com",
    }
    resp = await app_client.post("/v1/accounts", json=account, headers=AUTH)
    texts = [await resp.text()]
    if resp.status == 200:
        texts.append(await (await app_client.get(f"/v1/accounts/{REST_SID}", headers=AUTH)).text())
    else:
        assert resp.status == 422  # refusing such a URL is a fine fix too
    for text in texts:
        assert not leaks(text), text

"""The REST API in-process on a real Redis: contract shapes, errors, OpenAPI coverage."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from dialer.receiver.app import create_app
from dialer.settings import load_settings

KEY = "rest-test-api-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def client(redis_url: str, aiohttp_client: Any) -> TestClient:
    settings = load_settings(
        REDIS_URL=redis_url, DIALER_API_KEY=KEY, DIALER_SECRET="rest-test-secret-123"
    )
    return await aiohttp_client(create_app(settings))


async def register(client: TestClient) -> None:
    resp = await client.post(
        "/v1/accounts",
        headers=AUTH,
        json={
            "sid": "acme",
            "api_key": "k",
            "api_token": "tok-secret-xyz",
            "caller_id": "0800",
            "api_url": "http://127.0.0.1:9",
            "max_concurrent_calls": 2,
        },
    )
    assert resp.status == 200, await resp.text()
    assert "tok-secret-xyz" not in await resp.text()


async def test_campaign_round_trip(client: TestClient) -> None:
    await register(client)
    csv_body = "to,name\n+919876543210,A\nbogus,B\n+919876543211,C\n+919876543210,dup\n"
    resp = await client.post(
        "/v1/campaigns?account=acme&bot=echo&max_attempts=2",
        data=csv_body,
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    body = await resp.json()
    assert resp.status == 201, body
    assert body["accepted"] == 2 and body["duplicates"] == 1
    assert body["rejected"] == [{"line": 3, "reason": body["rejected"][0]["reason"]}]
    cid = body["id"]
    status = await (await client.get(f"/v1/campaigns/{cid}", headers=AUTH)).json()
    assert {"id", "state", "total", "counts", "outcomes"} <= set(status)
    assert status["total"] == 2 and status["state"] == "running"
    page = await (await client.get(f"/v1/campaigns/{cid}/calls?limit=1", headers=AUTH)).json()
    assert len(page["calls"]) == 1 and page["next_offset"] == 1
    call = page["calls"][0]
    assert {"to", "vars", "outcome", "attempts", "answers"} <= set(call)
    assert call["vars"] == {"name": "A"}
    csv_text = await (
        await client.get(f"/v1/campaigns/{cid}/calls?format=csv", headers=AUTH)
    ).text()
    # the contact's own columns come right after "to"
    assert csv_text.splitlines()[0].startswith("id,to,name,state,outcome")
    assert csv_text.splitlines()[1].split(",")[:3] == [page["calls"][0]["id"], "+919876543210", "A"]
    for action, state in (("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")):
        resp = await client.post(f"/v1/campaigns/{cid}/{action}", headers=AUTH)
        assert (await resp.json())["state"] == state
    resp = await client.post(f"/v1/campaigns/{cid}/resume", headers=AUTH)
    assert resp.status == 409


async def test_dry_run_queues_nothing(client: TestClient) -> None:
    await register(client)
    resp = await client.post(
        "/v1/campaigns?dry_run=1",
        headers=AUTH,
        json={"account": "acme", "contacts": [{"to": "+919876543210"}, {"to": "x"}]},
    )
    body = await resp.json()
    assert resp.status == 200 and body["id"] is None and body["accepted"] == 1


async def test_validation_errors_name_fields(client: TestClient) -> None:
    await register(client)
    resp = await client.post(
        "/v1/campaigns",
        headers=AUTH,
        json={"account": "acme", "contacts": [], "max_attempts": 0, "surprise": 1},
    )
    body = await resp.json()
    assert resp.status == 422
    fields = {d["field"] for d in body["detail"]}
    assert {"max_attempts", "surprise"} <= fields
    resp = await client.post(
        "/v1/campaigns",
        headers=AUTH,
        json={"account": "nobody", "contacts": [{"to": "+919876543210"}]},
    )
    assert resp.status == 422 and (await resp.json())["detail"][0]["field"] == "account"
    resp = await client.post(
        "/v1/campaigns",
        headers=AUTH,
        json={
            "account": "acme",
            "bot": "survey:/nonexistent.json",
            "contacts": [{"to": "+919876543210"}],
        },
    )
    assert resp.status == 422
    resp = await client.get("/v1/campaigns/000000000000", headers=AUTH)
    assert resp.status == 404


async def test_openapi_lists_every_route(client: TestClient) -> None:
    doc = await (await client.get("/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    validate(doc)  # a valid OpenAPI document, every $ref resolving
    for route in client.app.router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical if route.resource else ""
        assert path in doc["paths"], path
        assert route.method.lower() in doc["paths"][path], (route.method, path)


async def test_health_and_metrics(client: TestClient) -> None:
    await register(client)
    assert (await client.get("/healthz")).status == 200
    text = await (await client.get("/metrics")).text()
    assert "dialer_slots_in_use" in text and "tok-secret-xyz" not in text


async def test_window_text_form_and_typos_over_rest(client: TestClient) -> None:
    """The CLI's grammar, through REST: text accepted and stored as the object form."""
    await register(client)
    ok = await client.post(
        "/v1/campaigns?dry_run=1",
        headers=AUTH,
        json={
            "account": "acme",
            "contacts": [{"to": "+919876543210"}],
            "window": "mon-fri 9:00-17:00",
        },
    )
    assert ok.status == 200, await ok.text()
    for window in ("mon-fri 9-5", {"days": "mon-fir"}, {"days": "mon", "begin": "09:00"}):
        resp = await client.post(
            "/v1/campaigns",
            headers=AUTH,
            json={"account": "acme", "contacts": [{"to": "+919876543210"}], "window": window},
        )
        body = await resp.json()
        assert resp.status == 422, body
        (detail,) = body["detail"]
        assert detail["field"] == "window" and "accepted forms:" in detail["message"]
        assert "tuple.index" not in detail["message"] and "isoformat" not in detail["message"]


async def test_one_wording_for_bad_numbers_in_csv_json_and_dnc(client: TestClient) -> None:
    await register(client)
    csv_resp = await client.post(
        "/v1/campaigns?account=acme&dry_run=1",
        data="to\nabc\n12\n\n",
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    json_resp = await client.post(
        "/v1/campaigns?dry_run=1",
        headers=AUTH,
        json={"account": "acme", "contacts": [{"to": "abc"}, {"to": "12"}, {"to": ""}]},
    )
    dnc_resp = await client.post(
        "/v1/accounts/acme/dnc", headers=AUTH, json={"numbers": ["abc", "12", "", 9876543210]}
    )
    from_csv = [r["reason"] for r in (await csv_resp.json())["rejected"]]
    from_json = [r["reason"] for r in (await json_resp.json())["rejected"]]
    from_dnc = [r["reason"] for r in (await dnc_resp.json())["rejected"]]
    assert from_csv == from_json[:2] == from_dnc[:2]
    assert from_csv[0] == "to: 'abc' is not a valid phone number"
    assert from_json[2] == from_dnc[2] == "to: missing phone number"
    # a JSON number lost its leading + or 0: refused per item, not a 422 for the request
    assert "is not a valid phone number" in from_dnc[3] and "as text" in from_dnc[3]
    for reason in from_csv + from_json + from_dnc:
        assert "(1)" not in reason and "did not seem" not in reason


async def test_binary_contacts_get_a_printable_excerpt(client: TestClient) -> None:
    await register(client)
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    resp = await client.post(
        "/v1/campaigns?account=acme",
        data=png,
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    body = await resp.json()
    assert resp.status == 422, body
    text = body["error"] + "".join(d["message"] for d in body["detail"])
    assert "not CSV text" in text and "\\x00" in text
    assert text.isprintable()

"""The REST API in-process on a real Redis: contract shapes, errors, OpenAPI coverage."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from dialer.receiver.api import render_metrics
from dialer.receiver.app import create_app
from dialer.settings import load_settings

KEY = "rest-test-api-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def client(redis_url: str, aiohttp_client: Any) -> TestClient:
    settings = load_settings(
        REDIS_URL=redis_url,
        DIALER_API_KEY=KEY,
        DIALER_SECRET="rest-test-secret-123",
        DIALER_EGRESS_ALLOW="127.0.0.0/8",  # accounts point at a loopback sandbox
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
    assert csv_text.splitlines()[0].startswith("id,to,state,outcome")
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
    assert (await client.get("/metrics")).status == 404  # internal port only (dialer.scrape)
    text = (await render_metrics(client.server.app)).text or ""
    assert "dialer_slots_in_use" in text and "tok-secret-xyz" not in text

"""The REST API in-process on a real Redis: contract shapes, errors, OpenAPI coverage."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from dialer.receiver.api import render_metrics
from dialer.receiver.app import create_app
from tests.support.signing import API_KEY, make_settings

KEY = API_KEY
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def client(redis_url: str, aiohttp_client: Any) -> TestClient:
    # accounts point at a loopback sandbox: make_settings allows loopback egress
    return await aiohttp_client(create_app(make_settings(redis_url)))


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
    assert resp.status == 400  # a server path: never read (dialer.core.surveys)
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
        if path == "/ui" or path.startswith("/ui/"):
            continue  # the dashboard's pages and views, not the REST API
        assert path in doc["paths"], path
        assert route.method.lower() in doc["paths"][path], (route.method, path)


async def test_health_and_metrics(client: TestClient) -> None:
    await register(client)
    assert (await client.get("/healthz")).status == 200
    assert (
        await client.get("/metrics")
    ).status == 404  # internal port only (dialer.platform.scrape)
    text = (await render_metrics(client.server.app)).text or ""
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


@pytest.mark.parametrize(
    "query", ["limit=-1", "limit=0", "limit=1001", "offset=abc", "offset=-3", "format=xml", "x=1"]
)
async def test_bad_paging_is_400_naming_the_parameter(client: TestClient, query: str) -> None:
    await register(client)
    resp = await client.post(
        "/v1/campaigns",
        headers=AUTH,
        json={"account": "acme", "contacts": [{"to": "+919876543210"}]},
    )
    cid = (await resp.json())["id"]
    for path in (f"/v1/campaigns/{cid}/calls", "/v1/campaigns"):
        resp = await client.get(f"{path}?{query}", headers=AUTH)
        body = await resp.json()
        assert resp.status == 400, (path, body)
        assert body["detail"] and body["detail"][0]["field"].startswith("query."), body


async def test_list_campaigns_pages_and_filters(client: TestClient) -> None:
    await register(client)
    ids = []
    for n in range(3):
        resp = await client.post(
            "/v1/campaigns",
            headers=AUTH,
            json={"account": "acme", "name": f"c{n}", "contacts": [{"to": f"+91987654321{n}"}]},
        )
        ids.append((await resp.json())["id"])
    await client.post(f"/v1/campaigns/{ids[0]}/pause", headers=AUTH)
    page = await (await client.get("/v1/campaigns?limit=2", headers=AUTH)).json()
    assert page["total"] == 3 and len(page["campaigns"]) == 2 and page["next_offset"] == 2
    rest = await (await client.get("/v1/campaigns?offset=2", headers=AUTH)).json()
    seen = [c["id"] for c in page["campaigns"] + rest["campaigns"]]
    assert sorted(seen) == sorted(ids) and rest["next_offset"] is None
    paused = await (await client.get("/v1/campaigns?state=paused", headers=AUTH)).json()
    assert [c["id"] for c in paused["campaigns"]] == [ids[0]] and paused["total"] == 1
    other = await (await client.get("/v1/campaigns?account=nobody", headers=AUTH)).json()
    assert other["campaigns"] == [] and other["total"] == 0


async def test_accounts_put_replaces_patch_keeps_unnamed_fields(client: TestClient) -> None:
    await register(client)  # api_url http://127.0.0.1:9, max_concurrent_calls 2
    resp = await client.patch("/v1/accounts/acme", headers=AUTH, json={"calls_per_minute": 7})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["calls_per_minute"] == 7 and body["max_concurrent_calls"] == 2
    assert body["api_url"] == "http://127.0.0.1:9"
    # a re-post (register) without api_url keeps the stored one
    resp = await client.post(
        "/v1/accounts",
        headers=AUTH,
        json={"sid": "acme", "api_key": "k2", "api_token": "t2", "caller_id": "0801"},
    )
    body = await resp.json()
    assert body["api_url"] == "http://127.0.0.1:9" and body["calls_per_minute"] == 7
    assert body["caller_id"] == "0801"
    # null is not "reset": omit the field to keep it, PUT to replace
    resp = await client.patch("/v1/accounts/acme", headers=AUTH, json={"api_url": None})
    assert resp.status == 422
    resp = await client.put(
        "/v1/accounts/acme",
        headers=AUTH,
        json={"api_key": "k3", "api_token": "t3", "caller_id": "0802", "region": "in"},
    )
    body = await resp.json()
    assert resp.status == 200 and body["max_concurrent_calls"] == 10, body
    assert body["api_url"] != "http://127.0.0.1:9" and "t3" not in await resp.text()
    resp = await client.put(
        "/v1/accounts/fresh",
        headers=AUTH,
        json={"api_key": "k", "api_token": "t", "caller_id": "0803"},
    )
    assert resp.status == 201
    resp = await client.patch("/v1/accounts/nobody", headers=AUTH, json={"caller_id": "1"})
    assert resp.status == 404 and (await resp.json())["error"]


async def test_every_error_has_the_problem_body(client: TestClient) -> None:
    await register(client)
    cases = [
        (
            "POST",
            "/v1/accounts",
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        (
            "POST",
            "/v1/accounts",
            {"data": b"<x/>", "headers": {"Content-Type": "application/xml"}},
            415,
        ),
        ("POST", "/v1/campaigns", {"json": {"account": "acme"}}, 422),  # neither contacts nor csv
        ("GET", "/v1/nowhere", {}, 404),
        ("DELETE", "/v1/accounts", {}, 405),
    ]
    for method, path, kw, status in cases:
        headers = {**AUTH, **kw.pop("headers", {})}
        resp = await client.request(method, path, headers=headers, **kw)
        body = await resp.json()
        assert resp.status == status, (path, body)
        assert isinstance(body["error"], str) and isinstance(body["detail"], list), body
    resp = await client.get("/v1/campaigns")
    assert resp.status == 401 and (await resp.json())["error"]


async def test_one_error_schema_and_links_in_the_document(client: TestClient) -> None:
    doc = await (await client.get("/v1/openapi.json")).json()
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["operationId"] and op["responses"], (method, path)
            for status, rep in op["responses"].items():
                if int(status) >= 400 and not (path.endswith("z") and status == "503"):
                    # health probes answer 503 with their own body; every error else is Problem
                    assert rep["content"]["application/json"]["schema"] == problem, (
                        method,
                        path,
                        status,
                    )
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}
    created = doc["paths"]["/v1/campaigns"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in created.values()} >= {
        "getCampaign",
        "listCalls",
        "pauseCampaign",
        "resumeCampaign",
        "cancelCampaign",
    }
    query = {p["name"] for p in doc["paths"]["/v1/campaigns/{id}/calls"]["get"]["parameters"]}
    assert {"offset", "limit", "format"} <= query
    post = doc["paths"]["/v1/campaigns"]["post"]
    assert {"dry_run", "account"} <= {p["name"] for p in post["parameters"]}
    assert {"application/json", "text/csv"} <= set(post["requestBody"]["content"])
    campaign = doc["components"]["schemas"]["CampaignIn"]
    assert campaign["oneOf"] == [{"required": ["contacts"]}, {"required": ["csv"]}]


async def test_bodies_are_checked_strictly_as_the_schema_says(client: TestClient) -> None:
    await register(client)
    # JSON Schema's integer includes 3.0; 0 is not a boolean, "5" is not an integer
    resp = await client.patch("/v1/accounts/acme", headers=AUTH, json={"calls_per_minute": 30.0})
    assert resp.status == 200 and (await resp.json())["calls_per_minute"] == 30
    for body in ({"calls_per_minute": "5"}, {"caller_ids": [1]}):
        resp = await client.patch("/v1/accounts/acme", headers=AUTH, json=body)
        assert resp.status == 422, body
    resp = await client.post(
        "/v1/campaigns",
        headers=AUTH,
        json={"account": "acme", "contacts": [{"to": "+919876543210"}], "record": 0},
    )
    assert resp.status == 422 and (await resp.json())["detail"][0]["field"] == "record"


def test_api_url_pattern_follows_the_egress_policy() -> None:
    import re

    from dialer.core.egress import EgressPolicy
    from dialer.receiver.api import api_url_pattern

    pattern = re.compile(api_url_pattern(EgressPolicy.parse("sandbox.local,127.0.0.1")))
    for url in ("https://api.exotel.com", "HTTPS://API.in.exotel.com/v1/", "http://127.0.0.1:9"):
        assert pattern.match(url), url
    for url in ("http://api.exotel.com", "https://api.exotel.com.evil.io/", "http://10.0.0.1"):
        assert not pattern.match(url), url
    assert pattern.match("https://sandbox.local:8443/x")

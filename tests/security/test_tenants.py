"""Tenants apart: an API key sees and changes only its own accounts' campaigns.

The attack from the issue: one global API key, so any holder read every
campaign and overwrote any account, including the one registered from the
environment. Now keys are stored hashed in Redis, scoped to accounts; another
tenant's ids answer 404 exactly like missing ones; account and key management
need an admin key; ``DIALER_API_KEY`` stays the bootstrap admin key.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from dialer.store import apikeys, keys
from tests.support.seed import make_campaign, setup_account
from tests.support.signing import AUTH

A, B = "AC_tenant_a", "AC_tenant_b"


async def new_key(receiver: Any, **body: Any) -> tuple[str, str]:
    resp = await receiver.post("/v1/keys", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    out = await resp.json()
    return out["id"], out["key"]


@pytest.fixture
async def tenants(receiver: Any, r: redis.Redis) -> dict[str, Any]:
    setup_account(r, A)
    setup_account(r, B)
    _, key_a = await new_key(receiver, accounts=[A], label="crm-a")
    return {
        "a": {"Authorization": f"Bearer {key_a}"},
        "key_a": key_a,
        "cid_a": make_campaign(r, 1, account=A),
        "cid_b": make_campaign(r, 1, account=B),
    }


async def test_a_key_scoped_to_a_gets_404_for_bs_campaign(
    receiver: Any, tenants: dict[str, Any]
) -> None:
    a, cid_a, cid_b = tenants["a"], tenants["cid_a"], tenants["cid_b"]
    for method, path in (
        ("GET", "/v1/campaigns/{}"),
        ("GET", "/v1/campaigns/{}/calls"),
        ("GET", "/v1/campaigns/{}/calls?format=csv"),
        ("POST", "/v1/campaigns/{}/pause"),
        ("POST", "/v1/campaigns/{}/resume"),
        ("POST", "/v1/campaigns/{}/cancel"),
        ("DELETE", "/v1/campaigns/{}"),
    ):
        theirs = await receiver.request(method, path.format(cid_b), headers=a)
        missing = await receiver.request(method, path.format("zzzz0000"), headers=a)
        assert theirs.status == missing.status == 404, (method, path)
        assert await theirs.json() == await missing.json()  # nothing tells them apart
    own = await receiver.get(f"/v1/campaigns/{cid_a}", headers=a)
    assert own.status == 200
    # B's campaign is untouched, and the admin key still sees it
    theirs = await receiver.get(f"/v1/campaigns/{cid_b}", headers=AUTH)
    assert theirs.status == 200 and (await theirs.json())["state"] == "running"


async def test_a_scoped_key_lists_and_reaches_only_its_accounts(
    receiver: Any, tenants: dict[str, Any]
) -> None:
    a = tenants["a"]
    listed = await (await receiver.get("/v1/campaigns", headers=a)).json()
    assert [c["id"] for c in listed["campaigns"]] == [tenants["cid_a"]]
    only_b = await (await receiver.get(f"/v1/campaigns?account={B}", headers=a)).json()
    assert only_b["campaigns"] == [] and only_b["total"] == 0
    assert (await receiver.get(f"/v1/accounts/{A}", headers=a)).status == 200
    for path in (f"/v1/accounts/{B}", f"/v1/accounts/{B}/webhook-key"):
        assert (await receiver.get(path, headers=a)).status == 404
    for path in (f"/v1/accounts/{B}/resume", f"/v1/accounts/{B}/webhook-key/rotate"):
        assert (await receiver.post(path, headers=a)).status == 404
    dnc = await receiver.post(
        f"/v1/accounts/{B}/dnc", json={"numbers": ["+919876500001"]}, headers=a
    )
    assert dnc.status == 404
    # submitting for B is answered exactly like submitting for an unregistered account
    body = {"bot": "echo", "contacts": [{"to": "+919876500001"}]}
    theirs = await receiver.post("/v1/campaigns", json={**body, "account": B}, headers=a)
    ghost = await receiver.post("/v1/campaigns", json={**body, "account": "AC_ghost"}, headers=a)
    assert theirs.status == ghost.status == 422
    assert (await theirs.text()).replace(B, "X") == (await ghost.text()).replace("AC_ghost", "X")
    mine = await receiver.post("/v1/campaigns", json={**body, "account": A}, headers=a)
    assert mine.status == 201


async def test_only_admin_keys_manage_accounts_and_keys(
    receiver: Any, r: redis.Redis, tenants: dict[str, Any]
) -> None:
    a = tenants["a"]
    account = {"api_key": "k", "api_token": "t", "caller_id": "0800", "region": "in"}
    before = r.hgetall(keys.account(A))
    for method, path, body in (
        ("POST", "/v1/accounts", {**account, "sid": A}),
        ("PUT", f"/v1/accounts/{A}", account),
        ("PATCH", f"/v1/accounts/{A}", {"caller_id": "0999"}),
        ("POST", "/v1/keys", {"accounts": [B]}),
        ("GET", "/v1/keys", None),
        ("DELETE", "/v1/keys/0123456789ab", None),
    ):
        resp = await receiver.request(method, path, json=body, headers=a)
        assert resp.status == 403, (method, path, await resp.text())
    assert r.hgetall(keys.account(A)) == before
    _, admin = await new_key(receiver, admin=True)
    listed = await receiver.get("/v1/keys", headers={"Authorization": f"Bearer {admin}"})
    assert listed.status == 200 and len((await listed.json())["keys"]) == 2


async def test_keys_are_stored_hashed_and_revocable(
    receiver: Any, r: redis.Redis, tenants: dict[str, Any]
) -> None:
    key_a = tenants["key_a"]
    dump = str({k: r.dump(k) for k in r.keys("dl:apikey*")})
    assert key_a not in dump and key_a.split("_")[-1] not in dump
    listed = await (await receiver.get("/v1/keys", headers=AUTH)).json()
    (record,) = listed["keys"]
    assert record["accounts"] == [A] and record["label"] == "crm-a" and "key" not in record
    assert "digest" not in record and apikeys.digest(key_a) not in str(listed)
    resp = await receiver.delete(f"/v1/keys/{record['id']}", headers=AUTH)
    assert resp.status == 200
    gone = await receiver.get(f"/v1/campaigns/{tenants['cid_a']}", headers=tenants["a"])
    assert gone.status == 401
    assert (await receiver.delete(f"/v1/keys/{record['id']}", headers=AUTH)).status == 404


@pytest.mark.parametrize(
    "header",
    [
        "Bearer dk_0123456789ab_forged",
        "Bearer dk_",
        "Bearer " + "dk_0123456789ab_" + "x" * 43,
        "Basic dk_0123456789ab_x",
        "Bearer ",
    ],
)
async def test_made_up_keys_get_401(receiver: Any, tenants: dict[str, Any], header: str) -> None:
    resp = await receiver.get(
        f"/v1/campaigns/{tenants['cid_a']}", headers={"Authorization": header}
    )
    assert resp.status == 401


async def test_a_real_keys_id_with_another_secret_gets_401(
    receiver: Any, tenants: dict[str, Any]
) -> None:
    """The id a key names only says where to look: the digest of the whole key decides."""
    _, key_b = await new_key(receiver, accounts=[B], label="crm-b")
    id_a = apikeys.key_id_of(tenants["key_a"])
    assert id_a is not None
    for forged in (
        f"dk_{id_a}_" + key_b.split("_", 2)[2],  # another real key's secret under A's id
        tenants["key_a"][:-1] + ("A" if tenants["key_a"][-1] != "A" else "B"),
    ):
        resp = await receiver.get(
            f"/v1/campaigns/{tenants['cid_a']}", headers={"Authorization": f"Bearer {forged}"}
        )
        assert resp.status == 401


async def test_key_routes_are_in_the_openapi_document(receiver: Any) -> None:
    doc = await (await receiver.get("/v1/openapi.json")).json()
    assert {"post", "get"} <= set(doc["paths"]["/v1/keys"])
    assert "delete" in doc["paths"]["/v1/keys/{key_id}"]
    assert "403" in doc["paths"]["/v1/keys"]["post"]["responses"]
    assert "get" in doc["paths"]["/v1/accounts/{sid}/webhook-key"]
    assert "post" in doc["paths"]["/v1/accounts/{sid}/webhook-key/rotate"]


def test_every_campaign_and_account_route_declares_whose_it_is() -> None:
    """The scope check is in the declaration, so a new route cannot forget it:
    a path naming a campaign is checked by the campaign's account, one naming an
    account by that account (or needs an admin key), and every keyed route says."""
    from dialer.receiver.api import ADMIN, ANY_KEY, BY_ACCOUNT, BY_CAMPAIGN
    from dialer.receiver.openapi import API

    keyed = [r for r in API.routes if r.auth]
    assert len(keyed) >= 15
    for route in keyed:
        names = set(route.path_names())
        want = {BY_CAMPAIGN} if "id" in names else {BY_ACCOUNT, ADMIN} if "sid" in names else None
        assert route.scope is not None, route.path
        if want is not None:
            assert route.scope in want, (route.method, route.path, route.scope.name)
        elif route.path.startswith(("/v1/campaigns", "/v1/accounts")):
            assert route.scope in {ANY_KEY, ADMIN}, (route.method, route.path)


async def test_every_route_naming_another_tenants_id_answers_as_for_a_missing_one(
    receiver: Any, tenants: dict[str, Any]
) -> None:
    """Every declared route, present and future: B's ids look exactly like missing ones."""
    from dialer.receiver.openapi import API

    checked = 0
    for route in API.routes:
        names = route.path_names()
        if not route.auth or not ({"id", "sid"} & set(names)):
            continue
        theirs = route.path.replace("{id}", tenants["cid_b"]).replace("{sid}", B)
        missing = route.path.replace("{id}", "zzzz0000").replace("{sid}", "AC_missing")
        got = []
        for path in (theirs, missing):
            resp = await receiver.request(route.method, path, headers=tenants["a"], json={})
            got.append(
                (resp.status, (await resp.text()).replace(B, "X").replace("AC_missing", "X"))
            )
        assert got[0] == got[1], (route.method, route.path, got)
        assert got[0][0] >= 400, (route.method, route.path, got)
        checked += 1
    assert checked >= 10

"""One key per trust boundary: what a webhook consumer holds forges nothing.

The attack from the issue: one secret signed callback URLs, stream tokens and
customer webhooks, and the README told webhook consumers to verify with it,
so every webhook receiver could forge callbacks and stream tokens. Now the
customer holds only their account's webhook key; callback and stream keys are
derived from the master secret under other labels. Callback signatures also
bind the attempt, so a URL of attempt 1 cannot move attempt 2.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from dialer.core import tokens
from dialer.core.keyring import PURPOSES, Keyring, derive
from dialer.store import keys
from streamer.app import create_app as create_streamer
from tests.support.callbacks import terminal_body
from tests.support.seed import ACCOUNT, exotel_sid, make_campaign, place_calls, setup_account
from tests.support.signing import AUTH, SECRET, cb, make_settings
from tests.support.state import call_state, snapshot
from tests.support.stream import play


def terminal(call_id: str, sid: str, attempt: int = 1) -> dict[str, str]:
    return terminal_body(call_id, sid) | {"CustomField": f"{call_id}:{attempt}"}


def test_derived_keys_differ_per_purpose_and_from_the_master() -> None:
    derived = {p: derive(SECRET.encode(), p) for p in PURPOSES}
    assert len(set(derived.values())) == len(PURPOSES)
    assert SECRET.encode() not in derived.values()
    with pytest.raises(ValueError):
        derive(SECRET.encode(), "webhook")


async def webhook_key(receiver: Any) -> str:
    resp = await receiver.get(f"/v1/accounts/{ACCOUNT}/webhook-key", headers=AUTH)
    assert resp.status == 200
    key = (await resp.json())["webhook_key"]
    assert isinstance(key, str) and len(key) >= 32
    return key


async def test_a_webhook_key_cannot_forge_a_callback(receiver: Any, r: redis.Redis) -> None:
    setup_account(r)
    cid = make_campaign(r, 1, max_attempts=1)
    (call_id,) = place_calls(r, cid)
    key = await webhook_key(receiver)
    before = snapshot(r, cid)
    for forging_key in (key.encode(), SECRET.encode()):  # the customer's, and the master itself
        forged = {"attempt": "1", "sig": tokens.callback_sig(forging_key, call_id, 1)}
        resp = await receiver.post(
            f"/exotel/status/{call_id}", params=forged, data=terminal(call_id, "CAx")
        )
        assert resp.status == 403
    assert snapshot(r, cid) == before


async def test_a_webhook_key_cannot_forge_a_stream_token(
    receiver: Any,
    r: redis.Redis,
    redis_url: str,
    aiohttp_client: Callable[..., Awaitable[Any]],
) -> None:
    setup_account(r)
    cid = make_campaign(r, 1, max_attempts=1)
    (call_id,) = place_calls(r, cid)
    key = await webhook_key(receiver)
    streamer = await aiohttp_client(create_streamer(make_settings(redis_url)))
    for forging_key in (key.encode(), SECRET.encode(), Keyring.from_secret(b"x" * 40).stream):
        token = tokens.stream_token(forging_key, call_id, 1, 2**40)
        assert await play(streamer, call_id, token) == 1008
    assert "stream_sid" not in r.hgetall(keys.call(ACCOUNT, call_id))


async def test_a_callback_url_is_bound_to_its_attempt(receiver: Any, r: redis.Redis) -> None:
    setup_account(r)
    cid = make_campaign(r, 1, max_attempts=3)
    (call_id,) = place_calls(r, cid)
    sid = exotel_sid(r, call_id)
    before = snapshot(r, cid)
    # attempt 1's signature, presented as another attempt's: refused outright
    replayed = {"attempt": "2", "sig": cb(call_id, attempt=1)["sig"]}
    resp = await receiver.post(
        f"/exotel/status/{call_id}", params=replayed, data=terminal(call_id, sid, 2)
    )
    assert resp.status == 403
    # a body naming another attempt than the signed URL is not trusted
    resp = await receiver.post(
        f"/exotel/status/{call_id}", params=cb(call_id, 1), data=terminal(call_id, sid, 2)
    )
    assert resp.status == 200 and "ignored" in await resp.json()
    # a validly signed URL of an attempt that is not current changes nothing
    resp = await receiver.post(
        f"/exotel/status/{call_id}", params=cb(call_id, 2), data=terminal(call_id, sid, 2)
    )
    assert resp.status == 200
    assert snapshot(r, cid) == before
    # the URL of the current attempt settles it
    resp = await receiver.post(
        f"/exotel/status/{call_id}", params=cb(call_id, 1), data=terminal(call_id, sid, 1)
    )
    assert resp.status == 200 and call_state(r, call_id)[1].value == "completed"


async def test_webhook_keys_are_per_account_and_rotate(receiver: Any, r: redis.Redis) -> None:
    setup_account(r)
    setup_account(r, "AC_other")
    first = await webhook_key(receiver)
    other = await receiver.get("/v1/accounts/AC_other/webhook-key", headers=AUTH)
    assert (await other.json())["webhook_key"] != first
    resp = await receiver.post(f"/v1/accounts/{ACCOUNT}/webhook-key/rotate", headers=AUTH)
    rotated = (await resp.json())["webhook_key"]
    assert resp.status == 200 and rotated != first
    assert await webhook_key(receiver) == rotated
    missing = await receiver.post("/v1/accounts/AC_none/webhook-key/rotate", headers=AUTH)
    assert missing.status == 404 and not r.exists(keys.account("AC_none"))
    # stored encrypted: the raw record never holds the key
    assert rotated not in str(r.hgetall(keys.account(ACCOUNT)))

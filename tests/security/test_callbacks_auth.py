"""Status callbacks are authenticated by the signed URL alone (``?sig=``).

A forged, missing or replayed signature gets 403 and changes nothing: not the
call hash, not the campaign counters, not the account's active set. Only the
refusal itself is recorded (``dl:rejects``).
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from dialer.store import keys
from tests.support.callbacks import terminal_body
from tests.support.seed import ACCOUNT, exotel_sid, make_campaign, place_calls, setup_account
from tests.support.signing import cb, sig
from tests.support.state import check_invariants, snapshot


@pytest.fixture
def calls(r: redis.Redis) -> tuple[str, list[str]]:
    setup_account(r)
    cid = make_campaign(r, 2, max_attempts=1)
    ids = place_calls(r, cid)
    assert len(ids) == 2
    return cid, ids


def forged_queries(call_id: str, other: str) -> dict[str, dict[str, str] | None]:
    good = sig(call_id)
    return {
        "missing": None,
        "empty": {"sig": ""},
        "forged": {"sig": "0" * len(good)},
        "other_secret": cb(call_id, secret="not-the-secret"),
        "replayed_from_other_call": cb(other),
        "truncated": {"sig": good[:-1]},
        "extended": {"sig": good + "0"},
        "uppercased": {"sig": good.upper()},
        "non_ascii": {"sig": good[:-1] + "é"},
    }


CASES = list(forged_queries("a-1", "a-2"))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("encoding", ["json", "form"])
async def test_bad_signature_is_403_and_changes_nothing(
    receiver: Any, r: redis.Redis, calls: tuple[str, list[str]], case: str, encoding: str
) -> None:
    cid, (call_id, other) = calls
    query = forged_queries(call_id, other)[case]
    body = terminal_body(call_id, exotel_sid(r, call_id))
    before = snapshot(r, cid)
    rejects_before = r.xlen(keys.REJECTS)
    url = f"/exotel/status/{call_id}"
    kw: dict[str, Any] = {"json": body} if encoding == "json" else {"data": body}
    resp = await receiver.post(url, params=query, **kw)
    assert resp.status == 403, await resp.text()
    assert snapshot(r, cid) == before
    assert r.xlen(keys.events(ACCOUNT)) == 0  # not even the audit stream of accepted callbacks
    assert r.xlen(keys.REJECTS) == rejects_before + 1
    check_invariants(r, cid)


async def test_signature_in_the_body_or_a_header_does_not_count(
    receiver: Any, r: redis.Redis, calls: tuple[str, list[str]]
) -> None:
    cid, (call_id, _) = calls
    before = snapshot(r, cid)
    body = terminal_body(call_id, exotel_sid(r, call_id)) | cb(call_id)
    for kw in (
        {"json": body},
        {"data": body},
        {"json": body, "headers": {"X-Signature": sig(call_id)}},
    ):
        resp = await receiver.post(f"/exotel/status/{call_id}", **kw)
        assert resp.status == 403
    assert snapshot(r, cid) == before


async def test_valid_signature_is_accepted_and_moves_the_call(
    receiver: Any, r: redis.Redis, calls: tuple[str, list[str]]
) -> None:
    cid, (call_id, other) = calls
    resp = await receiver.post(
        f"/exotel/status/{call_id}",
        params=cb(call_id),
        json=terminal_body(call_id, exotel_sid(r, call_id)),
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["ok"] is True
    h = r.hgetall(keys.call(ACCOUNT, call_id))
    assert h["state"] == "completed"
    assert call_id not in r.zrange(keys.active(ACCOUNT), 0, -1)
    # The other call is untouched, and still holds its slot.
    assert r.hget(keys.call(ACCOUNT, other), "state") == "placed"
    assert other in r.zrange(keys.active(ACCOUNT), 0, -1)
    check_invariants(r, cid)


async def test_valid_signature_form_encoded(
    receiver: Any, r: redis.Redis, calls: tuple[str, list[str]]
) -> None:
    cid, (call_id, _) = calls
    resp = await receiver.post(
        f"/exotel/status/{call_id}",
        params=cb(call_id),
        data=terminal_body(call_id, exotel_sid(r, call_id), "busy"),
    )
    assert resp.status == 200, await resp.text()
    assert r.hget(keys.call(ACCOUNT, call_id), "state") == "busy"
    check_invariants(r, cid)


async def test_a_signature_for_an_unknown_call_reveals_nothing_and_writes_nothing(
    receiver: Any, r: redis.Redis, calls: tuple[str, list[str]]
) -> None:
    cid, _ = calls
    before = snapshot(r, cid)
    ghost = f"{cid}-99"
    resp = await receiver.post(
        f"/exotel/status/{ghost}",
        params={"sig": "f" * 40},
        json={"CallSid": "x", "Status": "completed"},
    )
    assert resp.status == 403  # the signature is checked before the call is looked up
    resp = await receiver.post(
        f"/exotel/status/{ghost}",
        params=cb(ghost),
        json={"CallSid": "x", "Status": "completed"},
    )
    assert resp.status == 200  # a known campaign: recorded as stale, nothing applied
    assert snapshot(r, cid) == before
    resp = await receiver.post(
        "/exotel/status/zzzz9999-1",
        params=cb("zzzz9999-1"),
        json={"CallSid": "x", "Status": "completed"},
    )
    assert resp.status == 404
    assert not r.exists(keys.call(ACCOUNT, ghost))

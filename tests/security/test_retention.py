"""Retention and purge on a real Redis: personal data leaves when it should.

A finished campaign gets one absolute expiry on every key and Redis itself
deletes them (a short retention setting, real time); ``DELETE
/v1/campaigns/{id}`` removes a campaign's calls, answers, recording URLs,
raw callbacks and index entries at once, which a full ``SCAN`` of Redis
proves: nothing of it remains but the account's own keys, and another
campaign of the same account is untouched.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from dialer.core.calls import Event, Kind
from dialer.core.campaign import CampaignIn
from dialer.services.control import set_state
from dialer.services.ingest import create_campaign
from dialer.services.queries import status
from dialer.store import keys, retention
from dialer.store.campaigns import load_policy
from dialer.store.records import Leases, transition
from tests.support.broker import task_bodies
from tests.support.polling import wait_for
from tests.support.receiver import Client
from tests.support.seed import ACCOUNT, exotel_sid, make_campaign, place_calls, setup_account
from tests.support.signing import AUTH, cb

RECORDING = "https://recordings.example/rec-{}.mp3"
OTHER = "AC_other"


async def finish_by_callbacks(receiver: Client, r: redis.Redis, cid: str) -> list[str]:
    """Place every due call of the account; answer and end those of ``cid`` by callback."""
    ids = [i for i in place_calls(r, cid) if i.startswith(f"{cid}-")]
    for call_id in ids:
        r.hset(keys.call(ACCOUNT, call_id), "a:q1", "4")  # what the streamer records
        body = {
            "CallSid": exotel_sid(r, call_id),
            "Status": "completed",
            "EventType": "terminal",
            "CustomField": f"{call_id}:1",
            "ConversationDuration": "30",
            "RecordingUrl": RECORDING.format(call_id),
        }
        resp = await receiver.post(f"/exotel/status/{call_id}", params=cb(call_id), data=body)
        assert resp.status == 200, await resp.text()
    return ids


def everything(r: redis.Redis) -> dict[str, Any]:
    """Every key of the dialer's keyspace with its whole content (a SCAN, not a guess).

    Only ``dl:`` keys: the Celery broker's queues in the same database hold
    follow-up tasks (call ids only) until a worker takes them, and there is no
    worker in these tests.
    """
    out: dict[str, Any] = {}
    for key in r.scan_iter(match="dl:*", count=1000):
        kind = r.type(key)
        if kind == "hash":
            out[key] = r.hgetall(key)
        elif kind == "set":
            out[key] = sorted(r.smembers(key))
        elif kind == "zset":
            out[key] = r.zrange(key, 0, -1)
        elif kind == "stream":
            out[key] = r.xrange(key)
        elif kind == "list":
            out[key] = r.lrange(key, 0, -1)
        elif kind == "string":
            out[key] = r.get(key)
    return out


def traces(r: redis.Redis, cid: str, numbers: list[str]) -> list[str]:
    """Keys whose name or content mention the campaign or one of its numbers.

    The per-minute rate window is left out: it holds a dialled call's id (no
    number, no outcome) for at most 60 s, as dialer/store/retention.py says.
    """
    needles = [cid, *numbers]  # recording URLs and raw callbacks carry the call id
    return [
        key
        for key, value in everything(r).items()
        if key != keys.rate(ACCOUNT) and any(n in f"{key} {value}" for n in needles)
    ]


def campaign(r: redis.Redis, n: int, first: int, account: str = ACCOUNT) -> str:
    """A campaign of ``n`` contacts numbered from ``first`` (distinct across campaigns)."""
    contacts = [{"to": f"+9198766{i:05d}"} for i in range(first, first + n)]
    spec = CampaignIn(account=account, contacts=contacts, bot="echo", max_attempts=1)
    return str(create_campaign(r, spec, now=time.time())["id"])


def two_accounts(r: redis.Redis) -> None:
    setup_account(r)
    setup_account(r, OTHER)


def numbers_of(r: redis.Redis, cid: str) -> list[str]:
    total = int(r.hget(keys.campaign(ACCOUNT, cid), "total") or 0)
    return [str(r.hget(keys.call(ACCOUNT, keys.call_id(cid, i)), "to")) for i in range(total)]


async def test_delete_purges_every_trace_of_a_campaign(receiver: Client, r: redis.Redis) -> None:
    setup_account(r)
    keep = campaign(r, 2, first=0)
    await finish_by_callbacks(receiver, r, keep)
    cid = campaign(r, 3, first=10)
    numbers = numbers_of(r, cid)
    await finish_by_callbacks(receiver, r, cid)
    r.set(keys.stream_claim(ACCOUNT, keys.call_id(cid, 0), 1), "1", ex=3600)  # a used token
    kept = {k: v for k, v in everything(r).items() if keep in k or k == keys.account(ACCOUNT)}
    await receiver.post(f"/exotel/status/{cid}-0?sig=forged", data={"CallSid": "x"})  # a reject
    assert status(r, cid)["state"] == "done"
    assert traces(r, cid, numbers)

    resp = await receiver.delete(f"/v1/campaigns/{cid}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body == {"id": cid, "deleted": True, "calls": 3, "events": 4}

    left = traces(r, cid, numbers)
    assert left == [], {k: everything(r)[k] for k in left}
    assert (await receiver.get(f"/v1/campaigns/{cid}", headers=AUTH)).status == 404
    assert (await receiver.get(f"/v1/campaigns/{cid}/calls", headers=AUTH)).status == 404
    again = await receiver.delete(f"/v1/campaigns/{cid}", headers=AUTH)
    assert again.status == 404
    # the other campaign, its raw callbacks and the account are as they were
    after = everything(r)
    assert {k: after.get(k) for k in kept} == kept
    kept_events = [e for _, e in r.xrange(keys.events(ACCOUNT)) if e["call_id"].startswith(keep)]
    assert len(kept_events) == 2
    assert status(r, keep)["outcomes"] == {"completed": 2}


async def test_delete_refuses_a_campaign_that_can_still_dial(
    receiver: Client, r: redis.Redis
) -> None:
    setup_account(r, limit=1)
    cid = make_campaign(r, 2, max_attempts=1)
    resp = await receiver.delete(f"/v1/campaigns/{cid}", headers=AUTH)
    assert resp.status == 409
    assert "cancel it first" in (await resp.json())["error"]

    (live,) = place_calls(r, cid)  # limit 1: one call holds the only slot
    set_state(r, cid, "cancel")
    resp = await receiver.delete(f"/v1/campaigns/{cid}", headers=AUTH)
    assert resp.status == 409
    assert "still live" in (await resp.json())["error"]
    assert status(r, cid) is not None, "a refused purge deletes nothing"

    end = Event(Kind.TERMINAL, 1, status="completed", sid=exotel_sid(r, live), at=time.time())
    policy = load_policy(r, ACCOUNT, cid)
    transition(r, ACCOUNT, live, end, policy, now=time.time(), leases=Leases())
    resp = await receiver.delete(f"/v1/campaigns/{cid}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert not [k for k in r.scan_iter(count=1000) if cid in k]


async def test_delete_needs_the_api_key(receiver: Client, r: redis.Redis) -> None:
    setup_account(r)
    cid = make_campaign(r, 1)
    assert (await receiver.delete(f"/v1/campaigns/{cid}")).status == 401
    assert status(r, cid) is not None


async def test_finished_campaign_is_gone_from_redis_after_the_retention(
    receiver: Client, r: redis.Redis
) -> None:
    two_accounts(r)
    cid = campaign(r, 2, first=0)
    numbers = numbers_of(r, cid)
    running = campaign(r, 1, first=10, account=OTHER)
    # still dialling: the sweep leaves it alone
    assert retention.sweep(r, retention_s=0.5)["expiring"] == 0
    assert r.ttl(keys.campaign(ACCOUNT, cid)) == -1
    await finish_by_callbacks(receiver, r, cid)
    report = retention.sweep(r, retention_s=1.0)
    assert report["expiring"] == 1
    assert cid not in r.smembers(keys.running(ACCOUNT))
    ttl_keys = [k for k in r.scan_iter(count=1000) if cid in k]
    assert ttl_keys and all(0 < r.ttl(k) <= 3 for k in ttl_keys), {k: r.ttl(k) for k in ttl_keys}

    # Redis deletes them itself; the next sweep forgets the index entry and trims
    # the raw callbacks, which are as old as the retention by then.
    wait_for(lambda: not [k for k in r.scan_iter(count=1000) if cid in k], what="every key gone")
    report = retention.sweep(r, retention_s=1.0)
    assert report["forgotten"] == 1
    left = traces(r, cid, numbers)
    assert left == [], {k: everything(r)[k] for k in left}
    assert status(r, cid) is None
    # the campaign that still has contacts to call is untouched
    assert status(r, running) is not None
    assert r.ttl(keys.campaign(OTHER, running)) == -1


def test_cancelled_campaign_expires_once_no_call_is_live(r: redis.Redis) -> None:
    setup_account(r, limit=1)
    cid = make_campaign(r, 3, max_attempts=1)
    (live,) = place_calls(r, cid)
    set_state(r, cid, "cancel")
    assert retention.sweep(r, retention_s=60)["expiring"] == 0, "a live call keeps it"
    end = Event(Kind.TERMINAL, 1, status="busy", sid=exotel_sid(r, live), at=time.time())
    transition(
        r, ACCOUNT, live, end, load_policy(r, ACCOUNT, cid), now=time.time(), leases=Leases()
    )
    now = time.time()
    assert retention.sweep(r, now=now, retention_s=60)["expiring"] == 1
    for i in range(3):
        ttl = r.ttl(keys.call(ACCOUNT, keys.call_id(cid, i)))
        assert 55 <= ttl <= 62, ttl
    assert retention.sweep(r, now=now, retention_s=60)["expiring"] == 0, "once"


def test_a_purge_cut_short_is_finished_by_the_sweep(r: redis.Redis) -> None:
    setup_account(r)
    cid = make_campaign(r, 2, max_attempts=1)
    set_state(r, cid, "cancel")
    r.hset(keys.campaign(ACCOUNT, cid), "state", retention.PURGING)  # the purge died here
    assert status(r, cid) is None, "a campaign being purged is already invisible"
    assert retention.sweep(r, retention_s=60)["purged"] == 1
    assert not [k for k in r.scan_iter(count=1000) if cid in k]
    assert r.hget(keys.CAMPAIGNS, cid) is None


@pytest.mark.parametrize("fields", [{"completed_at": "1"}, {"active": "-1", "finished": "1"}])
def test_a_stray_field_written_after_expiry_is_forgotten(
    r: redis.Redis, fields: dict[str, str]
) -> None:
    setup_account(r)
    cid = make_campaign(r, 1)
    ckey = keys.campaign(ACCOUNT, cid)
    r.delete(ckey)
    r.hset(ckey, mapping=fields)  # e.g. a late HSETNX completed_at after expiry
    assert status(r, cid) is None
    assert retention.sweep(r, retention_s=60)["forgotten"] == 1
    assert not r.exists(ckey) and r.hget(keys.CAMPAIGNS, cid) is None


def test_the_sweep_runs_in_beat_on_the_maintenance_queue(redis_url: str) -> None:
    from dialer.core.settings import load_settings
    from dialer.platform.queue import make_celery, task_name

    conf = make_celery(load_settings(REDIS_URL=redis_url)).conf
    entry = next(e for e in conf.beat_schedule.values() if e["task"] == task_name("retention"))
    assert entry["schedule"] <= 600
    assert conf.task_routes[task_name("retention")] == {"queue": "maintenance"}


def test_dialer_purge_cancels_then_waits_for_live_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from dialer.cli import commands
    from dialer.cli.client import ApiError

    calls: list[str] = []
    live = iter([True, True, False])

    class Client:
        def cancel(self, cid: str) -> dict[str, Any]:
            calls.append(f"cancel {cid}")
            return {}

        def delete(self, cid: str) -> dict[str, Any]:
            calls.append(f"delete {cid}")
            if next(live):
                raise ApiError(409, "1 call(s) of this campaign are still live")
            return {"id": cid, "deleted": True, "calls": 3, "events": 7}

    monkeypatch.setattr(commands, "client_from", lambda api: Client())
    monkeypatch.setattr(commands.time, "sleep", lambda s: None)
    out = CliRunner().invoke(commands.purge, ["abc123", "--cancel", "--yes"])
    assert out.exit_code == 0, out.output
    assert calls == ["cancel abc123", "delete abc123", "delete abc123", "delete abc123"]
    assert '"deleted": true' in out.output

    live = iter([True])
    calls.clear()
    out = CliRunner().invoke(commands.purge, ["abc123", "--yes"])  # no --cancel: no waiting
    assert out.exit_code == 1 and "still live" in out.output
    assert calls == ["delete abc123"]
    out = CliRunner().invoke(commands.purge, ["abc123"], input="n\n")  # asks first
    assert out.exit_code == 1 and calls == ["delete abc123"]


async def test_a_key_scoped_to_another_account_cannot_purge(
    receiver: Client, r: redis.Redis
) -> None:
    from dialer.store import apikeys

    two_accounts(r)
    cid = campaign(r, 1, first=0)
    set_state(r, cid, "cancel")  # purgeable by its own tenant
    other, _ = apikeys.create_key(r, [OTHER])
    resp = await receiver.delete(
        f"/v1/campaigns/{cid}", headers={"Authorization": f"Bearer {other}"}
    )
    assert resp.status == 404, "another tenant's campaign does not exist for this key"
    assert status(r, cid) is not None
    mine, _ = apikeys.create_key(r, [ACCOUNT])
    resp = await receiver.delete(
        f"/v1/campaigns/{cid}", headers={"Authorization": f"Bearer {mine}"}
    )
    assert resp.status == 200, await resp.text()


async def test_tasks_in_the_broker_carry_ids_only(
    receiver: Client, r: redis.Redis, redis_url: str
) -> None:
    # What Flower and anyone reading the broker see: no number, answer or URL.
    setup_account(r)
    cid = campaign(r, 2, first=0)
    numbers = numbers_of(r, cid)
    await finish_by_callbacks(receiver, r, cid)
    bodies = task_bodies(redis_url, ("followup", "dial"))
    assert bodies, "the callbacks queued follow-ups"
    for body in bodies:
        args = json.dumps(body)
        assert not any(n in args for n in numbers) and "recordings" not in args, args
        assert all(isinstance(a, str | int | bool) or a is None for a in body[0]), body

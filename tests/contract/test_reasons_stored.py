"""Reasons written on a real Redis reach the results (campaigns.iter_results, the API's rows):
deferred by the calling window and suppressed at submit, paused and cancelled at dial time."""

from __future__ import annotations

from datetime import UTC, datetime

import redis

from dialer.core.campaign import CampaignIn
from dialer.core.settings import load_settings
from dialer.services.control import set_state
from dialer.services.dialing import dial
from dialer.services.ingest import create_campaign
from dialer.services.queries import iter_results
from dialer.services.runtime import Runtime
from dialer.store import keys
from tests.support import seed

A = "acct1"

WED_0500 = datetime(2026, 11, 25, 5, 0, tzinfo=UTC).timestamp()  # 10:30 in Kolkata


def submit(r: redis.Redis, numbers: list[str], **kw: object) -> str:
    spec = CampaignIn(account=A, contacts=[{"to": n} for n in numbers], bot="echo", **kw)  # type: ignore[arg-type]
    return str(create_campaign(r, spec, now=WED_0500)["id"])


def rows(r: redis.Redis, cid: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {row["to"]: row for row in iter_results(r, cid)}


def test_submit_time_window_deferral_and_do_not_call(r: redis.Redis) -> None:
    seed.setup_account(r, A, limit=5, cpm=1000)
    r.sadd(keys.dnc(A), "+919876500001")
    window = {"days": "mon-sat", "start": "09:00", "end": "20:00"}
    cid = submit(r, ["+919876500001", "+12125550100"], window=window)  # New York: 00:00
    by_to = rows(r, cid)
    assert by_to["+919876500001"]["reason"]["code"] == "do_not_call"
    assert by_to["+919876500001"]["attempts"] == []
    deferred = by_to["+12125550100"]["reason"]
    assert deferred["code"] == "outside_window"
    assert "2026-11-25 14:00 UTC" in deferred["text"]  # 09:00 in New York


def test_paused_then_cancelled_at_dial_time(r: redis.Redis, redis_url: str) -> None:
    seed.setup_account(r, A, limit=5, cpm=1000)
    rt = Runtime(load_settings(REDIS_URL=redis_url, DIALER_SECRET="reasons-secret-123"), r)
    cid = submit(r, ["+919876500001", "+919876500002"])
    first, second = rt.limiter.admit(A, WED_0500)
    set_state(r, cid, "pause")  # admitted before the pause: dial finds it paused
    assert dial(rt, first, now=WED_0500).outcome == "requeued"
    paused = rows(r, cid)["+919876500001"]
    assert paused["reason"]["code"] == "campaign_paused"
    assert paused["attempts"][0]["reason"]["code"] == "campaign_paused"
    set_state(r, cid, "cancel")
    assert dial(rt, second, now=WED_0500).outcome == "cancelled"
    cancelled = rows(r, cid)["+919876500002"]
    assert cancelled["outcome"] == "cancelled" and cancelled["reason"]["code"] == "cancelled"

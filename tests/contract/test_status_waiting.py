"""``status`` says why a campaign waits, from the same Redis state admission reads."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis

from dialer.core.campaign import CampaignIn
from dialer.core.windows import DAYS
from dialer.services.accounts import back_off, close_circuit, open_circuit
from dialer.services.control import set_state
from dialer.services.ingest import create_campaign
from dialer.services.queries import status
from dialer.store import keys
from tests.support import seed

A = "acct1"

CONTACTS = [{"to": "+919876543210"}, {"to": "+919876543211"}]


def codes(r: redis.Redis, cid: str) -> list[str]:
    st = status(r, cid)
    assert st is not None
    return [w["code"] for w in st["waiting"]["reasons"]]


def test_each_gate_is_named(r: redis.Redis) -> None:
    seed.setup_account(r, A, limit=2, cpm=100)
    cid = str(create_campaign(r, CampaignIn(account=A, contacts=CONTACTS))["id"])
    st = status(r, cid)
    assert st is not None
    assert st["waiting"] == {"queued": 2, "scheduled": 0, "next_due_at": None, "reasons": []}

    set_state(r, cid, "pause")
    assert codes(r, cid) == ["paused"]
    set_state(r, cid, "resume")

    open_circuit(r, A, "401 Unauthorized")
    st = status(r, cid)
    assert st is not None
    (why,) = st["waiting"]["reasons"]
    assert why["code"] == "circuit_open"
    assert "401 Unauthorized" in why["text"] and f"dialer account resume {A}" in why["text"]
    close_circuit(r, A)

    until = time.time() + 120
    back_off(r, A, until)
    st = status(r, cid)
    assert st is not None
    assert [(w["code"], w["at"]) for w in st["waiting"]["reasons"]] == [("backoff", until)]
    close_circuit(r, A)  # also clears the 429 back-off

    now = time.time()
    r.zadd(keys.active(A), {"x-1": now + 60, "x-2": now + 60})  # both slots held elsewhere
    assert codes(r, cid) == ["slots_full"]
    r.delete(keys.active(A))
    r.zadd(keys.rate(A), {f"d{i}": now for i in range(100)})  # a minute's budget spent
    assert codes(r, cid) == ["rate_limit"]
    r.delete(keys.rate(A))
    assert codes(r, cid) == []

    set_state(r, cid, "cancel")
    assert codes(r, cid) == ["cancelled"]


def test_waiting_for_the_calling_window_then_for_retries(r: redis.Redis) -> None:
    seed.setup_account(r, A, limit=2, cpm=100)
    now = time.time()
    today = datetime.fromtimestamp(now, UTC).weekday()
    closed_today = ",".join(d for i, d in enumerate(DAYS) if i != today)
    spec = CampaignIn(
        account=A,
        contacts=[{"to": c["to"], "vars": {"tz": "UTC"}} for c in CONTACTS],
        window=f"{closed_today} 00:00-23:59",
    )
    cid = str(create_campaign(r, spec, now=now)["id"])
    st = status(r, cid)
    assert st is not None
    wait = st["waiting"]
    assert wait["queued"] == 0 and wait["scheduled"] == 2
    (why,) = wait["reasons"]
    assert why["code"] == "window" and why["at"] == wait["next_due_at"] > now
    # a contact already dialled once and now delayed waits for its retry, not the window
    first = r.zrange(keys.delayed(A, cid), 0, 0)[0]
    r.hset(keys.call(A, first), mapping={"attempt": "2", "h:1": "{}"})
    assert codes(r, cid) == ["retry"]


def test_a_finished_campaign_waits_for_nothing(r: redis.Redis) -> None:
    seed.setup_account(r, A, limit=2, cpm=100)
    r.sadd(keys.dnc(A), *(c["to"] for c in CONTACTS))
    spec = CampaignIn(account=A, contacts=[*CONTACTS, {"to": "+919876543212"}])
    cid = str(create_campaign(r, spec)["id"])
    open_circuit(r, A, "403 Forbidden")
    assert codes(r, cid) == ["circuit_open"]  # one contact still to call
    # what the last contact's final transition writes (dialer.store.records)
    r.hset(keys.counts(A, cid), mapping={"pending": 0, "completed": 1})
    r.hincrby(keys.campaign(A, cid), "finished", 1)
    st = status(r, cid)
    assert st is not None and st["state"] == "done" and st["waiting"]["reasons"] == []

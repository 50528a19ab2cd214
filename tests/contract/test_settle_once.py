"""The settle step runs each follow-up once per transition, on a real Redis.

A terminal callback releases one slot: admission runs exactly once for it
(in the transition's own commit, never again in ``dialer.followup``).
Runs of ``admit.lua`` on its own are counted on the wire with ``MONITOR``:
every ``EVALSHA`` of it, whoever sends it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import redis

from dialer.core.calls import Event, Kind, State
from dialer.core.campaign import CampaignIn
from dialer.core.settings import load_settings
from dialer.services import callback, settle
from dialer.services.accounts import make_account, save_account
from dialer.services.ingest import create_campaign
from dialer.services.runtime import Runtime
from dialer.store import keys
from dialer.store.records import Extra, transition
from dialer.store.scripts import script
from tests.support import callbacks, redis_cluster

# MONITOR and ECHO markers count the commands of one server: not a cluster run.
pytestmark = pytest.mark.skipif(
    redis_cluster.wanted(), reason="counts commands with MONITOR on one Redis server"
)

SECRET = "settle-once-S3cr3t-4Kd2Lq7Wx9Zb6Nm1Vp8Rt5"
A = "acct1"
T0 = 1_000_000.0


@dataclass
class Handed:
    """What the settle step handed on (it stands in for Celery, not for Redis)."""

    dials: list[str] = field(default_factory=list)
    notified: list[str] = field(default_factory=list)
    campaigns: list[str] = field(default_factory=list)

    def dial_all(self, call_ids: Sequence[str]) -> None:
        self.dials += call_ids

    def notify(self, call_id: str) -> None:
        self.notified.append(call_id)

    def notify_campaign(self, cid: str) -> None:
        self.campaigns.append(cid)


@contextmanager
def admits_counted(redis_url: str) -> Iterator[list[str]]:
    """Every ``admit.lua`` run on the server while the block runs (``MONITOR``)."""
    r = redis_cluster.client(redis_url, decode_responses=True)
    sha = r.script_load(script("admit"))
    stop = f"stop-{uuid.uuid4().hex}"
    seen: list[str] = []
    ready = threading.Event()

    def watch() -> None:
        with r.monitor() as m:
            ready.set()
            for cmd in m.listen():
                text = cmd["command"]
                if stop in text:
                    return
                if text.startswith("EVALSHA") and sha in text:
                    seen.append(text)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert ready.wait(5)
    # MONITOR is on once the server answers a command sent after it started
    probe = redis_cluster.client(redis_url)
    probe.ping()
    try:
        yield seen
    finally:
        probe.echo(stop)
        thread.join(10)
        probe.close()
        r.close()
    assert not thread.is_alive(), "MONITOR never saw the stop marker"


@pytest.fixture
def rt(r: redis.Redis, redis_url: str) -> Runtime:
    settings = load_settings(REDIS_URL=redis_url, DIALER_SECRET=SECRET)
    account = make_account(A, "k", "t", "0800", max_concurrent_calls=1, calls_per_minute=1000)
    save_account(r, account, settings.keyring)
    return Runtime(settings, r)


def placed_call(r: redis.Redis, rt: Runtime, n: int, webhook: str = "") -> tuple[str, list[str]]:
    """A campaign of ``n`` contacts at limit 1: the first is dialled and placed."""
    contacts = [{"to": f"+9198765{i:05d}"} for i in range(n)]
    spec = CampaignIn(account=A, bot="echo", contacts=contacts, webhook_url=webhook or None)
    cid = str(create_campaign(r, spec, now=T0)["id"])
    (first,) = rt.limiter.admit(A, T0)
    facts = rt.campaign(cid)
    assert facts is not None
    dial = Event(Kind.DIAL, 1, at=T0)
    caller = Extra(detail={"caller_id": "0800"})
    transition(r, A, first, dial, facts.policy, now=T0, leases=facts.leases, extra=caller)
    placed = Event(Kind.PLACED, 1, sid="SID1", at=T0)
    transition(r, A, first, placed, facts.policy, now=T0, leases=facts.leases)
    return cid, [keys.call_id(cid, i) for i in range(n)]


def terminal(rt: Runtime, redis_url: str, call_id: str, now: float) -> callback.Outcome:
    """The receiver's use case for one terminal callback (what the handler calls)."""
    facts = rt.campaign_of_call(call_id)
    assert facts is not None
    return callbacks.record(redis_url, facts, call_id, "completed", "terminal", now=now)


def test_a_terminal_callback_admits_once_and_the_followup_never_again(
    r: redis.Redis, rt: Runtime, redis_url: str
) -> None:
    _, ids = placed_call(r, rt, 3)
    then = Handed()
    with admits_counted(redis_url) as admits:
        out = terminal(rt, redis_url, ids[0], T0 + 5)
        assert out.settlement is not None
        # what the receiver publishes as dialer.followup, run as the worker runs it
        settle.settle(rt, [settle.Settlement(*out.settlement.args())], then, now=T0 + 5)
    assert admits == []  # admission ran inside the callback's commit, and only there
    assert out.admitted == (ids[1],)  # the freed slot went to the next call at once
    assert then.dials == []  # ... and the follow-up dispatched no second one
    assert r.hget(keys.call(A, ids[1]), "state") == State.ADMITTED.value
    assert r.hget(keys.call(A, ids[2]), "state") == State.PENDING.value


def test_a_duplicate_terminal_callback_settles_nothing(
    r: redis.Redis, rt: Runtime, redis_url: str
) -> None:
    _, ids = placed_call(r, rt, 2)
    terminal(rt, redis_url, ids[0], T0 + 5)
    with admits_counted(redis_url) as admits:
        again = terminal(rt, redis_url, ids[0], T0 + 6)
    assert again.settlement is None and again.admitted == ()
    assert admits == []


def test_the_settle_step_counts_the_caller_id_and_finishes_the_campaign_once(
    r: redis.Redis, rt: Runtime, redis_url: str
) -> None:
    cid, (only,) = placed_call(r, rt, 1, webhook="https://hooks.example.com/x")
    out = terminal(rt, redis_url, only, T0 + 5)
    assert out.settlement is not None and out.settlement.final
    then = Handed()
    settle.settle(rt, [out.settlement], then, now=T0 + 5)
    assert then.notified == [only] and then.campaigns == [cid]
    assert r.hgetall(keys.callerid_stats(A)) == {"0800:dials": "1", "0800:answered": "1"}
    assert r.hget(keys.campaign(A, cid), "completed_at") == repr(T0 + 5)
    settle.settle(rt, [out.settlement], then, now=T0 + 6)  # a redelivered task
    assert then.campaigns == [cid]  # completion is announced once, whatever repeats


def test_a_refill_that_fails_in_the_commit_keeps_the_transition_and_leaves_admission_to_settle(
    r: redis.Redis, rt: Runtime, redis_url: str
) -> None:
    _, ids = placed_call(r, rt, 2)
    # A corrupt account field makes admission fail inside commit.lua, after its writes.
    r.hset(keys.account(A), "calls_per_minute", "not-a-number")
    out = terminal(rt, redis_url, ids[0], T0 + 5)
    assert r.hget(keys.call(A, ids[0]), "state") == State.COMPLETED.value
    assert out.settlement is not None and out.settlement.refill  # settle still owes the refill
    assert r.zcard(keys.active(A)) == 0

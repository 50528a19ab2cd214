"""Campaign policy on a real Redis (and the sandbox for dials): calling windows in each
contact's zone with an injected clock, do-not-call, caller-ID pools, live limits, preflight."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from dialer.core.campaign import CampaignIn, estimate_finish
from dialer.core.keyring import Keyring
from dialer.core.settings import load_settings
from dialer.core.windows import Window
from dialer.sandbox.config import AccountConfig, SandboxConfig
from dialer.sandbox.control import SandboxControl
from dialer.sandbox.testing import start_in_thread
from dialer.services.accounts import make_account, save_account
from dialer.services.dialing import dial
from dialer.services.ingest import create_campaign
from dialer.services.runtime import Runtime
from dialer.store import callerids, keys
from dialer.store.admission import RedisLimiter

A = "sandbox"
SECRET = "policy-S3cr3t-6Kd2Lq7Wx4Zb9Nm1Vp8Rt5Yc0Fh"
KEYRING = Keyring.from_secret(SECRET.encode())
INDIA, NEW_YORK = "+919876543210", "+12125550100"


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture
def sandbox() -> Iterator[tuple[str, SandboxControl]]:
    config = SandboxConfig(
        accounts=[AccountConfig.demo(max_concurrent=50, calls_per_minute=10_000)],
        ring_s=0.05,
        talk_max_s=0.2,
    )
    url, stop = start_in_thread(config)
    yield url, SandboxControl(url)
    stop()


@pytest.fixture
def rt(r: redis.Redis, redis_url: str, sandbox: tuple[str, SandboxControl]) -> Runtime:
    save_account(
        r,
        make_account(
            A,
            "sandbox-key",
            "sandbox-token",
            "08047112345",
            api_url=sandbox[0],
            max_concurrent_calls=5,
            caller_ids=["0801", "0802", "0803"],
        ),
        KEYRING,
    )
    settings = load_settings(
        REDIS_URL=redis_url,
        DIALER_SECRET=SECRET,
        DIALER_EGRESS_ALLOW="127.0.0.0/8",  # the sandbox listens on loopback
    )
    return Runtime(settings, r)


def submit(r: redis.Redis, now: float, **kw: object) -> str:
    spec = CampaignIn(account=A, bot="echo", **kw)  # type: ignore[arg-type]
    return str(create_campaign(r, spec, now=now)["id"])


def test_two_time_zones_dialled_only_inside_their_own_windows(
    r: redis.Redis, rt: Runtime, sandbox: tuple[str, SandboxControl]
) -> None:
    window = {"days": "mon-sat", "start": "09:00", "end": "20:00"}
    now = ts("2026-11-25T05:00:00")  # Wed 10:30 in Kolkata, 00:00 in New York
    cid = submit(r, now, contacts=[{"to": INDIA}, {"to": NEW_YORK}], window=window)
    ny = keys.call_id(cid, 1)
    assert r.zscore(keys.delayed(A, cid), ny) == ts("2026-11-25T14:00:00")
    ids = rt.limiter.admit(A, now)
    assert ids == [keys.call_id(cid, 0)]
    assert dial(rt, ids[0], now=now).outcome == "placed"
    assert rt.limiter.admit(A, now + 3600) == []  # New York still asleep
    # re-checked at dial time too: force the New York call into the queue early
    r.zrem(keys.delayed(A, cid), ny)
    r.zadd(keys.queue(A, cid), {ny: 1})
    assert rt.limiter.admit(A, now + 60) == [ny]
    result = dial(rt, ny, now=now + 60)
    assert result.outcome == "requeued" and result.slot_released
    assert r.zscore(keys.delayed(A, cid), ny) == ts("2026-11-25T14:00:00")
    opens = ts("2026-11-25T14:00:00")
    assert rt.limiter.admit(A, opens) == [ny]
    assert dial(rt, ny, now=opens).outcome == "placed"
    report = sandbox[1].report()
    assert report["dials_per_number"] == {INDIA: 1, NEW_YORK: 1}


def test_do_not_call_at_submit_and_at_dial(r: redis.Redis, rt: Runtime) -> None:
    r.sadd(keys.dnc(A), INDIA)
    cid = submit(r, 1000.0, contacts=[{"to": INDIA}, {"to": NEW_YORK}])
    h = r.hgetall(keys.call(A, keys.call_id(cid, 0)))
    assert h["state"] == "suppressed" and "do-not-call" in h["reason"]
    assert r.hget(keys.counts(A, cid), "suppressed") == "1"
    (ny,) = rt.limiter.admit(A, 1000.0)
    r.sadd(keys.dnc(A), NEW_YORK)  # added after submit: caught just before dialling
    assert dial(rt, ny, now=1000.0).outcome == "suppressed"
    assert r.hget(keys.campaign(A, cid), "finished") == "2"


def test_caller_ids_rotate_least_recently_used(r: redis.Redis, rt: Runtime) -> None:
    picks = [callerids.pick(r, A, "fallback", now=float(i)) for i in range(1, 5)]
    assert picks == ["0801", "0802", "0803", "0801"]


@pytest.mark.parametrize(
    ("dials", "answered", "pool_dials", "pool_answered", "suspect"),
    [
        (10, 0, 100, 60, False),
        (20, 1, 100, 60, True),
        (20, 10, 100, 60, False),
        (40, 3, 200, 100, True),
        (40, 0, 40, 0, False),
    ],
)
def test_spam_rule(
    dials: int, answered: int, pool_dials: int, pool_answered: int, suspect: bool
) -> None:
    assert callerids.spam_suspected(dials, answered, pool_dials, pool_answered) is suspect


def test_collapsed_caller_id_leaves_the_rotation(r: redis.Redis, rt: Runtime) -> None:
    for _ in range(30):
        callerids.record(r, A, "0801", answered=True)
        callerids.record(r, A, "0802", answered=True)
    removed = [callerids.record(r, A, "0803", answered=False) for _ in range(20)]
    assert removed[-1] and "0803" not in r.zrange(keys.callerids(A), 0, -1)
    assert "answer rate" in r.hget(keys.callerids_off(A), "0803")


def test_limits_change_live(r: redis.Redis, rt: Runtime, sandbox: tuple[str, object]) -> None:
    submit(r, 1000.0, contacts=[{"to": f"+9198765{i:05d}"} for i in range(20)])
    lim = RedisLimiter(r)
    assert len(lim.admit(A, 1000.0)) == 5
    save_account(
        r,
        make_account(
            A, "sandbox-key", "sandbox-token", "0800", api_url=sandbox[0], max_concurrent_calls=8
        ),
        KEYRING,
    )
    assert len(lim.admit(A, 1000.0)) == 3


def test_preflight_estimates_and_queues_nothing(r: redis.Redis, rt: Runtime) -> None:
    r.sadd(keys.dnc(A), INDIA)
    spec = CampaignIn(
        account=A,
        bot="echo",
        expected_call_s=60,
        contacts=[{"to": INDIA}] + [{"to": f"+9198765{i:05d}"} for i in range(10)],
    )
    out = create_campaign(r, spec, now=1000.0, dry_run=True)
    assert out["id"] is None and out["suppressed"] == 1 and out["accepted"] == 11
    est = out["preflight"]["estimate"]
    assert est["busy_s"] == 120.0  # 10 calls x 60 s / 5 slots
    assert not r.keys("dl:{sandbox}:queue:*")


def test_estimate_spends_work_only_inside_the_window() -> None:
    w = Window.parse({"days": "mon-fri", "start": "09:00", "end": "10:00"})
    start = ts("2026-11-27T09:30:00")  # Fri 09:30 UTC
    # 30 min left on Friday, then Monday 09:00-09:30
    assert estimate_finish(start, 3600, w, ("UTC",)) == ts("2026-11-30T09:30:00")


def test_reconciliation_frees_a_slot_whose_answered_call_exotel_lost(
    r: redis.Redis, rt: Runtime
) -> None:
    """A restart of Exotel's side (here: the sandbox forgot the call) must not leak the slot."""
    from dialer.core.calls import Event, Kind
    from dialer.services.reconcile import reconcile_account
    from dialer.store.records import transition

    cid = submit(r, 1000.0, contacts=[{"to": INDIA}], max_attempts=2, retry_delay_s=5)
    (call_id,) = rt.limiter.admit(A, 1000.0)
    facts = rt.campaign(cid)
    assert facts is not None
    for ev in (Event(Kind.DIAL, 1), Event(Kind.PLACED, 1, sid="lost-sid"), Event(Kind.ANSWERED, 1)):
        transition(r, A, call_id, ev, facts.policy, now=1000.0, leases=facts.leases)
    report = reconcile_account(rt, A, now=1000.0 + 10_000)
    assert report.released == [call_id]
    h = r.hgetall(keys.call(A, call_id))
    assert h["state"] == "pending" and h["attempt"] == "2"
    assert r.zcard(keys.active(A)) == 0


def test_worker_dead_after_claiming_before_sending_is_dialled_exactly_once(
    r: redis.Redis, rt: Runtime, sandbox: tuple[str, SandboxControl]
) -> None:
    """A worker wins admitted -> dialing and dies before its request leaves: Exotel has
    no such call, so reconciliation puts it back, and it is dialled once, not twice."""
    from dialer.core.calls import Event, Kind
    from dialer.services.reconcile import reconcile_account
    from dialer.store.records import transition

    cid = submit(r, 1000.0, contacts=[{"to": INDIA}], max_attempts=1)
    (call_id,) = rt.limiter.admit(A, 1000.0)
    facts = rt.campaign(cid)
    assert facts is not None
    transition(r, A, call_id, Event(Kind.DIAL, 1), facts.policy, now=1000.0, leases=facts.leases)
    # a redelivered dial task finds "dialing" and sends nothing
    assert dial(rt, call_id, now=1001.0).outcome == "skipped"
    later = 1000.0 + facts.leases.dialing_s + 1
    report = reconcile_account(rt, A, now=later)
    assert report.requeued == [call_id] and report.released == [call_id]
    assert r.hget(keys.call(A, call_id), "attempt") == "1"  # never placed: same attempt
    assert rt.limiter.admit(A, later) == [call_id]
    assert dial(rt, call_id, now=later).outcome == "placed"
    assert sandbox[1].report()["dials_per_custom_field"] == {f"{call_id}:1": 1}

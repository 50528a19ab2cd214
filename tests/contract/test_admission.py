"""The limiter contract, against a real Redis: limits, rate budget, fairness, races."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import redis

from dialer.core.calls import Call, Event, Kind, State
from dialer.core.policy import RetryPolicy
from dialer.services.control import set_state
from dialer.store import keys
from dialer.store.admission import RedisLimiter
from dialer.store.records import Leases, call_from_hash, new_call_hash, transition
from tests.support import seed

A = "acct1"


def setup_account(r: redis.Redis, limit: int = 5, cpm: int = 1000) -> None:
    seed.setup_account(r, A, limit=limit, cpm=cpm)


def campaign(r: redis.Redis, n: int, **kw: object) -> str:
    return seed.make_campaign(r, n, A, now=1000.0, **kw)


def test_admit_never_exceeds_the_limit_and_keeps_submit_order(r: redis.Redis) -> None:
    setup_account(r, limit=5)
    cid = campaign(r, 20)
    lim = RedisLimiter(r)
    first = lim.admit(A, 1000.0)
    assert first == [keys.call_id(cid, i) for i in range(5)]
    assert lim.admit(A, 1000.0) == []
    assert lim.in_use(A) == 5
    assert r.hget(keys.counts(A, cid), "admitted") == "5"


def test_rate_budget_limits_admissions_per_minute(r: redis.Redis) -> None:
    setup_account(r, limit=100, cpm=3)
    campaign(r, 10)
    lim = RedisLimiter(r)
    assert len(lim.admit(A, 1000.0)) == 3
    for cid in lim.expired(A, 2000.0):
        r.zrem(keys.active(A), cid)
    assert lim.admit(A, 1030.0) == []
    assert len(lim.admit(A, 1061.0)) == 3


def test_weights_share_slots_and_small_campaign_is_not_starved(r: redis.Redis) -> None:
    setup_account(r, limit=8)
    big = campaign(r, 1000, weight=1)
    small = campaign(r, 10, weight=3)
    ids = RedisLimiter(r).admit(A, 1000.0)
    by = {big: 0, small: 0}
    for i in ids:
        by[keys.split_call_id(i)[0]] += 1
    assert by == {big: 2, small: 6}


def test_priority_goes_first(r: redis.Redis) -> None:
    setup_account(r, limit=3)
    campaign(r, 10)
    urgent = campaign(r, 10, priority=5)
    ids = RedisLimiter(r).admit(A, 1000.0)
    assert all(i.startswith(urgent) for i in ids)


def test_paused_campaign_and_open_circuit_admit_nothing(r: redis.Redis) -> None:
    setup_account(r)
    cid = campaign(r, 3)
    set_state(r, cid, "pause")
    lim = RedisLimiter(r)
    assert lim.admit(A, 1000.0) == []
    set_state(r, cid, "resume")
    r.hset(keys.account(A), "circuit", "open")
    assert lim.admit(A, 1000.0) == []
    r.hset(keys.account(A), "circuit", "closed")
    r.hset(keys.account(A), "paused_until", "1500")
    assert lim.admit(A, 1000.0) == []
    assert len(lim.admit(A, 1501.0)) == 3


def test_due_retries_are_admitted_only_after_not_before(r: redis.Redis) -> None:
    setup_account(r, limit=5)
    cid = campaign(r, 1)
    lim = RedisLimiter(r)
    (call_id,) = lim.admit(A, 1000.0)
    pol = RetryPolicy(retry_delay_s={"busy": 60})
    leases = Leases()
    for ev in (
        Event(Kind.DIAL, 1),
        Event(Kind.PLACED, 1, sid="S1"),
        Event(Kind.TERMINAL, 1, status="busy", at=1000.0),
    ):
        transition(r, A, call_id, ev, pol, now=1000.0, leases=leases)
    assert lim.in_use(A) == 0
    assert lim.admit(A, 1059.0) == []
    assert lim.admit(A, 1061.0) == [call_id]
    assert r.hget(keys.call(A, call_id), "attempt") == "2"
    assert r.hget(keys.counts(A, cid), "admitted") == "1"


def test_lowering_the_limit_never_cuts_live_calls(r: redis.Redis) -> None:
    setup_account(r, limit=5)
    campaign(r, 10)
    lim = RedisLimiter(r)
    assert len(lim.admit(A, 1000.0)) == 5
    setup_account(r, limit=2)
    assert lim.in_use(A) == 5
    assert lim.admit(A, 1000.0) == []


def test_concurrent_admitters_never_exceed_the_limit(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    setup_account(r, limit=7)
    campaign(r, 300)
    got: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        lim = RedisLimiter(client)
        for _ in range(50):
            ids = lim.admit(A, time.time())
            with lock:
                got.extend(ids)
            assert lim.in_use(A) <= 7

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(set(got)) == 7


def test_admission_keeps_the_one_call_hash_layout(r: redis.Redis) -> None:
    """admit.lua changes only ``state`` (and notes ``admitted_at``): the hash stays
    what ``records.call_to_hash`` writes, and reads back as the same call, admitted."""
    setup_account(r, limit=1)
    cid = campaign(r, 1)
    call_id = keys.call_id(cid, 0)
    before = r.hgetall(keys.call(A, call_id))
    assert before == new_call_hash("+919876500000", Call())
    (admitted,) = RedisLimiter(r).admit(A, 1000.0)
    after = r.hgetall(keys.call(A, admitted))
    assert set(after) - set(before) == {"admitted_at"}
    assert call_from_hash(after) == replace(call_from_hash(before), state=State.ADMITTED)

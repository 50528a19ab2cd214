"""Atomic transitions on a real Redis: counters add up, slots released once, races lose safely."""

from __future__ import annotations

import threading

import redis

from dialer.core.calls import Event, Kind
from dialer.core.policy import RetryPolicy
from dialer.store import keys
from dialer.store.admission import RedisLimiter
from dialer.store.records import Leases, transition
from tests.support import seed

A = "acct1"

POL = RetryPolicy(max_attempts=1)


def test_duplicate_terminal_releases_once_and_counts_once(r: redis.Redis) -> None:
    seed.setup_account(r, A, limit=2, cpm=1000)
    cid = seed.make_campaign(r, 1, A, now=1000.0)
    (call_id,) = RedisLimiter(r).admit(A, 1.0)
    for ev in (Event(Kind.DIAL, 1), Event(Kind.PLACED, 1, sid="S")):
        transition(r, A, call_id, ev, POL, now=1.0, leases=Leases())
    results = []
    for _ in range(3):
        results.append(
            transition(
                r,
                A,
                call_id,
                Event(Kind.TERMINAL, 1, status="completed"),
                POL,
                now=2.0,
                leases=Leases(),
            )
        )
    assert [t.releases_slot for t in results if t] == [True, False, False]
    counts = {k: int(v) for k, v in r.hgetall(keys.counts(A, cid)).items() if int(v)}
    assert counts == {"completed": 1}
    assert r.zcard(keys.active(A)) == 0
    assert r.hget(keys.campaign(A, cid), "active") == "0"
    assert r.hget(keys.campaign(A, cid), "finished") == "1"


def test_only_one_of_many_racing_dialers_wins(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    seed.setup_account(r, A, limit=1, cpm=1000)
    seed.make_campaign(r, 1, A, now=1000.0)
    (call_id,) = RedisLimiter(r).admit(A, 1.0)
    winners = []

    def racer() -> None:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        t = transition(client, A, call_id, Event(Kind.DIAL, 1), POL, now=1.0, leases=Leases())
        if t is not None and t.changed:
            winners.append(1)

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert winners == [1]

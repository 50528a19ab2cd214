"""Atomic transitions on a real Redis: counters add up, slots released once, races lose safely."""

from __future__ import annotations

import asyncio
import threading

import redis

from dialer.core.calls import Event, Kind
from dialer.core.policy import RetryPolicy
from dialer.store import keys
from dialer.store.admission import RedisLimiter
from dialer.store.records import Leases, atransition, transition
from tests.support import redis_cluster, seed

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
    r = redis_cluster.client(redis_url, decode_responses=True)
    seed.setup_account(r, A, limit=1, cpm=1000)
    seed.make_campaign(r, 1, A, now=1000.0)
    (call_id,) = RedisLimiter(r).admit(A, 1.0)
    winners = []

    def racer() -> None:
        client = redis_cluster.client(redis_url, decode_responses=True)
        t = transition(client, A, call_id, Event(Kind.DIAL, 1), POL, now=1.0, leases=Leases())
        if t is not None and t.changed:
            winners.append(1)

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert winners == [1]


def test_a_commit_on_a_stale_read_decides_again_on_what_won(r: redis.Redis) -> None:
    """The dial step passes the fields it read: if a callback moved the call since,
    the compare fails, the reply carries the fields now, and the decision is remade."""
    seed.setup_account(r, A, limit=1, cpm=1000)
    cid = seed.make_campaign(r, 1, A, now=1000.0)
    (call_id,) = RedisLimiter(r).admit(A, 1.0)
    seen = dict(r.hgetall(keys.call(A, call_id)))
    transition(r, A, call_id, Event(Kind.DIAL, 1), POL, now=1.0, leases=Leases())
    placed = Event(Kind.PLACED, 1, sid="S")
    transition(r, A, call_id, placed, POL, now=1.0, leases=Leases())
    # a second dial decided on the admitted call it read: it must lose, not redial
    t = transition(r, A, call_id, Event(Kind.DIAL, 1), POL, now=1.0, leases=Leases(), fields=seen)
    assert t is not None and not t.changed
    assert seen == r.hgetall(keys.call(A, call_id))  # the caller's view, refreshed
    assert r.hget(keys.call(A, call_id), "state") == "placed"
    counts = {k: int(v) for k, v in r.hgetall(keys.counts(A, cid)).items() if int(v)}
    assert counts == {"placed": 1}


def test_the_raw_callback_is_logged_once_with_its_commit_or_without_one(
    r: redis.Redis, redis_url: str
) -> None:
    seed.setup_account(r, A, limit=1, cpm=1000)
    seed.make_campaign(r, 1, A, now=1000.0)
    (call_id,) = RedisLimiter(r).admit(A, 1.0)
    for ev in (Event(Kind.DIAL, 1), Event(Kind.PLACED, 1, sid="S")):
        transition(r, A, call_id, ev, POL, now=1.0, leases=Leases())
    stream = keys.events(A)

    async def callback(n: int) -> None:
        ar = redis_cluster.aclient(redis_url, decode_responses=True)
        try:
            ev = Event(Kind.TERMINAL, 1, status="completed", sid="S")
            log = (stream, {"call_id": call_id, "n": str(n)})
            await atransition(ar, A, call_id, ev, POL, now=2.0, leases=Leases(), log=log)
        finally:
            await ar.aclose()

    asyncio.run(callback(1))  # commits the terminal state, logged in the same script
    asyncio.run(callback(2))  # a duplicate: nothing to commit, logged all the same
    entries = r.xrange(stream)
    assert [e[1]["n"] for e in entries] == ["1", "2"]
    assert r.hget(keys.call(A, call_id), "state") == "completed"

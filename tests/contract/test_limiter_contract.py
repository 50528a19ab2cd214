"""One limiter contract, run over every backend: the in-memory spec and Redis.

The same tests (the pattern of dramatiq's rate-limiter tests) run against
``dialer.core.limiter.MemoryLimiter`` and ``dialer.store.admission.RedisLimiter``
on the suite's real Redis; each backend comes with a harness that gives an
account its limit and its waiting calls the backend's own way (for Redis: the
product's account and campaign writes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis

from dialer.core.limiter import Limiter, MemoryLimiter
from dialer.services.accounts import update_account
from dialer.store import keys
from dialer.store.admission import RedisLimiter
from tests.support import redis_cluster, seed
from tests.support.signing import KEYRING

A, B = "AC_lim_a", "AC_lim_b"
T0 = 1000.0
LEASE_S = 60.0


@dataclass
class Backend:
    limiter: Limiter
    #: the account's max_concurrent (created on first use)
    set_limit: Callable[[str, int], None]
    #: ``n`` calls now wait for a slot; their ids in admission order
    add: Callable[[str, int], list[str]]
    #: another limiter on the same slots, as another process would hold (own client)
    another: Callable[[], Limiter]


def _memory() -> Iterator[Backend]:
    lim = MemoryLimiter(admit_lease_s=LEASE_S)
    made = 0

    def add(account: str, n: int) -> list[str]:
        nonlocal made
        ids = [f"mem{made + i}" for i in range(n)]
        made += n
        lim.add(account, ids)
        return ids

    yield Backend(lim, lim.set_limit, add, lambda: lim)


def _redis(redis_url: str) -> Iterator[Backend]:
    clients: list[redis.Redis] = []

    def client() -> redis.Redis:
        c = redis_cluster.client(redis_url, decode_responses=True)
        clients.append(c)
        return c

    r = client()

    def set_limit(account: str, limit: int) -> None:
        if update_account(r, account, {"max_concurrent_calls": limit}, KEYRING) is None:
            seed.setup_account(r, account, limit=limit, cpm=100_000)

    def add(account: str, n: int) -> list[str]:
        cid = seed.make_campaign(r, n, account, now=T0)
        return [keys.call_id(cid, i) for i in range(n)]

    def another() -> Limiter:
        return RedisLimiter(client(), admit_lease_s=LEASE_S)

    yield Backend(RedisLimiter(r, admit_lease_s=LEASE_S), set_limit, add, another)
    for c in clients:
        c.close()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield from _memory()
    else:
        yield from _redis(request.getfixturevalue("redis_url"))


def test_admit_never_goes_above_the_limit(backend: Backend) -> None:
    lim = backend.limiter
    backend.set_limit(A, 3)
    ids = backend.add(A, 10)
    assert lim.admit(A, T0) == ids[:3]
    assert lim.admit(A, T0) == []
    assert lim.in_use(A) == 3


def test_a_cap_on_one_admit_takes_fewer(backend: Backend) -> None:
    backend.set_limit(A, 5)
    ids = backend.add(A, 10)
    assert backend.limiter.admit(A, T0, limit=2) == ids[:2]
    assert backend.limiter.in_use(A) == 2


def test_release_frees_exactly_one_slot(backend: Backend) -> None:
    lim = backend.limiter
    backend.set_limit(A, 3)
    ids = backend.add(A, 10)
    held = lim.admit(A, T0)
    assert lim.release(A, held[0]) is True
    assert lim.in_use(A) == 2
    assert lim.admit(A, T0) == [ids[3]]
    assert lim.admit(A, T0) == []


def test_double_release_does_not_free_two(backend: Backend) -> None:
    lim = backend.limiter
    backend.set_limit(A, 2)
    backend.add(A, 10)
    first, _ = lim.admit(A, T0)
    assert lim.release(A, first) is True
    assert lim.release(A, first) is False
    assert lim.in_use(A) == 1
    assert len(lim.admit(A, T0)) == 1
    assert lim.in_use(A) == 2


def test_release_of_an_unknown_call_is_a_no_op(backend: Backend) -> None:
    lim = backend.limiter
    backend.set_limit(A, 2)
    backend.add(A, 5)
    lim.admit(A, T0)
    assert lim.release(A, "no-such-call") is False
    assert lim.release(B, "no-such-call") is False  # nor of an account never seen
    assert lim.in_use(A) == 2
    assert lim.admit(A, T0) == []


def test_a_raised_limit_admits_more_and_a_lowered_one_cuts_no_live_call(backend: Backend) -> None:
    lim = backend.limiter
    backend.set_limit(A, 2)
    ids = backend.add(A, 10)
    assert lim.admit(A, T0) == ids[:2]
    backend.set_limit(A, 4)
    assert lim.admit(A, T0) == ids[2:4]
    backend.set_limit(A, 1)
    assert lim.in_use(A) == 4  # live calls keep their slots
    for call_id in ids[:3]:
        lim.release(A, call_id)
    assert lim.admit(A, T0) == []  # one held, limit one
    lim.release(A, ids[3])
    assert lim.admit(A, T0) == [ids[4]]


def test_accounts_do_not_share_slots(backend: Backend) -> None:
    lim = backend.limiter
    backend.set_limit(A, 2)
    backend.set_limit(B, 3)
    a_ids = backend.add(A, 5)
    b_ids = backend.add(B, 5)
    assert lim.admit(A, T0) == a_ids[:2]
    assert lim.admit(B, T0) == b_ids[:3]
    assert (lim.in_use(A), lim.in_use(B)) == (2, 3)
    assert lim.release(B, a_ids[0]) is False  # A's call is not B's to release
    lim.release(A, a_ids[0])
    assert (lim.in_use(A), lim.in_use(B)) == (1, 3)
    assert lim.admit(B, T0) == []


def test_leases_expire_and_renew_only_held_slots(backend: Backend) -> None:
    lim = backend.limiter
    backend.set_limit(A, 2)
    first, second = backend.add(A, 2)
    lim.admit(A, T0)
    assert lim.expired(A, T0 + LEASE_S - 1) == []
    assert lim.expired(A, T0 + LEASE_S) == [first, second]
    assert lim.renew(A, first, T0 + 10 * LEASE_S) is True
    assert lim.expired(A, T0 + LEASE_S) == [second]
    lim.release(A, second)
    assert lim.renew(A, second, T0 + 10 * LEASE_S) is False  # a released slot stays released
    assert lim.expired(A, T0 + 100 * LEASE_S) == [first]


def test_many_threads_acquiring_and_releasing_never_exceed_the_limit(backend: Backend) -> None:
    """Each thread has its own limiter (for Redis, its own client): admit one,
    hold it, release it, over and over. ``holding`` counts calls between
    admit's return and release's call, so it can never exceed what the
    limiter holds: if it passes the limit, the limiter over-admitted."""
    limit, threads, rounds = 3, 8, 25
    backend.set_limit(A, limit)
    backend.add(A, threads * rounds)
    lock = threading.Lock()
    holding = peak = 0
    admitted: list[str] = []
    errors: list[BaseException] = []

    def worker(lim: Limiter) -> None:
        nonlocal holding, peak
        try:
            for _ in range(rounds):
                ids = lim.admit(A, time.time(), limit=1)
                with lock:
                    holding += len(ids)
                    peak = max(peak, holding)
                    admitted.extend(ids)
                assert lim.in_use(A) <= limit
                for call_id in ids:
                    with lock:
                        holding -= 1
                    assert lim.release(A, call_id) is True
        except BaseException as exc:  # failed below, in the test's own thread
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(backend.another(),)) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not errors, errors
    assert not any(t.is_alive() for t in pool)
    assert 0 < peak <= limit
    assert len(admitted) == len(set(admitted))  # no call got two slots
    assert backend.limiter.in_use(A) == 0  # no slot leaked

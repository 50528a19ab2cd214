"""Each hot step of a call costs a fixed number of Redis round trips, counted on the wire.

A round trip is one send on a redis-py connection (a command, a pipeline, a
script run), counted by wrapping both clients' connection class while a
block runs; each send is listed by the commands it carried, so a failure
says what was added. The numbers are the contract of issue #17: every
transition (dial claim, placed, callback, release + refill) commits in one
round trip; a callback first reads the call (one more); no WATCH/MULTI
anywhere on the path. Runs on the cluster too (``DIALER_TEST_REDIS_CLUSTER=1``):
every key of a step shares the account's hash tag, so each send goes to one node.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
import redis
import redis.asyncio.connection as aconnection
import redis.connection as connection

from dialer.core.calls import Event, Kind, State
from dialer.core.errors import NotPlacedError
from dialer.core.exotel import ConnectParams
from dialer.net.exotel import CallInfo, ExotelClient
from dialer.services import callback, dialing
from dialer.services.accounts import Account
from dialer.services.runtime import Runtime
from dialer.store import callerids, keys, replies
from dialer.store.records import transition
from dialer.store.scripts import script
from tests.support import callbacks, seed
from tests.support.signing import KEYRING, make_settings

A = "acct-rt"
T0 = 1_000_000.0
SCRIPT = "EVALSHA"  # a script run (commit.lua, admit.lua, the caller-id pick)


def _names(packed: Any) -> str:
    """The command names in one send (RESP arrays of bulk strings), joined by '+'."""
    if isinstance(packed, str):
        packed = packed.encode()
    buf = packed if isinstance(packed, bytes) else b"".join(bytes(c) for c in packed)
    names, i = [], 0
    while i < len(buf) and buf[i : i + 1] == b"*":
        end = buf.index(b"\r\n", i)
        count, i = int(buf[i + 1 : end]), end + 2
        for n in range(count):
            end = buf.index(b"\r\n", i)
            size = int(buf[i + 1 : end])
            if n == 0:
                names.append(buf[end + 2 : end + 2 + size].decode().upper())
            i = end + 2 + size + 2
    return "+".join(names)


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch, sent: list[str]) -> Iterator[list[str]]:
    """Every send on any redis-py connection (blocking or asyncio) while the block
    runs, appended to ``sent``."""
    sync_send = connection.AbstractConnection.send_packed_command
    async_send = aconnection.AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(_names(command))
        sync_send(self, command, check_health)

    async def acounted(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(_names(command))
        await async_send(self, command, check_health)

    with monkeypatch.context() as m:
        m.setattr(connection.AbstractConnection, "send_packed_command", counted)
        m.setattr(aconnection.AbstractConnection, "send_packed_command", acounted)
        yield sent


class Exotel:
    """Exotel's Connect, answered here: placed, or provably not placed."""

    def __init__(self, sent: list[str], refuse: bool = False) -> None:
        self.sent, self.refuse = sent, refuse
        self.before_connect: list[str] | None = None

    def connect(self, params: ConnectParams) -> CallInfo:
        self.before_connect = list(self.sent)
        if self.refuse:
            raise NotPlacedError("connection refused")
        return CallInfo(sid="SID1", status="in-progress")


class Dialer(Runtime):
    exotel: Exotel | None = None

    def client(self, account: Account) -> ExotelClient:
        assert self.exotel is not None
        return self.exotel  # type: ignore[return-value]


@pytest.fixture
def rt(r: redis.Redis, redis_url: str) -> Dialer:
    seed.setup_account(r, A, limit=1, cpm=1000, keyring=KEYRING)
    return Dialer(make_settings(redis_url), r)


def campaign(r: redis.Redis, rt: Dialer, n: int) -> list[str]:
    """``n`` contacts at limit 1, the first admitted; scripts loaded, connections open."""
    cid = seed.make_campaign(r, n, A, now=T0, max_attempts=3)
    ids = [keys.call_id(cid, i) for i in range(n)]
    assert rt.limiter.admit(A, T0) == ids[:1]
    assert rt.campaign(cid) is not None  # the per-process cache, as a worker holds it
    # A warm process: its scripts loaded, its connection open (a first run of a
    # script on a fresh server costs a NOSCRIPT reply and a load: not a hot step).
    r.script_load(script("commit"))
    callerids.pick(r, A, "0800", T0)
    return ids


def placed(r: redis.Redis, rt: Dialer, call_id: str) -> None:
    facts = rt.campaign_of_call(call_id)
    assert facts is not None
    for ev in (Event(Kind.DIAL, 1, at=T0), Event(Kind.PLACED, 1, sid="SID1", at=T0)):
        transition(r, A, call_id, ev, facts.policy, now=T0, leases=facts.leases)


def test_the_dial_claim_and_placed_are_one_round_trip_each(
    r: redis.Redis, rt: Dialer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (first, _) = campaign(r, rt, 2)
    with round_trips(monkeypatch, []) as sent:
        rt.exotel = Exotel(sent)
        result = dialing.dial(rt, first, now=T0)
    assert result.outcome == "placed", sent
    # read (call, campaign state, account) | do-not-call | claim | placed
    assert rt.exotel.before_connect == ["HGETALL+HGET+HGETALL", "SISMEMBER", SCRIPT]
    assert sent == [*rt.exotel.before_connect, SCRIPT]
    assert r.hget(keys.call(A, first), "state") == State.PLACED.value


def test_an_account_with_a_caller_id_pool_picks_in_one_more_round_trip(
    r: redis.Redis, rt: Dialer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pick is skipped only when the account has no pool: then there is nothing to rotate."""
    (first, _) = campaign(r, rt, 2)
    r.hset(keys.account(A), "caller_ids", "0801,0802")
    callerids.set_pool(r, A, ["0801", "0802"])
    with round_trips(monkeypatch, []) as sent:
        rt.exotel = Exotel(sent)
        result = dialing.dial(rt, first, now=T0)
    assert result.outcome == "placed", sent
    # read | do-not-call | caller id | claim | placed
    assert rt.exotel.before_connect == ["HGETALL+HGET+HGETALL", "SISMEMBER", SCRIPT, SCRIPT]
    assert sent == [*rt.exotel.before_connect, SCRIPT]


def test_a_dial_that_releases_its_slot_refills_it_in_the_same_round_trip(
    r: redis.Redis, rt: Dialer, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = campaign(r, rt, 2)
    with round_trips(monkeypatch, []) as sent:
        rt.exotel = Exotel(sent, refuse=True)
        result = dialing.dial(rt, first, now=T0)
    assert result.outcome == "not_placed" and result.slot_released
    assert sent == [*(rt.exotel.before_connect or []), SCRIPT]  # release + refill: one
    assert result.admitted == (second,)
    assert result.settlement is not None and not result.settlement.refill  # nothing left
    assert r.hget(keys.call(A, second), "state") == State.ADMITTED.value
    assert replies.texts(r.zrange(keys.active(A), 0, -1)) == [second]


def callback_of(
    rt: Dialer, redis_url: str, call_id: str, status: str, event_type: str, now: float
) -> tuple[callback.Outcome, list[str]]:
    """The receiver's use case for one callback and the round trips it made."""
    facts = rt.campaign_of_call(call_id)
    assert facts is not None
    sent: list[str] = []
    count = partial(round_trips, pytest.MonkeyPatch(), sent)
    out = callbacks.record(redis_url, facts, call_id, status, event_type, now=now, during=count)
    return out, sent


def test_a_callback_is_a_read_and_one_commit_with_its_event_record(
    r: redis.Redis, rt: Dialer, redis_url: str
) -> None:
    (first,) = campaign(r, rt, 1)
    placed(r, rt, first)
    out, sent = callback_of(rt, redis_url, first, "ringing", "ringing", T0 + 1)
    assert out.transition is not None and out.transition.after.state is State.RINGING
    assert sent == ["HGETALL", SCRIPT]  # the raw callback is XADDed by that script
    assert r.xlen(keys.events(A)) == 1


def test_a_terminal_callback_releases_and_refills_in_one_commit(
    r: redis.Redis, rt: Dialer, redis_url: str
) -> None:
    first, second = campaign(r, rt, 2)
    placed(r, rt, first)
    out, sent = callback_of(rt, redis_url, first, "completed", "terminal", T0 + 5)
    assert sent == ["HGETALL", SCRIPT]
    assert out.admitted == (second,)
    assert out.settlement is not None and not out.settlement.refill
    assert r.hget(keys.call(A, second), "state") == State.ADMITTED.value
    assert r.xlen(keys.events(A)) == 1


def test_a_duplicate_callback_is_a_read_and_its_event_record(
    r: redis.Redis, rt: Dialer, redis_url: str
) -> None:
    (first,) = campaign(r, rt, 1)
    placed(r, rt, first)
    callback_of(rt, redis_url, first, "completed", "terminal", T0 + 5)
    out, sent = callback_of(rt, redis_url, first, "completed", "terminal", T0 + 6)
    assert out.settlement is None and out.admitted == ()
    assert sent == ["HGETALL", "XADD"]
    assert r.xlen(keys.events(A)) == 2

"""Settling calls from every signal, on a real Redis: the stream's end pulls a slot's
lease in, reconciliation claims each due call once within the API budget, a malformed
Exotel answer never stops a pass, ``back_off`` only ever moves later, stale calls are
due at start."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis

from dialer.core.calls import Event, Kind
from dialer.core.campaign import CampaignIn
from dialer.core.keyring import Keyring
from dialer.core.settings import load_settings
from dialer.services import settle
from dialer.services.accounts import back_off, make_account, save_account
from dialer.services.ingest import create_campaign
from dialer.services.reconcile import expedite_stale, reconcile_account
from dialer.services.runtime import Runtime
from dialer.store import keys
from dialer.store.admission import RedisLimiter
from dialer.store.records import Extra, Leases, transition
from dialer.store.scripts import script
from tests.support import redis_cluster

SECRET = "settle-S3cr3t-4Kd2Lq7Wx9Zb6Nm1Vp8Rt5Yc0Fh"

A = "acct1"
T0 = 1_000_000.0


class FakeExotel(BaseHTTPRequestHandler):
    """Call details whose body depends on the sid: the shapes a broken proxy returns."""

    seen: Counter[str] = Counter()

    def do_GET(self) -> None:
        sid = self.path.split("/Calls/", 1)[-1].split(".json", 1)[0]
        FakeExotel.seen[sid] += 1
        bodies = {
            "html": ("text/html", b"<html>502 Bad Gateway</html>"),
            "array": ("application/json", b"[1, 2, 3]"),
            "nocall": ("application/json", b'{"Call": "completed"}'),
        }
        ctype, body = bodies.get(
            sid,
            (
                "application/json",
                json.dumps({"Call": {"Sid": sid, "Status": sid.rstrip("0123456789")}}).encode(),
            ),
        )
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def exotel() -> Iterator[str]:
    FakeExotel.seen = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeExotel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def rt(r: redis.Redis, redis_url: str, exotel: str) -> Runtime:
    settings = load_settings(
        REDIS_URL=redis_url,
        DIALER_SECRET=SECRET,
        DIALER_STREAM_GRACE_S=10,
        DIALER_EGRESS_ALLOW="127.0.0.0/8",  # the fake Exotel listens on loopback
    )
    save_account(
        r,
        make_account(
            A, "k", "t", "0800", api_url=exotel, max_concurrent_calls=50, calls_per_minute=20
        ),
        settings.keyring,
    )
    return Runtime(settings, r)


def calls_in(
    r: redis.Redis, rt: Runtime, sids: list[str], *last: Kind, now: float = T0
) -> list[str]:
    """Submit one call per sid and walk each through dial, placed (with that Exotel
    sid) and then the ``last`` events (default: answered)."""
    spec = CampaignIn(
        account=A, bot="echo", contacts=[{"to": f"+9198765{i:05d}"} for i in range(len(sids))]
    )
    cid = str(create_campaign(r, spec, now=now)["id"])
    ids = rt.limiter.admit(A, now)
    facts = rt.campaign(cid)
    assert facts is not None and len(ids) == len(sids)
    for call_id, sid in zip(ids, sids, strict=True):
        events = [Event(Kind.DIAL, 1), Event(Kind.PLACED, 1, sid=sid)]
        events += [Event(k, 1) for k in (last or (Kind.ANSWERED,))]
        for ev in events:
            transition(r, A, call_id, ev, facts.policy, now=now, leases=facts.leases)
    return ids


def answered_calls(r: redis.Redis, rt: Runtime, sids: list[str]) -> list[str]:
    return calls_in(r, rt, sids)


def stream_end(r: redis.Redis, call_id: str, attempt: int, now: float, grace: float = 10) -> int:
    """What the streamer runs when a stream ends (``CallStore.record_end``)."""
    return int(
        r.eval(  # type: ignore[arg-type]
            script("stream_end"),
            2,
            keys.call(A, call_id),
            keys.active(A),
            call_id,
            str(attempt),
            repr(now),
            repr(now + grace),
        )
    )


def test_stream_end_pulls_the_lease_in_for_its_own_attempt_only(
    r: redis.Redis, rt: Runtime
) -> None:
    (call_id,) = answered_calls(r, rt, ["S1"])
    assert r.zscore(keys.active(A), call_id) == T0 + rt.settings.DIALER_ANSWERED_CHECK_S
    assert stream_end(r, call_id, attempt=2, now=T0 + 5) == 0  # another attempt's stream
    assert r.zscore(keys.active(A), call_id) == T0 + rt.settings.DIALER_ANSWERED_CHECK_S
    assert stream_end(r, call_id, attempt=1, now=T0 + 5) == 1
    assert r.zscore(keys.active(A), call_id) == T0 + 15
    assert stream_end(r, call_id, attempt=1, now=T0 + 50) == 1  # never pushes it out again
    assert r.zscore(keys.active(A), call_id) == T0 + 15


def test_an_answered_callback_after_the_stream_ended_keeps_the_short_lease(
    r: redis.Redis, rt: Runtime
) -> None:
    (call_id,) = calls_in(r, rt, ["S1"], Kind.RINGING)
    facts = rt.campaign_of_call(call_id)
    assert facts is not None
    stream_end(r, call_id, 1, now=T0 + 3)  # reordered: the stream ended first
    transition(
        r, A, call_id, Event(Kind.ANSWERED, 1), facts.policy, now=T0 + 4, leases=facts.leases
    )
    assert r.zscore(keys.active(A), call_id) == T0 + 13


def test_a_new_dial_forgets_the_previous_stream_end() -> None:
    leases = Leases(answered_s=600, stream_grace_s=10)
    from dialer.core.calls import State

    fields = {"stream_end": "1:100"}
    assert leases.deadline(State.ANSWERED, fields, 1, 105) == 110
    assert leases.deadline(State.ANSWERED, fields, 2, 105) == 705  # attempt 2's own lease
    assert leases.deadline(State.DIALING, fields, 1, 105) == 105 + leases.dialing_s


def test_one_request_per_lost_callback_and_none_for_settled_calls(
    r: redis.Redis, rt: Runtime
) -> None:
    ids = answered_calls(r, rt, ["completed1", "completed2", "completed3"])
    for call_id in ids:
        stream_end(r, call_id, 1, now=T0 + 5)
    facts = rt.campaign_of_call(ids[0])
    assert facts is not None
    # S2's terminal callback arrives within the grace: it releases its slot itself
    transition(
        r, A, ids[1], Event(Kind.TERMINAL, 1, status="completed", sid="completed2"), facts.policy,
        now=T0 + 6, leases=facts.leases,
    )  # fmt: skip
    assert reconcile_account(rt, A, now=T0 + 14).requests == 0  # grace not over yet
    report = reconcile_account(rt, A, now=T0 + 15)
    assert sorted(report.settled) == sorted([ids[0], ids[2]])
    assert FakeExotel.seen == Counter({"completed1": 1, "completed3": 1})
    assert r.zcard(keys.active(A)) == 0
    assert reconcile_account(rt, A, now=T0 + 100).requests == 0


def test_overlapping_passes_never_ask_twice_about_one_call(r: redis.Redis, rt: Runtime) -> None:
    (call_id,) = answered_calls(r, rt, ["S1"])
    lim = RedisLimiter(r, reserve_pct=10)
    due = T0 + 700
    assert lim.claim(A, call_id, due, hold_s=60, wait_s=5) == 1
    assert lim.claim(A, call_id, due, hold_s=60, wait_s=5) == -1  # the other pass
    assert r.zscore(keys.active(A), call_id) == due + 60


def test_dials_leave_the_reserve_and_reconciliation_never_takes_more_than_half(
    r: redis.Redis, rt: Runtime
) -> None:
    spec = CampaignIn(
        account=A, bot="echo", contacts=[{"to": f"+9198765{i:05d}"} for i in range(40)]
    )
    create_campaign(r, spec, now=T0)
    lim = RedisLimiter(r, reserve_pct=10)  # 20 requests/minute: 2 kept for reconciliation
    ids = lim.admit(A, T0)
    assert len(ids) == 18
    assert lim.admit(A, T0 + 1) == []
    due = T0 + 1000  # every lease has run out; the dials' minute has too
    claimed = [lim.claim(A, c, due, hold_s=60, wait_s=5) for c in ids[:15]]
    assert claimed.count(1) == 10 and claimed.count(0) == 5  # half of the budget at most
    assert len(lim.admit(A, due)) == 8  # the rest of the minute is the dials'
    waiting = ids[14]
    assert r.zscore(keys.active(A), waiting) == due + 5  # no budget: looked at again soon


def test_a_malformed_answer_never_stops_the_pass(r: redis.Redis, rt: Runtime) -> None:
    ids = answered_calls(r, rt, ["html", "array", "nocall", "completed4"])
    report = reconcile_account(rt, A, now=T0 + 10_000)
    assert report.settled == [ids[3]]
    assert report.errors == 3
    for bad in ids[:3]:  # looked at again later, slot still held
        assert r.zscore(keys.active(A), bad) == T0 + 10_000 + rt.settings.DIALER_RECONCILE_AFTER_S


def test_a_paused_account_makes_no_reconciliation_request(r: redis.Redis, rt: Runtime) -> None:
    (call_id,) = answered_calls(r, rt, ["S1"])
    back_off(r, A, T0 + 10_000 + 30)
    report = reconcile_account(rt, A, now=T0 + 10_000)
    assert report.deferred == [call_id] and report.requests == 0 and not FakeExotel.seen


def test_back_off_only_ever_moves_later_under_concurrent_callers(
    r: redis.Redis, redis_url: str
) -> None:
    keyring = Keyring.from_secret(SECRET.encode())
    save_account(r, make_account(A, "k", "t", "0800", api_url="http://127.0.0.1:9"), keyring)
    workers = 12
    clients = [redis_cluster.client(redis_url) for _ in range(workers)]
    rng = random.Random(7)
    for _ in range(30):
        r.hset(keys.account(A), "paused_until", "0")
        values = [T0 + rng.uniform(0, 1000) for _ in range(workers)]
        barrier = threading.Barrier(workers)

        def call(i: int, barrier: threading.Barrier, values: list[float]) -> None:
            barrier.wait()
            back_off(clients[i], A, values[i])

        threads = [threading.Thread(target=call, args=(i, barrier, values)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert float(r.hget(keys.account(A), "paused_until") or 0) == max(values)
    assert not back_off(r, A, T0)  # earlier than now set: no change
    for c in clients:
        c.close()


def test_calls_left_answered_or_ringing_are_due_at_start(r: redis.Redis, rt: Runtime) -> None:
    ids = answered_calls(r, rt, ["completed1", "completed2"])
    spec = CampaignIn(account=A, bot="echo", contacts=[{"to": "+919876599999"}])
    create_campaign(r, spec, now=T0)
    (admitted,) = rt.limiter.admit(A, T0)
    before = r.zscore(keys.active(A), admitted)
    assert expedite_stale(r, now=T0 + 1) == 2
    assert [r.zscore(keys.active(A), c) for c in ids] == [T0 + 1, T0 + 1]
    assert r.zscore(keys.active(A), admitted) == before  # a dial keeps its own lease
    assert sorted(reconcile_account(rt, A, now=T0 + 1).settled) == sorted(ids)


def test_a_placed_call_that_never_streamed_costs_one_details_request_at_ring_timeout(
    r: redis.Redis, rt: Runtime
) -> None:
    """Busy: no stream, terminal callback lost. The ring-timeout lease, then one request."""
    (call_id,) = calls_in(r, rt, ["busy7"], Kind.RINGING)
    ring_s = rt.settings.DIALER_RING_TIMEOUT_S
    assert reconcile_account(rt, A, now=T0 + ring_s - 1).requests == 0
    report = reconcile_account(rt, A, now=T0 + ring_s)
    assert report.settled == [call_id] and report.requests == 1
    assert FakeExotel.seen == Counter({"busy7": 1})  # its own details, never a listing
    assert json.loads(r.hget(keys.call(A, call_id), "h:1") or "{}")["status"] == "busy"


class Handed:
    """The settle step's hand-offs, recorded (Celery's part; Redis stays real)."""

    def __init__(self) -> None:
        self.dials: list[str] = []
        self.notified: list[str] = []

    def dial_all(self, call_ids: Sequence[str]) -> None:
        self.dials += call_ids

    def notify(self, call_id: str) -> None:
        self.notified.append(call_id)

    def notify_campaign(self, cid: str) -> None:
        pass


def test_an_attempt_settled_by_reconciliation_counts_for_its_caller_id(
    r: redis.Redis, rt: Runtime
) -> None:
    spec = CampaignIn(account=A, bot="echo", contacts=[{"to": "+919876500000"}])
    cid = str(create_campaign(r, spec, now=T0)["id"])
    (call_id,) = rt.limiter.admit(A, T0)
    facts = rt.campaign(cid)
    assert facts is not None
    caller = Extra(detail={"caller_id": "0800"})
    for ev, extra in ((Event(Kind.DIAL, 1), caller), (Event(Kind.PLACED, 1, sid="busy1"), None)):
        transition(r, A, call_id, ev, facts.policy, now=T0, leases=facts.leases, extra=extra)
    report = reconcile_account(rt, A, now=T0 + 10_000)  # its callback never came
    assert report.settled == [call_id] and report.released == [call_id]
    settle.settle(rt, report.settlements, Handed(), now=T0 + 10_000)
    assert r.hgetall(keys.callerid_stats(A)) == {"0800:dials": "1", "0800:answered": "0"}

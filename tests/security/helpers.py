"""Shared set-up for the security and fuzz suites (in-process apps, real Redis).

Accounts, campaigns and calls are written through the product's own functions
(``save_account``, ``create_campaign``, the limiter and ``records.transition``)
so every invariant the tests check (counters, active set) starts out true.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from dialer.core import tokens
from dialer.core.calls import FINAL, RANK, Event, Kind, State
from dialer.core.keyring import Keyring
from dialer.core.settings import Settings, load_settings
from dialer.services.accounts import make_account, save_account
from dialer.services.campaigns import CampaignIn, create_campaign, load_policy
from dialer.store import keys
from dialer.store.admission import RedisLimiter
from dialer.store.records import Leases, transition

SECRET = "sec-SIGNING-7f3a9c1e5b2d-Qw8Zx4Lm2Np6"
API_KEY = "key-APIKEY-4e8b2a6d0c9f-Hk3Tq7Vb1Rs5"
ACCOUNT = "AC_sec"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def make_settings(redis_url: str, **extra: Any) -> Settings:
    # accounts in these suites point at loopback "Exotels"; the egress tests
    # (tests/security/test_egress.py) pass DIALER_EGRESS_ALLOW="" to see refusals
    extra.setdefault("DIALER_EGRESS_ALLOW", "127.0.0.0/8")
    return load_settings(REDIS_URL=redis_url, DIALER_SECRET=SECRET, DIALER_API_KEY=API_KEY, **extra)


KEYRING = Keyring.from_secret(SECRET.encode())


def sig(call_id: str, attempt: int = 1, secret: str = SECRET) -> str:
    key = Keyring.from_secret(secret.encode()).callback
    return tokens.callback_sig(key, call_id, attempt)


def cb(call_id: str, attempt: int = 1, secret: str = SECRET) -> dict[str, str]:
    """The query of a callback URL, as the dialer builds it for that attempt."""
    return {"attempt": str(attempt), "sig": sig(call_id, attempt, secret)}


def stream_token(call_id: str, attempt: int = 1, ttl_s: int = 3600, secret: str = SECRET) -> str:
    key = Keyring.from_secret(secret.encode()).stream
    return tokens.stream_token(key, call_id, attempt, int(time.time()) + ttl_s)


def setup_account(r: redis.Redis, sid: str = ACCOUNT, limit: int = 50) -> None:
    save_account(
        r,
        make_account(
            sid,
            "k",
            "t",
            "08000000000",
            api_url="http://127.0.0.1:9",
            max_concurrent_calls=limit,
            calls_per_minute=10_000,
        ),
        KEYRING,
    )


def make_campaign(r: redis.Redis, n: int = 2, account: str = ACCOUNT, **kw: Any) -> str:
    contacts = [{"to": f"+9198765{i:05d}"} for i in range(n)]
    spec = CampaignIn(account=account, contacts=contacts, bot="echo", **kw)
    return str(create_campaign(r, spec, now=time.time())["id"])


def place_calls(
    r: redis.Redis, cid: str, account: str = ACCOUNT, state: State = State.PLACED
) -> list[str]:
    """Admit every call of ``cid`` and move each to ``state`` (dialing/placed/ringing/answered)."""
    now = time.time()
    ids = RedisLimiter(r).admit(account, now)
    policy = load_policy(r, account, cid)
    leases = Leases()
    for n, call_id in enumerate(ids):
        steps = [Event(Kind.DIAL, 1)]
        if RANK[state] >= RANK[State.PLACED]:
            steps.append(Event(Kind.PLACED, 1, sid=f"EXO{cid}{n}"))
        if RANK[state] >= RANK[State.RINGING]:
            steps.append(Event(Kind.RINGING, 1))
        if RANK[state] >= RANK[State.ANSWERED]:
            steps.append(Event(Kind.ANSWERED, 1))
        for ev in steps:
            transition(r, account, call_id, ev, policy, now=now, leases=leases)
    return ids


def exotel_sid(r: redis.Redis, call_id: str, account: str = ACCOUNT) -> str:
    return str(r.hget(keys.call(account, call_id), "sid") or "")


def snapshot(r: redis.Redis, cid: str, account: str = ACCOUNT) -> dict[str, Any]:
    """Everything a callback may change for a campaign's calls."""
    total = int(r.hget(keys.campaign(account, cid), "total") or 0)
    return {
        "calls": {i: r.hgetall(keys.call(account, keys.call_id(cid, i))) for i in range(total)},
        "counts": r.hgetall(keys.counts(account, cid)),
        "campaign": r.hgetall(keys.campaign(account, cid)),
        "active": r.zrange(keys.active(account), 0, -1, withscores=True),
        "delayed": r.zrange(keys.delayed(account, cid), 0, -1, withscores=True),
        "queue": r.zrange(keys.queue(account, cid), 0, -1, withscores=True),
    }


def call_state(r: redis.Redis, call_id: str, account: str = ACCOUNT) -> tuple[int, State]:
    h = r.hgetall(keys.call(account, call_id))
    return int(h.get("attempt", 1)), State(h.get("state", "pending"))


def progress(r: redis.Redis, call_id: str, account: str = ACCOUNT) -> tuple[int, int, bool]:
    """(attempt, rank, final): never decreases lexicographically, final is never left."""
    attempt, state = call_state(r, call_id, account)
    return attempt, RANK[state], state in FINAL


def check_invariants(r: redis.Redis, cid: str, account: str = ACCOUNT) -> None:
    """Counters match the call hashes; the active set holds exactly the slot holders."""
    from dialer.core.calls import HOLDS_SLOT

    snap = snapshot(r, cid, account)
    states: dict[str, int] = {}
    holders = set()
    for i, h in snap["calls"].items():
        st = h.get("state", "pending")
        states[st] = states.get(st, 0) + 1
        if State(st) in HOLDS_SLOT:
            holders.add(keys.call_id(cid, i))
    counts = {k: int(v) for k, v in snap["counts"].items() if int(v)}
    assert counts == states, (counts, states)
    active = {m for m, _ in snap["active"] if m.startswith(f"{cid}-")}
    assert active == holders, (active, holders)


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))

"""The call-seeding factory: accounts, campaigns and calls in a real Redis.

Accounts and campaigns are written through the product's own functions
(``save_account``, ``create_campaign``), placed calls through the limiter and
``records.transition``, so every invariant the tests check (counters, active
set) starts out true. ``seed_call`` writes one call hash in the product's own
format (``records.call_to_hash``) for the streamer's tests, which need a call
in a given state without the path that leads there.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from dialer.core.calls import RANK, Call, Event, Kind, State
from dialer.core.campaign import CampaignIn
from dialer.core.keyring import Keyring
from dialer.services.accounts import make_account, save_account
from dialer.services.ingest import create_campaign
from dialer.store import keys
from dialer.store.admission import RedisLimiter
from dialer.store.campaigns import load_policy
from dialer.store.records import Leases, call_to_hash, transition
from tests.support.signing import KEYRING

ACCOUNT = "AC_sec"


def setup_account(
    r: redis.Redis,
    sid: str = ACCOUNT,
    limit: int = 50,
    cpm: int = 10_000,
    keyring: Keyring = KEYRING,
) -> None:
    save_account(
        r,
        make_account(
            sid,
            "k",
            "t",
            "08000000000",
            api_url="http://127.0.0.1:9",
            max_concurrent_calls=limit,
            calls_per_minute=cpm,
        ),
        keyring,
    )


def make_campaign(
    r: redis.Redis, n: int = 2, account: str = ACCOUNT, now: float | None = None, **kw: Any
) -> str:
    """A campaign of ``n`` distinct numbers for the echo bot, created at ``now`` (default: now)."""
    contacts = [{"to": f"+9198765{i:05d}"} for i in range(n)]
    spec = CampaignIn(account=account, contacts=contacts, bot="echo", **kw)
    return str(create_campaign(r, spec, now=time.time() if now is None else now)["id"])


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


def seed_call(
    r: redis.Redis,
    account: str,
    cid: str,
    index: int = 0,
    *,
    state: str = "answered",
    attempt: int = 1,
    bot: str = "echo",
    bot_config: dict[str, Any] | None = None,
    to: str = "+919876543210",
    variables: dict[str, Any] | None = None,
) -> str:
    """One call of campaign ``cid`` (and the campaign's bot) as the streamer reads them."""
    call_id = keys.call_id(cid, index)
    r.hset(keys.CAMPAIGNS, cid, account)
    campaign = {"bot": bot} | ({"bot_config": json.dumps(bot_config)} if bot_config else {})
    r.hset(keys.campaign(account, cid), mapping=campaign)
    fields = call_to_hash(Call(state=State(state), attempt=attempt))
    fields |= {"to": to, "vars": json.dumps(variables if variables is not None else {})}
    r.hset(keys.call(account, call_id), mapping=fields)
    return call_id

"""What the store holds for a campaign, read back for assertions: snapshots and invariants."""

from __future__ import annotations

from typing import Any

import redis

from dialer.core.calls import FINAL, HOLDS_SLOT, RANK, State
from dialer.store import keys
from tests.support.seed import ACCOUNT


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

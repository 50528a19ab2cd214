"""Reading a campaign's stored facts: its account, meta and retry policy.

Blocking Redis client. A campaign that expired or is being purged reads as
unknown (``dialer.store.retention.is_gone``).
"""

from __future__ import annotations

import json

import redis

from dialer.core.policy import RetryPolicy
from dialer.store import keys, replies
from dialer.store.retention import is_gone


def account_of(r: redis.Redis, cid: str) -> str | None:
    return r.hget(keys.CAMPAIGNS, cid)  # type: ignore[return-value]


def load_meta(r: redis.Redis, cid: str) -> tuple[str, dict[str, str]] | None:
    """The campaign's account and meta; None if unknown, expired or being purged."""
    account = account_of(r, cid)
    if account is None:
        return None
    meta: dict[str, str] = r.hgetall(keys.campaign(account, cid))  # type: ignore[assignment]
    if is_gone(meta):
        return None
    return account, meta


def load_policy(r: redis.Redis, account: str, cid: str) -> RetryPolicy:
    raw = r.hget(keys.campaign(account, cid), "policy")
    return RetryPolicy.from_dict(json.loads(raw)) if raw else RetryPolicy()


def waiting_calls(r: redis.Redis, account: str, cid: str) -> list[str]:
    """Calls queued or scheduled for a retry (what cancel must settle)."""
    q = r.zrange(keys.queue(account, cid), 0, -1)
    d = r.zrange(keys.delayed(account, cid), 0, -1)
    return replies.texts([*q, *d])

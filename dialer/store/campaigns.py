"""Reading a campaign's stored facts: the one reader of receiver, workers and streamer.

``read`` (blocking client) and ``aread`` (asyncio client) issue the same read
and share the core's parser (``dialer.core.campaign.facts``), so a field
means the same in every process. ``load_meta`` gives the whole hash for the
status queries. A campaign that expired or is being purged reads as unknown
(``dialer.store.retention.is_gone``). This module never writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis

from dialer.core.campaign import FACT_FIELDS, CampaignFacts, facts
from dialer.core.policy import RetryPolicy
from dialer.store import keys, replies
from dialer.store.retention import is_gone


def account_of(r: redis.Redis, cid: str) -> str | None:
    return replies.text(r.hget(keys.CAMPAIGNS, cid))


def read(r: redis.Redis, cid: str, account: str | None = None) -> CampaignFacts | None:
    """The campaign's facts; None if unknown. ``account`` when the caller knows it."""
    account = account or account_of(r, cid)
    if account is None:
        return None
    return _parse(cid, account, r.hmget(keys.campaign(account, cid), FACT_FIELDS))


async def aread(r: aioredis.Redis, cid: str, account: str | None = None) -> CampaignFacts | None:
    """``read`` over the asyncio client (the streamer)."""
    if account is None:
        account = replies.text(await r.hget(keys.CAMPAIGNS, cid))
        if account is None:
            return None
    return _parse(cid, account, await r.hmget(keys.campaign(account, cid), FACT_FIELDS))


def _parse(cid: str, account: str, values: Sequence[Any]) -> CampaignFacts | None:
    if all(v is None for v in values):  # expired, or never written
        return None
    texts = [replies.text(v) for v in values]
    return facts(cid, account, dict(zip(FACT_FIELDS, texts, strict=True)))


def load_meta(r: redis.Redis, cid: str) -> tuple[str, dict[str, str]] | None:
    """The campaign's account and whole meta hash; None if unknown, expired or being purged."""
    account = account_of(r, cid)
    if account is None:
        return None
    meta = replies.fields(r.hgetall(keys.campaign(account, cid)))
    if is_gone(meta):
        return None
    return account, meta


def load_policy(r: redis.Redis, account: str, cid: str) -> RetryPolicy:
    found = read(r, cid, account)
    return found.policy if found is not None else RetryPolicy()


def waiting_calls(r: redis.Redis, account: str, cid: str) -> list[str]:
    """Calls queued or scheduled for a retry (what cancel must settle)."""
    q = r.zrange(keys.queue(account, cid), 0, -1)
    d = r.zrange(keys.delayed(account, cid), 0, -1)
    return replies.texts([*q, *d])

"""Exotel's status callbacks as the receiver gets them (signed with tests.support.signing.cb)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from dialer.services import callback
from dialer.services.runtime import CampaignFacts
from dialer.store import keys
from dialer.store.admission import AsyncRedisLimiter
from tests.support import redis_cluster


def terminal_body(call_id: str, sid: str, status: str = "completed") -> dict[str, str]:
    """A terminal status callback for attempt 1 of ``call_id``."""
    return {
        "CallSid": sid,
        "Status": status,
        "EventType": "terminal",
        "CustomField": f"{call_id}:1",
        "ConversationDuration": "12",
    }


def parsed(call_id: str, status: str, event_type: str, sid: str = "SID1") -> dict[str, object]:
    """A callback of attempt 1 of ``call_id`` as ``dialer.receiver.callbacks`` parses it."""
    return {
        "sid": sid,
        "status": status,
        "event_type": event_type,
        "custom": f"{call_id}:1",
        "duration_s": 3,
        "recording_url": None,
    }


def record(
    redis_url: str,
    facts: CampaignFacts,
    call_id: str,
    status: str,
    event_type: str,
    *,
    now: float,
    during: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> callback.Outcome:
    """The receiver's use case for one callback of attempt 1 (what the handler calls),
    on an asyncio client already connected to the call's node; ``during`` wraps
    the use case alone."""
    body = parsed(call_id, status, event_type)

    async def go() -> callback.Outcome:
        ar = redis_cluster.aclient(redis_url, decode_responses=True)
        try:
            await ar.exists(keys.call(facts.account, call_id))
            with during():
                limiter = AsyncRedisLimiter()
                return await callback.record(ar, limiter, facts, call_id, 1, {}, body, now=now)
        finally:
            await ar.aclose()

    return asyncio.run(go())

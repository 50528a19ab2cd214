"""The status-callback use case: record the raw event, apply the transition, refill:
one commit (``dialer.store.records.atransition``) after one read.

The receiver's handler verifies the signed URL, parses the body and answers;
everything between is here. The signed URL binds the callback to an attempt
(``dialer.core.tokens``); the body's ``CustomField`` (``<call id>:<attempt>``)
is only a consistency check. A transition this callback wins is settled
(``dialer.services.settle``): a released slot is refilled by the commit
itself (the same script run, ``dialer.store.admission.Refill``), the rest is
handed on as a :class:`Settlement` with the refill already done.

This module does not read HTTP (``dialer.receiver.callbacks`` does) and does
not publish tasks (the receiver does, behind its answer).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from dialer.core.calls import Event, Kind, Transition, status_event
from dialer.services import settle
from dialer.services.runtime import CampaignFacts
from dialer.services.settle import Settlement
from dialer.store import keys
from dialer.store.admission import AsyncRedisLimiter
from dialer.store.records import Extra, atransition

UNKNOWN_STATUS = "unknown status"
STALE = "stale attempt or unknown call"


@dataclass(frozen=True)
class Outcome:
    result: str  # what the callback was, for the metrics: its status, "ignored", "stale"
    ignored: str | None = None  # why nothing changed, if so
    transition: Transition | None = None
    #: follow-ups left to the settle task (the refill is done: ``admitted``)
    settlement: Settlement | None = None
    admitted: tuple[str, ...] = ()


def body_attempt(call_id: str, parsed: Mapping[str, Any]) -> int | None:
    """The attempt the body's ``CustomField`` (``<call id>:<attempt>``) names, if any.

    The signed URL is what binds a callback to an attempt; this is only a
    consistency check: a body that names another attempt is not trusted.
    """
    custom = parsed.get("custom")
    if not custom:
        return None
    owner, _, rest = custom.partition(":")
    attempt = rest.split(":", 1)[0]
    if owner != call_id or not (attempt.isascii() and attempt.isdigit()):
        return None
    return int(attempt)


def make_event(kind: Kind, attempt: int, parsed: Mapping[str, Any], now: float) -> Event:
    return Event(kind, attempt=attempt, status=parsed["status"] or None, sid=parsed["sid"], at=now)


async def record(
    r: aioredis.Redis,
    limiter: AsyncRedisLimiter,
    facts: CampaignFacts,
    call_id: str,
    signed_attempt: int,
    body: Mapping[str, Any],
    parsed: Mapping[str, Any],
    *,
    now: float,
) -> Outcome:
    """Store one verified, parsed callback; apply its event; refill a released slot."""
    # The raw callback goes to the account's stream whatever happens next; with a
    # transition, in the same round trip as its commit (dialer.store.records),
    # and so does the refill of a slot the transition releases.
    log = (
        keys.events(facts.account),
        {"call_id": call_id, "at": repr(now), "body": json.dumps(body, default=str)[:8192]},
    )
    kind = status_event(parsed["status"], parsed["event_type"])
    if kind is None:
        await r.xadd(log[0], log[1], maxlen=keys.EVENTS_MAXLEN, approximate=True)  # type: ignore[arg-type]
        return Outcome("ignored", UNKNOWN_STATUS)
    named = body_attempt(call_id, parsed)

    def event_for(call: Mapping[str, str]) -> Event | None:
        # The signed URL names the attempt it was issued for: the body cannot
        # move the event to another one (a CustomField that disagrees voids it),
        # and the transition refuses it if that attempt is no longer current.
        if named is not None and named != signed_attempt:
            return None
        return make_event(kind, signed_attempt, parsed, now)

    refill = limiter.refill(facts.account, now)
    t = await atransition(
        r,
        facts.account,
        call_id,
        event_for,
        facts.policy,
        now=now,
        leases=facts.leases,
        extra=Extra(duration_s=parsed["duration_s"], recording_url=parsed["recording_url"]),
        log=log,
        refill=refill,
    )
    if t is None:
        return Outcome("stale", STALE)
    result = parsed["status"] or kind.value
    done = settle.of(call_id, t, refilled=refill.ran)
    if done is None:
        return Outcome(result, transition=t)
    return Outcome(result, transition=t, settlement=done, admitted=tuple(refill.admitted))

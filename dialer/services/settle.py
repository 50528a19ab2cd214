"""The one step after a call's transition: every follow-up, each exactly once.

Every path that moves a call hands the transition it won here: the status
callback (``dialer.services.callback``), the dial outcome
(``dialer.services.dialing``), reconciliation (``dialer.services.reconcile``)
and cancel (``workers.tasks.cancel_campaign``). A stream's end makes no
transition of its own: it pulls the slot's lease in, and the transition that
follows (callback or reconciliation) is settled here.

=======================  ==================================================
follow-up                where and when
=======================  ==================================================
release the slot         inside the transition (``dialer.store.records``:
                         the ``ZREM`` commits with the state change)
retry scheduling         inside the transition (the ``delayed`` set);
                         admission promotes due retries
refill                   the slot was released: admit for the account and
                         dispatch each admitted call; inside the transition's
                         commit for a callback or a dial, here once per
                         batch otherwise
caller-id statistics     the attempt that held the slot was placed and ended
DNC from answers         the contact reached its final outcome
``call.final`` webhook   the contact reached its final outcome
campaign completion      the contact was final: ``completed_at`` once
                         (``HSETNX``), ``campaign.done`` webhook
=======================  ==================================================

Only the writer whose transition changed the call gets a :class:`Settlement`
(a duplicate callback is a no-op transition and settles nothing), so each
follow-up runs once per transition. The status callback and the dial step
refill in the transition's own round trip (its commit runs admission,
``dialer.store.admission.Refill``) and hand the rest over with ``refill``
already done; a batch (reconciliation, cancel) admits here, once per account.

"Campaign finished" has one source: the campaign's ``finished`` counter,
incremented in the same transaction as the final transition.
This module does not decide the transition (``dialer.core.calls`` does) and
sends no HTTP itself (webhooks go through ``Followups.notify``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from dialer.core.calls import Transition
from dialer.services.runtime import CampaignFacts, Runtime
from dialer.store import callerids, keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settlement:
    """What a won transition leaves to do. Ids and flags only: it travels as task args."""

    call_id: str
    refill: bool  # the slot was released and admission has not run for it yet
    final: bool  # the contact reached its final outcome
    attempt: int | None  # the attempt that held the slot (its record may count)

    def args(self) -> tuple[str, bool, bool, int | None]:
        """``dialer.followup``'s arguments (a stable contract)."""
        return (self.call_id, self.refill, self.final, self.attempt)


def of(call_id: str, t: Transition | None, *, refilled: bool = False) -> Settlement | None:
    """Pure: the follow-ups of a transition; None when it changed nothing that needs one.

    ``refilled``: the transition's own commit already refilled the slot it released.
    """
    if t is None or not t.changed or not (t.releases_slot or t.final):
        return None
    attempt = t.before.attempt if t.releases_slot else None
    refill = t.releases_slot and not refilled
    return Settlement(call_id, refill=refill, final=t.final, attempt=attempt)


class Followups(Protocol):
    """How the settle step hands work on (Celery tasks in the workers)."""

    def dial_all(self, call_ids: Sequence[str]) -> None:
        """Send each call to its dial: many at once (one broker round trip), or none."""

    def notify(self, call_id: str) -> None: ...

    def notify_campaign(self, cid: str) -> None: ...


def settle(rt: Runtime, done: Iterable[Settlement], then: Followups, *, now: float) -> list[str]:
    """Run every follow-up of ``done`` once; return the call ids admitted by the refill.

    A batch (one reconciliation pass, one cancel) admits once per account and
    checks each campaign's completion once.
    """
    done = list(done)
    refill: set[str] = set()
    finals: dict[str, CampaignFacts] = {}
    for s in done:
        facts = rt.campaign_of_call(s.call_id)
        if facts is None:
            continue
        if s.refill:
            refill.add(facts.account)
        if s.attempt is not None or s.final:
            _call(rt, facts, s, then)
        if s.final:
            finals[facts.cid] = facts
    admitted: list[str] = []
    for account in sorted(refill):
        admitted += admit(rt, account, then, now=now)
    for facts in finals.values():
        finish_if_done(rt, facts, then, now=now)
    return admitted


def admit(rt: Runtime, account: str, then: Followups, *, now: float) -> list[str]:
    """Admission for one account; each admitted call is sent to its dial."""
    ids = rt.limiter.admit(account, now)
    then.dial_all(ids)
    return ids


def _call(rt: Runtime, facts: CampaignFacts, s: Settlement, then: Followups) -> None:
    """The per-call follow-ups: caller-id statistics, DNC from answers, the webhook."""
    needs_record = s.attempt is not None or (s.final and facts.dnc_answers)
    h: dict[str, str] = (
        rt.r.hgetall(keys.call(facts.account, s.call_id)) if needs_record else {}  # type: ignore[assignment]
    )
    if s.attempt is not None:
        _count_caller_id(rt, facts, h, s.attempt)
    dnc = facts.dnc_answers or {}
    if s.final and h.get("to") and any(h.get(f"a:{q}") == v for q, v in dnc.items()):
        rt.r.sadd(keys.dnc(facts.account), h["to"])
    if s.final and facts.webhook_url:
        then.notify(s.call_id)


def _count_caller_id(rt: Runtime, facts: CampaignFacts, h: dict[str, str], attempt: int) -> None:
    """A placed attempt ended: count it for its caller id (spam detection).

    Only attempts Exotel placed (a sid) and that ended with a status count: a
    request refused outright says nothing about how callees see the number.
    """
    raw = h.get(f"h:{attempt}")
    rec = json.loads(raw) if raw else {}
    caller_id, status = rec.get("caller_id"), rec.get("status")
    if not (caller_id and status and rec.get("exotel_sid")):
        return
    if callerids.record(rt.r, facts.account, caller_id, status == "completed"):
        log.warning(
            "caller id %s taken out of rotation: answer rate collapsed",
            caller_id,
            extra={"account": facts.account},
        )


def finish_if_done(rt: Runtime, facts: CampaignFacts, then: Followups, *, now: float) -> bool:
    """Mark the campaign complete once (``HSETNX completed_at``) and announce it.

    The one reading of "finished": the campaign's ``finished`` counter against
    its ``total`` (see ``dialer.store.retention.is_finished``)."""
    r = rt.r
    ckey = keys.campaign(facts.account, facts.cid)
    finished, total = r.hmget(ckey, "finished", "total")
    if int(finished or 0) < int(total or 0):
        return False
    if not r.hsetnx(ckey, "completed_at", now):
        return False  # another settle step saw it first
    if facts.webhook_url:
        then.notify_campaign(facts.cid)
    return True

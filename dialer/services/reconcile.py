"""Reconciliation: settle calls whose lease expired, asking Exotel what happened.

Status callbacks can be late or lost and a worker can die between sending a
dial and recording its answer, so no slot may depend on them alone:

* ``admitted`` past its lease: its dial task was lost before sending; the
  DIAL compare-and-set makes re-sending the task safe.
* ``dialing``/``unknown`` without a sid: list Exotel's calls created in the
  dial's time window and match our ``CustomField`` (``<call id>:<attempt>``)
  or, where Exotel omits it, the number. Found: adopt its sid and status.
  Provably absent: back to the queue for the same attempt.
* with a sid: one call-details request gives the status; still live: renew.

What makes a lease run out early: the streamer pulls it in to
``DIALER_STREAM_GRACE_S`` after the attempt's stream ended
(``lua/stream_end.lua``), so a lost terminal callback costs one call-details
request and about the grace in slot time, not ``DIALER_ANSWERED_CHECK_S``.
A call Exotel still reports live after its stream ended is looked at again
after the grace, doubling each time, up to its normal lease.

Every Exotel request here is first claimed (``lua/claim.lua``): the slot's
lease moves out, so overlapping passes never ask twice about one call, and
one request is taken from the account's per-minute budget, which dials share;
with none left the call waits for a later pass.
One call's failure (an error from Exotel, a malformed body) never stops the
pass for the others, nor one account's for the rest.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from dialer.core.calls import Event, Kind, State, is_live
from dialer.core.errors import ConfigError, DialerError, RateLimited
from dialer.net.exotel import CallInfo, ExotelClient
from dialer.services import accounts
from dialer.services.runtime import CampaignFacts, Runtime
from dialer.services.settle import Settlement, of
from dialer.store import keys, replies
from dialer.store.records import Extra, stream_end, transition

log = logging.getLogger(__name__)
WINDOW_SLACK_S = 120
NO_BUDGET_WAIT_S = 5.0  # a call that found no budget is looked at again this soon
STALE_STATES = (State.PLACED.value, State.RINGING.value, State.ANSWERED.value)


@dataclass
class Report:
    redispatch: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    #: the transitions this pass won, for the settle step (dialer.services.settle)
    settlements: list[Settlement] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # no API budget this pass
    requests: int = 0  # Exotel requests made (one per call looked up)
    errors: int = 0

    @property
    def released(self) -> list[str]:
        return [s.call_id for s in self.settlements if s.refill]

    @property
    def final(self) -> list[str]:
        return [s.call_id for s in self.settlements if s.final]


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def _find(
    client: ExotelClient, call_id: str, attempt: int, to: str, dial_at: float, now: float
) -> CallInfo | None:
    wanted = f"{call_id}:{attempt}"
    by_number: list[CallInfo] = []
    for info in client.list_calls(_utc(dial_at - WINDOW_SLACK_S), _utc(now + WINDOW_SLACK_S)):
        if info.custom_field == wanted:
            return info
        if info.custom_field is None and to in (info.to, info.from_number):
            by_number.append(info)
    # Exotel's listing may omit CustomField: accept a number match only if unique.
    return by_number[0] if len(by_number) == 1 else None


def reconcile_account(
    rt: Runtime, account: str, *, now: float | None = None, batch: int = 50
) -> Report:
    now = time.time() if now is None else now
    report = Report()
    try:
        acct = rt.account(account)
    except ConfigError as exc:  # its token cannot be decrypted: nothing to ask Exotel with
        log.error("cannot reconcile account %s: %s", account, exc, extra={"account": account})
        return report
    if acct is None:
        return report
    client = rt.client(acct)
    for call_id in rt.limiter.expired(account, now, batch):
        try:
            _reconcile_call(rt, client, account, call_id, now, report)
        except (DialerError, redis.RedisError, ValueError, KeyError) as exc:
            # Anything one call's data or one Exotel answer can throw: count it,
            # look at the call again later, go on with the others.
            report.errors += 1
            log.warning(
                "reconcile %s: %s: %s",
                call_id,
                type(exc).__name__,
                exc,
                extra={"call_id": call_id, "account": account},
            )
            if isinstance(exc, RateLimited):
                accounts.back_off(rt.r, account, now + exc.retry_after_s)
            rt.limiter.renew(account, call_id, now + rt.settings.DIALER_RECONCILE_AFTER_S)
    return report


def _reconcile_call(
    rt: Runtime, client: ExotelClient, account: str, call_id: str, now: float, report: Report
) -> None:
    facts = rt.campaign_of_call(call_id)
    if facts is None:
        rt.limiter.release(account, call_id)  # orphan slot: its call is gone
        return
    h: dict[str, str] = rt.r.hgetall(keys.call(account, call_id))  # type: ignore[assignment]
    state = State(h.get("state", "pending"))
    attempt = int(h.get("attempt", 1))
    if state is State.ADMITTED:
        rt.limiter.renew(account, call_id, now + rt.settings.DIALER_RECONCILE_AFTER_S)
        report.redispatch.append(call_id)
        return
    if state not in (State.DIALING, State.UNKNOWN, State.PLACED, State.RINGING, State.ANSWERED):
        rt.limiter.release(account, call_id)  # state says no slot: drop the stray
        return
    claimed = rt.limiter.claim(
        account,
        call_id,
        now,
        hold_s=rt.settings.DIALER_RECONCILE_AFTER_S,
        wait_s=NO_BUDGET_WAIT_S,
    )
    if claimed < 0:
        return  # another pass has it, or a callback settled it meanwhile
    if claimed == 0:
        report.deferred.append(call_id)
        return
    report.requests += 1
    sid = h.get("sid") or None
    if sid:
        info = client.get_call(sid)
    else:
        info = _find(client, call_id, attempt, h.get("to", ""), float(h.get("dial_at") or now), now)
    if info is not None and is_live(info.status):
        _still_live(rt, facts, account, call_id, h, state, attempt, info, now)
        report.renewed.append(call_id)
        return
    if info is None:
        event = Event(
            Kind.NOT_FOUND,
            attempt=attempt,
            at=now,
            reason="reconciliation: Exotel has no such call",
        )
        extra = None
        report.requeued.append(call_id)
    else:
        event = Event(
            Kind.TERMINAL,
            attempt=attempt,
            status=info.status,
            sid=info.sid,
            at=now,
            reason="settled by reconciliation",
        )
        extra = Extra(duration_s=info.duration_s, recording_url=info.recording_url)
        report.settled.append(call_id)
    t = transition(
        rt.r, account, call_id, event, facts.policy, now=now, leases=facts.leases, extra=extra
    )
    done = of(call_id, t)
    if done is not None:
        report.settlements.append(done)


def _still_live(
    rt: Runtime,
    facts: CampaignFacts,
    account: str,
    call_id: str,
    h: dict[str, str],
    state: State,
    attempt: int,
    info: CallInfo,
    now: float,
) -> None:
    if not h.get("sid"):
        transition(
            rt.r,
            account,
            call_id,
            Event(Kind.PLACED, attempt=attempt, sid=info.sid, at=now),
            facts.policy,
            now=now,
            leases=facts.leases,
        )
    live = State(replies.text(rt.r.hget(keys.call(account, call_id), "state")) or state.value)
    lease = facts.leases.for_state(live)
    if stream_end(h, attempt) is not None:
        # The stream ended but Exotel still reports the call live (its records
        # can lag the hang-up): look again soon, backing off, not in 10 minutes.
        checks = int(rt.r.hincrby(keys.call(account, call_id), "stream_checks", 1))
        lease = min(lease, facts.leases.stream_grace_s * 2 ** min(checks, 10))
    rt.limiter.renew(account, call_id, now + lease)


def expedite_stale(r: redis.Redis, now: float | None = None) -> int:
    """At start: every slot held by a placed, ringing or answered call is due now.

    Such calls are left over from before a stop; their callbacks may have been
    lost while nothing listened. Making their leases run out now has the next
    reconciliation pass ask Exotel's call details for each (within the budget)
    instead of holding the slot until the answered-call check. Returns how many.
    """
    now = time.time() if now is None else now
    n = 0
    for account in accounts.all_accounts(r):
        ids: list[str] = r.zrangebyscore(keys.active(account), now, "+inf")  # type: ignore[assignment]
        if not ids:
            continue
        with r.pipeline(transaction=False) as pipe:
            for call_id in ids:
                pipe.hget(keys.call(account, call_id), "state")
            states = pipe.execute()
        due = {c: now for c, s in zip(ids, states, strict=True) if s in STALE_STATES}
        if due:
            # XX: a slot released meanwhile stays released; LT: only ever sooner.
            r.zadd(keys.active(account), replies.mapping(due), xx=True, lt=True)
            n += len(due)
    return n

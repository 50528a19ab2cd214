"""Reconciliation: settle calls whose lease expired, asking Exotel what happened.

Status callbacks can be late or lost and a worker can die between sending a
dial and recording its answer, so no slot may depend on them alone:

* ``admitted`` past its lease: its dial task was lost before sending; the
  DIAL compare-and-set makes re-sending the task safe.
* ``dialing``/``unknown`` without a sid: list Exotel's calls created in the
  dial's time window and match our ``CustomField`` (``<call id>:<attempt>``)
  or, where Exotel omits it, the number. Found: adopt its sid and status.
  Provably absent: back to the queue for the same attempt.
* with a sid: the call-details API gives the status; still live: renew.

Every Exotel request here is also entered in the account's rate window, so
reconciliation shares the 200 requests/minute budget with dialling.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dialer import keys
from dialer.calls import Event, Kind, State
from dialer.errors import ConfigError, DialerError
from dialer.exotel.client import CallInfo, ExotelClient
from dialer.records import Extra, transition
from dialer.runtime import Runtime

log = logging.getLogger(__name__)
LIVE = {"in-progress", "ringing", "queued", "answered", ""}
WINDOW_SLACK_S = 120


@dataclass
class Report:
    redispatch: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # slots freed: admit again
    final: list[str] = field(default_factory=list)
    errors: int = 0


def _count_request(rt: Runtime, account: str, tag: str, now: float) -> None:
    rt.r.zadd(keys.rate(account), {f"rc:{tag}:{now}": now})


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
    for call_id in rt.limiter.expired(account, now, batch):
        facts = rt.campaign_of_call(call_id)
        if facts is None:
            rt.r.zrem(keys.active(account), call_id)  # orphan slot: its call is gone
            continue
        h: dict[str, str] = rt.r.hgetall(keys.call(account, call_id))  # type: ignore[assignment]
        state = State(h.get("state", "pending"))
        attempt = int(h.get("attempt", 1))
        if state is State.ADMITTED:
            rt.limiter.renew(account, call_id, now + rt.settings.DIALER_RECONCILE_AFTER_S)
            report.redispatch.append(call_id)
            continue
        if state not in (State.DIALING, State.UNKNOWN, State.PLACED, State.RINGING, State.ANSWERED):
            rt.r.zrem(keys.active(account), call_id)  # state says no slot: drop the stray
            continue
        try:
            client = rt.client(acct)
            sid = h.get("sid") or None
            _count_request(rt, account, call_id, now)
            if sid:
                info = client.get_call(sid)
            else:
                info = _find(
                    client, call_id, attempt, h.get("to", ""), float(h.get("dial_at") or now), now
                )
        except DialerError as exc:
            report.errors += 1
            log.warning("reconcile %s: %s", call_id, exc, extra={"call_id": call_id})
            rt.limiter.renew(account, call_id, now + rt.settings.DIALER_RECONCILE_AFTER_S)
            continue

        if info is None:
            t = transition(
                rt.r,
                account,
                call_id,
                Event(
                    Kind.NOT_FOUND,
                    attempt=attempt,
                    at=now,
                    reason="reconciliation: Exotel has no such call",
                ),
                facts.policy,
                now=now,
                leases=facts.leases,
            )
            report.requeued.append(call_id)
        elif info.status.lower() in LIVE:
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
            live = State(rt.r.hget(keys.call(account, call_id), "state") or state.value)
            rt.limiter.renew(account, call_id, now + facts.leases.for_state(live))
            report.renewed.append(call_id)
            continue
        else:
            t = transition(
                rt.r,
                account,
                call_id,
                Event(
                    Kind.TERMINAL,
                    attempt=attempt,
                    status=info.status,
                    sid=info.sid,
                    at=now,
                    reason="settled by reconciliation",
                ),
                facts.policy,
                now=now,
                leases=facts.leases,
                extra=Extra(duration_s=info.duration_s, recording_url=info.recording_url),
            )
            report.settled.append(call_id)
        if t is not None and t.releases_slot:
            report.released.append(call_id)
        if t is not None and t.final:
            report.final.append(call_id)
    return report

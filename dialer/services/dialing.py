"""The dial step: at most one connect request per attempt, whatever is redelivered.

The worker first moves the call ``admitted -> dialing`` with a compare-and-set
(``dialer.store.records``, one round trip on the fields it read); only the one
process that wins it sends. A redelivered task
finds ``dialing`` (or later) and sends nothing: if the first worker died
after sending, the callback or reconciliation settles the call. Exotel's
answer is mapped to one state-machine event:

=========================  ==========================================
outcome                    event
=========================  ==========================================
200 with a sid             PLACED
refused / 5xx / 429        NOT_PLACED, retry after back-off (429: also
                           pause the whole account for Retry-After)
401 / 402 / 403            REQUEUE, and the account's circuit opens
other 4xx, bad parameters  REJECTED (final: retrying cannot help)
read timeout / reset       AMBIGUOUS -> unknown (never re-sent blindly)
=========================  ==========================================
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

from dialer.core import tokens
from dialer.core.calls import Event, Kind, State, Transition
from dialer.core.errors import (
    AccountError,
    AmbiguousDialError,
    ConfigError,
    NotPlacedError,
    RateLimited,
    RequestRejected,
    ValidationError,
)
from dialer.core.exotel import ConnectParams
from dialer.core.policy import backoff_s
from dialer.core.reasons import DNC_TEXT, Code, window_text
from dialer.core.states import CampaignState, CircuitState
from dialer.core.windows import next_open
from dialer.services import accounts
from dialer.services.runtime import CampaignFacts, Runtime
from dialer.services.settle import Settlement, of
from dialer.store import callerids, keys
from dialer.store.admission import Refill
from dialer.store.records import Extra, transition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DialResult:
    call_id: str
    outcome: str  # placed / skipped / not_placed / rejected / requeued / unknown / cancelled
    detail: str = ""
    #: what the transition this dial won leaves to the settle step (None: nothing)
    settlement: Settlement | None = None
    #: calls admitted into the slot this dial released, by its own commit (to dial)
    admitted: tuple[str, ...] = ()

    @property
    def slot_released(self) -> bool:
        # ``refill`` is already done when the commit refilled: ``attempt`` says it held one
        return self.settlement is not None and self.settlement.attempt is not None

    @property
    def final(self) -> bool:
        return self.settlement is not None and self.settlement.final

    def summary(self) -> dict[str, object]:
        return {"call_id": self.call_id, "outcome": self.outcome, "detail": self.detail[:200]}


def connect_params(
    rt: Runtime,
    facts: CampaignFacts,
    call_id: str,
    to: str,
    attempt: int,
    caller_id: str,
    now: float,
) -> ConnectParams:
    s = rt.settings
    opts = facts.options
    expires = int(now) + s.DIALER_STREAM_TOKEN_TTL_S
    keyring = s.keyring
    token = tokens.stream_token(keyring.stream, call_id, attempt, expires)
    sig = tokens.callback_sig(keyring.callback, call_id, attempt)
    rate = int(opts.get("sample_rate", 8000))
    return ConnectParams(
        from_number=to,
        caller_id=caller_id,
        stream_url=f"{s.streamer_url}/stream/{call_id}?token={token}&sample-rate={rate}",
        record=bool(opts.get("record", False)),
        recording_channels=opts.get("recording_channels"),
        time_limit_s=int(opts.get("time_limit_s", 3600)),
        custom_field=f"{call_id}:{attempt}",
        status_callback=f"{s.public_url}/exotel/status/{call_id}?attempt={attempt}&sig={sig}",
        status_callback_events=("ringing", "answered", "terminal"),
        stream_name=opts.get("stream_name"),
    )


def dial(
    rt: Runtime, call_id: str, *, now: float | None = None, rng: random.Random | None = None
) -> DialResult:
    fixed_now = now
    now = time.time() if now is None else now
    rng = rng or random.Random()
    facts = rt.campaign_of_call(call_id)
    if facts is None:
        return DialResult(call_id, "skipped", "no such call")
    a = facts.account
    r = rt.r
    # One round trip for everything the decision needs (dials are many and short).
    with r.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.call(a, call_id))
        pipe.hget(keys.campaign(a, facts.cid), "state")
        pipe.hgetall(keys.account(a))
        fields, campaign_state, account_hash = pipe.execute()
    if fields.get("state") != State.ADMITTED.value:
        # Redelivered or stale: whoever moved it on owns it. Never send again here.
        return DialResult(call_id, "skipped", f"state is {fields.get('state')}")
    attempt = int(fields.get("attempt", 1))
    won: list[Transition] = []  # the last transition this dial made
    # A transition that releases the slot refills it in its own commit.
    refills: list[Refill] = []

    def apply(kind: Kind, extra: Extra | None = None, **kw: object) -> Transition | None:
        ev = Event(kind, attempt=attempt, at=now, **kw)  # type: ignore[arg-type]
        # Dated when it commits, not when the dial began: the Connect request may
        # have taken its whole timeout, and calls admitted with a stale time would
        # leave the per-minute window (and their leases end) that much early.
        refill = rt.limiter.refill(a, time.time() if fixed_now is None else fixed_now)
        refills.append(refill)
        # ``fields`` (read above, then kept up to date by each commit): every
        # transition of this dial is one round trip, with no read first.
        t = transition(
            r,
            a,
            call_id,
            ev,
            facts.policy,
            now=now,
            leases=facts.leases,
            extra=extra,
            fields=fields,
            refill=refill,
        )
        if t is not None:
            won.append(t)
        return t

    def result(outcome: str, detail: str = "") -> DialResult:
        ran = any(f.ran for f in refills)
        done = of(call_id, won[-1] if won else None, refilled=ran)
        admitted = tuple(c for f in refills for c in f.admitted)
        return DialResult(call_id, outcome, detail, done, admitted)

    if campaign_state == CampaignState.CANCELLED:
        apply(Kind.CANCEL, reason="campaign cancelled", code=Code.CANCELLED)
        return result("cancelled")
    account = None
    if account_hash:
        try:
            account = rt.account_from(account_hash)
        except ConfigError as exc:
            # Its token cannot be decrypted (DIALER_SECRET changed): stop the
            # account with the reason, as a 401 would, instead of failing every dial.
            accounts.open_circuit(r, a, str(exc))
            log.error("account %s stopped: %s", a, exc, extra={"account": a})
    paused = campaign_state == CampaignState.PAUSED
    if paused or account is None or account.circuit == CircuitState.OPEN:
        why = "campaign paused" if paused else "account stopped"
        if account is not None and not paused and account.circuit_reason:
            why = f"account stopped: {account.circuit_reason}"
        code = Code.CAMPAIGN_PAUSED if paused else Code.ACCOUNT_STOPPED
        apply(Kind.REQUEUE, reason=why, code=code, retry_at=now)
        return result("requeued", why)
    if facts.window is not None:
        # Re-checked here, not only at submit: retries and paused campaigns drift.
        zones = tuple(fields.get("tz", "").split(",")) if fields.get("tz") else ("UTC",)
        opens = next_open(now, facts.window, zones)
        if opens > now + 1:
            why = window_text(opens)
            apply(Kind.REQUEUE, reason=why, code=Code.OUTSIDE_WINDOW, retry_at=opens)
            return result("requeued", why)
    if r.sismember(keys.dnc(a), fields["to"]):
        apply(Kind.SUPPRESS, reason=DNC_TEXT, code=Code.DO_NOT_CALL)
        return result("suppressed")

    # The rotation (``keys.callerids``) is only ever the account's ``caller_ids``
    # (``set_pool``), less the numbers taken out: with none there is nothing to
    # pick from, and no round trip to make.
    caller_id = (
        callerids.pick(r, a, account.caller_id, now) if account.caller_ids else account.caller_id
    )
    t = apply(Kind.DIAL, extra=Extra(detail={"caller_id": caller_id}))
    if t is None or not t.changed:
        return DialResult(call_id, "skipped", "lost the race to dial")
    tries = int(fields.get("tries", 0)) + 1
    try:
        params = connect_params(rt, facts, call_id, fields["to"], attempt, caller_id, now)
        info = rt.client(account).connect(params)
    except RateLimited as exc:
        accounts.back_off(r, a, now + exc.retry_after_s)
        retry_at = now + backoff_s(tries, rng, retry_after_s=exc.retry_after_s)
        apply(Kind.NOT_PLACED, reason=str(exc), code=Code.NOT_PLACED, retry_at=retry_at)
        return result("not_placed", str(exc))
    except NotPlacedError as exc:
        retry_at = now + backoff_s(
            tries, rng, base_s=facts.policy.backoff_base_s, cap_s=facts.policy.backoff_cap_s
        )
        apply(Kind.NOT_PLACED, reason=str(exc), code=Code.NOT_PLACED, retry_at=retry_at)
        return result("not_placed", str(exc))
    except AccountError as exc:
        accounts.open_circuit(r, a, str(exc))
        log.error("account %s stopped: %s", a, exc, extra={"account": a, "call_id": call_id})
        apply(
            Kind.REQUEUE, reason=f"account stopped: {exc}", code=Code.ACCOUNT_STOPPED, retry_at=now
        )
        return result("requeued", str(exc))
    except (RequestRejected, ValidationError) as exc:
        apply(Kind.REJECTED, reason=str(exc), code=Code.DIAL_REJECTED)
        return result("rejected", str(exc))
    except AmbiguousDialError as exc:
        apply(Kind.AMBIGUOUS, reason=str(exc), code=Code.DIAL_UNKNOWN)
        log.warning("dial outcome unknown: %s", exc, extra={"account": a, "call_id": call_id})
        return result("unknown", str(exc))
    apply(Kind.PLACED, sid=info.sid)
    return result("placed", info.sid)

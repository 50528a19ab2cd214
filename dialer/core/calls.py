"""Call states, events and the pure transition table (no I/O).

``apply(call, event, policy)`` returns a :class:`Transition` (possibly a no-op)
or raises :class:`Refused`. Redis only persists the result, atomically
(``dialer.store.records``). Two rules make callbacks safe to duplicate and reorder:

* transitions are monotonic: the pair (attempt, rank of state) never goes
  down, and a final state is never left (a late ``ringing`` after
  ``completed`` is a no-op);
* events carry the attempt they belong to; an event for attempt 1 is a no-op
  once the call is on attempt 2.

This module does not decide delays (``dialer.core.policy`` does) and does not know
about slots beyond saying "this transition releases it".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from dialer.core.policy import RetryPolicy
from dialer.core.reasons import STATUS_CODES, STATUS_TEXTS, BotError, Code, Reason


class State(StrEnum):
    PENDING = "pending"
    ADMITTED = "admitted"
    DIALING = "dialing"
    PLACED = "placed"
    UNKNOWN = "unknown"
    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"
    # Exotel connected the call but the bot never ran (relay unreachable, bot
    # failed to start): the callee heard nothing, so it is not "completed".
    BOT_FAILED = "bot-failed"
    MACHINE = "machine"  # answered by a machine and hung up on (machine_detection)
    VOICEMAIL = "voicemail"  # answered by a machine that was left the campaign's message


FINAL = frozenset(
    {
        State.COMPLETED,
        State.BUSY,
        State.NO_ANSWER,
        State.FAILED,
        State.SUPPRESSED,
        State.CANCELLED,
        State.BOT_FAILED,
        State.MACHINE,
        State.VOICEMAIL,
    }
)
#: States in which the call holds one of its account's slots.
HOLDS_SLOT = frozenset(
    {State.ADMITTED, State.DIALING, State.PLACED, State.UNKNOWN, State.RINGING, State.ANSWERED}
)
#: Order within one attempt; (attempt, rank) never decreases.
RANK: Mapping[State, int] = MappingProxyType(
    {
        State.PENDING: 0,
        State.ADMITTED: 1,
        State.DIALING: 2,
        State.UNKNOWN: 3,  # below placed: learning the sid later is progress
        State.PLACED: 4,
        State.RINGING: 5,
        State.ANSWERED: 6,
        **{s: 9 for s in FINAL},
    }
)


class Kind(StrEnum):
    DIAL = "dial"  # a worker is about to send the connect request
    PLACED = "placed"  # Exotel returned a call sid
    NOT_PLACED = "not_placed"  # Exotel provably did not place it (retry later)
    REJECTED = "rejected"  # Exotel refused the request for good (bad number ...)
    REQUEUE = "requeue"  # give the slot back untouched (account stopped, paused)
    AMBIGUOUS = "ambiguous"  # request written, answer lost
    RINGING = "ringing"
    ANSWERED = "answered"
    TERMINAL = "terminal"  # completed / busy / no-answer / failed
    NOT_FOUND = "not_found"  # reconciliation: Exotel provably has no such call
    CANCEL = "cancel"
    SUPPRESS = "suppress"


# Exotel's status words: the one mapping (callbacks, call details, reconciliation).
#: Terminal statuses and what they mean for the attempt.
TERMINAL_STATUS: Mapping[str, State] = MappingProxyType(
    {
        "completed": State.COMPLETED,
        "busy": State.BUSY,
        "no-answer": State.NO_ANSWER,
        "failed": State.FAILED,
        "canceled": State.NO_ANSWER,  # caller-side cancel before answer: nobody picked up
        "cancelled": State.NO_ANSWER,
        # Not Exotel's: a "completed" call the streamer found a machine on
        # (dialer.store.records applies the streamer's verdict to the terminal event).
        "machine": State.MACHINE,
        "voicemail": State.VOICEMAIL,
    }
)
#: Statuses of a call still in progress; "" is a details answer without one.
LIVE_STATUS = frozenset({"queued", "ringing", "in-progress", "answered", ""})
#: Progress statuses a callback reports, and the event each one is.
PROGRESS_STATUS: Mapping[str, Kind] = MappingProxyType(
    {"ringing": Kind.RINGING, "answered": Kind.ANSWERED, "in-progress": Kind.ANSWERED}
)


def status_event(status: str, event_type: str = "") -> Kind | None:
    """The event a status callback is (``Status``, ``EventType``, lower case); None: ignore it.

    Status and event type may disagree (a reordered or relabelled callback):
    the furthest event either names wins, so terminal beats answered beats ringing.
    """
    if event_type == "terminal" or status in TERMINAL_STATUS:
        return Kind.TERMINAL
    named = {PROGRESS_STATUS.get(status), PROGRESS_STATUS.get(event_type)}
    for kind in (Kind.ANSWERED, Kind.RINGING):
        if kind in named:
            return kind
    return None


def is_live(status: str) -> bool:
    """Exotel still reports the call in progress (call details, case-insensitive)."""
    return status.lower() in LIVE_STATUS


@dataclass(frozen=True)
class Call:
    state: State = State.PENDING
    attempt: int = 1
    tries: int = 0  # send tries within this attempt (provably-not-placed failures)
    sid: str | None = None
    outcome: str | None = None
    reason: str | None = None
    outcome_counts: Mapping[str, int] = field(default_factory=dict)
    reason_code: str | None = None
    #: the streamer's report on the current attempt's stream, if it went wrong
    bot_error: BotError | None = None


@dataclass(frozen=True)
class Event:
    kind: Kind
    attempt: int | None = None  # None: whatever attempt is current (cancel, suppress)
    status: str | None = None  # terminal Exotel status
    sid: str | None = None
    reason: str | None = None
    code: Code | None = None  # machine-readable twin of ``reason`` (dialer.core.reasons)
    retry_at: float | None = None  # NOT_PLACED: when to try again
    at: float = 0.0


@dataclass(frozen=True)
class Transition:
    before: Call
    after: Call
    changed: bool
    releases_slot: bool = False
    requeue_at: float | None = None
    final: bool = False  # the contact reached its final outcome with this event
    #: why this event's attempt failed or was deferred (the attempt record's ``reason``)
    attempt_reason: Reason | None = None


Handler = Callable[[Call, Event, RetryPolicy], Transition]


class Refused(Exception):
    """The event makes no sense in this state (a bug or a forged sequence)."""


def _noop(call: Call) -> Transition:
    return Transition(call, call, changed=False)


_ALLOWED: Mapping[State, frozenset[Kind]] = MappingProxyType(
    {
        # Admission (pending -> admitted) is not an event here: it is decided and
        # written in one place only, lua/admit.lua (dialer.store.admission).
        State.PENDING: frozenset({Kind.CANCEL, Kind.SUPPRESS}),
        State.ADMITTED: frozenset({Kind.DIAL, Kind.CANCEL, Kind.SUPPRESS, Kind.REQUEUE}),
        State.DIALING: frozenset(
            {
                Kind.PLACED,
                Kind.NOT_PLACED,
                Kind.REJECTED,
                Kind.REQUEUE,
                Kind.AMBIGUOUS,
                Kind.RINGING,
                Kind.ANSWERED,
                Kind.TERMINAL,
                Kind.NOT_FOUND,
            }
        ),
        State.UNKNOWN: frozenset(
            {Kind.PLACED, Kind.RINGING, Kind.ANSWERED, Kind.TERMINAL, Kind.NOT_FOUND}
        ),
        State.PLACED: frozenset(
            {Kind.PLACED, Kind.RINGING, Kind.ANSWERED, Kind.TERMINAL, Kind.NOT_FOUND}
        ),
        # NOT_FOUND here: Exotel lost a call we saw ringing or answered (its call
        # details 404). Without it the call would hold its slot forever.
        State.RINGING: frozenset(
            {Kind.PLACED, Kind.RINGING, Kind.ANSWERED, Kind.TERMINAL, Kind.NOT_FOUND}
        ),
        State.ANSWERED: frozenset(
            {Kind.PLACED, Kind.RINGING, Kind.ANSWERED, Kind.TERMINAL, Kind.NOT_FOUND}
        ),
    }
)
# Events that can only arrive late or twice in these states: ignored, never refused.
_LATE = frozenset(
    {
        Kind.PLACED,
        Kind.RINGING,
        Kind.ANSWERED,
        Kind.TERMINAL,
        Kind.AMBIGUOUS,
        Kind.NOT_FOUND,
        Kind.DIAL,
        Kind.CANCEL,
        Kind.SUPPRESS,
        Kind.REQUEUE,
        Kind.NOT_PLACED,
        Kind.REJECTED,
    }
)


def apply(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    """The transition table. Pure: the same inputs always give the same output."""
    if event.attempt is not None and event.attempt != call.attempt:
        return _noop(call)  # another attempt's event: never touches this one
    if call.state in FINAL:
        return _noop(call)
    allowed = _ALLOWED[call.state]
    if event.kind not in allowed:
        if event.kind in _LATE:
            return _noop(call)
        raise Refused(f"{event.kind} in state {call.state}")  # pragma: no cover - _LATE is total
    t = _HANDLERS[event.kind](call, event, policy)
    code = t.after.reason_code
    if t.changed and t.attempt_reason is None and code and event.kind not in _PROGRESS:
        t = replace(t, attempt_reason=Reason(Code(code), t.after.reason or ""))
    return t


# Events that move a call forward and say nothing about failure.
_PROGRESS = frozenset({Kind.DIAL, Kind.PLACED, Kind.RINGING, Kind.ANSWERED})


def _move(call: Call, state: State, **changes: object) -> Transition:
    after = replace(call, state=state, **changes)  # type: ignore[arg-type]
    releases = call.state in HOLDS_SLOT and state not in HOLDS_SLOT
    return Transition(
        call, after, changed=after != call, releases_slot=releases, final=state in FINAL
    )


def _forward(call: Call, state: State, event: Event) -> Transition:
    """Progress events: only ever move up the rank, recording a sid if new."""
    sid = call.sid or event.sid
    if RANK[state] <= RANK[call.state]:
        if sid != call.sid:
            return Transition(call, replace(call, sid=sid), changed=True)
        return _noop(call)
    return _move(call, state, sid=sid)


def _dial(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    # A new try: whatever deferred it (window, pause, back-off) no longer applies.
    return _move(call, State.DIALING, reason=None, reason_code=None)


def _placed(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _forward(call, State.PLACED, event)


def _ringing(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _forward(call, State.RINGING, event)


def _answered(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _forward(call, State.ANSWERED, event)


def _why(event: Event) -> dict[str, object]:
    """The call's reason fields from an event (a codeless event clears the code)."""
    return {"reason": event.reason, "reason_code": event.code}


def _ambiguous(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _move(call, State.UNKNOWN, **_why(event))


def _requeue(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    t = _move(call, State.PENDING, **_why(event))
    return replace(t, requeue_at=event.retry_at if event.retry_at is not None else event.at)


def _not_placed(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    tries = call.tries + 1
    if tries >= policy.max_send_tries or event.retry_at is None:
        return _move(
            call,
            State.FAILED,
            tries=tries,
            outcome=State.FAILED.value,
            reason=f"not placed after {tries} tries: {event.reason}",
            reason_code=Code.NOT_PLACED,
        )
    t = _move(call, State.PENDING, tries=tries, **_why(event))
    return replace(t, requeue_at=event.retry_at)


def _rejected(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _move(call, State.FAILED, outcome=State.FAILED.value, **_why(event))


def _not_found(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    if call.sid is not None or call.state in (State.PLACED, State.RINGING, State.ANSWERED):
        # The call existed (a sid, or it rang) and Exotel lost it: a failed attempt.
        # Never the same attempt again: someone may have picked up.
        lost = Reason(Code.CALL_LOST, event.reason or "Exotel has no record of the call")
        return _terminal(call, replace(event, status="failed"), policy, lost)
    t = _move(
        call,
        State.PENDING,
        reason=event.reason or "Exotel has no record of the dial",
        reason_code=event.code or Code.CALL_LOST,
    )
    return replace(t, requeue_at=event.at)


def _attempt_end(call: Call, status: str) -> tuple[State, Reason | None]:
    """The attempt's outcome and why, from Exotel's status and the streamer's report."""
    outcome = TERMINAL_STATUS.get(status, State.FAILED)
    err = call.bot_error
    if err is not None and err.attempt == call.attempt:
        if outcome is State.COMPLETED and not err.ran:
            # Exotel connected it, but the callee heard nothing from any bot.
            return State.BOT_FAILED, Reason(err.code, err.text)
        if outcome is State.COMPLETED:
            return outcome, Reason(err.code, err.text)  # a conversation that broke off
    code = STATUS_CODES.get(status, Code.CALL_FAILED if outcome is State.FAILED else None)
    if code is None:
        return outcome, None
    return outcome, Reason(code, STATUS_TEXTS.get(status, f"Exotel status {status}"))


def _terminal(
    call: Call, event: Event, policy: RetryPolicy, why: Reason | None = None
) -> Transition:
    status = (event.status or "failed").lower()
    outcome, found = _attempt_end(call, status)
    why = why or found
    if why is None and event.code is not None:
        why = Reason(event.code, event.reason or "")
    counts = dict(call.outcome_counts)
    counts[outcome.value] = counts.get(outcome.value, 0) + 1
    sid = call.sid or event.sid
    delay = policy.retry_delay(outcome.value, call.attempt, counts)
    if delay is None:
        t = _move(
            call,
            outcome,
            sid=sid,
            outcome=outcome.value,
            outcome_counts=counts,
            reason=why.text if why else event.reason,
            reason_code=why.code if why else None,
        )
        return replace(t, attempt_reason=why)
    after = replace(
        call,
        state=State.PENDING,
        attempt=call.attempt + 1,
        tries=0,
        sid=None,
        outcome=None,
        reason=f"retry after {outcome.value}" + (f": {why.text}" if why else ""),
        reason_code=why.code if why else None,
        outcome_counts=counts,
        bot_error=None,
    )
    return Transition(
        call,
        after,
        changed=True,
        releases_slot=call.state in HOLDS_SLOT,
        requeue_at=event.at + delay,
        attempt_reason=why,
    )


def _settle(state: State, default: Code) -> Handler:
    """Cancel and suppress: final without a dial, with the event's reason (or the default)."""

    def handler(call: Call, event: Event, policy: RetryPolicy) -> Transition:
        code = event.code or default
        return _move(call, state, outcome=state.value, reason=event.reason, reason_code=code)

    return handler


_cancel = _settle(State.CANCELLED, Code.CANCELLED)
_suppress = _settle(State.SUPPRESSED, Code.DO_NOT_CALL)


_HANDLERS = {
    Kind.DIAL: _dial,
    Kind.PLACED: _placed,
    Kind.NOT_PLACED: _not_placed,
    Kind.REJECTED: _rejected,
    Kind.REQUEUE: _requeue,
    Kind.AMBIGUOUS: _ambiguous,
    Kind.RINGING: _ringing,
    Kind.ANSWERED: _answered,
    Kind.TERMINAL: _terminal,
    Kind.NOT_FOUND: _not_found,
    Kind.CANCEL: _cancel,
    Kind.SUPPRESS: _suppress,
}

"""Call states, events and the pure transition table (no I/O).

``apply(call, event, policy)`` returns a :class:`Transition` (possibly a no-op)
or raises :class:`Refused`. Redis only persists the result, atomically
(``dialer.records``). Two rules make callbacks safe to duplicate and reorder:

* transitions are monotonic: the pair (attempt, rank of state) never goes
  down, and a final state is never left (a late ``ringing`` after
  ``completed`` is a no-op);
* events carry the attempt they belong to; an event for attempt 1 is a no-op
  once the call is on attempt 2.

This module does not decide delays (``dialer.policy`` does) and does not know
about slots beyond saying "this transition releases it".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from dialer.policy import RetryPolicy


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
#: Exotel terminal statuses and what they mean for the attempt.
TERMINAL_STATUS: Mapping[str, State] = MappingProxyType(
    {
        "completed": State.COMPLETED,
        "busy": State.BUSY,
        "no-answer": State.NO_ANSWER,
        "failed": State.FAILED,
        "canceled": State.NO_ANSWER,  # caller-side cancel before answer: nobody picked up
        "cancelled": State.NO_ANSWER,
        # Not Exotel's: a "completed" call the streamer found a machine on
        # (dialer.records applies the streamer's verdict to the terminal event).
        "machine": State.MACHINE,
        "voicemail": State.VOICEMAIL,
    }
)


class Kind(StrEnum):
    ADMIT = "admit"  # admission control gave it a slot
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


@dataclass(frozen=True)
class Call:
    state: State = State.PENDING
    attempt: int = 1
    tries: int = 0  # send tries within this attempt (provably-not-placed failures)
    sid: str | None = None
    outcome: str | None = None
    reason: str | None = None
    outcome_counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    kind: Kind
    attempt: int | None = None  # None: whatever attempt is current (cancel, suppress)
    status: str | None = None  # terminal Exotel status
    sid: str | None = None
    reason: str | None = None
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


class Refused(Exception):
    """The event makes no sense in this state (a bug or a forged sequence)."""


def _noop(call: Call) -> Transition:
    return Transition(call, call, changed=False)


_ALLOWED: Mapping[State, frozenset[Kind]] = MappingProxyType(
    {
        State.PENDING: frozenset({Kind.ADMIT, Kind.CANCEL, Kind.SUPPRESS}),
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
        Kind.ADMIT,
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
    return _HANDLERS[event.kind](call, event, policy)


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


def _admit(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _move(call, State.ADMITTED)


def _dial(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _move(call, State.DIALING)


def _placed(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _forward(call, State.PLACED, event)


def _ringing(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _forward(call, State.RINGING, event)


def _answered(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _forward(call, State.ANSWERED, event)


def _ambiguous(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _move(call, State.UNKNOWN, reason=event.reason)


def _requeue(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    t = _move(call, State.PENDING, reason=event.reason)
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
        )
    t = _move(call, State.PENDING, tries=tries, reason=event.reason)
    return replace(t, requeue_at=event.retry_at)


def _rejected(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _move(call, State.FAILED, outcome=State.FAILED.value, reason=event.reason)


def _not_found(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    if call.sid is not None or call.state in (State.PLACED, State.RINGING, State.ANSWERED):
        # The call existed (a sid, or it rang) and Exotel lost it: a failed attempt.
        # Never the same attempt again: someone may have picked up.
        return _terminal(call, replace(event, status="failed"), policy)
    t = _move(call, State.PENDING, reason=event.reason or "Exotel has no record of the dial")
    return replace(t, requeue_at=event.at)


def _terminal(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    status = (event.status or "failed").lower()
    outcome = TERMINAL_STATUS.get(status, State.FAILED)
    counts = dict(call.outcome_counts)
    counts[outcome.value] = counts.get(outcome.value, 0) + 1
    sid = call.sid or event.sid
    delay = policy.retry_delay(outcome.value, call.attempt, counts)
    if delay is None:
        return _move(
            call,
            outcome,
            sid=sid,
            outcome=outcome.value,
            outcome_counts=counts,
            reason=event.reason,
        )
    after = replace(
        call,
        state=State.PENDING,
        attempt=call.attempt + 1,
        tries=0,
        sid=None,
        outcome=None,
        reason=f"retry after {outcome.value}",
        outcome_counts=counts,
    )
    return Transition(
        call,
        after,
        changed=True,
        releases_slot=call.state in HOLDS_SLOT,
        requeue_at=event.at + delay,
    )


def _cancel(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _move(call, State.CANCELLED, outcome=State.CANCELLED.value, reason=event.reason)


def _suppress(call: Call, event: Event, policy: RetryPolicy) -> Transition:
    return _move(call, State.SUPPRESSED, outcome=State.SUPPRESSED.value, reason=event.reason)


_HANDLERS = {
    Kind.ADMIT: _admit,
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

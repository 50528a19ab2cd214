"""The call state machine, table-tested, plus a property test over random event sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.core.calls import FINAL, HOLDS_SLOT, RANK, Call, Event, Kind, State, apply
from dialer.core.policy import RetryPolicy

P = RetryPolicy(max_attempts=3, retry_delay_s={"busy": 10, "no-answer": 20, "failed": 30})
ONE = RetryPolicy(max_attempts=1)

TABLE = [
    # state, event, expected state, releases slot
    (State.PENDING, Event(Kind.CANCEL), State.CANCELLED, False),
    (State.PENDING, Event(Kind.SUPPRESS), State.SUPPRESSED, False),
    (State.PENDING, Event(Kind.TERMINAL, 1, status="completed"), State.PENDING, False),
    (State.ADMITTED, Event(Kind.DIAL, 1), State.DIALING, False),
    (State.ADMITTED, Event(Kind.CANCEL), State.CANCELLED, True),
    (State.ADMITTED, Event(Kind.REQUEUE, 1), State.PENDING, True),
    (State.DIALING, Event(Kind.PLACED, 1, sid="S"), State.PLACED, False),
    (State.DIALING, Event(Kind.AMBIGUOUS, 1), State.UNKNOWN, False),
    (State.DIALING, Event(Kind.NOT_PLACED, 1, retry_at=5.0), State.PENDING, True),
    (State.DIALING, Event(Kind.REJECTED, 1), State.FAILED, True),
    (State.DIALING, Event(Kind.RINGING, 1, sid="S"), State.RINGING, False),
    (State.DIALING, Event(Kind.CANCEL), State.DIALING, False),
    (State.DIALING, Event(Kind.NOT_FOUND, 1), State.PENDING, True),
    (State.UNKNOWN, Event(Kind.PLACED, 1, sid="S"), State.PLACED, False),
    (State.UNKNOWN, Event(Kind.TERMINAL, 1, status="completed"), State.COMPLETED, True),
    (State.UNKNOWN, Event(Kind.NOT_FOUND, 1), State.PENDING, True),
    (State.PLACED, Event(Kind.RINGING, 1), State.RINGING, False),
    (State.PLACED, Event(Kind.ANSWERED, 1), State.ANSWERED, False),
    (State.PLACED, Event(Kind.CANCEL), State.PLACED, False),
    (State.RINGING, Event(Kind.ANSWERED, 1), State.ANSWERED, False),
    (State.RINGING, Event(Kind.TERMINAL, 1, status="busy"), State.PENDING, True),
    (State.ANSWERED, Event(Kind.RINGING, 1), State.ANSWERED, False),
    # Exotel lost a call we saw answered: a failed attempt, retried, slot released
    (State.ANSWERED, Event(Kind.NOT_FOUND, 1), State.PENDING, True),
    (State.RINGING, Event(Kind.NOT_FOUND, 1), State.PENDING, True),
    (State.ANSWERED, Event(Kind.TERMINAL, 1, status="completed"), State.COMPLETED, True),
    (State.COMPLETED, Event(Kind.RINGING, 1), State.COMPLETED, False),
    (State.COMPLETED, Event(Kind.TERMINAL, 1, status="busy"), State.COMPLETED, False),
    (State.CANCELLED, Event(Kind.DIAL, 1), State.CANCELLED, False),
]


@pytest.mark.parametrize(("state", "event", "expected", "releases"), TABLE)
def test_transition_table(state: State, event: Event, expected: State, releases: bool) -> None:
    t = apply(Call(state=state, sid="S" if state is State.PLACED else None), event, P)
    assert t.after.state is expected
    assert t.releases_slot is releases


def test_event_for_another_attempt_is_a_noop() -> None:
    call = Call(state=State.RINGING, attempt=2, sid="S2")
    t = apply(call, Event(Kind.TERMINAL, attempt=1, status="completed"), P)
    assert not t.changed and t.after == call


def test_retry_moves_to_next_attempt_with_policy_delay() -> None:
    call = Call(state=State.RINGING, attempt=1, sid="S")
    t = apply(call, Event(Kind.TERMINAL, 1, status="no-answer", at=100.0), P)
    assert t.after.state is State.PENDING and t.after.attempt == 2
    assert t.requeue_at == 120.0 and t.after.sid is None
    assert not t.final


def test_max_attempts_one_means_one_dial() -> None:
    t = apply(Call(state=State.RINGING), Event(Kind.TERMINAL, 1, status="busy"), ONE)
    assert t.after.state is State.BUSY and t.final


def test_per_outcome_budget_never_exceeds_total() -> None:
    pol = RetryPolicy(max_attempts=5, max_per_outcome={"failed": 1})
    t = apply(Call(state=State.RINGING), Event(Kind.TERMINAL, 1, status="failed"), pol)
    assert t.after.state is State.FAILED


def test_send_tries_exhausted_is_final() -> None:
    pol = RetryPolicy(max_send_tries=2)
    call = Call(state=State.DIALING, tries=1)
    t = apply(call, Event(Kind.NOT_PLACED, 1, retry_at=1.0, reason="5xx"), pol)
    assert t.after.state is State.FAILED and "5xx" in (t.after.reason or "")


@pytest.mark.parametrize("state", [State.RINGING, State.ANSWERED])
def test_a_lost_call_that_rang_is_a_failed_attempt_not_a_redial(state: State) -> None:
    t = apply(Call(state=state), Event(Kind.NOT_FOUND, 1, at=10.0), P)
    assert t.releases_slot and t.after.attempt == 2 and t.requeue_at == 40.0
    t = apply(Call(state=state), Event(Kind.NOT_FOUND, 1, at=10.0), ONE)
    assert t.after.state is State.FAILED and t.final


def test_duplicate_is_a_noop() -> None:
    call = Call(state=State.RINGING, sid="S")
    assert not apply(call, Event(Kind.RINGING, 1, sid="S"), P).changed


EVENTS = st.builds(
    Event,
    kind=st.sampled_from(list(Kind)),
    attempt=st.one_of(st.none(), st.integers(1, 4)),
    status=st.sampled_from(["completed", "busy", "no-answer", "failed", "canceled", None]),
    sid=st.sampled_from(["A", "B", None]),
    retry_at=st.one_of(st.none(), st.floats(0, 100)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(EVENTS, max_size=30))
def test_never_leaves_final_and_never_goes_backwards(events: list[Event]) -> None:
    call = Call()
    for ev in events:
        t = apply(call, ev, P)
        after = t.after
        if call.state in FINAL:
            assert after == call
        assert (after.attempt, RANK[after.state]) >= (call.attempt, RANK[call.state]) or (
            # a requeue within the same attempt is the one step back: the slot is given up
            after.state is State.PENDING and call.state in HOLDS_SLOT and t.releases_slot
        )
        assert after.attempt <= P.max_attempts
        call = after

"""The transition planner (``dialer.store.records.plan``) from a table: no Redis.

Each row: the call hash before, an event, and what must be written — the new
state, the counter moves, the slot kept, taken or released, the requeue, the
campaign's finished count. Redis only runs these commands (tests/contract).
"""

from __future__ import annotations

from typing import Any

import pytest

from dialer.core.calls import Call, Event, Kind, State
from dialer.core.policy import RetryPolicy
from dialer.core.reasons import Code
from dialer.store import keys
from dialer.store.records import Leases, call_from_hash, new_call_hash, plan

A, CID = "AC_plan", "plan0001"
CALL = keys.call_id(CID, 0)
NOW = 1000.0
LEASES = Leases()
RETRY = RetryPolicy(max_attempts=2, retry_delay_s={"busy": 30.0})


def fields(state: State, attempt: int = 1, **extra: str) -> dict[str, str]:
    return {"state": state.value, "attempt": str(attempt), **extra}


def summary(ops: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The parts of a plan a row checks, keyed by what they mean."""
    out: dict[str, Any] = {"counts": {}, "slot": None, "requeue": None, "finished": 0}
    for op in ops:
        name, key = op[0], op[1]
        if name == "hincrby" and key == keys.counts(A, CID):
            out["counts"][op[2]] = out["counts"].get(op[2], 0) + op[3]
        elif name == "hincrby" and key == keys.campaign(A, CID) and op[2] == "finished":
            out["finished"] += op[3]
        elif name == "zrem" and key == keys.active(A):
            out["slot"] = "released"
        elif name == "zadd" and key == keys.active(A):
            out["slot"] = op[2][CALL]  # the lease deadline
        elif name == "zadd" and key == keys.delayed(A, CID):
            out["requeue"] = op[2][CALL]
    return out


ROWS = [
    # (before, event, state after, counter moves, slot, requeue, finished)
    (fields(State.ADMITTED), Event(Kind.DIAL, 1), State.DIALING,
     {"admitted": -1, "dialing": 1}, NOW + LEASES.dialing_s, None, 0),
    (fields(State.DIALING), Event(Kind.PLACED, 1, sid="EXO1"), State.PLACED,
     {"dialing": -1, "placed": 1}, NOW + LEASES.ringing_s, None, 0),
    (fields(State.DIALING), Event(Kind.AMBIGUOUS, 1), State.UNKNOWN,
     {"dialing": -1, "unknown": 1}, NOW + LEASES.dialing_s, None, 0),
    (fields(State.PLACED), Event(Kind.ANSWERED, 1), State.ANSWERED,
     {"placed": -1, "answered": 1}, NOW + LEASES.answered_s, None, 0),
    (fields(State.ANSWERED), Event(Kind.TERMINAL, 1, status="completed"), State.COMPLETED,
     {"answered": -1, "completed": 1}, "released", None, 1),
    (fields(State.PLACED, 2), Event(Kind.TERMINAL, 2, status="busy"), State.BUSY,
     {"placed": -1, "busy": 1}, "released", None, 1),
    (fields(State.PLACED), Event(Kind.TERMINAL, 1, status="busy", at=NOW), State.PENDING,
     {"placed": -1, "pending": 1}, "released", NOW + 30.0, 0),
    (fields(State.DIALING), Event(Kind.REJECTED, 1, reason="400 bad number"), State.FAILED,
     {"dialing": -1, "failed": 1}, "released", None, 1),
]  # fmt: skip


@pytest.mark.parametrize(
    ("before", "event", "state", "counts", "slot", "requeue", "finished"), ROWS
)
def test_plan_writes_the_transition(
    before: dict[str, str],
    event: Event,
    state: State,
    counts: dict[str, int],
    slot: Any,
    requeue: float | None,
    finished: int,
) -> None:
    t, ops = plan(A, CALL, before, event, RETRY, now=NOW, leases=LEASES)
    assert t.changed and t.after.state is state
    assert ops[0] == ("hset", keys.call(A, CALL), None, None, ops[0][4])
    assert ops[0][4]["state"] == state.value
    got = summary(ops)
    assert got == {"counts": counts, "slot": slot, "requeue": requeue, "finished": finished}


@pytest.mark.parametrize(
    ("before", "event"),
    [
        (fields(State.COMPLETED), Event(Kind.TERMINAL, 1, status="busy")),  # final is never left
        (fields(State.ANSWERED), Event(Kind.RINGING, 1)),  # no going back
        (fields(State.PLACED, 2), Event(Kind.TERMINAL, 1, status="completed")),  # a stale attempt
    ],
)
def test_a_refused_event_writes_nothing(before: dict[str, str], event: Event) -> None:
    t, ops = plan(A, CALL, before, event, RETRY, now=NOW, leases=LEASES)
    assert not t.changed and ops == []


def test_a_dial_starts_a_fresh_attempt_record_and_forgets_an_older_stream() -> None:
    before = fields(State.ADMITTED, stream_end="1:990.0")
    _, ops = plan(A, CALL, before, Event(Kind.DIAL, 1), RETRY, now=NOW, leases=LEASES)
    sets = {op[2]: op[3] for op in ops if op[0] == "hset" and op[2] is not None}
    assert sets["dial_at"] == str(NOW) and sets["stream_end"] == "" and sets["stream_checks"] == "0"
    assert '"started_at":1000.0' in sets["h:1"]


def test_a_machine_verdict_turns_completed_into_a_machine_outcome() -> None:
    before = fields(State.ANSWERED, **{"amd:1": '{"outcome":"machine"}'})
    t, _ = plan(
        A, CALL, before, Event(Kind.TERMINAL, 1, status="completed"), RETRY, now=NOW, leases=LEASES
    )
    # a second attempt is allowed: the machine outcome is counted and the call retried
    assert t.after.state is State.PENDING and t.after.outcome_counts == {"machine": 1}


@pytest.mark.parametrize(
    "call",
    [
        Call(),
        Call(reason="outside the calling window", reason_code=Code.OUTSIDE_WINDOW),
        Call(state=State.SUPPRESSED, outcome="suppressed", outcome_counts={"busy": 1}),
    ],
)
def test_a_new_contact_stores_only_what_is_not_empty_and_reads_back_the_same(call: Call) -> None:
    h = new_call_hash("+919876500000", call, tz="Asia/Kolkata")
    assert call_from_hash(h) == call
    assert h["to"] == "+919876500000" and h["tz"] == "Asia/Kolkata"
    assert {"state", "attempt", "tries"} <= h.keys()  # lua/admission.lua reads these bare
    assert "" not in h.values() and "{}" not in h.values()
    assert new_call_hash("+919876500000") == new_call_hash("+919876500000", Call())

"""Every failure has a reason: each code, from the event that causes it to the results row."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from dialer.cli.progress import reason_cell
from dialer.core import reasons
from dialer.core.calls import Call, Event, Kind, State, apply
from dialer.core.policy import RetryPolicy
from dialer.core.reasons import CODES, BotError, Code, Reason, safe_url, window_text
from dialer.core.results import call_result
from dialer.store.records import Leases, call_to_hash, plan, written

ONCE = RetryPolicy(max_attempts=1)
RETRY = RetryPolicy(max_attempts=3)
ANSWERED = Call(state=State.ANSWERED, sid="CA1")


def bot_error(code: Code, ran: bool, attempt: int = 1) -> BotError:
    return BotError(attempt, code, f"{code.value} happened", ran)


# (name, call before, event, policy, expected outcome/state, expected attempt reason code)
CASES: list[tuple[str, Call, Event, RetryPolicy, State, Code]] = [
    (
        "answering machine hung up on, retried",
        ANSWERED,
        Event(Kind.TERMINAL, 1, status="machine"),
        RETRY,
        State.PENDING,
        Code.ANSWERING_MACHINE,
    ),
    (
        "voicemail left",
        ANSWERED,
        Event(Kind.TERMINAL, 1, status="voicemail"),
        RETRY,
        State.VOICEMAIL,
        Code.VOICEMAIL_LEFT,
    ),
    ("busy", ANSWERED, Event(Kind.TERMINAL, 1, status="busy"), ONCE, State.BUSY, Code.BUSY),
    (
        "no-answer retried",
        Call(state=State.RINGING),
        Event(Kind.TERMINAL, 1, status="no-answer"),
        RETRY,
        State.PENDING,
        Code.NO_ANSWER,
    ),
    (
        "failed",
        ANSWERED,
        Event(Kind.TERMINAL, 1, status="failed"),
        ONCE,
        State.FAILED,
        Code.CALL_FAILED,
    ),
    (
        "rejected dial",
        Call(state=State.DIALING),
        Event(Kind.REJECTED, 1, reason="HTTP 400: bad number", code=Code.DIAL_REJECTED),
        ONCE,
        State.FAILED,
        Code.DIAL_REJECTED,
    ),
    (
        "not placed after the last send try",
        Call(state=State.DIALING, tries=4),
        Event(Kind.NOT_PLACED, 1, reason="HTTP 503", code=Code.NOT_PLACED, retry_at=5.0),
        ONCE,
        State.FAILED,
        Code.NOT_PLACED,
    ),
    (
        "ambiguous dial",
        Call(state=State.DIALING),
        Event(Kind.AMBIGUOUS, 1, reason="read timeout", code=Code.DIAL_UNKNOWN),
        ONCE,
        State.UNKNOWN,
        Code.DIAL_UNKNOWN,
    ),
    (
        "Exotel lost a placed call",
        Call(state=State.PLACED, sid="CA1"),
        Event(Kind.NOT_FOUND, 1, reason="no such call"),
        ONCE,
        State.FAILED,
        Code.CALL_LOST,
    ),
    (
        "account stopped",
        Call(state=State.DIALING),
        Event(Kind.REQUEUE, 1, reason="account stopped: 401", code=Code.ACCOUNT_STOPPED),
        ONCE,
        State.PENDING,
        Code.ACCOUNT_STOPPED,
    ),
    (
        "outside the window",
        Call(state=State.ADMITTED),
        Event(Kind.REQUEUE, 1, reason=window_text(0), code=Code.OUTSIDE_WINDOW, retry_at=9.0),
        ONCE,
        State.PENDING,
        Code.OUTSIDE_WINDOW,
    ),
    (
        "campaign paused",
        Call(state=State.ADMITTED),
        Event(Kind.REQUEUE, 1, reason="campaign paused", code=Code.CAMPAIGN_PAUSED),
        ONCE,
        State.PENDING,
        Code.CAMPAIGN_PAUSED,
    ),
    (
        "do not call",
        Call(state=State.ADMITTED),
        Event(Kind.SUPPRESS, reason=reasons.DNC_TEXT),
        ONCE,
        State.SUPPRESSED,
        Code.DO_NOT_CALL,
    ),
    (
        "cancelled",
        Call(),
        Event(Kind.CANCEL, reason="campaign cancelled"),
        ONCE,
        State.CANCELLED,
        Code.CANCELLED,
    ),
    *[
        (
            f"{code.value}: bot never ran",
            replace(ANSWERED, bot_error=bot_error(code, ran=False)),
            Event(Kind.TERMINAL, 1, status="completed"),
            RETRY,
            State.BOT_FAILED,
            code,
        )
        for code in (
            Code.RELAY_CONNECT_FAILED,
            Code.RELAY_REJECTED,
            Code.RELAY_CLOSED_EARLY,
            Code.BOT_FAILED,
            Code.STREAM_ERROR,
        )
    ],
    (
        "relay error mid-call: a conversation, with its reason",
        replace(ANSWERED, bot_error=bot_error(Code.RELAY_ERROR, ran=True)),
        Event(Kind.TERMINAL, 1, status="completed"),
        ONCE,
        State.COMPLETED,
        Code.RELAY_ERROR,
    ),
]


@pytest.mark.parametrize(
    ("call", "event", "policy", "state", "code"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_each_failure_carries_its_reason(
    call: Call, event: Event, policy: RetryPolicy, state: State, code: Code
) -> None:
    t = apply(call, replace(event, at=1.0), policy)
    assert t.after.state is state
    assert t.attempt_reason is not None and t.attempt_reason.code is code
    assert t.attempt_reason.text
    assert t.after.reason_code == code  # the contact's reason too


def test_every_code_is_covered() -> None:
    covered = {c[-1] for c in CASES} | {Code.OTHER}  # OTHER: old data, below
    assert covered == set(Code)
    assert set(CODES) == set(Code), "every code is documented"


def test_completed_with_a_running_bot_has_no_reason() -> None:
    t = apply(ANSWERED, Event(Kind.TERMINAL, 1, status="completed", at=1.0), ONCE)
    assert t.after.state is State.COMPLETED and t.attempt_reason is None


def test_a_previous_attempts_bot_error_does_not_count() -> None:
    call = replace(ANSWERED, attempt=2, bot_error=bot_error(Code.RELAY_CONNECT_FAILED, False, 1))
    t = apply(call, Event(Kind.TERMINAL, 2, status="completed", at=1.0), ONCE)
    assert t.after.state is State.COMPLETED


def test_bot_failed_is_final_and_not_retried() -> None:
    call = replace(ANSWERED, bot_error=bot_error(Code.RELAY_REJECTED, ran=False))
    t = apply(call, Event(Kind.TERMINAL, 1, status="completed", at=1.0), RETRY)
    assert t.final and t.releases_slot and t.after.outcome == "bot-failed"


def test_dialling_clears_a_deferral() -> None:
    deferred = apply(
        Call(state=State.ADMITTED),
        Event(Kind.REQUEUE, 1, reason="campaign paused", code=Code.CAMPAIGN_PAUSED),
        ONCE,
    ).after
    admitted = replace(deferred, state=State.ADMITTED)  # what lua/admit.lua writes
    dialing = apply(admitted, Event(Kind.DIAL, 1), ONCE)
    assert dialing.after.reason is None and dialing.after.reason_code is None
    assert dialing.attempt_reason is None


# --- stored and shown ------------------------------------------------------------


def _run(fields: dict[str, str], event: Event, policy: RetryPolicy = ONCE) -> dict[str, str]:
    """Apply ``plan``'s hash writes to a dict, as Redis would."""
    _, ops = plan("acct", "abc123-0", fields, event, policy, now=10.0, leases=Leases())
    return written(fields, ops)


def test_relay_failure_reaches_the_results_row_and_table() -> None:
    fields = call_to_hash(ANSWERED) | {"to": "+919800000001"}
    err = BotError(
        1, Code.RELAY_CONNECT_FAILED, "relay connect to ws://127.0.0.1:9/ws failed", False
    )
    fields["bot_error"] = err.to_json()
    after = _run(fields, Event(Kind.TERMINAL, 1, status="completed", at=10.0))
    row = call_result("abc123-0", after)
    assert row["outcome"] == "bot-failed"
    expected = {"code": "relay_connect_failed", "text": err.text}
    assert row["reason"] == expected
    assert row["attempts"][0]["reason"] == expected
    assert row["attempts"][0]["status"] == "completed"  # what Exotel said, kept
    assert reason_cell(row["reason"]).startswith("relay_connect_failed: relay connect")


def test_a_new_dial_drops_the_attempts_deferral_reason() -> None:
    fields = call_to_hash(Call(state=State.ADMITTED)) | {"to": "+1"}
    deferred = _run(fields, Event(Kind.REQUEUE, 1, reason="paused", code=Code.CAMPAIGN_PAUSED))
    assert json.loads(deferred["h:1"])["reason"]["code"] == "campaign_paused"
    readmitted = deferred | {"state": State.ADMITTED.value}  # what lua/admit.lua writes
    dialled = _run(readmitted, Event(Kind.DIAL, 1))
    assert "reason" not in json.loads(dialled["h:1"])
    assert call_result("abc123-0", dialled)["reason"] is None


def test_suppressed_numbers_carry_the_reason() -> None:
    expected = {"code": "do_not_call", "text": reasons.DNC_TEXT}
    # Caught just before dialling: the attempt that was about to happen says why not.
    admitted = call_to_hash(Call(state=State.ADMITTED)) | {"to": "+1"}
    row = call_result("abc123-0", _run(admitted, Event(Kind.SUPPRESS, reason=reasons.DNC_TEXT)))
    assert row["outcome"] == "suppressed" and row["reason"] == expected
    assert [a["reason"] for a in row["attempts"]] == [expected]
    # Before admission: no attempt at all, the contact still says why.
    pending = call_to_hash(Call()) | {"to": "+1"}
    row = call_result("abc123-0", _run(pending, Event(Kind.SUPPRESS, reason=reasons.DNC_TEXT)))
    assert row["attempts"] == [] and row["reason"] == expected


def test_old_records_without_a_code_read_as_other() -> None:
    row = call_result("abc123-0", {"to": "+1", "state": "failed", "reason": "boom"})
    assert row["reason"] == {"code": "other", "text": "boom"}
    done = call_result("abc123-0", {"to": "+1", "state": "completed", "reason": "settled"})
    assert done["reason"] is None


def test_bot_error_round_trip_and_garbage() -> None:
    err = BotError(2, Code.RELAY_REJECTED, "HTTP 403", False)
    assert BotError.from_json(err.to_json()) == err
    for raw in (
        None,
        "",
        "{",
        "[]",
        '{"attempt": 1}',
        '{"attempt":1,"code":"nope","text":"","ran":0}',
    ):
        assert BotError.from_json(raw) is None
    assert reasons.of("nope", "x") == Reason(Code.OTHER, "x")
    assert reasons.of(None, None) is None


def test_urls_in_reasons_lose_credentials_and_tokens() -> None:
    assert safe_url("wss://user:pw@bot.example:8443/ws?token=s3cret") == "wss://bot.example:8443/ws"
    assert safe_url("ws://[::1") == "<invalid url>"

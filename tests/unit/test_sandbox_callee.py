"""The sandbox's pure parts: the callee rule, the playback model, bot frame checks."""

from __future__ import annotations

import base64
import json

import pytest

from dialer.sandbox.callee import behaviour_for, outcome_for, talk_limit_s, terminal_status
from dialer.sandbox.config import AccountConfig, CalleeBehaviour, Faults, SandboxConfig
from dialer.sandbox.playback import Playback, check_bot_frame
from dialer.sandbox.state import RateWindow

CONFIG = SandboxConfig(ring_s=0.5, talk_max_s=9.0, early_hangup_s=2.0)


@pytest.mark.parametrize(
    ("number", "outcome", "status"),
    [
        ("+919876543210", "answer", "completed"),
        ("+919876543211", "answer", "completed"),
        ("+919876543212", "answer", "completed"),
        ("+919876543213", "answer", "completed"),
        ("+919876543214", "answer", "completed"),
        ("+919876543215", "answer", "completed"),
        ("+919876543216", "busy", "busy"),
        ("+919876543217", "no-answer", "no-answer"),
        ("+919876543218", "failed", "failed"),
        ("+919876543219", "hangup-early", "completed"),
    ],
)
def test_last_digit_rule(number: str, outcome: str, status: str) -> None:
    behaviour = behaviour_for(number, CONFIG)
    assert outcome_for(number) == outcome
    assert behaviour.outcome == outcome
    assert terminal_status(behaviour) == status
    assert behaviour.ring_s == 0.5
    assert behaviour.talk_max_s == 9.0
    assert behaviour.dtmf == ("1", "2", "3")
    assert behaviour.hangup_after_s == (2.0 if outcome == "hangup-early" else None)


@pytest.mark.parametrize("number", ["", "+91abc", "garbage"])
def test_non_digit_endings_answer(number: str) -> None:
    assert outcome_for(number) == "answer"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"outcome": "busy"}, {"outcome": "busy"}),
        ({"ring_s": 0.0, "dtmf": ["9", "#"]}, {"ring_s": 0.0, "dtmf": ("9", "#")}),
        ({"outcome": "hangup-early"}, {"outcome": "hangup-early", "hangup_after_s": 2.0}),
        ({"outcome": "hangup-early", "hangup_after_s": 0.5}, {"hangup_after_s": 0.5}),
        ({"talk_max_s": 1.5}, {"outcome": "answer", "talk_max_s": 1.5}),
    ],
)
def test_overrides_replace_rule_fields(override: dict, expected: dict) -> None:
    number = "+919876543210"
    behaviour = behaviour_for(number, CONFIG, {number: override})
    for name, value in expected.items():
        assert getattr(behaviour, name) == value
    assert behaviour_for("+919876543211", CONFIG, {number: override}).outcome == "answer"


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"outcome": "maybe"}, "outcome"),
        ({"ring_s": -1}, "ring_s"),
        ({"ring_s": "1"}, "ring_s"),
        ({"dtmf": "12"}, "dtmf"),
        ({"dtmf": ["12"]}, "dtmf"),
        ({"volume": 3}, "volume"),
    ],
)
def test_bad_behaviour_fields_are_named(fields: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}:"):
        CalleeBehaviour().with_fields(fields)


@pytest.mark.parametrize(
    ("behaviour", "time_limit", "expected"),
    [
        (CalleeBehaviour(talk_max_s=20), None, 20),
        (CalleeBehaviour(talk_max_s=20), 5, 5),
        (CalleeBehaviour(outcome="hangup-early", talk_max_s=20, hangup_after_s=3), None, 3),
        (CalleeBehaviour(outcome="answer", talk_max_s=20, hangup_after_s=3), None, 20),
    ],
)
def test_talk_limit(behaviour: CalleeBehaviour, time_limit: int | None, expected: float) -> None:
    assert talk_limit_s(behaviour, time_limit) == expected


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ({"http_5xx": 1.5}, "http_5xx"),
        ({"drop_callbacks": -0.1}, "drop_callbacks"),
        ({"retry_after_s": 0}, "retry_after_s"),
        ({"retry_after_s": 1.5}, "retry_after_s"),
        ({"late_delay_s": "x"}, "late_delay_s"),
        ({"chaos": 1}, "chaos"),
    ],
)
def test_faults_from_json_names_bad_field(data: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}:"):
        Faults.from_json(data)


def test_account_token_not_in_repr() -> None:
    account = AccountConfig("acc", "key", "very-secret-token")
    assert "very-secret-token" not in repr(account)
    with pytest.raises(ValueError, match=r"^max_concurrent:"):
        AccountConfig.from_json({"sid": "a", "api_key": "k", "api_token": "t", "max_concurrent": 0})


def test_rate_window_slides() -> None:
    window = RateWindow(limit=2, window_s=60)
    assert window.admit(0.0) == 0
    assert window.admit(10.0) == 0
    assert window.admit(20.0) == 40  # the first slot frees at t=60
    assert window.admit(59.5) == 1  # never less than one second
    assert window.admit(60.0) == 0


# -- playback ---------------------------------------------------------------


def test_playback_marks_follow_audio() -> None:
    line = Playback(8000)  # 16,000 bytes per second
    line.add_audio(3200, now=0.0)  # plays 0.0 .. 0.2
    line.add_mark("a", now=0.0)
    line.add_audio(3200, now=0.05)  # plays 0.2 .. 0.4
    line.add_mark("b", now=0.05)
    assert line.due_marks(0.1) == []
    assert line.next_due(0.1) == pytest.approx(0.2)
    assert line.due_marks(0.2) == ["a"]
    assert line.drained_at() == pytest.approx(0.4)
    assert line.due_marks(0.4) == ["b"]


def test_playback_clear_drops_queued_audio_and_releases_marks() -> None:
    line = Playback(16000)  # 32,000 bytes per second
    line.add_audio(3200, now=0.0)  # 0.0 .. 0.1
    line.add_audio(32000, now=0.0)  # 0.1 .. 1.1
    line.add_mark("end", now=0.0)
    line.clear(now=0.05)
    assert line.due_marks(0.05) == ["end"]
    assert line.drained_at() == pytest.approx(0.1)  # the chunk playing finishes


def test_playback_not_drained_before_any_audio() -> None:
    line = Playback(8000)
    assert line.drained_at() is None
    line.add_mark("m", now=1.0)
    assert line.due_marks(1.0) == ["m"]


def _media(sid: str, size: int, key: str = "stream_sid") -> str:
    payload = base64.b64encode(bytes(size)).decode()
    return json.dumps({"event": "media", key: sid, "media": {"payload": payload}})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (_media("MZ1", 3200), None),
        (_media("MZ1", 3520, key="streamSid"), None),
        (_media("MZ1", 102_400), None),
        (_media("MZ1", 640), "under the 3200-byte minimum"),
        (_media("MZ1", 3300), "not a multiple of 320"),
        (_media("MZ1", 102_720), "over the 102400-byte maximum"),
        (_media("MZ2", 3200), "is not this stream's"),
        ('{"event": "media", "stream_sid": "MZ1", "media": {"payload": "@@@"}}', "base64"),
        ('{"event": "media", "stream_sid": "MZ1"}', "no media.payload"),
        ('{"event": "mark", "stream_sid": "MZ1", "mark": {"name": "x"}}', None),
        ('{"event": "mark", "stream_sid": "MZ1", "mark": {}}', "no mark.name"),
        ('{"event": "clear", "streamSid": "MZ1"}', None),
        ('{"event": "hello", "stream_sid": "MZ1"}', "unknown event"),
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_check_bot_frame(text: str, problem: str | None) -> None:
    frame, found = check_bot_frame(text, "MZ1")
    if problem is None:
        assert found is None and frame is not None
    else:
        assert found is not None and problem in found

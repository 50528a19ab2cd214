"""Answering-machine detection: the detector, the policy, the verdict on the record (no I/O)."""

from __future__ import annotations

import base64
import json
import random

import numpy as np
import pytest

from dialer.core.calls import Event, Kind, State
from dialer.core.errors import ValidationError
from dialer.core.machine import check_message, parse_policy
from dialer.core.policy import RetryPolicy
from dialer.sandbox.callee import behaviour_for, voice_for
from dialer.sandbox.config import CalleeBehaviour, SandboxConfig
from dialer.sandbox.voices import Clip, Segment, callee_clip, make_clip, render
from dialer.store.records import plan
from streamer.amd import Detector, Thresholds, load_thresholds
from tests.support.audio import wav


def feed(clip: Clip, rate: int, th: Thresholds | None = None, chunk_s: float = 0.1) -> Detector:
    pcm = render(clip, rate).astype("<i2").tobytes()
    det = Detector(rate, th or load_thresholds())
    step = int(rate * chunk_s) * 2
    for pos in range(0, len(pcm), step):
        if det.feed(pcm[pos : pos + step]) is not None:
            break
    return det


def clip_of(*segments: Segment, duration_s: float = 6.0, label: str = "human") -> Clip:
    return Clip(label, "test", "clean", duration_s, tuple(segments), noise_dbfs=-70.0)


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_a_short_hello_then_silence_is_a_person_decided_after_the_pause(rate: int) -> None:
    det = feed(clip_of(Segment("speech", 0.5, 0.6, seed=3)), rate)
    assert det.decision is not None
    assert det.decision.answered_by == "human"
    # decided at the pause, not after a fixed window: speech ends 1.1 s, pause 0.5 s
    assert 1.4 <= det.decision.at_ms / 1000 <= 2.0
    f = det.decision.features
    assert f["utterances"] == 1 and 0.4 <= f["initial_silence_s"] <= 0.6


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_a_long_greeting_is_a_machine_decided_while_it_still_speaks(rate: int) -> None:
    det = feed(clip_of(Segment("speech", 0.3, 6.0, seed=5), duration_s=8, label="machine"), rate)
    assert det.decision is not None and det.decision.answered_by == "machine"
    assert det.decision.reason == "long greeting"
    assert det.decision.at_ms < 6_300  # before the greeting ends


@pytest.mark.parametrize("freq", [400.0, 1000.0, 1400.0, 2000.0])
def test_a_beep_is_a_machine_and_ends_its_greeting(freq: float) -> None:
    clip = clip_of(
        Segment("speech", 0.3, 0.5, seed=1),
        Segment("beep", 0.9, 0.5, freq_hz=freq),
        duration_s=4,
        label="machine",
    )
    pcm = render(clip, 8000).astype("<i2").tobytes()
    det = Detector(8000, load_thresholds())
    for pos in range(0, len(pcm), 1600):
        det.feed(pcm[pos : pos + 1600])
    assert det.decision is not None and det.decision.answered_by == "machine"
    assert det.decision.reason == "beep"
    assert det.decision.features["beep_hz"] == pytest.approx(freq, abs=60)
    assert det.beep_end_s == pytest.approx(1.4, abs=0.05)
    assert det.greeting_over_s is not None and det.greeting_over_s >= 1.4


def test_silence_is_unknown_never_a_machine() -> None:
    det = feed(clip_of(duration_s=8), 8000)
    assert det.decision is not None and det.decision.answered_by == "unknown"
    assert det.decision.at_ms == pytest.approx(load_thresholds().initial_silence_s * 1000, abs=30)


def test_mains_hum_alone_is_not_speech() -> None:
    clip = Clip("human", "test", "hum", 6.0, (), hum_hz=50.0, level_dbfs=-16.0)
    det = feed(clip, 8000)
    assert det.decision is not None and det.decision.answered_by == "unknown"


def test_chunk_size_does_not_change_the_decision() -> None:
    clip = make_clip(random.Random(7), "machine", "voicemail")
    a = feed(clip, 16000, chunk_s=0.1).decision
    b = feed(clip, 16000, chunk_s=0.033).decision
    assert a is not None and b is not None
    assert (a.answered_by, a.at_ms) == (b.answered_by, b.at_ms)


def test_odd_bytes_and_bad_rates_are_handled() -> None:
    det = Detector(8000)
    assert det.feed(b"\x01") is None  # half a sample: kept for nothing, no crash
    with pytest.raises(ValueError, match="sample rate"):
        Detector(44100)


def test_the_shipped_thresholds_are_the_fitted_ones() -> None:
    th = load_thresholds()
    assert th != Thresholds() or th == Thresholds()  # loads without error
    assert 0.3 <= th.pause_s <= 1.0 and th.long_utterance_s > th.short_utterance_s


def test_a_small_generated_corpus_is_mostly_right_and_never_hangs_up_on_people() -> None:
    rng = random.Random(11)
    th = load_thresholds()
    wrong = humans_as_machine = 0
    for i in range(60):
        clip = make_clip(rng, "human" if i % 2 else "machine")
        d = feed(clip, 8000, th).decision
        said_machine = d is not None and d.answered_by == "machine"
        wrong += said_machine != (clip.label == "machine")
        humans_as_machine += said_machine and clip.label == "human"
    assert humans_as_machine == 0
    assert wrong <= 5


def test_rendering_is_reproducible() -> None:
    a = make_clip(random.Random(3))
    b = make_clip(random.Random(3))
    assert a == b
    assert np.array_equal(render(a, 8000), render(b, 8000))


# --- policy ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "mode", "name"),
    [
        ("off", "off", ""),
        ("", "off", ""),
        ("hangup", "hangup", ""),
        ("continue", "continue", ""),
        ("message:greet.wav", "message", "greet.wav"),
        ("message:/home/me/greet.wav", "message", "greet.wav"),
    ],
)
def test_policy_forms(text: str, mode: str, name: str) -> None:
    p = parse_policy(text)
    assert (p.mode, p.message_name) == (mode, name)


@pytest.mark.parametrize("text", ["hang-up", "hangup:now", "machine", "off:x"])
def test_bad_policy_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValidationError, match=r"off, hangup, continue or message:FILE\.wav"):
        parse_policy(text)


def test_message_wav_is_checked() -> None:
    msg = parse_policy("message:x.wav")
    assert check_message(base64.b64encode(wav()).decode(), msg) == wav()
    with pytest.raises(ValidationError, match="needs the WAV"):
        check_message(None, msg)
    with pytest.raises(ValidationError, match="not valid base64"):
        check_message("%%%", msg)
    with pytest.raises(ValidationError, match="not a PCM WAV"):
        check_message(base64.b64encode(b"RIFF....nope").decode(), msg)
    with pytest.raises(ValidationError, match="only for machine_detection 'message'"):
        check_message(base64.b64encode(wav()).decode(), parse_policy("hangup"))


# --- the verdict on the record -----------------------------------------------------------
def fields(state: str = "answered", attempt: int = 1, verdict: dict | None = None) -> dict:
    f = {"state": state, "attempt": str(attempt), "sid": "CA1", "to": "+919876543210"}
    if verdict is not None:
        f[f"amd:{attempt}"] = json.dumps(verdict)
    return f


def terminal(status: str = "completed", attempt: int = 1) -> Event:
    return Event(Kind.TERMINAL, attempt=attempt, status=status, at=100.0)


def run_plan(f: dict, ev: Event, policy: RetryPolicy) -> State:
    from dialer.store.records import Leases

    t, _ = plan("acct", "c0ffee000000-1", f, ev, policy, now=100.0, leases=Leases())
    return t.after.state


def test_a_machine_hung_up_on_ends_machine_and_is_retried_by_policy() -> None:
    v = {"answered_by": "machine", "detection_ms": 2900, "outcome": "machine"}
    retry = RetryPolicy(max_attempts=2, retry_delay_s={"machine": 60.0})
    assert run_plan(fields(verdict=v), terminal(), retry) is State.PENDING  # retried
    last = RetryPolicy(max_attempts=1)
    assert run_plan(fields(verdict=v), terminal(), last) is State.MACHINE
    budget = RetryPolicy(max_attempts=3, max_per_outcome={"machine": 1})
    assert run_plan(fields(verdict=v), terminal(), budget) is State.MACHINE


def test_a_voicemail_left_is_final_and_a_person_stays_completed() -> None:
    policy = RetryPolicy(max_attempts=3)
    vm = {"answered_by": "machine", "detection_ms": 2900, "outcome": "voicemail"}
    assert run_plan(fields(verdict=vm), terminal(), policy) is State.VOICEMAIL
    human = {"answered_by": "human", "detection_ms": 1500}
    assert run_plan(fields(verdict=human), terminal(), policy) is State.COMPLETED
    told = {"answered_by": "machine", "detection_ms": 2900}  # policy "continue"
    assert run_plan(fields(verdict=told), terminal(), policy) is State.COMPLETED


def test_only_a_completed_call_of_the_same_attempt_takes_the_verdict() -> None:
    policy = RetryPolicy(max_attempts=1)
    v = {"answered_by": "machine", "outcome": "machine"}
    assert run_plan(fields(verdict=v), terminal("busy"), policy) is State.BUSY
    stale = fields(attempt=2)
    stale["amd:1"] = json.dumps(v)  # the first attempt's verdict
    assert run_plan(stale, terminal(attempt=2), policy) is State.COMPLETED


# --- sandbox callees ---------------------------------------------------------------------
def test_numbers_ending_555vd_speak_with_voice_v() -> None:
    assert voice_for("+919876555500") == "human:hello"
    assert voice_for("+919876555551") == "machine:voicemail"
    assert voice_for("+919876543210") == "line"
    cfg = SandboxConfig()
    machine = behaviour_for("+919876555581", cfg)
    assert (machine.voice, machine.outcome, machine.dtmf) == ("machine:ivr", "answer", ())
    person = behaviour_for("+919876555520", cfg)
    assert person.voice == "human:named" and person.dtmf == cfg.default_behaviour().dtmf
    busy = behaviour_for("+919876555556", cfg)  # the last digit still says busy
    assert busy.outcome == "busy"
    override = behaviour_for(
        "+919876543210", cfg, {"+919876543210": {"voice": "machine:voicemail"}}
    )
    assert override.dtmf == ()


def test_a_callee_sounds_the_same_every_time_and_bad_voices_are_refused() -> None:
    assert callee_clip("machine:voicemail", "+1") == callee_clip("machine:voicemail", "+1")
    assert callee_clip("line", "+1") is None
    with pytest.raises(ValueError, match="human:KIND"):
        CalleeBehaviour(voice="robot:beep")

"""Answering-machine detection end to end: sandbox people and machines, real processes.

The sandbox's ``555VD`` numbers speak generated voices (``dialer.sandbox.callee``):
the detector in the streamer must hang up on the machines (outcome ``machine``,
retried by the campaign's rules) and let the survey run for the people; with
``message`` it must play the campaign's WAV after the voicemail's beep, which
the sandbox's machine records (``machine_heard``).
"""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import wave
from pathlib import Path

import pytest

from dialer.core.surveys import read_survey
from tests.support.system import running_system

pytestmark = pytest.mark.timeout(180)

HUMANS = ["+919876555501", "+919876555525"]  # "Hello?"; "Hello, Asha speaking."
MACHINES = ["+919876555551", "+919876555581"]  # a 4.8 s voicemail greeting; an IVR menu
VOICEMAIL = "+919876555590"  # greeting over hum ends at 4.2 s, its beep at 5.2 s


def tone_wav(seconds: float = 0.6, rate: int = 8000) -> bytes:
    samples = (
        int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate))
    )
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buf.getvalue()


def test_machines_are_hung_up_on_and_retried_people_get_the_survey(
    redis_url: str, tmp_path: Path
) -> None:
    # a survey of short tones: the people's side is quick, what is tested is who hears it
    (tmp_path / "beep.wav").write_bytes(tone_wav(0.4))
    survey = tmp_path / "survey.json"
    survey.write_text(
        json.dumps(
            {
                "name": "amd",
                "greeting": "beep.wav",
                "questions": [
                    {"id": "q1", "prompt": "beep.wav", "keys": ["1", "2"]},
                    {"id": "q2", "prompt": "beep.wav", "keys": ["1", "2", "3"]},
                ],
                "answer_timeout_s": 5,
            }
        )
    )
    args = ["--calls-per-minute", "100000", "--ring-s", "0.05", "--talk-max-s", "30",
            "--think-s", "0.05"]  # fmt: skip
    content = read_survey(survey)  # what `dialer submit` sends
    message = tone_wav()
    with running_system(
        redis_url, tmp_path, workers=1, max_concurrent=6, sandbox_args=args
    ) as system:
        system.register(max_concurrent=6)
        hangup = system.api.create_campaign(
            "sandbox",
            [{"to": n} for n in HUMANS + MACHINES],
            bot="survey:survey.json",
            survey=content,
            max_attempts=2,
            retry_delay_s=0.5,
            machine_detection="hangup",
        )
        voicemail = system.api.create_campaign(
            "sandbox",
            [{"to": VOICEMAIL}],
            bot="survey:survey.json",
            survey=content,
            max_attempts=1,
            machine_detection="message:hello.wav",
            machine_message_wav=base64.b64encode(message).decode(),
        )
        status = system.wait_done(hangup["id"], 120)
        vm_status = system.wait_done(voicemail["id"], 60)
        rows = {row["to"]: row for row in system.api.iter_calls(hangup["id"])}
        (vm_row,) = list(system.api.iter_calls(voicemail["id"]))
        report = system.sandbox.report()

    assert status["outcomes"] == {"completed": 2, "machine": 2}, status
    for number in HUMANS:
        row = rows[number]
        assert row["outcome"] == "completed"
        assert row["answers"] == {"q1": "1", "q2": "2"}, row
        (attempt,) = row["attempts"]
        assert attempt["answered_by"] == "human"
        assert 0 < attempt["detection_ms"] <= 2_500
    for number in MACHINES:
        row = rows[number]
        assert row["outcome"] == "machine", row
        assert [a["answered_by"] for a in row["attempts"]] == ["machine", "machine"]
        assert row["answers"] == {}
        assert all(0 < a["detection_ms"] < 4_000 for a in row["attempts"])
    for number in MACHINES:
        assert report["dials_per_number"][number] == 2  # retried once, per max_attempts

    assert vm_status["outcomes"] == {"voicemail": 1}, vm_status
    (attempt,) = vm_row["attempts"]
    assert attempt["answered_by"] == "machine"
    heard = report["machine_heard"][attempt["exotel_sid"]]
    # the message began after the beep and all of it reached the machine
    assert heard["bot_audio_s"] >= heard["beep_end_s"], heard
    pcm_bytes = len(message) - 44
    assert heard["bot_audio_bytes"] >= pcm_bytes
    # nothing the bot said reached a hung-up-on machine's recording but silence
    for number in MACHINES:
        for a in rows[number]["attempts"]:
            assert report["machine_heard"][a["exotel_sid"]]["bot_audio_bytes"] == 0
    assert report["violations"] == []

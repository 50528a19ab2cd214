"""The survey bot with the sandbox calling in: its DTMF answers land in the call record,
and its prompts reach the callee as real speech (text spoken by the bundled engine,
and a WAV greeting).

The survey travels as content: it is read from a directory that is deleted
before the campaign is even submitted, so the streamer can only have played
the WAV stored with the campaign in Redis.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest

from dialer.core.surveys import read_survey
from tests.support.system import running_system

pytestmark = pytest.mark.timeout(180)


def test_survey_collects_the_callees_answers(redis_url: str, tmp_path: Path) -> None:
    demo = Path(str(resources.files("dialer.cli").joinpath("demo")))
    # The demo survey with its questions as text (all-WAV prompts: test_streamer.py).
    doc = json.loads((demo / "survey.json").read_text())
    assert doc["greeting"] == "greeting.wav"
    doc["questions"][0]["prompt"] = "Did we solve your problem? Press one for yes, two for no."
    doc["questions"][1]["prompt"] = "How likely are you to recommend us? Press one, two or three."
    doc["goodbye"] = "Thank you. Goodbye."
    local = tmp_path / "on-the-users-machine"
    local.mkdir()
    (local / "survey.json").write_text(json.dumps(doc))
    shutil.copy(demo / "greeting.wav", local / "greeting.wav")
    content = read_survey(local / "survey.json")  # what `dialer submit` sends
    shutil.rmtree(local)
    args = [
        "--calls-per-minute",
        "100000",
        "--ring-s",
        "0.05",
        "--talk-max-s",
        "30",
        "--think-s",
        "0.05",
    ]
    answering = [{"to": f"+9198765{i:05d}"} for i in range(0, 40, 10)]
    with running_system(
        redis_url, tmp_path, workers=1, max_concurrent=4, sandbox_args=args
    ) as system:
        system.register(max_concurrent=4)
        system.sandbox.set_numbers({answering[0]["to"]: {"dtmf": ["2", "3"]}})
        out = system.api.create_campaign(
            "sandbox", answering, bot="survey:survey.json", survey=content, max_attempts=1
        )
        status = system.wait_done(out["id"], 120)
        rows = list(system.api.iter_calls(out["id"]))
        report = system.sandbox.report()
    assert status["outcomes"] == {"completed": 4}
    by_number = {row["to"]: row["answers"] for row in rows}
    assert by_number[answering[0]["to"]] == {"q1": "2", "q2": "3"}
    for contact in answering[1:]:
        assert by_number[contact["to"]] == {"q1": "1", "q2": "2"}
    assert report["violations"] == []
    # Every callee heard real speech, seconds of it, not silence. How much varies:
    # a key pressed between two prompts cuts the next one short (barge-in).
    assert len(report["bot_audio"]) == 4
    for heard in report["bot_audio"].values():
        assert heard["voiced_ms"] > 2000, report["bot_audio"]

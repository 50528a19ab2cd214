"""The survey bot with the sandbox calling in: its DTMF answers land in the call record.

The survey travels as content: it is read from a copy that is deleted before
the campaign is even submitted, so the streamer can only have played the
prompts stored with the campaign in Redis.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest

from dialer.surveys import read_survey
from tests.integration.harness import running_system

pytestmark = pytest.mark.timeout(180)


def test_survey_collects_the_callees_answers(redis_url: str, tmp_path: Path) -> None:
    demo = resources.files("dialer.cli").joinpath("demo")
    copy = tmp_path / "survey-copy"
    copy.mkdir()
    for name in ("survey.json", "greeting.wav", "q1.wav", "q2.wav", "goodbye.wav"):
        (copy / name).write_bytes(demo.joinpath(name).read_bytes())
    content = read_survey(copy / "survey.json")
    shutil.rmtree(copy)
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
            "sandbox",
            answering,
            bot="survey:csat.json",
            survey=content,
            max_attempts=1,
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

"""The CLI prints each API error once (the API repeats a lone error as its detail)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialer.cli.client import ApiError
from dialer.cli.commands import fail
from dialer.core.campaign import CampaignIn
from dialer.core.errors import ValidationError
from dialer.core.surveys import read_survey
from dialer.services.ingest import validate_bot


def _printed(capsys: pytest.CaptureFixture[str], exc: ApiError) -> str:
    with pytest.raises(SystemExit):
        fail(exc)
    out, err = capsys.readouterr()
    assert out == ""
    return err


def test_a_survey_error_is_printed_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    survey = tmp_path / "s.json"
    doc = {"questions": [{"id": "q", "prompt": "Hi", "keys": ["1"]}], "answer_timout_s": 5}
    survey.write_text(json.dumps(doc))
    spec = CampaignIn(
        account="a", bot="survey:s.json", survey=read_survey(survey), contacts=[{"to": "+911"}]
    )
    with pytest.raises(ValidationError) as caught:
        validate_bot(spec)
    message = str(caught.value)
    assert "answer_timout_s" in message
    # What the receiver answers for it (dialer.receiver.api, create_campaign).
    err = _printed(capsys, ApiError(422, message, [{"field": "bot", "message": message}]))
    assert err.count("answer_timout_s") == 1, err


def test_line_details_are_still_printed(capsys: pytest.CaptureFixture[str]) -> None:
    detail = [{"field": "to", "message": "not a phone number", "line": 3}]
    err = _printed(capsys, ApiError(422, "invalid contacts", detail))
    assert err.splitlines() == ["error: invalid contacts", "  line 3: to: not a phone number"]

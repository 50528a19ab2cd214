"""The one parser of a stored campaign's facts (dialer.core.campaign.facts), no Redis."""

from __future__ import annotations

import json

from dialer.core.campaign import FACT_FIELDS, CampaignFacts, facts
from dialer.core.policy import RetryPolicy
from dialer.core.windows import Window


def test_a_full_meta_parses_every_fact() -> None:
    window = {"days": "mon-fri", "start": "09:00", "end": "17:00"}
    meta = {
        "bot": "survey:csat",
        "bot_config": json.dumps({"questions": [{"id": "q1"}]}),
        "policy": json.dumps({"max_attempts": 5, "retry_delay_s": {"busy": 60}}),
        "options": json.dumps({"record": True}),
        "lease_s": "3720",
        "webhook_url": "https://hooks.example/x",
        "window": json.dumps(window),
        "dnc_answers": json.dumps({"q3": "9"}),
        "amd": json.dumps({"mode": "hangup", "message": None}),
    }
    assert set(meta) == set(FACT_FIELDS)
    got = facts("c1", "acme", meta)
    assert got == CampaignFacts(
        cid="c1",
        account="acme",
        bot="survey:csat",
        bot_config={"questions": [{"id": "q1"}]},
        policy=RetryPolicy.from_dict({"max_attempts": 5, "retry_delay_s": {"busy": 60}}),
        options={"record": True},
        lease_s=3720.0,
        webhook_url="https://hooks.example/x",
        window=Window.parse(window),
        dnc_answers={"q3": "9"},
        machine_detection="hangup",
    )


def test_absent_or_empty_fields_read_as_the_defaults() -> None:
    # what ingest writes for a plain campaign: empty strings for the optional facts
    meta = {"bot": "echo", "webhook_url": "", "window": "", "dnc_answers": "", "amd": None}
    got = facts("c1", "acme", meta)
    assert got.policy == RetryPolicy()
    assert (got.window, got.dnc_answers, got.machine_detection) == (None, None, "off")
    assert (got.bot_config, got.options, got.webhook_url) == ({}, {}, "")


def test_a_malformed_json_field_reads_as_absent() -> None:
    got = facts("c1", "acme", {"bot_config": "{not json", "options": "[1, 2]", "amd": "7"})
    assert (got.bot_config, got.options, got.machine_detection) == ({}, {}, "off")

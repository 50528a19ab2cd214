"""The CLI's pure parts: option coverage of the API models, human renderers, input files."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from dialer.cli import commands
from dialer.cli.progress import dry_run_text, results_table, status_text
from dialer.core.campaign import CampaignIn
from dialer.core.contacts import read_text_file
from dialer.core.errors import ValidationError
from dialer.receiver.models import AccountIn, AccountPatch, DncIn

NOW = datetime(2026, 12, 3, 7, 30, tzinfo=UTC).timestamp()  # 13:00 IST


@pytest.fixture(autouse=True)
def india_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _option_names(cmd: object) -> set[str]:
    names: set[str] = set()
    for p in cmd.params:  # type: ignore[attr-defined]
        names.update(p.opts)
        names.update(p.secondary_opts)
        names.add(p.name.upper())
    return names


def test_every_campaign_field_of_the_api_has_a_submit_option() -> None:
    missing = set(CampaignIn.model_fields) - set(commands.SUBMIT_OPTIONS)
    assert not missing, (
        f"CampaignIn field(s) {sorted(missing)} have no `dialer submit` option: add one "
        "and list it in dialer.cli.commands.SUBMIT_OPTIONS"
    )
    assert set(commands.SUBMIT_OPTIONS) <= set(CampaignIn.model_fields)
    assert set(commands.SUBMIT_OPTIONS.values()) <= _option_names(commands.submit)


def test_every_account_field_of_the_api_has_an_account_add_option() -> None:
    missing = set(AccountIn.model_fields) - set(commands.ACCOUNT_OPTIONS)
    assert not missing, (
        f"AccountIn field(s) {sorted(missing)} have no `dialer account add` option: add one "
        "and list it in dialer.cli.commands.ACCOUNT_OPTIONS"
    )
    assert set(commands.ACCOUNT_OPTIONS) <= set(AccountIn.model_fields)
    assert set(commands.ACCOUNT_OPTIONS.values()) <= _option_names(commands.account_add)


def test_every_patch_and_dnc_field_has_an_option() -> None:
    update = _option_names(commands.account_update)
    assert {commands.ACCOUNT_OPTIONS[f] for f in AccountPatch.model_fields} <= update
    assert set(DncIn.model_fields) == {"numbers", "default_region"}
    assert "--region" in _option_names(commands.account_dnc)


def _account_calls(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[list, object]:
    calls: list = []

    class Client:
        def add_account(self, *a: object, **kw: object) -> dict:
            calls.append(("add", a, kw))
            return {}

        def update_account(self, sid: str, **kw: object) -> dict:
            calls.append(("update", (sid,), kw))
            return {}

    monkeypatch.setattr(commands, "client_from", lambda api: Client())
    return calls, CliRunner().invoke(commands.account, list(args))


def test_account_add_and_update_send_only_what_was_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    creds = ("--api-key", "k", "--api-token", "t", "--caller-id", "0800")
    calls, out = _account_calls(monkeypatch, "add", "acme", *creds)
    assert out.exit_code == 0, out.output
    # no limit named: a re-run of `add` with a new token keeps the stored limits
    assert calls == [("add", ("acme", "k", "t", "0800"), {})]
    calls, out = _account_calls(
        monkeypatch, "add", "acme", *creds, "--caller-ids", "0801", "--caller-ids", "0802"
    )
    assert calls[0][2] == {"caller_ids": ["0801", "0802"]}
    calls, out = _account_calls(monkeypatch, "update", "acme", "--max-concurrent", "50")
    assert out.exit_code == 0 and calls == [("update", ("acme",), {"max_concurrent_calls": 50})]
    calls, out = _account_calls(monkeypatch, "update", "acme")
    assert out.exit_code == 2 and "name at least one field" in out.output and not calls
    calls, out = _account_calls(monkeypatch, "update", "acme", "--max-concurrent", "0")
    assert out.exit_code == 2 and not calls


def _submit_payload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> dict:
    """Run ``submit`` with the HTTP client replaced, returning what it would POST."""
    sent: dict = {}

    class Client:
        def create_campaign(self, account: str, *a: object, **kw: object) -> dict:
            sent.update(account=account, **kw)
            return {"id": "abc123abc123", "accepted": 1, "rejected": [], "duplicates": 0}

    monkeypatch.setattr(commands, "client_from", lambda api: Client())
    contacts = tmp_path / "c.csv"
    contacts.write_text("to\n+919876543210\n")
    out = CliRunner().invoke(
        commands.submit, [str(contacts), "--account", "acme", "--bot", "echo", *args]
    )
    assert out.exit_code == 0, out.output
    return sent


def test_policy_flags_reach_the_payload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = _submit_payload(
        tmp_path,
        monkeypatch,
        *("--retry-delay", "300", "--retry-delay-for", "busy=60"),
        *("--max-per-outcome", "failed=1", "--dnc-answer", "q3=9", "--dnc-answer", "q4=0"),
        *("--record", "--recording-channels", "dual", "--stream-name", "s1"),
        *("--sample-rate", "16000", "--priority", "5", "--weight", "2.5"),
        *("--window", "mon-fri 9:00-17:00", "--expected-call-s", "45", "--region", "IN"),
    )
    assert sent["retry_delay_s"] == {
        "busy": 60.0,
        "no-answer": 300.0,
        "failed": 300.0,
        "machine": 300.0,
    }
    assert sent["max_per_outcome"] == {"failed": 1}
    assert sent["dnc_answers"] == {"q3": "9", "q4": "0"}
    assert sent["record"] is True and sent["recording_channels"] == "dual"
    assert sent["stream_name"] == "s1" and sent["sample_rate"] == 16000
    assert sent["priority"] == 5 and sent["weight"] == 2.5
    assert sent["window"] == "mon-fri 9:00-17:00" and sent["expected_call_s"] == 45.0
    # the server accepts exactly what the CLI sends
    payload = {k: v for k, v in sent.items() if k != "dry_run"}
    CampaignIn.model_validate(payload)
    plain = _submit_payload(tmp_path, monkeypatch)
    assert plain["retry_delay_s"] == 300.0 and "window" not in plain


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--window", "mon-fri 9-5"], "'9-5' is not a time range"),
        (["--window", "mon-fir 09:00-17:00"], "'fir' is not a day"),
        (["--retry-delay-for", "bussy=60"], "must be one of busy, no-answer, failed, machine"),
        (["--retry-delay-for", "busy"], "expected KEY=VALUE"),
        (["--max-per-outcome", "failed=x"], "is not an integer"),
        (["--dnc-answer", "q3"], "expected QUESTION=DIGIT"),
    ],
)
def test_bad_flags_are_refused_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], says: str
) -> None:
    monkeypatch.setattr(commands, "client_from", lambda api: pytest.fail("no request"))
    contacts = tmp_path / "c.csv"
    contacts.write_text("to\n+919876543210\n")
    out = CliRunner().invoke(
        commands.submit, [str(contacts), "--account", "acme", "--bot", "echo", *args]
    )
    assert out.exit_code == 2, out.output
    assert says in out.output
    if "--window" in args:
        assert "accepted forms:" in out.output
    assert "Traceback" not in out.output and "tuple.index" not in out.output


STATUS = {
    "id": "0a1b2c3d4e5f",
    "name": "csat",
    "account": "acme",
    "bot": "echo",
    "state": "running",
    "total": 10,
    "counts": {"pending": 6, "completed": 3, "busy": 1},
    "outcomes": {"completed": 3, "busy": 1},
    "progress": 0.4,
    "finished": 4,
    "active": 0,
    "rejected": 1,
    "duplicates": 2,
    "created_at": NOW - 3600,
    "waiting": {
        "queued": 0,
        "scheduled": 6,
        "next_due_at": NOW + 7200,
        "reasons": [
            {
                "code": "circuit_open",
                "text": "account acme's circuit is open (401): fix the credentials, "
                "then `dialer account resume acme`",
                "at": None,
            },
            {"code": "window", "text": "waiting for the calling window", "at": NOW + 7200},
        ],
    },
}


def test_status_for_people_says_why_nothing_moves() -> None:
    text = status_text(STATUS, now=NOW)
    assert "campaign 0a1b2c3d4e5f (csat)" in text
    assert "state      running" in text
    assert "4/10 finished (40.0%)" in text
    assert "outcomes   busy 1, completed 3" in text and "calls      pending 6" in text
    assert "1 rows rejected, 2 duplicates dropped" in text
    # local dates (IST here), never epoch seconds
    assert "created    12:00:00 IST (1h 00m ago)" in text
    assert str(int(NOW)) not in text and str(int(NOW - 3600)) not in text
    assert "circuit is open (401)" in text and "dialer account resume acme" in text
    assert "waiting for the calling window (until 15:00:00 IST, in 2h 00m)" in text


def test_status_for_people_when_nothing_blocks() -> None:
    st = {**STATUS, "waiting": {"queued": 5, "scheduled": 0, "next_due_at": None, "reasons": []}}
    assert "5 calls queued for a free slot" in status_text(st, now=NOW)
    done = {**STATUS, "state": "done", "finished": 10, "waiting": {"reasons": []}}
    text = status_text(done, now=NOW)
    assert "state      done" in text and "waiting" not in text and "estimate" not in text


def test_status_command_json_is_the_api_object(monkeypatch: pytest.MonkeyPatch) -> None:
    class Client:
        def get_campaign(self, cid: str) -> dict:
            return STATUS

    monkeypatch.setattr(commands, "client_from", lambda api: Client())
    out = CliRunner().invoke(commands.status, ["0a1b2c3d4e5f", "--json"])
    assert out.exit_code == 0 and json.loads(out.output) == STATUS
    human = CliRunner().invoke(commands.status, ["0a1b2c3d4e5f"])
    assert human.exit_code == 0 and "4/10 finished" in human.output
    assert not human.output.startswith("{")


def test_dry_run_for_people_shows_dates() -> None:
    out = {
        "id": None,
        "accepted": 1000,
        "rejected": [{"line": 3, "reason": "x"}],
        "duplicates": 0,
        "suppressed": 4,
        "preflight": {
            "max_concurrent_calls": 10,
            "calls_per_minute": 200,
            "bot": "ok",
            "webhook_reachable": False,
            "estimate": {"busy_s": 6000.0, "finish_at": NOW + 90_000, "finish_in_s": 90_000.0},
        },
    }
    text = dry_run_text(out, now=NOW)
    assert "1000 accepted, 1 rejected, 0 duplicates, 4 on the do-not-call list" in text
    assert "about 1h 40m of calls" in text
    assert "finish     around 2026-12-04 14:00:00 IST (in 1d 1h" in text
    assert "webhook    NOT reachable" in text
    assert str(int(NOW + 90_000)) not in text


def test_results_table_has_the_contacts_columns() -> None:
    rows = [
        {
            "id": "c-0",
            "to": "+919876543210",
            "vars": {"name": "Asha", "city": "Pune"},
            "state": "completed",
            "outcome": "completed",
            "reason": None,
            "attempts": [{"duration_s": 12}],
            "answers": {"q1": "2"},
        },
        {
            "id": "c-1",
            "to": "+919876543211",
            "vars": {"name": "Ravi", "plan": "gold"},
            "state": "busy",
            "outcome": "busy",
            "reason": None,
            "attempts": [],
            "answers": {},
        },
    ]
    buf = io.StringIO()
    results_table(rows, Console(file=buf, width=200))
    header, *_ = [line for line in buf.getvalue().splitlines() if "outcome" in line]
    assert header.index("name") < header.index("city") < header.index("plan")
    assert header.index("to") < header.index("name") < header.index("outcome")
    assert "Asha" in buf.getvalue() and "gold" in buf.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("to\n+919876543210\n\n12\n", [(2, "+919876543210"), (4, "12")]),
        ("+919876543210\n\n\n12\n", [(1, "+919876543210"), (4, "12")]),
        ('name,phone\nA,+919876543210\n"B\nC",12\n', [(2, "+919876543210"), (3, "12")]),
        ("\n\nnumber\r\n12\r\n", [(4, "12")]),
    ],
)
def test_dnc_lines_are_the_files_own(text: str, expected: list[tuple[int, str]]) -> None:
    assert commands.dnc_numbers(text) == expected


def test_a_binary_file_is_refused_with_a_printable_excerpt() -> None:
    with pytest.raises(ValidationError) as info:
        read_text_file(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + bytes(range(256)))
    message = str(info.value)
    assert message.isprintable() and "not CSV text" in message
    assert "PK\\x03\\x04" in message
    assert read_text_file(b"to\n+919876543210\n") == "to\n+919876543210\n"


def test_account_dnc_reports_file_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Client:
        def add_dnc(self, sid: str, numbers: list[str], region: str | None) -> dict:
            assert numbers == ["+919876543210", "12", "+919876543211"]
            return {"added": 2, "count": 2, "rejected": [{"line": 2, "reason": "to: '12' bad"}]}

    monkeypatch.setattr(commands, "client_from", lambda api: Client())
    f = tmp_path / "dnc.csv"
    f.write_text("to\n+919876543210\n\n12\n+919876543211\n")  # a blank line before 12
    out = CliRunner().invoke(commands.account, ["dnc", "acme", str(f)])
    assert out.exit_code == 0, out.output
    assert f"{f}:4: to: '12' bad" in out.stderr

"""A failure's reason reaches the user: a relay to a closed port, end to end, through the CLI.

Real processes on loopback (sandbox, receiver, streamer, worker, beat); the
campaign's bot relays to a port where nothing listens. The sandbox answers,
the streamer cannot reach the bot and hangs up, Exotel (the sandbox) reports
``completed`` — and the contact must come out ``bot-failed`` with the reason
in ``dialer results --format json`` and in the table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dialer.platform.embedded import free_port
from tests.support.system import FAST, running_system

pytestmark = pytest.mark.timeout(180)
DIALER = [sys.executable, "-m", "dialer.cli.main"]


def test_relay_to_a_closed_port_shows_its_reason_in_results_json_and_table(
    redis_url: str, tmp_path: Path
) -> None:
    closed = free_port()  # nothing listens here
    number = "+919876500001"  # the sandbox answers numbers ending 0-5
    with running_system(redis_url, tmp_path, workers=1, max_concurrent=2) as system:
        system.register(max_concurrent=2)
        out = system.api.create_campaign(
            "sandbox", [{"to": number}], bot=f"relay:ws://127.0.0.1:{closed}/bot", max_attempts=2
        )
        status = system.wait_done(out["id"], 90)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DIALER_", "EXOTEL_"))}
        env |= {"DIALER_API_KEY": FAST["DIALER_API_KEY"], "DIALER_SECRET": FAST["DIALER_SECRET"]}
        env |= {"COLUMNS": "160"}
        api = ["--api", system.sup.settings.api_url]
        as_json = subprocess.run(
            [*DIALER, "results", out["id"], "--format", "json", *api],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        table = subprocess.run(
            [*DIALER, "results", out["id"], *api],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    # Not "completed": the callee heard nothing. Not retried: they did pick up.
    assert status["outcomes"] == {"bot-failed": 1}, status
    assert as_json.returncode == 0, as_json.stderr
    (row,) = json.loads(as_json.stdout)
    assert row["outcome"] == "bot-failed"
    assert row["reason"]["code"] == "relay_connect_failed"
    assert f"127.0.0.1:{closed}/bot" in row["reason"]["text"]
    (attempt,) = row["attempts"]
    assert attempt["status"] == "completed"  # what Exotel said is kept as it said it
    assert attempt["reason"] == row["reason"]
    assert table.returncode == 0, table.stderr
    assert "bot-failed" in table.stdout
    assert "relay_connect_failed: relay connect to" in table.stdout, table.stdout

"""Schemathesis against the live receiver on loopback: the document is the API.

The receiver runs as its own process (``dialer receiver``) on a free port and
a private Redis; schemathesis reads ``/v1/openapi.json`` and runs every phase
(examples, coverage, fuzzing, stateful through the document's links) with
every check, a fixed seed and a bounded number of examples. Any finding fails
the test, with schemathesis' report (and its reproduction curl) as the message.

The one setting beyond the defaults is ``SCHEMATHESIS_TOML``: which status a
schema-valid ``createCampaign`` may get. Schema-valid is not callable: whether
a phone number is diallable (libphonenumber's metadata) and whether the
account exists are facts no JSON Schema can state, and the server answers
both with a 422 naming the field.

The receiver runs jailed to loopback (``tests.contract.loopback_only``), so the
webhook URLs schemathesis invents are never reached, nor even resolved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.signing import API_KEY

SEED = 20261203
MAX_EXAMPLES = 12

SCHEMATHESIS_TOML = """
[[operations]]
include-operation-id = "createCampaign"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "401", "403", "404", "409", "422", "429",
]
"""


@pytest.mark.timeout(300)
def test_schemathesis_finds_nothing(live_receiver: str, tmp_path: Path) -> None:
    receiver = live_receiver
    auth = {"Authorization": f"Bearer {API_KEY}"}
    # the account the document's examples name, so the example campaign is created
    # (201) and its id reaches status, calls, pause/resume/cancel
    resp = requests.put(
        f"{receiver}/v1/accounts/acme",
        headers=auth,
        json={
            "api_key": "k",
            "api_token": "t",
            "caller_id": "0800",
            "region": "in",  # never dialled: no worker runs
        },
        timeout=10,
    )
    assert resp.status_code in (200, 201), resp.text
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_TOML)
    st = Path(sys.executable).with_name("st")
    cmd = [
        str(st),
        "--config-file",
        str(config),
        "run",
        f"{receiver}/v1/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--header",
        f"Authorization: Bearer {API_KEY}",
        "--no-color",
        "--report",
        "har",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False
    )
    report = out.stdout + out.stderr
    assert out.returncode == 0, report[-20_000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, report[-5000:]  # ran, and passed
    # a campaign was created and the operations on its id were reached with it
    reached = set()
    for har in (tmp_path / "report").glob("*.json"):
        for entry in json.loads(har.read_text())["log"]["entries"]:
            path = urlsplit(entry["request"]["url"]).path
            parts = path.split("/")
            if len(parts) > 3 and parts[2] == "campaigns":
                parts[3] = "{id}"
            reached.add((entry["request"]["method"], "/".join(parts), entry["response"]["status"]))
    assert ("POST", "/v1/campaigns", 201) in reached, sorted(reached)
    assert ("GET", "/v1/campaigns/{id}", 200) in reached, sorted(reached)
    assert ("POST", "/v1/campaigns/{id}/cancel", 200) in reached, sorted(reached)

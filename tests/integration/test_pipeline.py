"""End to end on loopback: sandbox + receiver + streamer + several Celery workers + beat."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.system import assert_no_duplicate_dials, contacts, running_system

pytestmark = pytest.mark.timeout(240)


def test_limit_holds_across_workers_and_every_contact_finishes(
    redis_url: str, tmp_path: Path
) -> None:
    with running_system(redis_url, tmp_path, workers=3, max_concurrent=5) as system:
        system.register(max_concurrent=5)
        out = system.api.create_campaign(
            "sandbox", contacts(200), bot="echo", max_attempts=2, retry_delay_s=0.2
        )
        status = system.wait_done(out["id"], timeout_s=180)
        report = system.sandbox.report()
        rows = list(system.api.iter_calls(out["id"]))
    assert status["finished"] == 200
    assert report["max_concurrency"]["sandbox"] == 5
    assert not [v for v in report["violations"] if v["kind"] == "concurrency_cap"]
    assert_no_duplicate_dials(report)
    assert all(r["outcome"] for r in rows)
    # the sandbox's dial count per number equals the attempts we recorded
    per_number = report["dials_per_number"]
    assert all(per_number[r["to"]] == len(r["attempts"]) for r in rows)
    assert sum(status["outcomes"].values()) == 200

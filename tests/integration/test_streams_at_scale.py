"""200 answered calls at once into one streamer process, the sandbox playing Exotel:
all complete, and the sandbox saw no frame that breaks AgentStream's chunk rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.system import assert_no_duplicate_dials, running_system

pytestmark = pytest.mark.timeout(240)
N = 200


def test_two_hundred_concurrent_streams(redis_url: str, tmp_path: Path) -> None:
    answering = [{"to": f"+9198765{i:05d}"} for i in range(0, N * 10, 10)]  # last digit 0
    args = [
        "--calls-per-minute",
        "100000",
        "--ring-s",
        "0.05",
        "--talk-max-s",
        "3",
        "--think-s",
        "0.05",
    ]
    with running_system(
        redis_url, tmp_path, workers=2, max_concurrent=N, sandbox_args=args
    ) as system:
        system.register(max_concurrent=N)
        out = system.api.create_campaign("sandbox", answering, bot="echo", max_attempts=1)
        system.sandbox.wait_for(lambda rep: rep["streams"]["opened"] >= N, 90)
        status = system.wait_done(out["id"], 120)
        report = system.sandbox.report()
    assert status["outcomes"] == {"completed": N}
    assert report["streams"]["opened"] == N
    assert report["max_concurrency"]["sandbox"] >= N // 2  # they really overlapped
    assert report["violations"] == []
    assert len(report["first_audio_ms"]) == N
    assert_no_duplicate_dials(report)

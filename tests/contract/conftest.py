"""Contract fixtures: a live receiver process on loopback (``live_receiver``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import requests

from dialer.platform.embedded import free_port
from tests.support.signing import API_KEY, SECRET

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_receiver(redis_url: str, tmp_path: Path) -> Iterator[str]:
    """``dialer receiver`` as its own process on a free port and the test's Redis.

    It runs jailed to loopback (``tests.contract.loopback_only``): a dry run's
    webhook probe of a generated URL cannot leave the machine. A port taken
    between ``free_port`` and the bind (other suites run at once) is retried.
    """
    for _ in range(3):
        port = free_port()
        proc, log = _start(redis_url, port, tmp_path)
        try:
            if _wait_healthy(proc, port):
                yield f"http://127.0.0.1:{port}"
                return
        finally:
            _stop(proc)
            log.close()
        if "address already in use" not in (tmp_path / "receiver.log").read_text():
            break
    raise AssertionError((tmp_path / "receiver.log").read_text()[-3000:])


def _start(redis_url: str, port: int, tmp_path: Path) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DIALER_API_KEY": API_KEY,
        "DIALER_SECRET": SECRET,
        "DIALER_HOST": "127.0.0.1",
        "DIALER_PORT": str(port),
        "DIALER_METRICS_PORT": "0",  # its own listener: any free port
        # thousands of requests a minute: the per-key limit would answer most with 429
        # (tests/security/test_limits.py proves it)
        "DIALER_API_RATE_PER_MIN": "0",
        "DIALER_LOG_LEVEL": "WARNING",
    }
    for name in ("EXOTEL_ACCOUNT_SID", "EXOTEL_API_KEY", "EXOTEL_API_TOKEN"):
        env.pop(name, None)
    log = (tmp_path / "receiver.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.contract.loopback_only", "receiver"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    return proc, log


def _wait_healthy(proc: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

"""``dialer up`` stopped hard and restarted: calls left answered are settled at once.

A crash (every process SIGKILLed, as a power cut or an OOM kill would) leaves
answered calls holding slots with no terminal callback to come. With the
answered-call check at 600 s, only the start-up step (``expedite_stale``)
can free them quickly. Ctrl-C (SIGINT to the terminal's process group) must
not reach the embedded Redis: the supervisor stops it last.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.support.cli import DIALER, cli_env, descendants, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _start(env: dict[str, str], log: Path, talk_s: float) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - closed by the child
    proc = subprocess.Popen(
        [
            *DIALER,
            "up",
            "--no-flower",
            "--sandbox-arg=--ring-s=0.05",
            f"--sandbox-arg=--talk-max-s={talk_s}",
        ],
        env=env,
        stdout=out,
        stderr=out,
        start_new_session=True,  # its own process group, like a shell job
    )
    out.close()
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{env['DIALER_PORT']}/readyz", timeout=1).ok:
                return proc
        except requests.RequestException:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def _status(env: dict[str, str], cid: str) -> dict[str, object]:
    return dict(json.loads(run_cli(env, "status", cid, "--json").stdout))


def test_crash_then_restart_settles_answered_calls_at_once_and_ctrl_c_stops_redis_last(
    tmp_path: Path,
) -> None:
    env = cli_env(tmp_path)
    env.update({"DIALER_ANSWERED_CHECK_S": "600", "DIALER_RING_TIMEOUT_S": "120"})
    log = tmp_path / "up.log"
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("to\n" + "".join(f"+9198765{i:05d}\n" for i in range(0, 30, 10)))
    up = _start(env, log, talk_s=60)
    try:
        sub = run_cli(env, "submit", str(contacts), "--account", "sandbox", "--bot", "echo",
                   "--max-attempts", "2", "--retry-delay", "0.5")  # fmt: skip
        assert sub.returncode == 0, sub.stderr
        cid = sub.stdout.strip().splitlines()[-1]
        deadline = time.monotonic() + 60
        while _status(env, cid)["counts"].get("answered", 0) < 3:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, _status(env, cid)
            time.sleep(0.3)
        time.sleep(1.5)  # the embedded Redis's AOF is fsynced every second
    finally:
        for pid in [*descendants(up.pid), up.pid]:  # the crash: nobody stops in order
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        up.wait(timeout=30)
    up = _start(env, log, talk_s=0.5)
    started = time.monotonic()
    try:
        while _status(env, cid)["state"] != "done":
            # Exotel's side (the sandbox) forgot the calls: each answered one is a
            # failed attempt at once, retried and completed; never 600 s later.
            assert time.monotonic() - started < 45, _status(env, cid)
            time.sleep(0.5)
        assert "left live by the last run" in log.read_text()
    finally:
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
        up.wait(timeout=90)
    redis_log = (tmp_path / "data" / "redis" / "redis.log").read_text()
    assert "Received SIGINT" not in redis_log  # Ctrl-C never reached Redis
    assert redis_log.count("User requested shutdown") >= 1  # the supervisor stopped it

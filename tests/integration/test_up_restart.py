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
import re
import signal
import subprocess
from pathlib import Path

import pytest
import redis
import requests

from tests.support.cli import DIALER, cli_env, descendants, run_cli
from tests.support.polling import wait_for

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

    def ready() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return requests.get(f"http://127.0.0.1:{env['DIALER_PORT']}/readyz", timeout=1).ok
        except requests.RequestException:
            return False

    wait_for(ready, 60, 0.2, what=f"dialer up ready; its log: {log}")
    return proc


def _embedded_redis(up_pid: int) -> redis.Redis:
    """The Redis ``dialer up`` started, on the port it chose: from its command line
    (``--port N``), or the process title Redis writes over it (``... HOST:PORT``)."""
    for pid in descendants(up_pid):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "redis-server" in cmdline.split(" ", 1)[0]:
                port = re.search(r"--port (\d+)|:(\d+)\b", cmdline)
                assert port, cmdline
                return redis.Redis(port=int(port.group(1) or port.group(2)))
    raise AssertionError("dialer up runs no embedded redis-server")


def _written(store: redis.Redis) -> bool:
    """Every write so far is in the AOF file: a killed process loses only what it
    has not written (fsync matters to a machine's crash, not a process's)."""
    info = store.info("persistence")
    return info["aof_buffer_length"] == 0 and info["aof_pending_bio_fsync"] == 0


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
        wait_for(
            lambda: _status(env, cid)["counts"].get("answered", 0) >= 3,  # type: ignore[attr-defined]
            60,
            0.3,
            what="three calls answered",
        )
        store = _embedded_redis(up.pid)
        wait_for(lambda: _written(store), 10, 0.05, what="the answered calls in the AOF file")
        store.close()
    finally:
        for pid in [*descendants(up.pid), up.pid]:  # the crash: nobody stops in order
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        up.wait(timeout=30)
    up = _start(env, log, talk_s=0.5)
    try:
        # Exotel's side (the sandbox) forgot the calls: each answered one is a
        # failed attempt at once, retried and completed; never 600 s later.
        wait_for(lambda: _status(env, cid)["state"] == "done", 45, 0.5, what="done at once")
        assert "left live by the last run" in log.read_text()
    finally:
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
        up.wait(timeout=90)
    redis_log = (tmp_path / "data" / "redis" / "redis.log").read_text()
    assert "Received SIGINT" not in redis_log  # Ctrl-C never reached Redis
    assert redis_log.count("User requested shutdown") >= 1  # the supervisor stopped it

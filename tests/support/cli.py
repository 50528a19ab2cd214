"""The CLI as a user runs it: its command line, a clean environment, its process tree.

Process trees are read from /proc (no `ps`: the suite runs only what
`make setup` installs, see tests/support/shellout.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dialer.core.settings import LISTEN_PORTS
from dialer.platform.embedded import free_port

DIALER = [sys.executable, "-m", "dialer.cli.main"]


def cli_env(tmp: Path) -> dict[str, str]:
    """The environment of a user's shell: no inherited DIALER_/EXOTEL_ settings, free ports."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("EXOTEL_", "DIALER_", "REDIS_URL"))
    }
    env.update(
        {
            "DIALER_DATA_DIR": str(tmp / "data"),
            # every listener on a free port: other test runs share this machine
            **{name: str(free_port()) for name in LISTEN_PORTS},
            "DIALER_LOG_LEVEL": "WARNING",
            "DIALER_TICK_S": "0.5",
            "DIALER_RECONCILE_AFTER_S": "3",
            "EXOTEL_READ_TIMEOUT_S": "1",
            "EXOTEL_CONNECT_TIMEOUT_S": "1",
            "DIALER_RING_TIMEOUT_S": "3",
            "DIALER_ANSWERED_CHECK_S": "3",
            "EXOTEL_MAX_CONCURRENT": "3",
        }
    )
    return env


def run_cli(
    env: dict[str, str], *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DIALER, *args],
        env={**env, **(env_extra or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def parent_pids() -> dict[int, int]:
    """pid -> parent pid from /proc (no `ps`: the suite runs only what `make setup` installs)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        out[int(stat.parent.name)] = int(fields[1])
    return out


def descendants(pid: int) -> set[int]:
    parents = parent_pids()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running (a zombie left for init to reap counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"

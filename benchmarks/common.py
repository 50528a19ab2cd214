"""Shared pieces of the benchmarks: Redis, result rows, statistics, processes, servers.

Nothing here asserts a time; benchmarks measure and report. Every process a
benchmark starts is started here (``spawn``) and stopped by its own handle.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from dialer.core.keyring import Keyring
from dialer.platform.processes import wait_healthy

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = 12
SECRET = "bench-S3cr3t-7Qh2Lw9Xz4Vb6Nm1Kp8Rt5Yc0Fd"
API_KEY = "bench-ApiKey-4Gk9Tq2Wz7Lm5Xc1Vb8Nr3Hj6Ps"
KEYS = Keyring.from_secret(SECRET.encode())  # what the servers derive from SECRET
SANDBOX_CREDS = ("sandbox", "sandbox-key", "sandbox-token")
CALLER_ID = "08047112345"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- configuration shared by every benchmark ----------------------------------------------
@dataclass
class Ctx:
    redis_url: str  # a dedicated database, flushed by each benchmark
    tmp: Path
    quick: bool = False
    full: bool = False
    redis_pid: int | None = None
    log: Callable[[str], None] = print

    def fresh_redis(self) -> redis.Redis:
        r = redis.Redis.from_url(self.redis_url, decode_responses=True)
        r.flushdb()
        return r


# --- results ---------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the results table."""

    benchmark: str
    metric: str
    ours: float | None
    baseline: float | None = None
    unit: str = ""
    target: str = ""
    met: bool | None = None  # None: no target for this row (a scaling point)
    ratio: float | None = None  # >1 means ours is better, whatever the direction of the unit
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Result:
    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    bottleneck: str = ""
    seconds: float = 0.0
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": [r.to_json() for r in self.rows],
            "details": self.details,
            "bottleneck": self.bottleneck,
            "seconds": round(self.seconds, 1),
            "error": self.error,
        }


def ratio(
    ours: float | None, baseline: float | None, *, lower_is_better: bool = False
) -> float | None:
    if not ours or not baseline:
        return None
    return round(baseline / ours if lower_is_better else ours / baseline, 2)


# --- statistics ------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no data."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return s[k]


def analyse(
    dials: list[float], terminals: list[float], limit: int, *, steady: bool = False
) -> dict[str, Any]:
    """Utilisation from the first dial (``steady``: from the L-th, past the ramp) to the last."""
    dials, terminals = sorted(dials), sorted(terminals)
    if len(dials) < 2:
        return {"utilisation": None, "refill_ms": []}
    start = dials[min(limit, len(dials)) - 1] if steady else dials[0]
    end = dials[-1]
    events = sorted([(t, 1) for t in dials] + [(t, -1) for t in terminals if t <= end])
    area, active, last = 0.0, 0, start
    for t, delta in events:
        if t > start:
            area += active * (t - last)
            last = t
        active += delta
    busy = end - start
    util = area / (busy * limit) if busy > 0 else None
    refill = [
        (dials[limit + k] - terminals[k]) * 1000
        for k in range(max(0, len(dials) - limit))
        if k < len(terminals)
    ]
    return {"utilisation": util, "busy_s": busy, "refill_ms": refill}


def r2(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


# --- processes -------------------------------------------------------------------------------
def bench_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "DIALER_LOG_LEVEL": "WARNING",
        "DIALER_SECRET": SECRET,
        "DIALER_API_KEY": API_KEY,
        # the sandbox, relayed bots and webhook sinks of a benchmark are on loopback
        "DIALER_EGRESS_ALLOW": "127.0.0.0/8",
    }
    for name in ("EXOTEL_ACCOUNT_SID", "EXOTEL_API_KEY", "EXOTEL_API_TOKEN"):
        env.pop(name, None)  # never talk to a real Exotel from a benchmark
    env.update(extra)
    return env


class Proc:
    """A child process in its own session, logging to a file; stopped by its own pid."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                argv, env=env, stdout=out, stderr=out, cwd=ROOT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def dialer_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "dialer.cli.main", *args]


def wait_http(url: str, timeout_s: float = 30.0, proc: Proc | None = None) -> None:
    def alive() -> None:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited: {proc.tail()}")

    wait_healthy(url, time.monotonic() + timeout_s, between=alive)


def cpu_seconds(pid: int) -> float:
    """User+system CPU of one process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_stats() -> dict[int, list[str]]:
    """Every process's /proc/<pid>/stat fields after the command name (state first)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            found[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU of ``pid`` and every descendant, the exited ones included, from /proc.

    A prefork pool's children, ``--processes N`` servers and Celery's pool
    processes count toward the process that started them: each live member
    adds its own user+system time plus its reaped children's (cutime,
    cstime), which is where an exited child's CPU goes when it is waited for.
    """
    stats = proc_stats()
    parent = {p: int(fields[1]) for p, fields in stats.items()}
    ticks = {p: sum(int(f) for f in fields[11:15]) for p, fields in stats.items()}
    members, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in members]
        members.update(kids)
        frontier += kids
    return sum(ticks.get(m, 0) for m in members) / CLK_TCK


class CpuMeter:
    """CPU seconds used by named processes between start() and stop().

    ``trees``: the names metered with their descendants (``tree_cpu_seconds``),
    for processes that fork workers; the others alone (this process, whose
    children are the very processes metered beside it, never as a tree).
    """

    def __init__(self, pids: dict[str, int], *, trees: Collection[str] = ()):
        self.pids = {k: v for k, v in pids.items() if v}
        self.trees = set(trees)
        self.t0 = 0.0
        self.c0: dict[str, float] = {}
        self.result: dict[str, float] = {}
        self.wall = 0.0

    def start(self) -> CpuMeter:
        self.t0 = time.monotonic()
        self.c0 = {k: self.read(k) for k in self.pids}
        return self

    def stop(self) -> dict[str, float]:
        self.wall = time.monotonic() - self.t0
        self.result = {k: round(self.read(k) - self.c0[k], 2) for k in self.pids}
        return self.result

    def read(self, name: str) -> float:
        pid = self.pids[name]
        return tree_cpu_seconds(pid) if name in self.trees else cpu_seconds(pid)

    def shares(self) -> dict[str, float]:
        """Each process's CPU as a fraction of one core over the window."""
        return {k: round(v / self.wall, 2) for k, v in self.result.items()} if self.wall else {}


def busiest(shares: dict[str, float]) -> str:
    if not shares:
        return ""
    top = sorted(shares.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.0%} of a core" for k, v in top[:4])


def contacts(n: int, start: int = 0) -> list[str]:
    """Valid Indian mobile numbers in E.164, distinct."""
    return [f"+91987{start + i:07d}" for i in range(n)]

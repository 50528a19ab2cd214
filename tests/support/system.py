"""A whole dialer on loopback for integration tests: real processes, real Redis.

Sandbox, receiver, streamer, N Celery workers and beat run as child
processes through the same supervisor ``dialer up`` uses; tests drive them
with the REST client and read the sandbox's report. The benchmarks start
their systems through ``supervised`` too.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dialer.cli.client import ApiError, DialerClient
from dialer.cli.supervisor import Supervisor
from dialer.core.settings import LISTEN_PORTS, load_settings
from dialer.platform.embedded import free_port
from dialer.sandbox.control import SandboxControl
from tests.support import broker

FAST = {
    "DIALER_RECONCILE_AFTER_S": "2.5",
    "EXOTEL_READ_TIMEOUT_S": "1",
    "EXOTEL_CONNECT_TIMEOUT_S": "1",
    "DIALER_TICK_S": "0.5",
    "DIALER_RING_TIMEOUT_S": "3",
    "DIALER_ANSWERED_CHECK_S": "3",
    "DIALER_LEASE_MARGIN_S": "5",
    "DIALER_LOG_LEVEL": "WARNING",
    "DIALER_SECRET": "integ-S3cr3t-9Kd2Lq7Wx4Zb6Nm1Vp8Rt5Yc0Fh",
    "DIALER_API_KEY": "integ-ApiKey-3Hj8Tq2Wz7Lm5Xc1Vb9Nr4Gk6Ps",
    # the sandbox, webhook sinks and relayed bots all live on loopback
    "DIALER_EGRESS_ALLOW": "127.0.0.0/8",
}


# What the receiver answers while its store or itself is briefly away (0: no connection).
TRANSIENT = frozenset({0, 502, 503, 504})


# The sandbox's callees answer at once and talk briefly: a campaign ends in seconds.
SANDBOX_FAST = [
    "--calls-per-minute",
    "100000",
    "--ring-s",
    "0.05",
    "--talk-max-s",
    "0.3",
    "--think-s",
    "0.05",
]


class System:
    def __init__(self, sup: Supervisor, sandbox_url: str | None = None):
        self.sup = sup
        s = sup.settings
        self.api = DialerClient(s.api_url, s.api_key)
        # the sandbox is on loopback unless a multi-host test put it on a host of its own
        self.sandbox_url = sandbox_url or f"http://127.0.0.1:{s.SANDBOX_PORT}"
        self.sandbox = SandboxControl(self.sandbox_url)

    def register(self, max_concurrent: int, cpm: int = 10_000) -> None:
        self.api.add_account(
            "sandbox",
            "sandbox-key",
            "sandbox-token",
            "08047112345",
            api_url=self.sandbox_url,
            max_concurrent_calls=max_concurrent,
            calls_per_minute=cpm,
        )

    def wait_done(self, cid: str, timeout_s: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        status: dict[str, Any] | ApiError = {}
        while True:
            self.sup.poll()
            try:
                status = self.api.get_campaign(cid)
            except ApiError as exc:
                # A store outage answers 503 "retry" (and a restarting receiver
                # refuses connections) until it heals: keep polling, as any
                # client honouring Retry-After would, and show it if it never heals.
                if exc.status not in TRANSIENT:
                    raise
                status = exc
            else:
                if (
                    status["state"] in ("done", "cancelled")
                    and status["finished"] >= status["total"]
                ):
                    return status
            if time.monotonic() > deadline:
                raise AssertionError(f"campaign not done in {timeout_s}s: {status}")
            time.sleep(0.25)

    def children(self, name: str) -> list[Any]:
        return [c for c in self.sup.children if c.name == name]


@contextmanager
def supervised(
    overrides: dict[str, str],
    *,
    workers: int,
    max_concurrent: int,
    sandbox_args: list[str],
    ready_s: float = 30,
    worker_args: list[str] | None = None,
) -> Iterator[Supervisor]:
    """Every process of ``dialer up`` on free ports, started and stopped by its supervisor.

    ``overrides`` are the settings (and the children's environment) on top of
    free listen ports; on a failure the tail of each child's log is printed.
    Shared with the benchmarks (``benchmarks.slots.dialer_system``).
    """
    overrides = {**{k: str(free_port()) for k in LISTEN_PORTS}, **overrides}
    settings = load_settings(**overrides)
    sup = Supervisor(
        settings,
        workers=workers,
        with_flower=False,
        quiet=True,
        max_concurrent=max_concurrent,
        extra_env=overrides,
        extra_sandbox_args=sandbox_args,
        worker_args=worker_args or [],
    )
    try:
        sup.start()
        sup.wait_ready(ready_s)
        yield sup
    except BaseException:
        print_logs(sup)
        raise
    finally:
        sup.stop(timeout_s=10)


@contextmanager
def running_system(
    redis_url: str,
    tmp: Path,
    *,
    workers: int = 2,
    max_concurrent: int = 5,
    sandbox_args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[System]:
    """The whole dialer with test-speed timers (``FAST``) against the sandbox."""
    overrides = {
        **FAST,
        "REDIS_URL": redis_url,
        # the run's RabbitMQ when it has one (tests.support.broker), else the state Redis
        **({"CELERY_BROKER_URL": amqp} if (amqp := broker.amqp_url()) else {}),
        "DIALER_DATA_DIR": str(tmp),
        **(env or {}),
    }
    with supervised(
        overrides,
        workers=workers,
        max_concurrent=max_concurrent,
        sandbox_args=sandbox_args or SANDBOX_FAST,
    ) as sup:
        yield System(sup)


def print_logs(sup: Supervisor) -> None:
    """The end of every child's log (a failing test shows what the processes said)."""
    for child in sup.children:
        if child.log and child.log.exists():
            tail = child.log.read_text(errors="replace")[-3000:]
            print(f"--- {child.log.stem} log ---\n{tail}", file=sys.stderr)


def with_db(url: str, db: int) -> str:
    """``url`` pointing at database ``db`` of the same server."""
    scheme, _, rest = url.rstrip("/").partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{db}"


def contacts(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"to": f"+9198765{start + i:05d}"} for i in range(n)]


def assert_no_duplicate_dials(report: dict[str, Any]) -> None:
    dup = {k: v for k, v in report["dials_per_custom_field"].items() if v != 1}
    assert not dup, f"dialled more than once: {dup}"


def check_invariants(
    redis_url: str,
    cid: str,
    report: dict[str, Any],
    limit: int,
    rows: list[dict[str, Any]],
    max_attempts: int,
) -> dict[str, int]:
    """The promises: no duplicate dial, never above the limit, no slot held, counters add up."""
    import redis

    from dialer.store import keys

    assert_no_duplicate_dials(report)
    assert report["max_concurrency"].get("sandbox", 0) <= limit
    assert not [v for v in report["violations"] if v["kind"] == "concurrency_cap"]
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert r.zcard(keys.active("sandbox")) == 0, "a slot is still held"
    counts = {k: int(v) for k, v in r.hgetall(keys.counts("sandbox", cid)).items() if int(v)}
    tally: dict[str, int] = {}
    for row in rows:
        assert row["outcome"], row
        tally[row["state"]] = tally.get(row["state"], 0) + 1
        assert report["dials_per_number"].get(row["to"], 0) <= max_attempts
        assert len(row["attempts"]) <= max_attempts
    assert counts == tally, (counts, tally)
    return {
        "contacts": len(rows),
        "dials": sum(report["dials_per_number"].values()),
        "duplicates": 0,
        "leaks": 0,
    }

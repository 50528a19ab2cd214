"""Bad luck on purpose: workers SIGKILLed, receiver and streamer killed, provider faults,
Redis restarted. Afterwards the promises still hold. Slow: ``make test-slow``."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
import requests

from dialer.platform.embedded import EmbeddedRedis
from tests.support.system import check_invariants, contacts, running_system

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
LIMIT = 20


def _kill(child: object) -> None:
    proc = getattr(child, "proc", None)
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)


def test_workers_killed_every_few_seconds(redis_url: str, tmp_path: Path) -> None:
    rng = random.Random(1)
    kills = 0
    with running_system(redis_url, tmp_path, workers=3, max_concurrent=LIMIT) as system:
        system.register(max_concurrent=LIMIT)
        out = system.api.create_campaign(
            "sandbox",
            contacts(1000),
            bot="echo",
            max_attempts=2,
            retry_delay_s=0.5,
            time_limit_s=10,
        )
        deadline = time.monotonic() + 600
        killed_servers = False
        next_kill = time.monotonic() + 2
        while True:
            system.sup.poll()
            status = system.api.get_campaign(out["id"]) if _up(system) else None
            if status and status["state"] == "done":
                break
            assert time.monotonic() < deadline, status
            if time.monotonic() >= next_kill and kills < 12:
                _kill(rng.choice(system.children("worker")))
                kills += 1
                if not killed_servers and status and status["progress"] > 0.3:
                    _kill(system.children("receiver")[0])
                    _kill(system.children("streamer")[0])
                    killed_servers = True
                    kills += 2
                next_kill = time.monotonic() + rng.uniform(3, 5)
            time.sleep(0.3)  # the chaos loop's tick: kills are paced, the wait has a deadline
        report = system.sandbox.report()
        rows = list(system.api.iter_calls(out["id"]))
    figures = check_invariants(redis_url, out["id"], report, LIMIT, rows, max_attempts=2)
    print(
        f"\nchaos: {figures['contacts']} contacts, {figures['dials']} dials, {kills} kills, "
        f"duplicates 0, leaks 0, max concurrency {report['max_concurrency']['sandbox']}/{LIMIT}"
    )
    assert kills >= 5 and killed_servers


def _up(system: object) -> bool:
    import requests

    try:
        return requests.get(system.sup.settings.api_url + "/healthz", timeout=1).ok  # type: ignore[attr-defined]
    except requests.RequestException:
        return False


def test_provider_faults_at_twenty_percent(redis_url: str, tmp_path: Path) -> None:
    with running_system(redis_url, tmp_path, workers=2, max_concurrent=LIMIT) as system:
        system.register(max_concurrent=LIMIT)
        system.sandbox.set_faults(
            http_5xx=0.2,
            http_429=0.05,
            retry_after_s=1,
            accept_timeout=0.1,
            timeout_delay_s=2,
            reset_after_accept=0.05,
            dup_callbacks=0.2,
            reorder_callbacks=0.2,
            drop_callbacks=0.2,
            late_callbacks=0.2,
            late_delay_s=1.0,
            seed=3,
        )
        out = system.api.create_campaign(
            "sandbox", contacts(400), bot="echo", max_attempts=2, retry_delay_s=0.5, time_limit_s=10
        )
        system.wait_done(out["id"], 600)
        report = system.sandbox.report()
        rows = list(system.api.iter_calls(out["id"]))
    figures = check_invariants(redis_url, out["id"], report, LIMIT, rows, max_attempts=2)
    print(f"\nprovider faults: {figures}, injected {report.get('faults_injected')}")


def test_redis_restart_mid_campaign(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True).start()
    try:
        with running_system(server.url, tmp_path, workers=2, max_concurrent=10) as system:
            system.register(max_concurrent=10)
            out = system.api.create_campaign(
                "sandbox",
                contacts(150),
                bot="echo",
                max_attempts=2,
                retry_delay_s=0.5,
                time_limit_s=10,
            )
            system.sandbox.wait_for(lambda rep: rep["calls_total"] >= 40, 60)
            server.stop()  # AOF written; everything loses its store for a while
            time.sleep(3)  # the outage itself: every process runs without its store
            resp = requests.post(
                system.sup.settings.api_url + "/exotel/status/x-1?sig=x", timeout=5
            )
            assert resp.status_code in (403, 503)
            # The outage goes on (the scenario, not a wait for something): long enough
            # for leases and ticks to fail against the dead store.
            time.sleep(7)
            server.start()
            system.wait_done(out["id"], 300)
            report = system.sandbox.report()
            rows = list(system.api.iter_calls(out["id"]))
        figures = check_invariants(server.url, out["id"], report, 10, rows, max_attempts=2)
        print(f"\nredis restart: {figures}")
    finally:
        server.stop()

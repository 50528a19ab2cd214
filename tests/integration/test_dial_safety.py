"""At most one dial per attempt, whatever fails: killed workers, lost responses, 429, 401."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis

from dialer.store import keys
from tests.support.polling import wait_for
from tests.support.system import assert_no_duplicate_dials, contacts, running_system

pytestmark = pytest.mark.timeout(240)
ANSWERING = [{"to": f"+9198765{i:05d}"} for i in range(0, 400, 10)]  # last digit 0: answers


def test_lost_response_becomes_unknown_then_settles_without_a_second_dial(
    redis_url: str, tmp_path: Path
) -> None:
    with running_system(redis_url, tmp_path, workers=2, max_concurrent=4) as system:
        system.register(max_concurrent=4)
        system.sandbox.set_faults(accept_timeout=1.0, timeout_delay_s=5)
        out = system.api.create_campaign("sandbox", ANSWERING[:6], bot="echo", max_attempts=1)
        system.sandbox.wait_for(lambda rep: rep["calls_total"] >= 4, 20)
        r = redis.Redis.from_url(redis_url, decode_responses=True)

        def states_once_four_left_dialing() -> list[str | None]:
            s = [r.hget(keys.call("sandbox", f"{out['id']}-{i}"), "state") for i in range(6)]
            return s if sum(x in ("unknown", "completed") for x in s) >= 4 else []

        # Each of the first four dials lost its response: past the 1 s read timeout
        # it is "unknown" (or already "completed" by its callback, which may come
        # first) — never failed, never back in the queue for a second dial.
        seen = wait_for(
            states_once_four_left_dialing,
            20,
            what="four dials with lost responses end unknown or completed",
        )
        assert "failed" not in seen, seen
        system.sandbox.set_faults()
        status = system.wait_done(out["id"], 60)
        report = system.sandbox.report()
    assert status["outcomes"] == {"completed": 6}
    assert_no_duplicate_dials(report)
    assert report["calls_total"] == 6


def test_dropped_terminal_callbacks_are_settled_by_reconciliation(
    redis_url: str, tmp_path: Path
) -> None:
    with running_system(redis_url, tmp_path, workers=1, max_concurrent=3) as system:
        system.register(max_concurrent=3)
        system.sandbox.set_faults(drop_callbacks=1.0)
        out = system.api.create_campaign(
            "sandbox", ANSWERING[:5], bot="echo", max_attempts=1, time_limit_s=5
        )
        status = system.wait_done(out["id"], 90)
        report = system.sandbox.report()
        rows = list(system.api.iter_calls(out["id"]))
    assert status["outcomes"] == {"completed": 5}
    assert_no_duplicate_dials(report)
    assert all(row["attempts"][0]["exotel_sid"] for row in rows)


def test_worker_killed_while_its_requests_are_in_flight(redis_url: str, tmp_path: Path) -> None:
    with running_system(redis_url, tmp_path, workers=2, max_concurrent=6) as system:
        system.register(max_concurrent=6)
        # Every connect is accepted (the call exists) but answered only after 2 s.
        system.sandbox.set_faults(accept_timeout=1.0, timeout_delay_s=2)
        out = system.api.create_campaign("sandbox", ANSWERING[:12], bot="echo", max_attempts=1)
        system.sandbox.wait_for(lambda rep: rep["calls_total"] >= 3, 20)
        victim = system.children("worker")[0]
        assert victim.proc is not None
        os.killpg(victim.proc.pid, signal.SIGKILL)  # mid-request: nothing recorded
        wait_for(lambda: victim.proc.poll() is not None, 10, what="the killed worker is gone")
        system.sandbox.set_faults()
        status = system.wait_done(out["id"], 120)  # the supervisor restarts the worker
        report = system.sandbox.report()
    assert status["outcomes"] == {"completed": 12}
    assert_no_duplicate_dials(report)
    assert victim.restarts >= 1


def test_429_retry_after_pauses_the_account_and_nothing_is_lost(
    redis_url: str, tmp_path: Path
) -> None:
    with running_system(redis_url, tmp_path, workers=1, max_concurrent=3) as system:
        system.register(max_concurrent=3)
        system.sandbox.set_faults(http_429=1.0, retry_after_s=3)
        out = system.api.create_campaign("sandbox", ANSWERING[:3], bot="echo", max_attempts=1)
        r = redis.Redis.from_url(redis_url, decode_responses=True)
        paused_until = wait_for(
            lambda: float(r.hget(keys.account("sandbox"), "paused_until") or 0),
            10,
            what="429 pauses the account",
        )
        assert paused_until - time.time() > 1.5
        # the three dials admitted together all meet the 429; then nothing until it
        # expires: the next dial (a 429 again, the fault is still on) comes after
        # paused_until, so the whole Retry-After window is checked, not a slice of it
        system.sandbox.wait_for(lambda rep: rep["rejected"].get("fault_429", 0) >= 3, 5)
        assert system.sandbox.report()["rejected"]["fault_429"] == 3
        system.sandbox.wait_for(lambda rep: rep["rejected"]["fault_429"] > 3, 20, 0.02)
        assert time.time() >= paused_until, "dialled during Retry-After"
        system.sandbox.set_faults()
        status = system.wait_done(out["id"], 60)
        report = system.sandbox.report()
    assert status["outcomes"] == {"completed": 3}
    assert_no_duplicate_dials(report)


def test_401_opens_the_circuit_and_resume_recovers(redis_url: str, tmp_path: Path) -> None:
    with running_system(redis_url, tmp_path, workers=1, max_concurrent=3) as system:
        api = system.api
        api.add_account(
            "sandbox",
            "sandbox-key",
            "WRONG-token",
            "08047112345",
            api_url=system.sandbox_url,
            max_concurrent_calls=3,
        )
        out = api.create_campaign("sandbox", contacts(5, start=100), bot="echo", max_attempts=1)
        wait_for(
            lambda: api._call("GET", "/v1/accounts/sandbox")["circuit"] == "open",
            15,
            what="401 opens the circuit",
        )
        # The calls that met the 401 go back to waiting; none is given up while the
        # circuit is open (checked over the whole window at the end: each is dialled).
        status = wait_for(
            lambda: (s := api.get_campaign(out["id"]))["counts"].get("pending") == 5 and s,
            15,
            what="all five calls waiting",
        )
        assert status["finished"] == 0
        assert "WRONG-token" not in str(api._call("GET", "/v1/accounts/sandbox"))
        system.register(max_concurrent=3)
        api.resume_account("sandbox")
        status = system.wait_done(out["id"], 60)
        report = system.sandbox.report()
    assert status["finished"] == 5
    assert report["calls_total"] == 5  # every call was dialled once the circuit closed
    assert_no_duplicate_dials(report)

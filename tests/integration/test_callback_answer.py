"""The receiver answers Exotel within its 15 s, under a burst and through a Redis hiccup.

In-process receiver on a real Redis; the hiccup is a real one (``CLIENT PAUSE``
stalls every client of the server). A callback stored in time gets 200; one
that could not be stored within ``DIALER_CALLBACK_DEADLINE_S`` gets 503, so
Exotel's retry (a no-op if the first did land) stores it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
import requests
from aiohttp.test_utils import TestClient

from dialer.core.calls import State
from dialer.platform.embedded import free_port
from dialer.receiver.app import create_app
from dialer.store import keys
from tests.support.polling import until_async, wait_for
from tests.support.seed import ACCOUNT, exotel_sid, make_campaign, place_calls, setup_account
from tests.support.signing import API_KEY, SECRET, cb, make_settings

Client = TestClient[Any, Any]
EXOTEL_WAITS_S = 15.0


async def post_terminal(client: Client, call_id: str, sid: str) -> tuple[int, float]:
    started = time.monotonic()
    resp = await client.post(
        f"/exotel/status/{call_id}?{urlencode(cb(call_id))}",
        json={
            "CallSid": sid,
            "Status": "completed",
            "EventType": "terminal",
            "CustomField": f"{call_id}:1",
        },
    )
    await resp.read()
    return resp.status, time.monotonic() - started


def answered(r: redis.Redis, n: int) -> dict[str, str]:
    """n answered calls: call id -> Exotel sid (read now: the test's own client
    would block on the event loop during a pause)."""
    setup_account(r, limit=n)
    ids = place_calls(r, make_campaign(r, n), state=State.ANSWERED)
    return {c: exotel_sid(r, c) for c in ids}


async def post_all(client: Client, calls: dict[str, str]) -> list[tuple[int, float]]:
    return list(await asyncio.gather(*(post_terminal(client, c, s) for c, s in calls.items())))


def states(r: redis.Redis, ids: dict[str, str]) -> set[str]:
    return {str(r.hget(keys.call(ACCOUNT, c), "state")) for c in ids}


async def receiver(
    redis_url: str, aiohttp_client: Callable[..., Awaitable[Client]], **settings: Any
) -> Client:
    return await aiohttp_client(create_app(make_settings(redis_url, **settings)))


async def test_a_burst_of_callbacks_is_answered_within_exotels_wait(
    r: redis.Redis, redis_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    ids = answered(r, 300)
    client = await receiver(redis_url, aiohttp_client)
    results = await post_all(client, ids)
    assert {status for status, _ in results} == {200}
    assert max(elapsed for _, elapsed in results) < EXOTEL_WAITS_S
    assert states(r, ids) == {"completed"}
    assert r.zcard(keys.active(ACCOUNT)) == 0


async def test_a_redis_hiccup_shorter_than_the_deadline_still_gets_200(
    r: redis.Redis, redis_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    ids = answered(r, 20)
    client = await receiver(redis_url, aiohttp_client)
    await client.get("/readyz")  # connections open before the pause
    r.execute_command("CLIENT", "PAUSE", "2000", "ALL")
    results = await post_all(client, ids)
    assert {status for status, _ in results} == {200}
    assert 1.5 < max(elapsed for _, elapsed in results) < EXOTEL_WAITS_S
    assert states(r, ids) == {"completed"}


@pytest.mark.timeout(60)
async def test_a_callback_not_stored_in_time_gets_503_and_the_retry_stores_it(
    r: redis.Redis, redis_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    ids = answered(r, 10)
    client = await receiver(redis_url, aiohttp_client, DIALER_CALLBACK_DEADLINE_S=1.0)
    await client.get("/readyz")
    r.execute_command("CLIENT", "PAUSE", "4000", "ALL")
    results = await post_all(client, ids)
    assert {status for status, _ in results} == {503}
    assert max(elapsed for _, elapsed in results) < 3.0  # the deadline, not the outage
    ready = await client.get("/readyz")
    assert ready.status == 503  # Redis does not answer: not ready...
    assert (await client.get("/livez")).status == 200  # ...but alive: nothing restarts it

    async def all_stored() -> bool:
        return {status for status, _ in await post_all(client, ids)} == {200}

    # Exotel retries: once Redis is back, each is stored (or already was)
    await until_async(all_stored, 20, 0.5, what="the retried callbacks stored")
    assert states(r, ids) == {"completed"}
    cid = next(iter(ids)).rpartition("-")[0]
    assert r.hget(keys.counts(ACCOUNT, cid), "completed") == "10"
    assert r.zcard(keys.active(ACCOUNT)) == 0


@pytest.mark.timeout(90)
def test_sigterm_lets_the_receiver_finish_a_callback_in_flight(
    r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """A deploy stops a receiver mid-request: the callback still gets its 200, then it exits."""
    calls = answered(r, 1)
    ((call_id, sid),) = calls.items()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIALER_", "EXOTEL_", "REDIS"))}
    env.update(
        REDIS_URL=redis_url,
        DIALER_SECRET=SECRET,
        DIALER_API_KEY=API_KEY,
        DIALER_DATA_DIR=str(tmp_path),
        DIALER_LOG_LEVEL="WARNING",
    )
    log = open(tmp_path / "receiver.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "dialer.cli.main", "receiver", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, "the receiver exited"
            try:
                return requests.get(f"{base}/readyz", timeout=1).ok
            except requests.RequestException:
                return False

        wait_for(ready, 30, 0.1, what="the receiver ready")
        # Writes wait (the callback will take ~3 s); reads, such as INFO below, do not.
        r.execute_command("CLIENT", "PAUSE", "3000", "WRITE")
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(
                requests.post,
                f"{base}/exotel/status/{call_id}?{urlencode(cb(call_id))}",
                json={"CallSid": sid, "Status": "completed", "EventType": "terminal"},
                timeout=15,
            )
            # In flight: the receiver's write waits on the paused Redis (nothing else
            # of it writes now), so SIGTERM comes mid-request, not before it.
            wait_for(
                lambda: r.info("clients")["blocked_clients"] >= 1,
                10,
                0.02,
                what="the callback blocked on Redis",
            )
            proc.send_signal(signal.SIGTERM)
            assert answer.result().status_code == 200
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert states(r, calls) == {"completed"}

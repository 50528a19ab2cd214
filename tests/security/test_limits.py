"""Limits: slow dry-run probes do not starve the receiver, /metrics is internal and
cheap, and each API key has a request rate limit (429 with Retry-After)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis

from dialer.platform import scrape
from dialer.receiver.api import render_metrics
from dialer.receiver.app import PROBE_DEADLINE_S, create_app
from tests.support.polling import until
from tests.support.seed import ACCOUNT, make_campaign, setup_account
from tests.support.signing import AUTH, make_settings


@pytest.fixture
async def silent_port() -> AsyncIterator[tuple[int, list[int]]]:
    """A loopback server that accepts and never answers (a slow redirector at worst)."""
    accepted: list[int] = []
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writers.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], accepted
    for w in writers:
        w.close()
    server.close()
    await server.wait_closed()


async def test_slow_dry_run_probes_leave_callbacks_and_reads_fast(
    redis_url: str, r: redis.Redis, aiohttp_client: Any, silent_port: tuple[int, list[int]]
) -> None:
    """Ten dry runs whose webhook never answers used to hold the 4-thread pool for
    minutes; now they wait on the event loop, bounded, and everything else flows."""
    port, accepted = silent_port
    setup_account(r)
    cid = make_campaign(r)
    client = await aiohttp_client(create_app(make_settings(redis_url)))
    payload = {
        "account": ACCOUNT,
        "bot": "echo",
        "contacts": [{"to": "+919876500001"}],
        "webhook_url": f"http://127.0.0.1:{port}/hook",
    }

    async def dry_run() -> dict[str, Any]:
        resp = await client.post("/v1/campaigns?dry_run=1", json=payload, headers=AUTH)
        assert resp.status == 200
        return dict((await resp.json())["preflight"])

    started = time.monotonic()
    probes = [asyncio.create_task(dry_run()) for _ in range(10)]
    await until(lambda: len(accepted) >= 4, 5, what="the probes connected and waiting")
    for _ in range(5):
        t0 = time.monotonic()
        assert (await client.get(f"/v1/campaigns/{cid}", headers=AUTH)).status == 200
        resp = await client.post(f"/exotel/status/{cid}-0?sig=bad", data={"Status": "completed"})
        assert resp.status == 403
        assert time.monotonic() - t0 < 1.0  # neither the pool nor the loop is held
    results = await asyncio.gather(*probes)
    assert time.monotonic() - started < PROBE_DEADLINE_S + 3
    assert all(p["webhook_reachable"] is False for p in results)
    assert {p["webhook_note"] for p in results} == {"no answer in time"}


async def test_metrics_are_not_on_the_public_port(redis_url: str, aiohttp_server: Any) -> None:
    from streamer.app import create_app as create_streamer
    from streamer.app import render_metrics as streamer_metrics

    receiver = create_app(make_settings(redis_url))
    receiver.cleanup_ctx.append(scrape.listener(render_metrics, "127.0.0.1", 0))
    streamer = create_streamer(make_settings(redis_url))
    streamer.cleanup_ctx.append(scrape.listener(streamer_metrics, "127.0.0.1", 0))
    servers = [await aiohttp_server(app, host="127.0.0.1", port=0) for app in (receiver, streamer)]
    async with aiohttp.ClientSession() as http:
        for server, series in zip(servers, ("dialer_callbacks", "streamer_active"), strict=True):
            public = await http.get(f"http://127.0.0.1:{server.port}/metrics")
            assert public.status == 404
            host, port = server.app[scrape.ADDRESS]
            assert host == "127.0.0.1" and port != server.port
            internal = await http.get(f"http://{host}:{port}/metrics")
            assert internal.status == 200 and series in await internal.text()


def commands(r: redis.Redis) -> int:
    return int(r.info("stats")["total_commands_processed"])


async def test_a_scrape_is_cheap(redis_url: str, r: redis.Redis, aiohttp_client: Any) -> None:
    setup_account(r)
    for _ in range(3):
        make_campaign(r)
    client = await aiohttp_client(create_app(make_settings(redis_url)))
    app = client.server.app
    before = commands(r)
    first = (await render_metrics(app)).text or ""
    assert f'dialer_queue_depth{{account="{ACCOUNT}"}} 6.0' in first
    # one SMEMBERS + 3 per account + 2 per running campaign, in 3 round trips
    # (+ the pool's connection set-up: SELECT, CLIENT SETINFO)
    assert commands(r) - before - 1 <= 1 + 3 + 2 * 3 + 6
    before = commands(r)
    for _ in range(20):  # Prometheus scraping every second: served from the cache
        await render_metrics(app)
    assert commands(r) - before - 1 == 0


async def test_each_api_key_is_rate_limited(
    redis_url: str, r: redis.Redis, aiohttp_client: Any
) -> None:
    setup_account(r)
    client = await aiohttp_client(create_app(make_settings(redis_url, DIALER_API_RATE_PER_MIN="5")))
    for _ in range(3):  # unauthenticated requests are refused before they count
        assert (await client.get("/v1/campaigns")).status == 401
    statuses = [(await client.get("/v1/campaigns", headers=AUTH)).status for _ in range(5)]
    assert statuses == [200] * 5
    resp = await client.get(f"/v1/accounts/{ACCOUNT}", headers=AUTH)
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert "rate limit" in (await resp.json())["error"]
    # callbacks are never rate limited (Exotel's retries must land)
    # the signature is checked before the call is looked up
    assert (await client.post("/exotel/status/x-0?sig=bad", data={})).status == 403
    doc = await (await client.get("/v1/openapi.json")).json()
    op = doc["paths"]["/v1/campaigns"]["get"]
    assert "Retry-After" in op["responses"]["429"]["headers"]


async def test_a_taken_metrics_port_does_not_stop_the_receiver(
    redis_url: str, aiohttp_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        app = create_app(make_settings(redis_url))
        app.cleanup_ctx.append(scrape.listener(render_metrics, "127.0.0.1", taken.getsockname()[1]))
        server = await aiohttp_server(app, host="127.0.0.1", port=0)
        async with aiohttp.ClientSession() as http:
            assert (await http.get(f"http://127.0.0.1:{server.port}/livez")).status == 200
        assert server.app[scrape.ADDRESS] == ()
        assert "no /metrics" in caplog.text

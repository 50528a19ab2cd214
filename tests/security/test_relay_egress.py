"""SSRF through ``relay:`` bot URLs: the streamer's websocket connect obeys the egress policy.

The "internal" websocket bot and the redirecting server both listen on
loopback; the streamer must not connect to the first (unless allow-listed)
and must never follow the second's redirect.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestServer

from dialer import keys
from dialer.settings import Settings
from streamer.app import create_app
from tests.integration.test_streamer import ACCOUNT, SECRET, Exotel, add_call, token

Server = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def bot(aiohttp_server: Server) -> tuple[list[str], TestServer]:
    """An internal websocket service: records every request that reaches it."""
    hits: list[str] = []

    async def ws(request: web.Request) -> web.WebSocketResponse:
        hits.append(request.path)
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        await sock.close()
        return sock

    app = web.Application()
    app.router.add_get("/ws", ws)
    return hits, await aiohttp_server(app, host="127.0.0.1", port=0)


async def streamer_with(redis_url: str, aiohttp_server: Server, allow: str) -> TestServer:
    settings = Settings(  # type: ignore[call-arg]
        REDIS_URL=redis_url, DIALER_SECRET=SECRET, DIALER_EGRESS_ALLOW=allow
    )
    return await aiohttp_server(create_app(settings), host="127.0.0.1", port=0)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def run_call(http: aiohttp.ClientSession, streamer: TestServer, call_id: str) -> int:
    url = f"ws://127.0.0.1:{streamer.port}/stream/{call_id}"
    ex = Exotel(await http.ws_connect(url, params={"token": token(call_id)}))
    await ex.start(8000)
    return await ex.closed()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_relay_to_an_internal_address_is_refused(
    redis_url: str,
    r: redis.Redis,
    aiohttp_server: Server,
    http: aiohttp.ClientSession,
    bot: tuple[list[str], TestServer],
    host: str,
) -> None:
    hits, server = bot
    streamer = await streamer_with(redis_url, aiohttp_server, "")
    call_id = add_call(r, f"relay:ws://{host}:{server.port}/ws")
    assert await run_call(http, streamer, call_id) == 1011
    assert "egress policy" in str(r.hget(keys.call(ACCOUNT, call_id), "stream_error"))
    assert hits == []


async def test_relay_does_not_follow_a_redirect(
    redis_url: str,
    r: redis.Redis,
    aiohttp_server: Server,
    http: aiohttp.ClientSession,
    bot: tuple[list[str], TestServer],
) -> None:
    hits, server = bot
    redirected: list[str] = []

    async def jump(request: web.Request) -> web.Response:
        redirected.append(request.path)
        raise web.HTTPTemporaryRedirect(f"http://127.0.0.1:{server.port}/ws")

    app = web.Application()
    app.router.add_get("/ws", jump)
    redirector = await aiohttp_server(app, host="127.0.0.1", port=0)
    # Both servers are allow-listed: only the redirect itself is at stake.
    streamer = await streamer_with(redis_url, aiohttp_server, "127.0.0.0/8")
    call_id = add_call(r, f"relay:ws://127.0.0.1:{redirector.port}/ws")
    assert await run_call(http, streamer, call_id) == 1011
    assert redirected == ["/ws"] and hits == []
    assert "redirect refused" in str(r.hget(keys.call(ACCOUNT, call_id), "stream_error"))


async def test_allow_listed_relay_still_connects(
    redis_url: str,
    r: redis.Redis,
    aiohttp_server: Server,
    http: aiohttp.ClientSession,
    bot: tuple[list[str], TestServer],
) -> None:
    hits, server = bot
    streamer = await streamer_with(redis_url, aiohttp_server, "127.0.0.0/8")
    call_id = add_call(r, f"relay:ws://localhost:{server.port}/ws")
    url = f"ws://127.0.0.1:{streamer.port}/stream/{call_id}"
    ex = Exotel(await http.ws_connect(url, params={"token": token(call_id)}))
    await ex.start(8000)
    for _ in range(300):
        if hits:
            break
        await asyncio.sleep(0.01)
    assert hits == ["/ws"]
    await ex.ws.close()

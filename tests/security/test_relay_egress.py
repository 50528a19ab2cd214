"""SSRF through ``relay:`` bot URLs: the streamer's websocket connect obeys the egress policy.

The "internal" websocket bot and the redirecting server both listen on
loopback; the streamer must not connect to the first (unless allow-listed)
and must never follow the second's redirect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestServer

from dialer.core.settings import Settings
from dialer.store import keys
from streamer.app import create_app
from tests.support.polling import until
from tests.support.stream import ACCOUNT, API_KEY, SECRET, Exotel, add_call, token

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


@dataclass
class Rig:
    r: redis.Redis
    http: aiohttp.ClientSession
    hits: list[str]  # requests that reached the internal bot
    bot: TestServer
    redis_url: str
    serve: Server

    async def streamer(self, allow: str) -> TestServer:
        settings = Settings(  # type: ignore[call-arg]
            REDIS_URL=self.redis_url,
            DIALER_SECRET=SECRET,
            DIALER_API_KEY=API_KEY,
            DIALER_EGRESS_ALLOW=allow,
        )
        return await self.serve(create_app(settings), host="127.0.0.1", port=0)

    async def call(self, streamer: TestServer, call_id: str) -> Exotel:
        url = f"ws://127.0.0.1:{streamer.port}/stream/{call_id}"
        ex = Exotel(await self.http.ws_connect(url, params={"token": token(call_id)}))
        await ex.start(8000)
        return ex


@pytest.fixture
async def rig(
    redis_url: str, r: redis.Redis, aiohttp_server: Server, bot: tuple[list[str], TestServer]
) -> AsyncIterator[Rig]:
    async with aiohttp.ClientSession() as http:
        yield Rig(r, http, bot[0], bot[1], redis_url, aiohttp_server)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_relay_to_an_internal_address_is_refused(rig: Rig, host: str) -> None:
    streamer = await rig.streamer("")
    call_id = add_call(rig.r, f"relay:ws://{host}:{rig.bot.port}/ws")
    assert await (await rig.call(streamer, call_id)).closed() == 1011
    assert "egress policy" in str(rig.r.hget(keys.call(ACCOUNT, call_id), "stream_error"))
    assert rig.hits == []


async def test_relay_does_not_follow_a_redirect(rig: Rig) -> None:
    redirected: list[str] = []

    async def jump(request: web.Request) -> web.Response:
        redirected.append(request.path)
        raise web.HTTPTemporaryRedirect(f"http://127.0.0.1:{rig.bot.port}/ws")

    app = web.Application()
    app.router.add_get("/ws", jump)
    redirector = await rig.serve(app, host="127.0.0.1", port=0)
    # Both servers are allow-listed: only the redirect itself is at stake.
    streamer = await rig.streamer("127.0.0.0/8")
    call_id = add_call(rig.r, f"relay:ws://127.0.0.1:{redirector.port}/ws")
    assert await (await rig.call(streamer, call_id)).closed() == 1011
    assert redirected == ["/ws"] and rig.hits == []
    assert "redirect refused" in str(rig.r.hget(keys.call(ACCOUNT, call_id), "stream_error"))


async def test_allow_listed_relay_still_connects(rig: Rig) -> None:
    streamer = await rig.streamer("127.0.0.0/8")
    call_id = add_call(rig.r, f"relay:ws://localhost:{rig.bot.port}/ws")
    ex = await rig.call(streamer, call_id)
    await until(lambda: rig.hits, what="the relay connected")
    assert rig.hits == ["/ws"]
    await ex.ws.close()

"""The streamer app on loopback with real Redis, and a test that plays Exotel.

``Exotel`` speaks Exotel's side of one AgentStream websocket; ``play`` runs a
whole handshake against an in-process client and returns the close code. The
``streamer`` and ``connect`` fixtures are imported by name into the suites
that use them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import redis
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer

from dialer.core.keyring import Keyring
from dialer.core.settings import Settings
from dialer.core.tokens import stream_token
from dialer.platform import scrape
from streamer import protocol as p
from streamer.app import create_app, render_metrics
from tests.support.seed import seed_call

SECRET = "stream-S3cr3t-7Kd2Lq9Wx4Zb6Nm1Vp8Rt5Yc0Fh"
API_KEY = "stream-ApiKey-2Hj8Tq7Wz3Lm5Xc1Vb9Nr4Gk6Ps"
ACCOUNT, CID = "AC_test", "camp0001"
Server = Callable[..., Awaitable[TestServer]]


def token(call_id: str, attempt: int = 1, ttl_s: int = 3600) -> str:
    key = Keyring.from_secret(SECRET.encode()).stream
    return stream_token(key, call_id, attempt, int(time.time()) + ttl_s)


def add_call(
    r: redis.Redis, bot: str, config: dict[str, Any] | None = None, index: int = 1, attempt: int = 1
) -> str:
    """An answered call of campaign ``CID`` whose bot is ``bot``."""
    return seed_call(
        r,
        ACCOUNT,
        CID,
        index,
        attempt=attempt,
        bot=bot,
        bot_config=config,
        variables={"name": "Asha"},
    )


class Exotel:
    """Plays Exotel's side of one AgentStream websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, sid: str = "MZtest") -> None:
        self.ws, self.sid = ws, sid
        self.seq = 0

    async def send(self, msg: p.Message) -> None:
        await self.ws.send_str(p.encode(msg, self.sid))

    async def start(self, rate: int | None = 8000, connected: bool = True) -> None:
        if connected:
            await self.send(p.Connected())
        await self.send(
            p.Start(
                self.sid,
                "CAtest",
                "AC_test",
                "+91980",
                "+91800",
                {},
                rate,
                "audio/x-raw" if rate else None,
            )
        )

    async def media(self, pcm: bytes) -> None:
        self.seq += 1
        await self.send(p.Media(self.seq, self.seq, self.seq * 100, pcm))

    async def recv(self, timeout_s: float = 3.0) -> p.Outbound | int:
        """Next frame from the streamer, or the close code once it closed."""
        msg = await self.ws.receive(timeout=timeout_s)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return self.ws.close_code or 0
        assert msg.type is WSMsgType.TEXT, msg
        return p.decode_outbound(msg.data)

    async def closed(self, timeout_s: float = 5.0) -> int:
        while True:
            frame = await self.recv(timeout_s)
            if isinstance(frame, int):
                return frame


@pytest.fixture
async def streamer(redis_url: str, aiohttp_server: Server) -> TestServer:
    settings = Settings(  # type: ignore[call-arg]
        REDIS_URL=redis_url,
        DIALER_SECRET=SECRET,
        DIALER_API_KEY=API_KEY,
        DIALER_EGRESS_ALLOW="127.0.0.0/8",  # relayed bots listen on loopback
    )
    app = create_app(settings)
    # /metrics lives on the internal listener only (port 0: a free one, see metrics_url)
    app.cleanup_ctx.append(scrape.listener(render_metrics, "127.0.0.1", 0))
    return await aiohttp_server(app, host="127.0.0.1", port=0)


def metrics_url(server: TestServer) -> str:
    host, port = server.app[scrape.ADDRESS]
    return f"http://{host}:{port}/metrics"


@pytest.fixture
async def connect(streamer: TestServer) -> AsyncIterator[Callable[..., Awaitable[Exotel]]]:
    async with aiohttp.ClientSession() as http:

        async def open_stream(
            call_id: str, query: dict[str, str] | None = None, compress: int = 0
        ) -> Exotel:
            url = f"ws://127.0.0.1:{streamer.port}/stream/{call_id}"
            return Exotel(await http.ws_connect(url, params=query or {}, compress=compress))

        yield open_stream


async def play(streamer: Any, call_id: str, token: str | None) -> int:
    """Connect as Exotel, send a handshake and some audio, return the close code."""
    params = {} if token is None else {"token": token}
    ws = await streamer.ws_connect(f"/stream/{call_id}", params=params)
    try:
        for msg in (
            p.Connected(),
            p.Start("MZevil", "CAevil", "AC", "+91", "+91", {}, 8000, "audio/x-raw"),
            p.Media(1, 1, 100, b"\x00\x01" * 800),
        ):
            if ws.closed:
                break
            try:
                await ws.send_str(p.encode(msg, "MZevil"))
            except ConnectionError:
                break
        while True:
            msg = await ws.receive(timeout=5)
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                return ws.close_code or 0
            assert msg.type is not WSMsgType.TEXT, f"refused stream got data: {msg.data[:80]}"
    finally:
        await ws.close()

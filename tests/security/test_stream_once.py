"""A stream token opens one stream, only while its attempt is live, and stays with us.

The attacks from the issue: stream tokens lived 6 h, were reusable, were
accepted for a call already ``completed``, and travelled in
``start.custom_parameters`` to the customer's relayed bot unchanged. Now the
streamer claims the token in one Lua step (attempt current, state live, not
used before), strips it from ``start`` before relaying, and logs neither the
token nor the request line that carries it.
"""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
import redis
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from dialer.store import keys
from streamer import protocol as p
from tests.support.polling import until
from tests.support.stream import ACCOUNT, Server, add_call, token


async def outcome(ws: aiohttp.ClientWebSocketResponse) -> str | int:
    """Send a handshake and audio as Exotel would: "audio" if the bot answers, else the close."""
    for msg in (p.Connected(), p.Start("MZ1", "CA1", "AC", "+91", "+91", {}, 8000, "audio/x-raw")):
        await ws.send_str(p.encode(msg, "MZ1"))
    for i in range(5):
        if ws.closed:
            break
        try:
            await ws.send_str(p.encode(p.Media(i, i, i * 100, b"\x10\x00" * 800), "MZ1"))
        except ConnectionError:
            break
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return ws.close_code or 0
        if msg.type is WSMsgType.TEXT and isinstance(p.decode_outbound(msg.data), p.OutMedia):
            return "audio"


async def open_ws(server: TestServer, call_id: str, tok: str) -> aiohttp.ClientWebSocketResponse:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(
        f"ws://127.0.0.1:{server.port}/stream/{call_id}", params={"token": tok}
    )
    ws._dialer_session = session  # type: ignore[attr-defined]  # closed by close_ws
    return ws


async def close_ws(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.close()
    await ws._dialer_session.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("state", ["completed", "busy", "no-answer", "failed", "cancelled"])
async def test_a_token_is_refused_once_its_attempt_has_ended(
    r: redis.Redis, streamer: TestServer, state: str
) -> None:
    call_id = add_call(r, "echo")
    r.hset(keys.call(ACCOUNT, call_id), "state", state)
    ws = await open_ws(streamer, call_id, token(call_id))
    try:
        assert await outcome(ws) == 1008
    finally:
        await close_ws(ws)
    assert "stream_sid" not in r.hgetall(keys.call(ACCOUNT, call_id))


async def test_a_token_works_once(r: redis.Redis, streamer: TestServer) -> None:
    call_id = add_call(r, "echo")
    tok = token(call_id)
    first = await open_ws(streamer, call_id, tok)
    try:
        assert await outcome(first) == "audio"
        second = await open_ws(streamer, call_id, tok)
        try:
            assert await outcome(second) == 1008  # while the first is still open ...
        finally:
            await close_ws(second)
    finally:
        await close_ws(first)
    third = await open_ws(streamer, call_id, tok)
    try:
        assert await outcome(third) == 1008  # ... and after it closed
    finally:
        await close_ws(third)


async def test_sockets_racing_with_one_token_let_exactly_one_in(
    r: redis.Redis, streamer: TestServer
) -> None:
    call_id = add_call(r, "echo")
    tok = token(call_id)
    sockets = await asyncio.gather(*(open_ws(streamer, call_id, tok) for _ in range(8)))
    try:
        results = await asyncio.gather(*(outcome(ws) for ws in sockets))
    finally:
        await asyncio.gather(*(close_ws(ws) for ws in sockets))
    assert results.count("audio") == 1 and results.count(1008) == 7, results


class Bot:
    """The customer's bot: records every text frame the relay forwards."""

    def __init__(self) -> None:
        self.frames: list[str] = []

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                self.frames.append(msg.data)
        return ws


@pytest.mark.parametrize("spelling", ["custom_parameters", "customParameters"])
async def test_the_token_never_reaches_the_relayed_bot_nor_a_log(
    r: redis.Redis,
    streamer: TestServer,
    aiohttp_server: Server,
    caplog: pytest.LogCaptureFixture,
    spelling: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = Bot()
    app = web.Application()
    app.router.add_get("/ws", bot.handle)
    server = await aiohttp_server(app, host="127.0.0.1", port=0)
    call_id = add_call(r, f"relay:ws://127.0.0.1:{server.port}/ws")
    tok = token(call_id)
    ws = await open_ws(streamer, call_id, tok)
    try:
        start = {
            "event": "start",
            "stream_sid": "MZrelay",
            "start": {
                "stream_sid": "MZrelay",
                "call_sid": "CArelay",
                "account_sid": "AC",
                "from": "+91",
                "to": "+91",
                # Exotel echoes the stream URL's query parameters here
                spelling: {"token": tok, "sample-rate": "8000", "campaign": "csat"},
                "media_format": {"encoding": "raw", "sample_rate": 8000},
            },
        }
        await ws.send_str(p.encode(p.Connected(), "MZrelay"))
        await ws.send_str(json.dumps(start))
        await ws.send_str(p.encode(p.Media(1, 1, 100, bytes(3200)), "MZrelay"))
        await ws.send_str(p.encode(p.Stop("callended", "CArelay"), "MZrelay"))
        await until(lambda: any('"stop"' in f for f in bot.frames), what="the bot got stop")
    finally:
        await close_ws(ws)
    started = [json.loads(f) for f in bot.frames if '"start"' in f]
    assert started, bot.frames
    # the bot still gets every other parameter, in the spelling Exotel used
    assert started[0]["start"][spelling] == {"sample-rate": "8000", "campaign": "csat"}
    mac = tok.rsplit(".", 1)[-1]
    assert not any(mac in f for f in bot.frames)
    assert mac not in caplog.text

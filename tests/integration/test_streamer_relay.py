"""Relay mode against a customer's bot served on port 0 that makes pipecat's mistakes.

The fake bot speaks the ``streamSid`` spelling and sends 640-byte media frames
(illegal for Exotel), plus one legal 3,200-byte frame that must pass through
as the very same text.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import pytest
import redis
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from dialer.core.reasons import BotError, Code
from dialer.store import keys
from streamer import protocol as p
from streamer.audio import is_legal_chunk
from tests.support.polling import until
from tests.support.stream import ACCOUNT, Server, add_call, metrics_url, token


class CustomerBot:
    """A faithful little AgentStream bot server with pipecat's habits."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.legal_text = ""
        self.hang_up = asyncio.Event()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            self.received.append(frame)
            if frame["event"] == "start":
                sid = frame["start"]["stream_sid"]  # pipecat reads snake_case ...
                for i in range(10):  # ... and writes camelCase, in 20 ms frames
                    payload = base64.b64encode(bytes([i]) * 640).decode()
                    await ws.send_json(
                        {"event": "media", "streamSid": sid, "media": {"payload": payload}}
                    )
                await ws.send_json({"event": "mark", "streamSid": sid, "mark": {"name": "m1"}})
                self.legal_text = json.dumps(
                    {
                        "event": "media",
                        "streamSid": sid,
                        "media": {"payload": base64.b64encode(bytes(3200)).decode()},
                    }
                )
                await ws.send_str(self.legal_text)
            if frame["event"] == "dtmf":
                await ws.close()  # the bot hangs up
        return ws


@pytest.fixture
async def customer_bot(aiohttp_server: Server) -> tuple[CustomerBot, TestServer]:
    bot = CustomerBot()
    app = web.Application()
    app.router.add_get("/ws", bot.handle)
    return bot, await aiohttp_server(app, host="127.0.0.1", port=0)


async def test_relay_rechunks_illegal_frames_and_passes_marks_both_ways(
    r: redis.Redis,
    connect: Any,
    customer_bot: tuple[CustomerBot, TestServer],
    streamer: TestServer,
) -> None:
    bot, server = customer_bot
    call_id = add_call(r, f"relay:ws://127.0.0.1:{server.port}/ws")
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000)
    await ex.media(bytes(1600))

    audio = b""
    while True:
        frame = await ex.recv()
        if isinstance(frame, p.OutMark):
            break
        assert isinstance(frame, p.OutMedia) and is_legal_chunk(len(frame.payload))
        audio += frame.payload
    assert audio == b"".join(bytes([i]) * 640 for i in range(10))  # re-chunked, not padded
    assert frame.name == "m1"
    raw = await ex.ws.receive(timeout=3)
    assert raw.data == bot.legal_text  # a legal frame passes untouched

    await ex.send(p.Mark("m1"))  # Exotel: the audio before m1 has played
    await ex.send(p.Dtmf("1", 100))
    assert await ex.closed() == 1000  # the bot hung up, so the call ends

    events = [f["event"] for f in bot.received]
    assert events == ["connected", "start", "media", "mark", "dtmf"]
    # Exotel spoke stream_sid; the bot is answered in its own spelling once known.
    assert bot.received[3] == {"event": "mark", "mark": {"name": "m1"}, "streamSid": "MZtest"}
    assert bot.received[4]["dtmf"]["digit"] == "1"
    assert r.hget(keys.call(ACCOUNT, call_id), "stream_sid") == "MZtest"

    async with aiohttp.ClientSession() as http:
        text = await (await http.get(metrics_url(streamer))).text()
    assert "streamer_chunk_rule_violations_avoided_total 10.0" in text


async def test_exotel_hangup_closes_the_customer_bot(
    r: redis.Redis, connect: Any, customer_bot: tuple[CustomerBot, TestServer]
) -> None:
    bot, server = customer_bot
    call_id = add_call(r, f"relay:ws://127.0.0.1:{server.port}/ws")
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000)
    await ex.send(p.Stop("callended", "CAtest"))
    assert await ex.closed() == 1000
    await until(lambda: bot.received and bot.received[-1]["event"] == "stop", what="stop relayed")


def bot_error(r: redis.Redis, call_id: str) -> BotError:
    err = BotError.from_json(r.hget(keys.call(ACCOUNT, call_id), "bot_error"))
    assert err is not None
    return err


async def test_relay_connect_failure_ends_call_and_records_reason(
    r: redis.Redis, connect: Any, unused_tcp_port: int
) -> None:
    call_id = add_call(r, f"relay:ws://user:pw@127.0.0.1:{unused_tcp_port}/ws?token=abc")
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000)
    assert await ex.closed() == 1011
    assert "relay connect" in r.hget(keys.call(ACCOUNT, call_id), "stream_error")
    err = bot_error(r, call_id)
    assert (err.code, err.ran, err.attempt) == (Code.RELAY_CONNECT_FAILED, False, 1)
    assert f"127.0.0.1:{unused_tcp_port}/ws" in err.text
    assert "pw" not in err.text and "abc" not in err.text  # no credentials, no token


class MisbehavingBot:
    """A customer bot that fails one way: ``reject`` (HTTP 403), ``close`` at once,
    ``crash`` (talks, then closes with 1011), or stays ``silent``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "reject":
            return web.Response(status=403, text="forbidden")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            frame = json.loads(msg.data)
            if frame["event"] != "start":
                continue
            if self.mode == "close":
                await ws.close()
            elif self.mode == "crash":
                payload = base64.b64encode(bytes(3200)).decode()
                await ws.send_json({"event": "media", "stream_sid": frame["stream_sid"],
                                    "media": {"payload": payload}})  # fmt: skip
                await ws.close(code=1011, message=b"oops")
        return ws


@pytest.mark.parametrize(
    ("mode", "code", "ran", "needle"),
    [
        ("reject", Code.RELAY_REJECTED, False, "HTTP 403"),
        ("close", Code.RELAY_CLOSED_EARLY, False, "before sending anything"),
        ("crash", Code.RELAY_ERROR, True, "code 1011"),
    ],
)
async def test_relay_failures_record_their_reason_codes(
    r: redis.Redis, connect: Any, aiohttp_server: Server, mode: str, code: Code, ran: bool,
    needle: str,
) -> None:  # fmt: skip
    app = web.Application()
    app.router.add_get("/ws", MisbehavingBot(mode).handle)
    server = await aiohttp_server(app, host="127.0.0.1", port=0)
    call_id = add_call(r, f"relay:ws://127.0.0.1:{server.port}/ws")
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000)
    await ex.closed()  # the call is hung up whichever way the bot failed
    err = bot_error(r, call_id)
    assert (err.code, err.ran) == (code, ran)
    assert needle in err.text


async def test_a_caller_hangup_is_not_blamed_on_the_bot(
    r: redis.Redis, connect: Any, aiohttp_server: Server
) -> None:
    app = web.Application()
    app.router.add_get("/ws", MisbehavingBot("silent").handle)  # never sends a frame
    server = await aiohttp_server(app, host="127.0.0.1", port=0)
    call_id = add_call(r, f"relay:ws://127.0.0.1:{server.port}/ws")
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000)
    await ex.send(p.Stop("callended", "CAtest"))
    await ex.closed()
    assert r.hget(keys.call(ACCOUNT, call_id), "bot_error") is None

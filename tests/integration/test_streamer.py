"""The streamer app on loopback with real Redis; the test plays Exotel.

A small AgentStream client (``Exotel``) sends connected/start/media/dtmf and
reads what the streamer sends back, echoing marks the way Exotel does once
the audio before them has played. The customer's bot for the relay tests is
a real websocket server on port 0 that makes pipecat's mistakes.
"""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import redis
from aiohttp.test_utils import TestServer

from dialer.store import keys
from streamer import protocol as p
from streamer.audio import is_legal_chunk
from tests.support.polling import until, until_async
from tests.support.stream import ACCOUNT, add_call, metrics_url, token


def tone(rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


async def test_echo_first_audio_comes_back_quickly(
    r: redis.Redis, connect: Any, streamer: TestServer
) -> None:
    call_id = add_call(r, "echo")
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000)
    sent_at = time.monotonic()
    speech = tone(8000, 0.4)
    for i in range(0, len(speech), 1600):  # 100 ms frames, as Exotel sends them
        await ex.media(speech[i : i + 1600])
    frame = await ex.recv()
    assert isinstance(frame, p.OutMedia)
    assert time.monotonic() - sent_at < 0.5
    assert frame.payload == speech[:3200]  # 8 kHz in, 8 kHz out: not resampled at all
    assert r.hget(keys.call(ACCOUNT, call_id), "stream_sid") == "MZtest"
    await ex.ws.close()
    async with aiohttp.ClientSession() as http:
        assert (await http.get(f"http://127.0.0.1:{streamer.port}/metrics")).status == 404
        text = await (await http.get(metrics_url(streamer))).text()
    assert "streamer_first_audio_latency_seconds_count 1.0" in text


async def test_a_compressed_stream_gets_its_audio_too(r: redis.Redis, connect: Any) -> None:
    """permessage-deflate negotiated (Exotel may offer it): the audio arrives whole
    and in order, sent through aiohttp's compressing writer."""
    call_id = add_call(r, "echo")
    ex = await connect(call_id, {"token": token(call_id)}, compress=15)
    assert ex.ws.compress == 15
    await ex.start(8000)
    speech = tone(8000, 0.6)
    for i in range(0, len(speech), 1600):
        await ex.media(speech[i : i + 1600])
    got = b""
    while len(got) < len(speech):
        frame = await ex.recv()
        assert isinstance(frame, p.OutMedia)
        got += frame.payload
    assert got[: len(speech)] == speech
    await ex.ws.close()


@pytest.mark.parametrize(("rate", "via_url"), [(16000, False), (24000, False), (24000, True)])
async def test_wideband_streams_get_legal_chunks(
    r: redis.Redis, connect: Any, rate: int, via_url: bool
) -> None:
    call_id = add_call(r, "echo")
    ex = await connect(call_id, {"token": token(call_id), "sample-rate": str(rate)})
    await ex.start(None if via_url else rate)  # no media_format: the URL's rate applies
    speech = tone(rate, 0.6)
    step = rate // 5  # 100 ms
    for i in range(0, len(speech), step):
        await ex.media(speech[i : i + step])
    got = 0
    while got < len(speech) * 0.9:
        frame = await ex.recv()
        assert isinstance(frame, p.OutMedia)
        assert is_legal_chunk(len(frame.payload)), len(frame.payload)
        got += len(frame.payload)
    await ex.ws.close()


def write_wav(path: Path, seconds: float) -> str:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(tone(16000, seconds))
    return path.name


async def test_survey_records_dtmf_answers(r: redis.Redis, connect: Any, tmp_path: Path) -> None:
    doc = {
        "greeting": write_wav(tmp_path / "hi.wav", 0.1),
        "questions": [
            {"id": "q1", "prompt": write_wav(tmp_path / "q1.wav", 0.1), "keys": ["1"]},
            {"id": "q2", "prompt": write_wav(tmp_path / "q2.wav", 0.1), "keys": ["1", "2", "3"]},
        ],
        "goodbye": write_wav(tmp_path / "bye.wav", 0.1),
    }
    call_id = add_call(r, "survey:csat.json", doc | {"base_dir": str(tmp_path)})
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000)
    marks = 0
    answers = {2: "1", 3: "3"}  # after the 2nd mark (q1 heard) press 1, after the 3rd press 3
    while True:
        frame = await ex.recv()
        if isinstance(frame, int):
            assert frame == 1000  # the bot hung up after its goodbye
            break
        if isinstance(frame, p.OutMedia):
            assert is_legal_chunk(len(frame.payload))
        elif isinstance(frame, p.OutMark):
            marks += 1
            await ex.send(p.Mark(frame.name))  # "played"
            if marks in answers:
                await ex.send(p.Dtmf(answers[marks], 100))
    assert marks == 4
    call = r.hgetall(keys.call(ACCOUNT, call_id))
    assert call["a:q1"] == "1" and call["a:q2"] == "3"
    assert call["stream_sid"] == "MZtest"


async def test_plugin_bot_hangs_up_on_dtmf(r: redis.Redis, connect: Any) -> None:
    call_id = add_call(r, "plugin:beep")
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000, connected=False)  # start without connected is fine
    assert isinstance(await ex.recv(), p.OutMedia)
    await ex.send(p.Dtmf("5"))
    assert await ex.closed() == 1000


async def test_the_end_of_a_stream_pulls_its_calls_lease_in_to_the_grace(
    r: redis.Redis, connect: Any
) -> None:
    """The end signal: a lost terminal callback then costs the grace, not 600 s."""
    call_id = add_call(r, "plugin:beep")
    r.zadd(keys.active(ACCOUNT), {call_id: time.time() + 600})
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000)
    assert isinstance(await ex.recv(), p.OutMedia)
    await ex.send(p.Dtmf("5"))
    assert await ex.closed() == 1000
    ended = time.time()
    await until(
        lambda: r.hget(keys.call(ACCOUNT, call_id), "stream_end"),
        5,
        0.05,
        what="the stream's end recorded",
    )
    attempt, _, at = str(r.hget(keys.call(ACCOUNT, call_id), "stream_end")).partition(":")
    assert attempt == "1" and abs(float(at) - ended) < 2
    lease = float(r.zscore(keys.active(ACCOUNT), call_id) or 0)
    assert lease == pytest.approx(float(at) + 10)  # DIALER_STREAM_GRACE_S


@pytest.mark.parametrize("case", ["missing", "forged", "expired", "old_attempt", "no_call"])
async def test_bad_tokens_are_closed_with_1008(r: redis.Redis, connect: Any, case: str) -> None:
    call_id = add_call(r, "echo", attempt=2)
    query = {
        "missing": {},
        "forged": {"token": "2.9999999999.deadbeef"},
        "expired": {"token": token(call_id, attempt=2, ttl_s=-10)},
        "old_attempt": {"token": token(call_id, attempt=1)},
        "no_call": {"token": token("camp0001-99", attempt=2)},
    }[case]
    ex = await connect("camp0001-99" if case == "no_call" else call_id, query)
    await ex.start(8000)
    assert await ex.closed() == 1008
    assert "stream_sid" not in r.hgetall(keys.call(ACCOUNT, call_id))


@pytest.mark.parametrize(("junk", "code"), [("{nope", 1007), (b"\x00\x01", 1003)])
async def test_garbage_closes_cleanly_and_server_keeps_serving(
    r: redis.Redis, connect: Any, junk: str | bytes, code: int
) -> None:
    call_id = add_call(r, "echo")
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000)
    for _ in range(10):
        if isinstance(junk, bytes):
            await ex.ws.send_bytes(junk)
        else:
            await ex.ws.send_str(junk)
    assert await ex.closed() == code
    other = add_call(r, "echo", index=2)  # a token opens one stream only: the next call
    ex2 = await connect(other, {"token": token(other)})
    await ex2.start(8000)
    await ex2.media(tone(8000, 0.2))
    assert isinstance(await ex2.recv(), p.OutMedia)
    await ex2.ws.close()


async def test_server_shutdown_closes_streams_with_1001(
    r: redis.Redis, connect: Any, streamer: TestServer
) -> None:
    call_id = add_call(r, "echo")
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000)
    await ex.media(tone(8000, 0.2))
    assert isinstance(await ex.recv(), p.OutMedia)
    closing = asyncio.create_task(streamer.close())
    assert await ex.closed() == 1001
    await closing


async def test_dtmf_barge_in_clears_within_one_chunk(
    r: redis.Redis, connect: Any, tmp_path: Path
) -> None:
    doc = {
        "questions": [
            {"id": "q1", "prompt": write_wav(tmp_path / "long.wav", 2.0), "keys": ["1", "2"]}
        ]
    }
    call_id = add_call(r, "survey:s.json", doc | {"base_dir": str(tmp_path)})
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000)
    assert isinstance(await ex.recv(), p.OutMedia)  # the 2 s prompt (10 chunks) starts
    await ex.send(p.Dtmf("2", 100))
    after: list[Any] = []
    while not isinstance(frame := await ex.recv(), p.Clear):
        after.append(frame)
    assert len([f for f in after if isinstance(f, p.OutMedia)]) <= 1  # one was in flight
    assert await ex.closed() == 1000  # no goodbye configured: straight to hang-up
    assert r.hget(keys.call(ACCOUNT, call_id), "a:q1") == "2"


async def test_broken_bot_spec_hangs_up_and_records_why(
    r: redis.Redis, connect: Any, streamer: TestServer
) -> None:
    call_id = add_call(r, "survey:/nonexistent/survey.json")
    ex = await connect(call_id, {"token": token(call_id)})
    await ex.start(8000)
    assert await ex.closed() == 1011
    assert "survey file not found" in r.hget(keys.call(ACCOUNT, call_id), "stream_error")
    # The client sees the close frame before the server's handler has unwound and
    # dropped the stream from its count, so poll for the count, not read it once.
    async with aiohttp.ClientSession() as http:

        async def idle() -> bool:
            url = f"http://127.0.0.1:{streamer.port}/healthz"
            health = await (await http.get(url)).json()
            assert health["ok"] is True
            return bool(health["streams"] == 0)

        await until_async(idle, what="the broken stream leaves the streamer's count")

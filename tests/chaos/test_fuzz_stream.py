"""Fuzz the AgentStream websocket with a VALID token: junk, wrong types, huge
frames, binary frames and events out of order.

For every sequence the stream either ends with a clean close code or keeps
working (audio sent afterwards is echoed back), and the server keeps serving:
a fresh valid stream works afterwards.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
from aiohttp import WSMsgType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.store import keys
from streamer import protocol as p
from streamer.app import create_app
from tests.support.seed import seed_call
from tests.support.signing import make_settings, stream_token

ACCOUNT, CID = "AC_fuzz", "fuzz0001"
CLEAN = {1000, 1003, 1007, 1008, 1011, 1009}  # 1009: message too big (over max_msg_size)
FUZZ = settings(
    max_examples=45,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
TONE = b"\x00\x10\x00\xf0" * 800  # 3,200 B: 200 ms at 8 kHz, one legal chunk


def add_call(r: redis.Redis, index: int, bot: str = "echo") -> str:
    cid = CID if bot == "echo" else "fuzz0002"
    call_id = keys.call_id(cid, index)
    seed_call(r, ACCOUNT, cid, index, bot=bot)
    # Hypothesis reuses these ids across examples on one Redis: each example's
    # call is a fresh attempt, whose single-use stream token is unused.
    r.delete(keys.stream_claim(ACCOUNT, call_id, 1))
    return call_id


@pytest.fixture
async def streamer(redis_url: str, aiohttp_client: Callable[..., Awaitable[Any]]) -> Any:
    return await aiohttp_client(create_app(make_settings(redis_url)))


def start(rate: Any = 8000, sid: Any = "MZfuzz") -> str:
    fmt = {} if rate is None else {"encoding": "audio/x-raw", "sample_rate": rate}
    return json.dumps(
        {
            "event": "start",
            "stream_sid": sid,
            "start": {
                "stream_sid": sid,
                "call_sid": "CA1",
                "account_sid": "AC",
                "from": "+91",
                "to": "+91",
                "custom_parameters": {"k": "v"},
                "media_format": fmt,
            },
        }
    )


def media(pcm: bytes, seq: Any = "1") -> str:
    return json.dumps(
        {
            "event": "media",
            "stream_sid": "MZfuzz",
            "sequence_number": seq,
            "media": {"chunk": "1", "timestamp": "100", "payload": base64.b64encode(pcm).decode()},
        }
    )


# --- strategies ----------------------------------------------------------------------

ANY_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# Rates Exotel might plausibly send, right or wrong. Absurd ones (1, 10**9) have their
# own regression test: the session must ignore them, not resample to them.
RATES = st.sampled_from(
    [
        8000,
        16000,
        24000,
        "8000",
        "16000",
        44100,
        11025,
        0,
        -1,
        "abc",
        "",
        None,
        True,
        [8000],
        {"x": 1},
        8000.5,
    ]
)
VALID = st.one_of(
    st.just(json.dumps({"event": "connected"})),
    st.builds(start, RATES),
    st.builds(media, st.binary(max_size=8000), st.sampled_from(["1", 2, "x", None, -5])),
    st.builds(
        lambda d: json.dumps({"event": "dtmf", "dtmf": {"digit": d, "duration": "10"}}),
        st.one_of(st.sampled_from(list("0123456789*#")), ANY_JSON),
    ),
    st.builds(lambda n: json.dumps({"event": "mark", "mark": {"name": n}}), ANY_JSON),
    st.builds(
        lambda why: json.dumps({"event": "stop", "stop": {"reason": why}}),
        st.sampled_from(["callended", "stopped", "", 5]),
    ),
)
WRONG_TYPES = st.one_of(
    st.builds(lambda e: json.dumps({"event": e}), ANY_JSON),
    st.builds(lambda sid: start(8000, sid), ANY_JSON),
    st.builds(lambda m: json.dumps({"event": "media", "media": m}), ANY_JSON),
    st.builds(
        lambda pl: json.dumps({"event": "media", "media": {"payload": pl}}),
        st.one_of(ANY_JSON, st.just("not base64!"), st.just("QQ=")),
    ),
    st.builds(lambda s: json.dumps({"event": "start", "start": s}), ANY_JSON),
    st.builds(json.dumps, ANY_JSON),
)
JUNK = st.one_of(
    st.text(max_size=200),
    st.sampled_from(["", "{", "[", "null", '{"event"', "\x00", "\ud800", "{}" * 1000]),
)
HUGE = st.one_of(
    st.builds(lambda n: media(b"\x01\x00" * n), st.integers(100_000, 600_000)),
    st.builds(lambda n: "x" * n, st.integers(500_000, 2_000_000)),
    st.builds(
        lambda n: json.dumps({"event": "mark", "mark": {"name": "m" * n}}),
        st.integers(100_000, 1_000_000),
    ),
)
FRAME = st.one_of(
    VALID.map(lambda t: ("text", t)),
    VALID.map(lambda t: ("text", t)),
    WRONG_TYPES.map(lambda t: ("text", t)),
    JUNK.map(lambda t: ("text", t)),
    HUGE.map(lambda t: ("text", t)),
    st.binary(max_size=3000).map(lambda b: ("binary", b)),
)


async def send_all(ws: Any, frames: list[tuple[str, Any]]) -> None:
    for kind, data in frames:
        if ws.closed:
            return
        try:
            if kind == "binary":
                await ws.send_bytes(data)
            else:
                await ws.send_str(data.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
        except ConnectionError:
            return


async def outcome(ws: Any, timeout_s: float = 3.0) -> int | str:
    """The close code, or "audio" once the stream sends audio back."""
    while True:
        try:
            msg = await ws.receive(timeout=timeout_s)
        except TimeoutError:
            return "silent"
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return ws.close_code or 0
        if msg.type is WSMsgType.ERROR:
            return ws.close_code or 0
        assert msg.type is WSMsgType.TEXT, msg
        if isinstance(p.decode_outbound(msg.data), p.OutMedia):
            return "audio"


async def fresh_stream_works(streamer: Any, call_id: str) -> None:
    ws = await streamer.ws_connect(f"/stream/{call_id}", params={"token": stream_token(call_id)})
    try:
        await ws.send_str(start(8000))
        await ws.send_str(media(TONE))
        assert await outcome(ws) == "audio"
    finally:
        await ws.close()


@FUZZ
@given(frames=st.lists(FRAME, min_size=1, max_size=12))
async def test_fuzzed_frames_close_cleanly_or_keep_working(
    streamer: Any, r: redis.Redis, frames: list[tuple[str, Any]]
) -> None:
    target, spare = add_call(r, 1), add_call(r, 2)
    ws = await streamer.ws_connect(f"/stream/{target}", params={"token": stream_token(target)})
    try:
        await send_all(ws, frames)
        if not ws.closed:
            # Still open: it must still work. A start is ignored if one was accepted already.
            await send_all(ws, [("text", start(8000)), ("text", media(TONE))])
        result = await outcome(ws)
        assert result == "audio" or result in CLEAN, (result, [f[1][:80] for f in frames])
    finally:
        await ws.close()
    assert r.hget(keys.call(ACCOUNT, target), "state") == "answered"  # streams never own state
    await fresh_stream_works(streamer, spare)
    health = await (await streamer.get("/healthz")).json()
    assert health["ok"] is True


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        pytest.param(
            [media(TONE), media(TONE), start(8000), media(TONE)], "audio", id="media_before_start"
        ),
        pytest.param(
            [json.dumps({"event": "stop", "stop": {"reason": "callended"}})],
            1000,
            id="stop_before_start",
        ),
        pytest.param(
            [start(8000), start(16000), start(8000), media(TONE)], "audio", id="duplicate_start"
        ),
        pytest.param(
            [
                json.dumps({"event": "mark", "mark": {"name": "never-sent"}}),
                start(8000),
                media(TONE),
            ],
            "audio",
            id="mark_before_start",
        ),
        pytest.param([start(8000)] + ["{"] * 10, 1007, id="garbage_text"),
        pytest.param(
            [start(8000), json.dumps({"event": "stop"}), media(TONE)], 1000, id="media_after_stop"
        ),
    ],
)
async def test_out_of_order_events(
    streamer: Any, r: redis.Redis, frames: list[str], expected: int | str
) -> None:
    call_id = add_call(r, 1)
    ws = await streamer.ws_connect(f"/stream/{call_id}", params={"token": stream_token(call_id)})
    try:
        await send_all(ws, [("text", f) for f in frames])
        assert await outcome(ws) == expected
    finally:
        await ws.close()
    await fresh_stream_works(streamer, add_call(r, 2))


async def test_binary_frames_close_with_1003(streamer: Any, r: redis.Redis) -> None:
    call_id = add_call(r, 1)
    ws = await streamer.ws_connect(f"/stream/{call_id}", params={"token": stream_token(call_id)})
    await send_all(ws, [("text", start(8000))] + [("binary", b"\x00\x01" * 10)] * 10)
    assert await outcome(ws) == 1003
    await fresh_stream_works(streamer, add_call(r, 2))


async def test_a_frame_over_the_size_limit_closes_with_1009(streamer: Any, r: redis.Redis) -> None:
    from streamer.app import MAX_FRAME_BYTES

    call_id = add_call(r, 1)
    ws = await streamer.ws_connect(f"/stream/{call_id}", params={"token": stream_token(call_id)})
    await send_all(ws, [("text", start(8000)), ("text", "x" * (MAX_FRAME_BYTES + 10))])
    assert await outcome(ws) == 1009
    await fresh_stream_works(streamer, add_call(r, 2))


async def test_one_frame_with_a_5000_digit_number_is_just_garbage(
    streamer: Any, r: redis.Redis
) -> None:
    call_id = add_call(r, 1)
    ws = await streamer.ws_connect(f"/stream/{call_id}", params={"token": stream_token(call_id)})
    try:
        await send_all(
            ws,
            [("text", start(8000)), ("text", media(TONE, seq="9" * 5000)), ("text", media(TONE))],
        )
        assert await outcome(ws) == "audio"
    finally:
        await ws.close()


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(media(TONE, seq="9" * 5000), id="string_number"),
        pytest.param('{"event": "media", "n": ' + "9" * 5000 + "}", id="json_number"),
    ],
)
def test_decode_reports_huge_numbers_as_protocol_errors(frame: str) -> None:
    from dialer.core.errors import ProtocolError

    with pytest.raises(ProtocolError):
        p.decode(frame)


async def test_an_absurd_start_sample_rate_is_not_trusted(streamer: Any, r: redis.Redis) -> None:
    call_id = add_call(r, 1, bot="plugin:beep")
    ws = await streamer.ws_connect(f"/stream/{call_id}", params={"token": stream_token(call_id)})
    out = 0
    try:
        await send_all(ws, [("text", start(10_000_000))])
        while True:
            try:
                msg = await ws.receive(timeout=1.0)
            except TimeoutError:
                break
            if msg.type is not WSMsgType.TEXT:
                break
            frame = p.decode_outbound(msg.data)
            if isinstance(frame, p.OutMedia):
                out += len(frame.payload)
    finally:
        await ws.close()
    # 0.4 s of beep is 19,200 B even at 24 kHz, the highest rate Exotel streams at.
    assert out <= 0.4 * 24_000 * 2 * 1.5, out

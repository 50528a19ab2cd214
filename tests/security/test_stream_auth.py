"""AgentStream websockets are authenticated by a per-call, per-attempt token.

A token for another call, an expired one, one for an older attempt, a forged
or missing one: the socket is accepted, then closed with 1008 (policy
violation), and nothing is written to any call hash.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
from aiohttp import WSMsgType

from dialer.core import tokens
from dialer.store import keys
from streamer import protocol as p
from streamer.app import create_app
from tests.support.seed import seed_call
from tests.support.signing import KEYRING, make_settings, sig, stream_token
from tests.support.stream import play

ACCOUNT, CID = "AC_stream", "strm0001"


def add_call(r: redis.Redis, index: int, attempt: int = 1, cid: str = CID) -> str:
    return seed_call(r, ACCOUNT, cid, index, attempt=attempt, variables={"name": "Asha"})


@pytest.fixture
async def streamer(redis_url: str, aiohttp_client: Callable[..., Awaitable[Any]]) -> Any:
    return await aiohttp_client(create_app(make_settings(redis_url)))


def everything(r: redis.Redis) -> dict[str, Any]:
    return {k: r.hgetall(k) for k in r.keys(f"dl:{{{ACCOUNT}}}:call:*")}


def _cases(r: redis.Redis) -> dict[str, tuple[str, str | None]]:
    target = add_call(r, 1, attempt=2)
    other = add_call(r, 2, attempt=2)
    exp = int(time.time()) - 5
    good = stream_token(target, attempt=2)
    attempt, expires, mac = good.split(".")
    return {
        "missing": (target, None),
        "empty": (target, ""),
        "other_call": (target, stream_token(other, attempt=2)),
        "expired": (target, tokens.stream_token(KEYRING.stream, target, 2, exp)),
        "older_attempt": (target, stream_token(target, attempt=1)),
        "newer_attempt": (target, stream_token(target, attempt=3)),
        "other_secret": (target, stream_token(target, attempt=2, secret="other")),
        "forged_mac": (target, f"{attempt}.{expires}.{'0' * len(mac)}"),
        "extended_expiry": (target, f"{attempt}.{int(expires) + 10_000}.{mac}"),
        "raised_attempt": (target, f"3.{expires}.{mac}"),
        "callback_sig_as_token": (target, sig(target)),
        "two_parts": (target, f"{attempt}.{mac}"),
        "garbage": (target, "..."),
        "negative_attempt": (target, f"-2.{expires}.{mac}"),
        "unknown_call": (keys.call_id(CID, 99), stream_token(keys.call_id(CID, 99), attempt=2)),
        "bad_call_id": ("nope", stream_token("nope", attempt=2)),
    }


CASES = [
    "missing",
    "empty",
    "other_call",
    "expired",
    "older_attempt",
    "newer_attempt",
    "other_secret",
    "forged_mac",
    "extended_expiry",
    "raised_attempt",
    "callback_sig_as_token",
    "two_parts",
    "garbage",
    "negative_attempt",
    "unknown_call",
    "bad_call_id",
]


@pytest.mark.parametrize("case", CASES)
async def test_bad_stream_tokens_are_closed_with_1008_and_write_nothing(
    streamer: Any, r: redis.Redis, case: str
) -> None:
    call_id, token = _cases(r)[case]
    before = everything(r)
    assert await play(streamer, call_id, token) == 1008
    assert everything(r) == before
    assert not any("stream_sid" in h or "stream_error" in h for h in everything(r).values())


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda a, e, m: f"{a}.{e}.{m[:-1]}é", id="non_ascii_mac"),
        pytest.param(lambda a, e, m: f"\u0662.{e}.{m}", id="unicode_digit_attempt"),
    ],
)
async def test_non_ascii_tokens_are_closed_with_1008(
    streamer: Any, r: redis.Redis, mangle: Callable[[str, str, str], str]
) -> None:
    call_id = add_call(r, 1, attempt=2)
    attempt, expires, mac = stream_token(call_id, attempt=2).split(".")
    before = everything(r)
    assert await play(streamer, call_id, mangle(attempt, expires, mac)) == 1008
    assert everything(r) == before


async def test_the_right_token_works_and_a_refusal_does_not_stop_the_server(
    streamer: Any, r: redis.Redis
) -> None:
    call_id = add_call(r, 1, attempt=2)
    assert await play(streamer, call_id, stream_token(call_id, attempt=1)) == 1008
    ws = await streamer.ws_connect(
        f"/stream/{call_id}", params={"token": stream_token(call_id, attempt=2)}
    )
    await ws.send_str(
        p.encode(p.Start("MZgood", "CA", "AC", "+91", "+91", {}, 8000, "audio/x-raw"), "MZgood")
    )
    for i in range(3):
        await ws.send_str(p.encode(p.Media(i, i, i * 100, b"\x10\x00" * 800), "MZgood"))
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.TEXT
    assert isinstance(p.decode_outbound(msg.data), p.OutMedia)
    await ws.close()
    assert r.hget(keys.call(ACCOUNT, call_id), "stream_sid") == "MZgood"

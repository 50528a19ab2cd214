"""Fuzz the status-callback handler with validly signed junk.

Every body is sent with a VALID signature for a real call, so the parser and
the state machine are what is under test, not the signature check. For every
input: the answer is 200 or a 4xx (never a 5xx), the call never moves
backwards ((attempt, rank) never decreases) and never leaves a final state,
the counters and the active set still match the call hashes, and a valid
terminal callback for another call right after it still works.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.core.calls import State
from dialer.receiver.app import create_app
from dialer.store import keys
from tests.support.receiver import ServerErrors
from tests.support.seed import ACCOUNT, exotel_sid, make_campaign, place_calls, setup_account
from tests.support.signing import cb, make_settings
from tests.support.state import call_state, check_invariants, progress

POOL = 120
FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@dataclass
class Pool:
    cid: str
    targets: list[str]  # calls the fuzz hits (placed, then whatever the fuzz made of them)
    canaries: list[str]  # fresh placed calls, one per example, for the "still works" check
    sids: dict[str, str] = field(default_factory=dict)
    next_canary: itertools.count = field(default_factory=itertools.count)


@pytest.fixture
async def client(redis_url: str, aiohttp_client: Callable[..., Awaitable[Any]]) -> Any:
    return await aiohttp_client(create_app(make_settings(redis_url)))


def make_pool(r: redis.Redis, size: int) -> Pool:
    """``size`` placed calls: 20 (at most) fuzz targets, the rest canaries."""
    setup_account(r, limit=size * 2)
    cid = make_campaign(r, size, max_attempts=2, retry_delay_s=0)
    ids = place_calls(r, cid)
    assert len(ids) == size
    return Pool(cid, ids[:20], ids[20:], {i: exotel_sid(r, i) for i in ids})


@pytest.fixture
def pool(r: redis.Redis) -> Pool:
    return make_pool(r, POOL)


@pytest.fixture
def few(r: redis.Redis) -> Pool:
    return make_pool(r, 3)


# --- strategies ------------------------------------------------------------------

KEYS = [
    "CallSid",
    "callsid",
    "CALLSID",
    "call_sid",
    "Sid",
    "Status",
    "status",
    "EventType",
    "event_type",
    "CustomField",
    "customfield",
    "ConversationDuration",
    "Duration",
    "RecordingUrl",
    "DateUpdated",
    "Legs",
    "From",
    "To",
    "Direction",
]
STATUSES = [
    "completed",
    "busy",
    "no-answer",
    "failed",
    "canceled",
    "ringing",
    "answered",
    "in-progress",
    "queued",
    "COMPLETED",
    "Busy",
    "",
    "null",
    "terminal",
]
EVENTS = ["terminal", "answered", "ringing", "Terminal", "", "other"]
# Strings that once crashed parsers: numbers that do not fit, NaN, control chars, surrogates.
NASTY = [
    "inf",
    "-inf",
    "nan",
    "1e400",
    "-1e400",
    "1e308",
    "9" * 400,
    "-1",
    "0x10",
    "1_000",
    " 12 ",
    "١٢",
    "\x00",
    "\ud800",
    "\r\n",
    "'; DROP TABLE calls;--",
    "%s%s%n",
    "{{7*7}}",
    "../../etc/passwd",
    "\u202e",
    "é" * 10,
]


def text_values(max_size: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.sampled_from(NASTY),
        st.sampled_from(STATUSES + EVENTS),
        st.builds(
            lambda c, n: c * n,
            st.sampled_from("xé\x00 "),
            st.integers(min(4000, max_size), max_size),
        ),
    )


def json_values(max_size: int) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        text_values(max_size),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )


@st.composite
def fields(draw: st.DrawFn, max_size: int, json_typed: bool) -> dict[str, Any]:
    """A plausible-looking callback (real sid, known keys) with junk in places."""
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["CallSid"] = "{sid}"  # filled in with the target's real sid
    if draw(st.booleans()):
        out["Status"] = draw(st.sampled_from(STATUSES))
    if draw(st.booleans()):
        out["EventType"] = draw(st.sampled_from(EVENTS))
    if draw(st.booleans()):
        out["CustomField"] = draw(
            st.sampled_from(
                [
                    "{call_id}:1",
                    "{call_id}:2",
                    "{call_id}:0",
                    "{call_id}:99999999999999999999",
                    "{call_id}",
                    "{other}:1",
                    ":1",
                    "{call_id}:1:extra",
                    "{call_id}:-1",
                ]
            )
        )
    if draw(st.booleans()):
        key = draw(st.sampled_from(["ConversationDuration", "Duration", "duration"]))
        out[key] = draw(
            st.one_of(st.sampled_from(NASTY), st.integers(), st.floats(), st.text(max_size=10))
            if json_typed
            else st.one_of(st.sampled_from(NASTY), st.text(max_size=10))
        )
    values = json_values(max_size) if json_typed else text_values(max_size)
    extra = draw(
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), values, max_size=6)
    )
    out.update(extra)
    return out


def fill(value: Any, call_id: str, sid: str, other: str) -> Any:
    if isinstance(value, str):
        return value.replace("{sid}", sid).replace("{call_id}", call_id).replace("{other}", other)
    return value


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, Any]:
    """(kind, payload): kind says how to send it."""
    kind = draw(st.sampled_from(["json", "form", "multipart", "raw"]))
    if kind == "json":
        shape = draw(st.sampled_from(["object", "object", "object", "non_object"]))
        if shape == "non_object":
            return "json", draw(json_values(2000).filter(lambda v: not isinstance(v, dict)))
        return "json", draw(fields(500_000, json_typed=True))
    if kind in ("form", "multipart"):
        return kind, draw(fields(500_000, json_typed=False))
    ctype = draw(
        st.sampled_from(
            [
                "application/json",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "multipart/form-data; boundary=XyZ",
                "text/plain",
                "application/xml",
                "application/octet-stream",
                "",
                "application/json; charset=latin-1",
                "application/x-www-form-urlencoded; charset=no-such-charset",
                "application/x-www-form-urlencoded; charset=utf-16",
                "multipart/form-data; boundary=XyZ; charset=no-such-charset",
            ]
        )
    )
    data = draw(
        st.one_of(
            st.binary(max_size=2000),
            st.sampled_from(
                [
                    b"",
                    b"{",
                    b"[]",
                    b"null",
                    b"\xff\xfe{}",
                    b'{"Status": "completed"',
                    b'--XyZ\r\nContent-Disposition: form-data; name="Status"\r\n\r\n'
                    b"completed\r\n--XyZ--\r\n",
                    b"CallSid=%ZZ&Status=%",
                    b"a=" + b"\x00" * 100,
                    b'"just a string"',
                    b"1" * 5000,
                    b"[" * 100_000,
                    b'{"a":' * 50_000,
                    b"NaN",
                    b'{"Duration": Infinity}',
                    b'--XyZ\r\nContent-Disposition: form-data; name="Status"\r\n'
                    b"Content-Type: text/plain; charset=no-such-charset\r\n\r\n"
                    b"completed\r\n--XyZ--\r\n",
                    b'--XyZ\r\nContent-Disposition: form-data; name="f"; '
                    b'filename="a.txt"\r\n\r\nzzz\r\n--XyZ--\r\n',
                ]
            ),
            st.builds(lambda n: b"x" * n, st.integers(100_000, 1_000_000)),
        )
    )
    return "raw", (ctype, data)


async def send(
    client: Any, call_id: str, kind: str, payload: Any, sid: str, other: str
) -> aiohttp.ClientResponse:
    url = f"/exotel/status/{call_id}"
    params = cb(call_id)
    if kind == "json":
        if isinstance(payload, dict):
            payload = {
                fill(k, call_id, sid, other): fill(v, call_id, sid, other)
                for k, v in payload.items()
            }
        body = json.dumps(payload).encode("utf-8", "surrogatepass")
        return await client.post(
            url, params=params, data=body, headers={"Content-Type": "application/json"}
        )
    if kind in ("form", "multipart"):
        pairs = [
            (str(fill(k, call_id, sid, other)), str(fill(v, call_id, sid, other)))
            for k, v in payload.items()
        ]
        ctype, data = urlencoded(pairs) if kind == "form" else multipart(pairs)
        return await client.post(url, params=params, data=data, headers={"Content-Type": ctype})
    ctype, data = payload
    headers = {"Content-Type": ctype} if ctype else {}
    return await client.post(url, params=params, data=data, headers=headers)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def urlencoded(pairs: list[tuple[str, str]]) -> tuple[str, bytes]:
    body = "&".join(f"{quote_plus(_utf8(k))}={quote_plus(_utf8(v))}" for k, v in pairs)
    return "application/x-www-form-urlencoded", body.encode()


def multipart(pairs: list[tuple[str, str]]) -> tuple[str, bytes]:
    """multipart/form-data as browsers write it (quotes and newlines in names escaped)."""
    boundary = "----fuzzBoundary7MA4YWxkTrZu0gW"
    out = b""
    for k, v in pairs or [("x", "")]:
        name = k.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="'.encode()
            + _utf8(name)
            + b'"\r\n\r\n'
            + _utf8(v)
            + b"\r\n"
        )
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", out


def valid_terminal(call_id: str, sid: str) -> dict[str, str]:
    return {
        "CallSid": sid,
        "Status": "completed",
        "EventType": "terminal",
        "CustomField": f"{call_id}:1",
        "ConversationDuration": "7",
    }


@FUZZ
@given(body=bodies(), pick=st.integers(0, 10_000))
async def test_fuzzed_callbacks_never_5xx_never_move_backwards(
    client: Any,
    r: redis.Redis,
    pool: Pool,
    server_errors: ServerErrors,
    body: tuple[str, Any],
    pick: int,
) -> None:
    kind, payload = body
    target = pool.targets[pick % len(pool.targets)]
    other = pool.targets[(pick + 1) % len(pool.targets)]
    before = progress(r, target)
    before_hash = r.hgetall(keys.call(ACCOUNT, target))
    server_errors.last = None
    resp = await send(client, target, kind, payload, pool.sids[target], other)
    assert resp.status < 500, (resp.status, server_errors.last, await resp.text())
    assert resp.status in (200, 400, 404, 413, 415, 422), resp.status
    after = progress(r, target)
    assert after >= before, (before, after)
    if before[2]:  # final: nothing about the outcome may change
        h = r.hgetall(keys.call(ACCOUNT, target))
        for k in ("state", "attempt", "outcome", "sid"):
            assert h.get(k) == before_hash.get(k), k
    # The server still serves: a valid terminal callback for a fresh call works.
    n = next(pool.next_canary)
    if n < len(pool.canaries):
        canary = pool.canaries[n]
        resp = await client.post(
            f"/exotel/status/{canary}",
            params=cb(canary),
            json=valid_terminal(canary, pool.sids[canary]),
        )
        assert resp.status == 200, await resp.text()
        assert call_state(r, canary) == (1, State.COMPLETED)
    if n % 10 == 0:
        check_invariants(r, pool.cid)


async def test_after_the_fuzz_a_valid_terminal_callback_still_settles_a_fuzzed_call(
    client: Any, r: redis.Redis, few: Pool
) -> None:
    """Junk first, then the real terminal callback: the call ends and frees its slot."""
    target = few.targets[0]
    junk = [
        ("raw", ("application/json", b"{")),
        ("raw", ("multipart/form-data", b"\x00" * 99)),
        ("json", [1, 2]),
        ("form", {"CallSid": "{sid}", "Status": "é" * 5000}),
        ("json", {"CallSid": {"nested": ["x"]}, "Status": "completed"}),
        ("json", {"CallSid": "{sid}", "Status": "ringing", "CustomField": "{call_id}:0"}),
        ("raw", ("text/plain", b"x" * 1_000_000)),
    ]
    for kind, payload in junk:
        resp = await send(client, target, kind, payload, few.sids[target], few.targets[1])
        assert 400 <= resp.status < 500 or resp.status == 200, resp.status
    assert call_state(r, target) == (1, State.PLACED)
    resp = await client.post(
        f"/exotel/status/{target}",
        params=cb(target),
        json=valid_terminal(target, few.sids[target]),
    )
    assert resp.status == 200
    assert call_state(r, target) == (1, State.COMPLETED)
    assert target not in r.zrange(keys.active(ACCOUNT), 0, -1)
    check_invariants(r, few.cid)


# --- the bugs, one regression test each ---------------------------------------------


async def _post(client: Any, call_id: str, ctype: str, data: bytes) -> int:
    resp = await client.post(
        f"/exotel/status/{call_id}",
        params=cb(call_id),
        data=data,
        headers={"Content-Type": ctype},
    )
    return resp.status


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"[" * 100_000, id="array"),
        pytest.param(b'{"a":' * 50_000, id="object"),
        pytest.param(b'{"CallSid": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="balanced"),
    ],
)
async def test_deeply_nested_json_is_400(client: Any, few: Pool, data: bytes) -> None:
    assert await _post(client, few.targets[0], "application/json", data) == 400


@pytest.mark.parametrize(
    ("ctype", "data"),
    [
        pytest.param(
            "application/x-www-form-urlencoded; charset=no-such-charset",
            b"CallSid=x&Status=completed",
            id="form_charset",
        ),
        pytest.param(
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; name="Status"\r\n'
            b"Content-Type: text/plain; charset=no-such-charset\r\n\r\n"
            b"completed\r\n--XyZ--\r\n",
            id="part_charset",
        ),
    ],
)
async def test_unknown_charset_is_400(client: Any, few: Pool, ctype: str, data: bytes) -> None:
    assert await _post(client, few.targets[0], ctype, data) == 400


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b'--XyZ\r\nContent-Disposition: form-data; name="\x1f"\r\n\r\nv\r\n--XyZ--\r\n',
            id="control_char_in_part_header",
        ),
        pytest.param(
            b"--XyZ\r\n" + b"x" * 600_000 + b"\r\n\r\nv\r\n--XyZ--\r\n",
            id="part_header_line_too_long",
        ),
    ],
)
async def test_malformed_multipart_is_400(client: Any, few: Pool, data: bytes) -> None:
    assert await _post(client, few.targets[0], "multipart/form-data; boundary=XyZ", data) == 400


@pytest.mark.parametrize(
    ("ctype", "data"),
    [
        pytest.param(
            "application/json",
            b'{"CallSid": "S", "Status": "completed", "ConversationDuration": "1e400"}',
            id="json_string",
        ),
        pytest.param(
            "application/json",
            b'{"CallSid": "S", "Status": "completed", "Duration": Infinity}',
            id="json_infinity",
        ),
        pytest.param(
            "application/x-www-form-urlencoded",
            b"CallSid=S&Status=completed&ConversationDuration=" + b"9" * 400,
            id="form_400_nines",
        ),
    ],
)
async def test_an_absurd_duration_is_ignored_not_a_crash(
    client: Any, r: redis.Redis, few: Pool, ctype: str, data: bytes
) -> None:
    target = few.targets[0]
    data = data.replace(b'"S"', json.dumps(few.sids[target]).encode()).replace(
        b"CallSid=S", b"CallSid=" + few.sids[target].encode()
    )
    assert await _post(client, target, ctype, data) == 200
    assert call_state(r, target) == (1, State.COMPLETED)

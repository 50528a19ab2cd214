"""The sandbox as a black box: real servers on port 0 for it, a bot and a callback sink."""

from __future__ import annotations

import base64
import functools
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from dialer.sandbox import AccountConfig, SandboxConfig, create_app
from dialer.sandbox.config import Faults
from tests.support import polling


def basic(key: str, token: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(key, token)}


AUTH = basic("sandbox-key", "sandbox-token")
CONNECT = "/v1/Accounts/sandbox/Calls/connect.json"
CALLER_ID = "08047112345"


def fast_config(**kw: Any) -> SandboxConfig:
    base: dict[str, Any] = dict(
        accounts=[AccountConfig.demo(10, 10_000)],
        ring_s=0.05,
        talk_max_s=3.0,
        early_hangup_s=0.3,
        think_s=0.02,
        ringing_delay_s=0.01,
        callback_retry_delay_s=0.05,
        handshake_timeout_s=2.0,
    )
    base.update(kw)
    return SandboxConfig(**base)


class Bot:
    """A tiny AgentStream bot: on start one media chunk and a mark; closes after a key."""

    def __init__(
        self, chunk_bytes: int = 3200, close_after_dtmf: bool = True, keys_wanted: int = 1
    ) -> None:
        self.chunk_bytes = chunk_bytes
        self.close_after_dtmf = close_after_dtmf
        self.keys_wanted = keys_wanted  # speak again after each key until this many arrived
        self.received: list[dict[str, Any]] = []

    async def speak(self, ws: web.WebSocketResponse, sid: str, mark: str) -> None:
        payload = base64.b64encode(bytes(self.chunk_bytes)).decode()
        await ws.send_json({"event": "media", "stream_sid": sid, "media": {"payload": payload}})
        await ws.send_json({"event": "mark", "stream_sid": sid, "mark": {"name": mark}})

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            data = json.loads(msg.data)
            self.received.append(data)
            sid = data.get("stream_sid")
            if data["event"] == "start":
                await self.speak(ws, sid, "m1")
            elif data["event"] == "dtmf" and len(self.events("dtmf")) < self.keys_wanted:
                await self.speak(ws, sid, f"m{len(self.events('dtmf')) + 1}")
            elif data["event"] == "dtmf" and self.close_after_dtmf:
                await ws.close()
        return ws

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m["event"] == name]


class Sink:
    """Status callback receiver that accepts JSON, urlencoded and multipart bodies."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.attempts = 0
        self.got: list[tuple[str, dict[str, Any]]] = []

    async def handler(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return web.Response(status=500)
        if request.content_type == "application/json":
            fields = await request.json()
        else:
            fields = dict(await request.post())
        self.got.append((request.content_type, fields))
        return web.Response(text="ok")

    def terminal(self) -> list[dict[str, Any]]:
        return [f for _, f in self.got if f["EventType"] == "terminal"]


# The sandbox delivers over real sockets: a little more time than the default.
until = functools.partial(polling.until, timeout_s=5.0, interval_s=0.02)


@pytest.fixture
async def world(aiohttp_server: Any) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Factory: start sandbox + bot + sink; returns URLs, a client session and the parts."""
    sessions: list[aiohttp.ClientSession] = []

    async def make(
        config: SandboxConfig | None = None, bot: Bot | None = None, sink: Sink | None = None
    ):
        bot, sink = bot or Bot(), sink or Sink()
        peer = web.Application()
        peer.router.add_get("/ws", bot.handler)
        peer.router.add_post("/status", sink.handler)
        peer_server = await aiohttp_server(peer)
        sandbox = await aiohttp_server(create_app(config or fast_config()))
        session = aiohttp.ClientSession(str(sandbox.make_url("")))
        sessions.append(session)
        return {
            "http": session,
            "bot": bot,
            "sink": sink,
            "ws_url": f"ws://127.0.0.1:{peer_server.port}/ws",
            "callback": f"http://127.0.0.1:{peer_server.port}/status",
        }

    yield make
    for session in sessions:
        await session.close()


def form(w: dict[str, Any], number: str, **extra: Any) -> list[tuple[str, str]]:
    fields = [
        ("From", number),
        ("CallerId", CALLER_ID),
        ("StreamUrl", extra.pop("StreamUrl", w["ws_url"])),
        ("StreamType", "bidirectional"),
        ("StatusCallback", w["callback"]),
    ]
    for event in extra.pop("events", ()):
        fields.append(("StatusCallbackEvents[]", event))
    fields.extend((k, str(v)) for k, v in extra.items())
    return fields


async def dial(w: dict[str, Any], number: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    async with w["http"].post(CONNECT, data=form(w, number, **extra), headers=AUTH) as resp:
        return resp.status, await resp.json()


async def report(w: dict[str, Any]) -> dict[str, Any]:
    async with w["http"].get("/_sandbox/report") as resp:
        return await resp.json()


async def test_answered_calls_stream_and_call_back_in_all_formats(world: Any) -> None:
    w = await world()
    url = w["ws_url"] + "?sample-rate=16000&campaign=c1"
    sids = []
    for n in (1, 2, 3):
        status, body = await dial(w, f"+91987654321{n}", StreamUrl=url, CustomField=f"c1:{n}",
                                  events=["ringing", "answered"])  # fmt: skip
        assert status == 200
        call = body["Call"]
        assert re.fullmatch(r"[0-9a-f]{32}", call["Sid"]), call["Sid"]
        assert call["Status"] == "in-progress" and call["Direction"] == "outbound-api"
        assert call["PhoneNumberSid"] == CALLER_ID and call["CustomField"] == f"c1:{n}"
        assert call["RecordingUrl"] is None
        time.strptime(call["DateCreated"], "%Y-%m-%d %H:%M:%S")
        sids.append(call["Sid"])
    await until(lambda: len(w["sink"].terminal()) == 3)

    sink = w["sink"]
    assert {ct for ct, _ in sink.got} == {
        "application/json", "application/x-www-form-urlencoded", "multipart/form-data"
    }  # fmt: skip
    for sid in sids:
        mine = [f for _, f in sink.got if f["CallSid"] == sid]
        assert [f["EventType"] for f in mine] == ["ringing", "answered", "terminal"]
        assert [f["Status"] for f in mine] == ["ringing", "in-progress", "completed"]
        final = mine[-1]
        assert int(final["ConversationDuration"]) >= 1
        legs = final["Legs"] if isinstance(final["Legs"], list) else json.loads(final["Legs"])
        assert legs[0]["Status"] == "completed"
        for name in ("DateCreated", "DateUpdated", "To", "From", "PhoneNumberSid", "Direction",
                     "CustomField", "StartTime", "EndTime", "RecordingUrl"):  # fmt: skip
            assert name in final

    bot = w["bot"]
    starts = bot.events("start")
    assert len(starts) == 3 and len(bot.events("connected")) == 3
    start = starts[0]["start"]
    assert start["media_format"] == {
        "encoding": "audio/x-raw",
        "sample_rate": "16000",
        "bit_rate": "16",
    }
    assert start["custom_parameters"] == {"sample-rate": "16000", "campaign": "c1"}
    assert start["from"] == CALLER_ID and start["call_sid"] in sids
    assert (
        starts[0]["stream_sid"].startswith("MZ") and start["stream_sid"] == starts[0]["stream_sid"]
    )
    assert [m["mark"]["name"] for m in bot.events("mark")] == ["m1"] * 3
    assert {d["dtmf"]["digit"] for d in bot.events("dtmf")} == {"1"}
    media = bot.events("media")
    assert len(base64.b64decode(media[0]["media"]["payload"])) == 3200  # 100 ms at 16 kHz
    assert media[0]["media"]["chunk"] == "1"

    rep = await report(w)
    assert rep["violations"] == []
    assert rep["streams"] == {"opened": 3, "completed": 3}
    assert len(rep["first_audio_ms"]) == 3 and len(rep["terminal_times"]) == 3
    assert rep["dtmf_sent"] == {sid: ["1"] for sid in sids}
    assert rep["calls_total"] == 3 and rep["active"] == {"sandbox": 0}
    assert rep["max_concurrency"]["sandbox"] >= 1
    assert rep["dials_per_custom_field"] == {"c1:1": 1, "c1:2": 1, "c1:3": 1}
    assert rep["frames_in"] >= 6 and rep["frames_out"] > 6

    async with w["http"].get(f"/v1/Accounts/sandbox/Calls/{sids[0]}.json", headers=AUTH) as resp:
        details = (await resp.json())["Call"]
    assert details["Status"] == "completed" and details["AccountSid"] == "sandbox"
    assert int(details["Details"]["ConversationDuration"]) >= 1


@pytest.mark.parametrize(("digit", "status"), [(6, "busy"), (7, "no-answer"), (8, "failed")])
async def test_unanswered_outcomes_send_only_terminal(world: Any, digit: int, status: str) -> None:
    w = await world()
    code, _ = await dial(w, f"+91987654321{digit}")
    assert code == 200
    final = (await until(lambda: w["sink"].terminal()))[0]
    assert final["Status"] == status and len(w["sink"].got) == 1
    assert w["bot"].received == []


async def test_illegal_chunk_is_a_violation(world: Any) -> None:
    w = await world(bot=Bot(chunk_bytes=640))
    _, body = await dial(w, "+919876543210")
    await until(lambda: w["sink"].terminal())
    rep = await report(w)
    assert [(v["kind"], v["call_sid"]) for v in rep["violations"]] == [
        ("stream_frame", body["Call"]["Sid"])
    ]
    assert "640 bytes" in rep["violations"][0]["detail"]


async def test_callee_hangs_up_with_stop(world: Any) -> None:
    w = await world(bot=Bot(close_after_dtmf=False))
    await dial(w, "+919876543219")  # 9: hangs up early (0.3 s here)
    final = (await until(lambda: w["sink"].terminal()))[0]
    assert final["Status"] == "completed"
    stop = w["bot"].events("stop")[0]
    assert stop["stop"]["reason"] == "callended" and stop["stop"]["call_sid"] == final["CallSid"]


async def test_unreachable_stream_fails_the_call(world: Any) -> None:
    w = await world()
    await dial(w, "+919876543210", StreamUrl="ws://127.0.0.1:9/nobody")
    final = (await until(lambda: w["sink"].terminal()))[0]
    assert final["Status"] == "failed"
    assert [v["kind"] for v in (await report(w))["violations"]] == ["stream_handshake"]


async def test_concurrency_cap_answers_429(world: Any) -> None:
    w = await world(bot=Bot(close_after_dtmf=False))
    accounts = [{"sid": "sandbox", "api_key": "sandbox-key", "api_token": "sandbox-token",
                 "max_concurrent": 1, "calls_per_minute": 1000}]  # fmt: skip
    async with w["http"].put("/_sandbox/accounts", json=accounts) as resp:
        assert resp.status == 200
    assert (await dial(w, "+919876543210"))[0] == 200
    async with w["http"].post(CONNECT, data=form(w, "+919876543211"), headers=AUTH) as resp:
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) >= 1
        assert (await resp.json())["RestException"]["Status"] == 429
    rep = await report(w)
    assert [v["kind"] for v in rep["violations"]] == ["concurrency_cap"]
    assert rep["rejected"] == {"concurrency_cap": 1} and rep["calls_total"] == 1


async def test_request_budget_answers_429_with_retry_after(world: Any) -> None:
    config = fast_config(accounts=[AccountConfig.demo(10, 2)])
    w = await world(config)
    for _ in range(2):
        async with w["http"].get("/v1/Accounts/sandbox/Calls/nope.json", headers=AUTH) as resp:
            assert resp.status == 404
    async with w["http"].get("/v1/Accounts/sandbox/Calls.json", headers=AUTH) as resp:
        assert resp.status == 429
        assert 1 <= int(resp.headers["Retry-After"]) <= 60


@pytest.mark.parametrize(
    ("path", "auth"),
    [
        (CONNECT, None),
        (CONNECT, basic("sandbox-key", "wrong")),
        (CONNECT, basic("other-key", "sandbox-token")),
        ("/v1/Accounts/nobody/Calls/connect", AUTH),
    ],
)
async def test_basic_auth_401(world: Any, path: str, auth: dict[str, str] | None) -> None:
    w = await world()
    async with w["http"].post(path, data=form(w, "+919876543210"), headers=auth) as resp:
        assert resp.status == 401
        assert (await resp.json())["RestException"]["Status"] == 401
    assert (await report(w))["calls_total"] == 0


INVALID = [
    ("From", {"From": ""}),
    ("From", {"From": "9876543210"}),
    ("From", {"From": "+91123"}),
    ("CallerId", {"CallerId": ""}),
    ("StreamUrl", {"StreamUrl": "http://example.com/ws"}),
    ("StreamUrl", {"StreamUrl": "wss://example.com/" + "a" * 600}),
    ("StreamType", {"StreamType": "unidirectional"}),
    ("Record", {"Record": "yes"}),
    ("RecordingChannels", {"RecordingChannels": "triple"}),
    ("TimeLimit", {"TimeLimit": "0"}),
    ("TimeLimit", {"TimeLimit": "14401"}),
    ("TimeLimit", {"TimeLimit": "ten"}),
    ("CustomField", {"CustomField": "x" * 129}),
    ("StatusCallback", {"StatusCallback": "ftp://example.com/cb"}),
    ("StatusCallbackEvents[]", {"StatusCallbackEvents[]": "hungup"}),
    ("StreamName", {"StreamName": "n" * 33}),
    ("To", {"To": "+919876543210"}),
]


@pytest.mark.parametrize(
    ("field", "change"), INVALID, ids=[f"{f}-{i}" for i, (f, _) in enumerate(INVALID)]
)
@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_invalid_parameter_400_names_field(
    world: Any, field: str, change: dict[str, str], encoding: str
) -> None:
    w = await world()
    fields = dict(form(w, "+919876543210"))
    fields.update(change)
    data: Any = fields
    if encoding == "multipart":
        data = aiohttp.FormData(list(fields.items()), default_to_multipart=True)
    async with w["http"].post(CONNECT, data=data, headers=AUTH) as resp:
        assert resp.status == 400
        error = (await resp.json())["RestException"]
    assert error["Status"] == 400 and error["Code"] == 400
    assert error["Message"].startswith(f"{field}:")
    assert (await report(w))["calls_total"] == 0


MULTIPART_X = {"Content-Type": "multipart/form-data; boundary=x"}


@pytest.mark.parametrize(
    ("method", "path", "kw", "status"),
    [
        ("POST", CONNECT, {"json": {"From": "+919876543210"}}, 400),
        ("POST", CONNECT, {"data": b"--x\r\nbroken", "headers": MULTIPART_X}, 400),
        ("POST", CONNECT, {"data": b"\xff\xfe=%%%"}, 400),
        ("GET", "/v1/nothing/here", {}, 404),
        ("POST", "/v1/Accounts/sandbox/Calls/abc.json", {}, 405),
        ("GET", "/v1/Accounts/sandbox/Calls.json?PageSize=101", {}, 400),
        ("GET", "/v1/Accounts/sandbox/Calls.json?DateCreated=yesterday", {}, 400),
        ("GET", "/v1/Accounts/sandbox/Calls.json?After=-1", {}, 400),
        ("PUT", "/_sandbox/faults", {"json": {"chaos": 1}}, 400),
        ("PUT", "/_sandbox/faults", {"data": b"{not json"}, 400),
        ("PUT", "/_sandbox/numbers", {"json": {"+919876543210": {"outcome": "x"}}}, 400),
        ("PUT", "/_sandbox/accounts", {"json": [{"sid": "a"}]}, 400),
    ],
)  # fmt: skip
async def test_garbage_gets_4xx(world: Any, method: str, path: str, kw: dict, status: int) -> None:
    w = await world()
    headers = {**AUTH, **kw.pop("headers", {})}
    async with w["http"].request(method, path, headers=headers, **kw) as resp:
        assert resp.status == status
        if path.startswith("/v1/"):
            assert (await resp.json())["RestException"]["Status"] == status
    async with w["http"].get("/_sandbox/healthz") as resp:
        assert resp.status == 200


async def test_bulk_listing_pages_with_cursor(world: Any) -> None:
    w = await world()
    sids = [(await dial(w, "+919876543216"))[1]["Call"]["Sid"] for _ in range(5)]
    await until(lambda: len(w["sink"].terminal()) == 5)
    seen: list[str] = []
    path: str | None = "/v1/Accounts/sandbox/Calls.json?PageSize=2&Status=busy"
    while path:
        async with w["http"].get(path, headers=AUTH) as resp:
            body = await resp.json()
        assert body["Metadata"]["Total"] == 5 and body["Metadata"]["PageSize"] == 2
        seen.extend(c["Sid"] for c in body["Calls"])
        path = body["Metadata"]["NextPageUri"]
    assert seen == sids
    query = f"Sid={sids[1]},{sids[3]}&DateCreated=gte:2000-01-01 00:00:00;lte:2999-01-01 00:00:00"
    async with w["http"].get(f"/v1/Accounts/sandbox/Calls.json?{query}", headers=AUTH) as resp:
        assert [c["Sid"] for c in (await resp.json())["Calls"]] == [sids[1], sids[3]]
    async with w["http"].get("/v1/Accounts/sandbox/Calls/unknown.json", headers=AUTH) as resp:
        assert resp.status == 404


async def test_number_override_and_reset(world: Any) -> None:
    w = await world()
    async with w["http"].put("/_sandbox/numbers", json={"+919876543210": {"outcome": "busy"}}) as r:
        assert r.status == 200
    await dial(w, "+919876543210")
    assert (await until(lambda: w["sink"].terminal()))[0]["Status"] == "busy"
    async with w["http"].post("/_sandbox/reset") as resp:
        assert resp.status == 200
    rep = await report(w)
    assert rep["calls_total"] == 0 and rep["dials_per_number"] == {}
    await dial(w, "+919876543216")  # rule again after reset: override gone, 6 is busy
    await dial(w, "+919876543218")
    await until(lambda: len(w["sink"].terminal()) == 3)
    # the rule by last digit (6 busy, 8 failed), whichever call ended first
    assert {f["From"]: f["Status"] for f in w["sink"].terminal()[1:]} == {
        "+919876543216": "busy",
        "+919876543218": "failed",
    }


async def set_faults(w: dict[str, Any], **faults: Any) -> None:
    async with w["http"].put("/_sandbox/faults", json={"seed": 7, **faults}) as resp:
        assert resp.status == 200, await resp.text()


async def test_fault_drop_callbacks_leaves_call_details(world: Any) -> None:
    w = await world()
    await set_faults(w, drop_callbacks=1.0)
    sid = (await dial(w, "+919876543216"))[1]["Call"]["Sid"]
    # Dropping is decided as the callback is queued, so once the drop is counted
    # nothing can still be on its way.
    await until_report(w, lambda r: r["faults_injected"].get("drop_callbacks", 0) >= 1)
    assert w["sink"].got == []
    async with w["http"].get(f"/v1/Accounts/sandbox/Calls/{sid}.json", headers=AUTH) as resp:
        assert (await resp.json())["Call"]["Status"] == "busy"


async def test_fault_drop_terminal_callbacks_drops_only_terminal_ones(world: Any) -> None:
    w = await world()
    await set_faults(w, drop_terminal_callbacks=1.0)
    sid = (await dial(w, "+919876543216", events=["ringing"]))[1]["Call"]["Sid"]
    await until(lambda: len(w["sink"].got) == 1)
    await until_report(w, lambda r: [d["sid"] for d in r["terminal_dropped"]] == [sid])
    assert [f["EventType"] for _, f in w["sink"].got] == ["ringing"]
    async with w["http"].get(f"/v1/Accounts/sandbox/Calls/{sid}.json", headers=AUTH) as resp:
        assert (await resp.json())["Call"]["Status"] == "busy"
    async with w["http"].get("/_sandbox/report") as resp:
        report = await resp.json()
    assert [d["sid"] for d in report["terminal_dropped"]] == [sid]
    assert report["requests_by_kind"] == {"connect": 1, "details": 1}


async def test_fault_dup_and_reorder_callbacks(world: Any) -> None:
    w = await world()
    await set_faults(w, dup_callbacks=1.0, reorder_callbacks=1.0)
    await dial(w, "+919876543216", events=["ringing"])
    await until(lambda: len(w["sink"].got) == 4)
    assert [f["EventType"] for _, f in w["sink"].got] == [
        "terminal",
        "terminal",
        "ringing",
        "ringing",
    ]


async def test_fault_late_callbacks(world: Any) -> None:
    w = await world()
    await set_faults(w, late_callbacks=1.0, late_delay_s=0.4)
    start = time.monotonic()
    await dial(w, "+919876543216")
    await until(lambda: w["sink"].terminal())
    assert time.monotonic() - start >= 0.4


async def test_callback_delivery_is_retried(world: Any) -> None:
    w = await world(sink=Sink(fail_first=2))
    await dial(w, "+919876543216")
    await until(lambda: w["sink"].terminal())
    assert w["sink"].attempts == 3


async def test_fault_5xx_and_429(world: Any) -> None:
    w = await world()
    await set_faults(w, http_5xx=1.0)
    status, body = await dial(w, "+919876543210")
    assert status == 503 and body["RestException"]["Status"] == 503
    await set_faults(w, http_429=1.0, retry_after_s=9)
    async with w["http"].post(CONNECT, data=form(w, "+919876543210"), headers=AUTH) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "9"
    assert (await report(w))["calls_total"] == 0


async def test_fault_4xx_refuses_with_the_status_asked_for(world: Any) -> None:
    w = await world()
    await set_faults(w, http_4xx=1.0, http_4xx_status=409)
    status, body = await dial(w, "+919876543210")
    assert status == 409 and body["RestException"]["Status"] == 409
    rep = await report(w)
    assert rep["calls_total"] == 0 and rep["rejected"] == {"fault_4xx": 1}
    for bad in (401, 429, 500, "400", True):  # 401 and 429 come from their real causes
        with pytest.raises(ValueError, match="http_4xx_status"):
            Faults(http_4xx_status=bad)  # type: ignore[arg-type]


async def test_fault_reset_after_accept_still_places_the_call(world: Any) -> None:
    w = await world()
    await set_faults(w, reset_after_accept=1.0)
    with pytest.raises(aiohttp.ClientError):
        await dial(w, "+919876543216")
    await set_faults(w)
    await until(lambda: w["sink"].terminal())
    assert (await report(w))["calls_total"] == 1


async def test_callee_presses_a_key_after_each_utterance(world: Any) -> None:
    w = await world(bot=Bot(keys_wanted=3))
    sid = (await dial(w, "+919876543210"))[1]["Call"]["Sid"]
    await until(lambda: w["sink"].terminal())
    rep = await report(w)
    assert rep["dtmf_sent"] == {sid: ["1", "2", "3"]}
    assert [m["mark"]["name"] for m in w["bot"].events("mark")] == ["m1", "m2", "m3"]
    assert rep["violations"] == []


async def test_clear_echoes_pending_marks_at_once(aiohttp_server: Any) -> None:
    marks: list[float] = []

    async def bot(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            data = json.loads(msg.data)
            if data["event"] == "start":
                sid = data["stream_sid"]
                payload = base64.b64encode(bytes(32_000)).decode()  # 2 s at 8 kHz
                await ws.send_json(
                    {"event": "media", "stream_sid": sid, "media": {"payload": payload}}
                )
                await ws.send_json({"event": "mark", "streamSid": sid, "mark": {"name": "long"}})
                sent = time.monotonic()
                await ws.send_json({"event": "clear", "stream_sid": sid})
            elif data["event"] == "mark":
                marks.append(time.monotonic() - sent)
                await ws.close()
        return ws

    peer = web.Application()
    peer.router.add_get("/ws", bot)
    peer_server = await aiohttp_server(peer)
    sandbox = await aiohttp_server(create_app(fast_config()))
    async with aiohttp.ClientSession(str(sandbox.make_url(""))) as http:
        w = {"http": http, "ws_url": f"ws://127.0.0.1:{peer_server.port}/ws",
             "callback": "http://127.0.0.1:9/none"}  # fmt: skip
        assert (await dial(w, "+919876543210"))[0] == 200
        await until(lambda: marks)
        assert marks[0] < 1.0  # not after the 2 s of audio
        rep = await until_report(w, lambda r: r["active"].get("sandbox") == 0)
        assert rep["violations"] == []


async def until_report(w: dict[str, Any], check: Callable[[dict[str, Any]], bool]) -> dict:
    async def probe() -> dict[str, Any] | None:
        rep = await report(w)
        return rep if check(rep) else None

    return await polling.until_async(probe, what="sandbox report")

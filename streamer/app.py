"""The streamer process: the websocket server Exotel's AgentStream connects to.

``GET /stream/{call_id}?token=...&sample-rate=...`` authenticates the stream
(a per-call token bound to the call's current attempt), then runs a
``Session`` with the campaign's bot or, for ``relay:`` specs, a ``Relay``.
Also ``/livez`` (process alive, no Redis), ``/readyz`` (Redis answers and
not draining; ``/healthz`` is its alias). ``/metrics`` is served on the
internal metrics port only (``dialer.platform.scrape``), never on this public one.
Holds no state that matters across a crash: everything a call yields is
written to Redis as it happens. When a stream ends its call is told so
(``CallStore.record_end``): a lost terminal callback then costs a short
grace, not the answered-call check.

Drain (``dialer.platform.serving``): on SIGTERM new streams get 503 and readiness
goes red; live calls run on until they end or ``STREAMER_DRAIN_S`` passes,
then the rest are closed with 1001 "server draining".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from dialer.core.errors import ConfigError, ValidationError
from dialer.core.settings import Settings, require_server_secrets
from dialer.core.tokens import verify_stream_token
from dialer.net.egress import Egress
from dialer.platform import serving
from dialer.store.connection import connect_async
from streamer.audio import RATES
from streamer.bots import parse_bot_spec
from streamer.bots.relay import Relay
from streamer.metrics import Metrics
from streamer.pacing import Pacing
from streamer.session import Session
from streamer.store import CallInfo, CallStore
from streamer.wire import GOING_AWAY, INTERNAL_ERROR, POLICY_VIOLATION

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", aioredis.Redis)
STORE = web.AppKey("store", CallStore)
HTTP = web.AppKey("http", aiohttp.ClientSession)
METRICS = web.AppKey("metrics", Metrics)
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
IDLE = web.AppKey("idle", asyncio.Event)  # set while no stream is open (drain waits on it)
PACING = web.AppKey("pacing", Pacing)  # the one timer that paces every session's audio
MAX_FRAME_BYTES = 4 * 1024 * 1024  # a 100 KB chunk is ~136 KB of JSON; leave room
END_RECORD_TIMEOUT_S = 5.0


def url_rate(value: str | None) -> int:
    """The URL's ``sample-rate``; anything but 8000/16000/24000 falls back to 8000."""
    if value and value.isdigit() and int(value) in RATES:
        return int(value)
    if value:
        log.warning("unsupported sample-rate %r in stream URL, using 8000", value)
    return 8000


def _relay_url(spec: str) -> str | None:
    try:
        parsed = parse_bot_spec(spec)
    except ValidationError:
        return None
    return parsed.arg if parsed.kind == "relay" else None


async def stream(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    call_id = request.match_info["call_id"]
    if serving.draining(app):
        # Exotel retries the handshake once; by then a ready streamer may take it.
        raise web.HTTPServiceUnavailable(text="draining", headers={"Retry-After": "1"})
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, autoping=True)
    await ws.prepare(request)
    sockets, metrics = app[SOCKETS], app[METRICS]
    sockets.add(ws)
    app[IDLE].clear()
    metrics.active_streams.inc()
    call: CallInfo | None = None
    accepted = False  # the stream was let in: its end is an end signal for the call
    try:
        granted = verify_stream_token(
            app[SETTINGS].keyring.stream_keys(), call_id, request.query.get("token"), time.time()
        )
        call = await app[STORE].load(call_id) if granted is not None else None
        why = "bad token or call"
        if call is not None and granted is not None:
            why = await app[STORE].claim_stream(call, *granted)
        if why != "ok":
            # Accept-then-close gives Exotel (and logs) a reason; nothing is recorded.
            # The log names the call, never the token.
            metrics.streams_rejected.inc()
            log.warning("stream refused call_id=%r reason=%s", call_id[:80], why)
            await ws.close(code=POLICY_VIOLATION, message=b"stream refused")
            return ws
        assert call is not None
        accepted = True
        relay = _relay_url(call.bot)
        if relay is not None:
            await Relay(ws, call, app[STORE], metrics, relay, app[HTTP]).run()
        else:  # including a broken spec: the session records why the bot failed
            rate = url_rate(request.query.get("sample-rate"))
            session = Session(
                ws,
                call,
                app[STORE],
                metrics,
                app[PACING],
                url_rate=rate,
                transport=request.transport,
            )
            await session.run()
    except Exception:
        # One broken call must never take the server down; hang it up instead.
        log.exception("stream failed call_id=%s", call_id)
        await ws.close(code=INTERNAL_ERROR)
    finally:
        # Before the socket counts as gone: a drain waits for this write too.
        if accepted and call is not None:
            await _record_end(app, call)
        sockets.discard(ws)
        if not sockets:
            app[IDLE].set()
        metrics.active_streams.dec()
    return ws


async def _record_end(app: web.Application, call: CallInfo) -> None:
    """The stream is over: the call is settled a grace from now if no callback does.

    Best effort, bounded: without it the answered-call check still settles it.
    """
    grace = app[SETTINGS].DIALER_STREAM_GRACE_S
    try:
        async with asyncio.timeout(END_RECORD_TIMEOUT_S):
            await app[STORE].record_end(call, time.time(), grace)
    except (TimeoutError, aioredis.RedisError, OSError) as exc:
        log.warning("stream end not recorded call_id=%s: %s", call.call_id, type(exc).__name__)


async def readyz(request: web.Request) -> web.Response:
    """Can take a new stream: not draining, and Redis answers (a stream needs its call)."""
    app = request.app
    if serving.draining(app):
        return serving.not_ready("draining")
    try:
        async with asyncio.timeout(2):
            await app[REDIS].ping()
    except (TimeoutError, aioredis.RedisError, OSError):
        return serving.not_ready("redis unreachable")
    return web.json_response({"ok": True, "streams": len(app[SOCKETS])})


async def render_metrics(app: web.Application) -> web.Response:
    body, content_type = app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _resources(app: web.Application) -> AsyncIterator[None]:
    if not app[SETTINGS].REDIS_URL:
        raise ConfigError("REDIS_URL: the streamer needs Redis")
    # Blocking pool: 1,000 streams starting at once wait for a connection rather
    # than fail (the default pool raises past its size and the call was dropped).
    client = connect_async(app[SETTINGS], max_connections=256, timeout=10)
    app[REDIS] = client
    app[STORE] = CallStore(client)
    # Relay bot URLs come from API callers: connect only under the egress policy.
    app[HTTP] = Egress(app[SETTINGS].egress_policy).client_session(total_s=None)
    yield
    await app[HTTP].close()
    await client.aclose()


async def _pacing(app: web.Application) -> AsyncIterator[None]:
    """The process's pacing task, owned by the app (see streamer.pacing)."""
    pacing = app[PACING] = Pacing()
    task = asyncio.create_task(pacing.run(), name="pacing")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def drain(app: web.Application) -> None:
    """After SIGTERM: let live calls end on their own, up to ``STREAMER_DRAIN_S``."""
    limit = app[SETTINGS].STREAMER_DRAIN_S
    live = len(app[SOCKETS])
    log.info("draining: %d live streams, waiting up to %.0fs", live, limit)
    try:
        async with asyncio.timeout(limit):
            await app[IDLE].wait()
    except TimeoutError:
        log.warning("drain limit reached: closing %d streams", len(app[SOCKETS]))
    await _close_sockets(app)


async def _close_sockets(app: web.Application) -> None:
    """Every stream still open is closed with 1001 (going away), saying why."""
    open_now = app[SOCKETS]  # (a local: mypy mis-reads a set-typed AppKey inline)
    sockets = list(open_now)
    reason = b"server draining" if serving.draining(app) else b"server shutdown"
    await asyncio.gather(
        *(ws.close(code=GOING_AWAY, message=reason) for ws in sockets),
        return_exceptions=True,
    )


def create_app(settings: Settings) -> web.Application:
    """The streamer app; ConfigError (fail closed) without a real secret and API key."""
    require_server_secrets(settings)
    app = web.Application()
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[SOCKETS] = set[web.WebSocketResponse]()
    app[IDLE] = asyncio.Event()
    app[IDLE].set()
    serving.mark_servable(app)
    app.cleanup_ctx.append(_resources)
    app.cleanup_ctx.append(_pacing)
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/stream/{call_id}", stream)
    app.router.add_get("/livez", serving.livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", readyz)  # the older name, kept as an alias
    return app


def run(settings: Settings, listen: serving.Listen) -> None:
    """Serve until interrupted (the ``dialer streamer`` command)."""
    # The drain already waited for the calls; cleanup only closes what is left.
    # (No access log there: the request line carries the stream token.)
    serving.run(create_app(settings), listen, render_metrics, drain=drain, shutdown_timeout_s=5)

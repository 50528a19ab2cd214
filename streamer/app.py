"""The streamer process: the websocket server Exotel's AgentStream connects to.

``GET /stream/{call_id}?token=...&sample-rate=...`` authenticates the stream
(a per-call token bound to the call's current attempt), then runs a
``Session`` with the campaign's bot or, for ``relay:`` specs, a ``Relay``.
Also ``/healthz``; ``/metrics`` is served on the internal metrics port only
(``dialer.scrape``), never on this public one. Holds no state that matters across a
crash: everything a call yields is written to Redis as it happens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from dialer import scrape
from dialer.egress import Egress
from dialer.errors import ConfigError, ValidationError
from dialer.settings import Settings
from dialer.tokens import verify_stream_token
from streamer.audio import RATES
from streamer.bots import parse_bot_spec
from streamer.bots.relay import Relay
from streamer.metrics import Metrics
from streamer.session import Session
from streamer.store import CallStore
from streamer.wire import GOING_AWAY, INTERNAL_ERROR, POLICY_VIOLATION

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", aioredis.Redis)
STORE = web.AppKey("store", CallStore)
HTTP = web.AppKey("http", aiohttp.ClientSession)
METRICS = web.AppKey("metrics", Metrics)
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
MAX_FRAME_BYTES = 4 * 1024 * 1024  # a 100 KB chunk is ~136 KB of JSON; leave room


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
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, autoping=True)
    await ws.prepare(request)
    sockets, metrics = app[SOCKETS], app[METRICS]
    sockets.add(ws)
    metrics.active_streams.inc()
    try:
        attempt = verify_stream_token(
            app[SETTINGS].secret, call_id, request.query.get("token"), time.time()
        )
        call = await app[STORE].load(call_id) if attempt is not None else None
        if call is None or call.attempt != attempt:
            # Accept-then-close gives Exotel (and logs) a reason; nothing is recorded.
            metrics.streams_rejected.inc()
            log.warning("stream refused call_id=%s", call_id)
            await ws.close(code=POLICY_VIOLATION, message=b"bad token or call")
            return ws
        relay = _relay_url(call.bot)
        if relay is not None:
            await Relay(ws, call, app[STORE], metrics, relay, app[HTTP]).run()
        else:  # including a broken spec: the session records why the bot failed
            rate = url_rate(request.query.get("sample-rate"))
            await Session(ws, call, app[STORE], metrics, url_rate=rate).run()
    except Exception:
        # One broken call must never take the server down; hang it up instead.
        log.exception("stream failed call_id=%s", call_id)
        await ws.close(code=INTERNAL_ERROR)
    finally:
        sockets.discard(ws)
        metrics.active_streams.dec()
    return ws


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "streams": len(request.app[SOCKETS])})


async def render_metrics(app: web.Application) -> web.Response:
    body, content_type = app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _resources(app: web.Application) -> AsyncIterator[None]:
    url = app[SETTINGS].REDIS_URL
    if not url:
        raise ConfigError("REDIS_URL: the streamer needs Redis")
    # Blocking pool: 1,000 streams starting at once wait for a connection rather
    # than fail (the default pool raises past its size and the call was dropped).
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=256, timeout=10, decode_responses=True
    )
    client = aioredis.Redis(connection_pool=pool)
    app[REDIS] = client
    app[STORE] = CallStore(client)
    # Relay bot URLs come from API callers: connect only under the egress policy.
    app[HTTP] = Egress(app[SETTINGS].egress_policy).client_session(total_s=None)
    yield
    await app[HTTP].close()
    await client.aclose()


async def _close_sockets(app: web.Application) -> None:
    """On shutdown every open stream is closed with 1001 (going away)."""
    open_now = app[SOCKETS]
    sockets = list(open_now)
    await asyncio.gather(
        *(ws.close(code=GOING_AWAY, message=b"server shutdown") for ws in sockets),
        return_exceptions=True,
    )


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[SOCKETS] = set[web.WebSocketResponse]()
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/stream/{call_id}", stream)
    app.router.add_get("/healthz", healthz)
    return app


def run(settings: Settings, host: str = "0.0.0.0", port: int | None = None) -> None:
    """Serve until interrupted (the ``dialer streamer`` command)."""
    port = settings.STREAMER_PORT if port is None else port
    app = create_app(settings)
    app.cleanup_ctx.append(
        scrape.listener(
            render_metrics, settings.DIALER_METRICS_HOST, settings.STREAMER_METRICS_PORT
        )
    )
    web.run_app(app, host=host, port=port, print=None, shutdown_timeout=5)


def main(settings: Settings | None = None) -> None:
    from dialer.logs import setup_logging
    from dialer.settings import load_settings

    settings = settings or load_settings()
    setup_logging(settings.DIALER_LOG_LEVEL, settings)
    run(settings)

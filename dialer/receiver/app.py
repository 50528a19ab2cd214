"""The receiver process: Exotel status callbacks and the public REST API.

``create_app(settings)`` builds it; ``run(settings)`` serves it. Resources
(Redis clients, the Celery producer, its thread) are opened and closed in
``cleanup_ctx``. Handlers stay short: verify, parse, apply, respond. The
status callback's use case is ``dialer.services.callback``; the settle step's
slow follow-ups (webhooks, caller-id statistics) go to Celery.

Probes: ``/livez`` (the process answers; no Redis), ``/readyz`` (Redis
answers and not draining; ``/healthz`` is its alias). On SIGTERM readiness
goes red and in-flight requests finish before the process exits
(``dialer.platform.serving``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from aiohttp import web

from dialer.core import tokens
from dialer.core.errors import ProtocolError
from dialer.core.settings import Settings, require_server_secrets
from dialer.net.egress import Egress
from dialer.platform import queue, serving
from dialer.platform.queue import make_celery
from dialer.receiver import api, callbacks, ratelimit
from dialer.receiver.appkeys import (
    AREDIS,
    CELERY,
    EGRESS,
    EXECUTOR,
    LIMITER,
    METRICS,
    PENDING,
    PROBE_DEADLINE_S,
    PROBE_SLOTS,
    PROBES,
    RUNTIME,
    SCOPE,
    SETTINGS,
    in_thread,
)
from dialer.receiver.metrics import Metrics
from dialer.receiver.models import CallbackOut, ExotelCallback, Health, SigQuery
from dialer.receiver.openapi import API, Input, Problem, Reply, Text, problem, reply
from dialer.receiver.ui import sessions
from dialer.services import callback
from dialer.services.accounts import make_account, save_account
from dialer.services.runtime import Runtime
from dialer.store import apikeys, keys, replies
from dialer.store.admission import AsyncRedisLimiter
from dialer.store.connection import connect_async

log = logging.getLogger(__name__)

PUBLISH_WAIT_S = 2.0  # a follow-up publish slower than this finishes behind the answer
MAX_BODY = 8 * 1024 * 1024  # CSV uploads; callbacks are far smaller


async def _resources(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    # A blocking pool: under a burst, wait for a connection instead of failing
    # (redis-py's default pool raises past max_connections, which became 503s).
    app[AREDIS] = connect_async(
        s, max_connections=256, timeout=5, socket_timeout=5, socket_connect_timeout=2
    )
    app[RUNTIME] = Runtime(s)
    app[LIMITER] = AsyncRedisLimiter(
        admit_lease_s=s.DIALER_RECONCILE_AFTER_S,
        reserve_pct=s.DIALER_RECONCILE_RESERVE_PCT,
    )
    app[CELERY] = make_celery(s)  # a producer: publishes by task name only
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="receiver-io")
    app[EGRESS] = Egress(s.egress_policy)
    app[PROBES] = app[EGRESS].client_session(total_s=PROBE_DEADLINE_S)
    app[PROBE_SLOTS] = asyncio.Semaphore(16)
    if s.exotel_configured:
        try:
            register_env_account(app[RUNTIME].r, s)
        except redis.RedisError as exc:
            log.error("cannot register the environment's account: %s", exc)
    yield
    await app[PROBES].close()
    pending: set[asyncio.Task[None]] = app[PENDING]
    if pending:  # follow-ups published behind their 200: let them finish
        await asyncio.wait(set(pending), timeout=10)
    app[EXECUTOR].shutdown(wait=True, cancel_futures=False)
    await app[AREDIS].aclose()
    app[RUNTIME].r.close()


def register_env_account(r: redis.Redis, s: Settings) -> None:
    assert s.EXOTEL_ACCOUNT_SID and s.EXOTEL_API_KEY and s.EXOTEL_API_TOKEN
    save_account(
        r,
        make_account(
            s.EXOTEL_ACCOUNT_SID,
            s.EXOTEL_API_KEY,
            s.EXOTEL_API_TOKEN.get_secret_value(),
            s.EXOTEL_CALLER_ID or "",
            api_url=str(s.EXOTEL_API_URL),
            max_concurrent_calls=s.EXOTEL_MAX_CONCURRENT,
            calls_per_minute=s.EXOTEL_CALLS_PER_MINUTE,
        ),
        s.keyring,
    )


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # aiohttp's own refusals (unknown path, wrong method, body over the cap)
        # get the API's one error body; the Allow header of a 405 is kept.
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return problem(exc.status, exc.reason.lower(), headers=headers)
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        if isinstance(exc, ConnectionResetError):
            raise
        # Exotel retries a failed callback: better than accepting one we cannot store.
        log.error("store unavailable: %s", type(exc).__name__)
        return problem(503, "store unavailable, retry", headers={"Retry-After": "5"})


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every ``/v1`` route but the OpenAPI document needs a key (or a dashboard session),
    and so does the dashboard's own ``/ui/api``; the scope goes on the request."""
    path = request.path
    if (path.startswith("/v1/") and path != "/v1/openapi.json") or path.startswith("/ui/api/"):
        found = await caller_scope(request)
        if isinstance(found, web.Response):
            return found
        request[SCOPE] = found
    return await handler(request)


async def caller_scope(request: web.Request) -> apikeys.Scope | web.Response:
    """The API key's scope, or the dashboard session's (cookie + CSRF header); else a refusal.

    An ``Authorization`` header always wins: a request with a bad key is never
    rescued by a cookie. A session's state-changing request must carry the
    CSRF token of that very cookie.
    """
    if "Authorization" in request.headers or sessions.COOKIE not in request.cookies:
        found = await key_scope(request)
    else:
        found = await session_scope(request)
        if found is not None and request.method not in sessions.SAFE_METHODS:
            cookie = request.cookies[sessions.COOKIE]
            given = request.headers.get(sessions.CSRF_HEADER, "")
            if not sessions.csrf_ok(request.app[SETTINGS].keyring.session_keys(), cookie, given):
                return problem(403, "missing or wrong CSRF token")
    if found is None:
        return problem(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})
    return found


async def key_scope(request: web.Request) -> apikeys.Scope | None:
    given = apikeys.bearer(request.headers.get("Authorization", ""))
    return await scope_of_key(request.app, given) if given else None


async def scope_of_key(app: web.Application, given: str) -> apikeys.Scope | None:
    """The scope of an API key as given (header or dashboard sign-in); None if unknown."""
    if apikeys.is_bootstrap(given, app[SETTINGS].api_key):
        return apikeys.BOOTSTRAP
    key_id = apikeys.key_id_of(given)
    if key_id is None:
        return None
    # One round trip on every request: the record of the id the key names, with
    # the digest's lookup, which alone authenticates (it must name that id).
    async with app[AREDIS].pipeline(transaction=False) as pipe:
        pipe.hget(keys.API_KEY_DIGESTS, apikeys.digest(given))
        pipe.hget(keys.API_KEYS, key_id)
        listed, record = await pipe.execute()
    if replies.text(listed) != key_id:
        return None
    return apikeys.scope_from_record(replies.text(record))


async def session_scope(request: web.Request) -> apikeys.Scope | None:
    """The scope of the key the session cookie names, if the cookie is valid for that key now."""
    value = request.cookies.get(sessions.COOKIE)
    now = time.time()
    parsed = sessions.parse(value, now=now)
    if value is None or parsed is None:
        return None
    key_id = parsed[0]
    s = request.app[SETTINGS]
    if key_id == apikeys.BOOTSTRAP.key_id:
        found: apikeys.Scope | None = apikeys.BOOTSTRAP
        key_digest = apikeys.digest(s.api_key)
    else:
        stored = await request.app[AREDIS].hget(keys.API_KEYS, key_id)
        raw = None if stored is None else str(stored)  # decode_responses: always str
        found = apikeys.scope_from_record(raw)
        key_digest = apikeys.record_digest(raw) if raw else ""
    if found is None:
        return None
    claim = sessions.verify(s.keyring.session_keys(), value, key_digest, now=now)
    return found if claim is not None else None


@API.route(
    "POST",
    "/exotel/status/{call_id}",
    operation_id="exotelStatusCallback",
    summary="Exotel status callback (authenticated by the HMAC-signed URL, not the API key)",
    description="A missing or wrong `sig` is a 403 and changes nothing. The body is read "
    "as Exotel sends it (form, multipart or JSON; key spellings vary).",
    tags=("exotel",),
    auth=False,
    query=SigQuery,
    body={
        "application/x-www-form-urlencoded": Text(read=False, model=ExotelCallback),
        "multipart/form-data": Text(read=False, model=ExotelCallback),
        "application/json": Text(read=False, model=ExotelCallback),
    },
    responses={
        200: Reply("recorded (or ignored: stale attempt, unknown status)", CallbackOut),
        400: Reply("malformed callback body", Problem),
        403: Reply("missing or wrong signature", Problem),
        404: Reply("unknown call", Problem),
        503: Reply("not stored within DIALER_CALLBACK_DEADLINE_S: Exotel retries", Problem),
    },
)
async def status_callback(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Store the callback within ``DIALER_CALLBACK_DEADLINE_S``, then answer.

    Exotel waits 15 s for the 200 and retries only twice. So the work before
    the answer is bounded: verify, parse, record, transition (and admit the
    next call) must finish within the deadline or the answer is 503 and
    Exotel tries again (a repeat is a no-op once stored). Publishing the
    follow-up tasks goes behind the answer when the broker is slow: the task
    stays owned by the app and finishes (or is logged) at shutdown at latest.
    """
    app = request.app
    deadline_s = app[SETTINGS].DIALER_CALLBACK_DEADLINE_S
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(deadline_s):
            response, publish = await _handle_callback(request, inp)
    except TimeoutError:
        app[METRICS].callbacks.labels(result="timeout").inc()
        log.error("callback not stored within %.1fs: answering 503", deadline_s)
        return problem(503, "callback not stored in time, retry", headers={"Retry-After": "2"})
    if publish is not None:
        task = loop.create_task(_publish(app, publish))
        pending = app[PENDING]
        pending.add(task)
        task.add_done_callback(pending.discard)
        left = deadline_s - (loop.time() - started)
        await asyncio.wait({task}, timeout=max(0.0, min(left, PUBLISH_WAIT_S)))
    return response


async def _publish(app: web.Application, publish: Callable[[], None]) -> None:
    try:
        await in_thread(app, publish)
    except Exception as exc:
        # The state change is stored; beat's tick admits again and reconciliation
        # re-sends a lost dial. Only the follow-up itself is lost: say so.
        log.error("follow-up not published: %s: %s", type(exc).__name__, exc)


async def _handle_callback(
    request: web.Request, inp: Input[Any, Any]
) -> tuple[web.Response, Callable[[], None] | None]:
    app = request.app
    s = app[SETTINGS]
    metrics = app[METRICS]
    call_id = request.match_info["call_id"]
    signed_attempt = tokens.verify_callback(
        s.keyring.callback_keys(), call_id, inp.query.attempt, inp.query.sig
    )
    if signed_attempt is None:
        metrics.callbacks.labels(result="forbidden").inc()
        await _reject(app, call_id, "bad signature", "")
        return problem(403, "bad signature"), None
    rt = app[RUNTIME]
    facts = rt.cached_campaign_of_call(call_id) or await in_thread(
        app, rt.campaign_of_call, call_id
    )
    if facts is None:
        metrics.callbacks.labels(result="unknown_call").inc()
        return problem(404, "unknown call"), None
    try:
        body = await callbacks.read_body(request)
        parsed = callbacks.parse_fields(body)
    except ProtocolError as exc:
        metrics.callbacks.labels(result="malformed").inc()
        await _reject(app, call_id, str(exc), repr(exc.raw)[:500])
        return problem(400, str(exc)), None
    out = await callback.record(
        app[AREDIS], app[LIMITER], facts, call_id, signed_attempt, body, parsed, now=time.time()
    )
    metrics.callbacks.labels(result=out.result).inc()
    t = out.transition
    if t is not None and t.changed:
        metrics.transitions.labels(before=t.before.state.value, after=t.after.state.value).inc()
    if out.ignored is not None:
        return web.json_response({"ok": True, "ignored": out.ignored}), None
    done = out.settlement
    if done is None:
        return web.json_response({"ok": True}), None

    def publish() -> None:
        # The refilled calls' dials first: the refill's latency is the hop to their dial.
        dials = [("dial", (next_id,)) for next_id in out.admitted]
        queue.publish(app[CELERY], [*dials, ("followup", done.args())])

    return web.json_response({"ok": True}), publish


async def _reject(app: web.Application, call_id: str, reason: str, raw: str) -> None:
    # The refusal stands either way; recording it is best effort.
    with contextlib.suppress(redis.RedisError):
        await app[AREDIS].xadd(
            keys.REJECTS,
            {"call_id": call_id[:100], "reason": reason[:300], "raw": raw, "at": time.time()},
            maxlen=keys.REJECTS_MAXLEN,
            approximate=True,
        )


@API.route(
    "GET",
    "/livez",
    operation_id="livez",
    summary="Liveness: the process answers (no Redis check: an outage must not restart it)",
    auth=False,
    responses={200: Reply("alive", Health)},
)
async def livez(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    return reply(Health(ok=True))


_READY = {200: Reply("ready", Health), 503: Reply("draining or Redis unreachable", Health)}


@API.route(
    "GET",
    "/readyz",
    operation_id="readyz",
    summary="Readiness: Redis answers and the receiver is not draining",
    auth=False,
    responses=_READY,
)
@API.route(
    "GET",
    "/healthz",
    operation_id="healthz",
    summary="Readiness under its older name (alias of /readyz)",
    auth=False,
    responses=_READY,
)
async def readyz(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Can serve: not draining, and Redis answers (callbacks cannot be stored without it)."""
    if serving.draining(request.app):
        return reply(Health(ok=False, reason="draining"), status=503)
    try:
        async with asyncio.timeout(2):
            await request.app[AREDIS].ping()
    except (TimeoutError, redis.RedisError, OSError):
        return reply(Health(ok=False, redis="unreachable", reason="redis unreachable"), 503)
    return reply(Health(ok=True, redis="ok"))


def create_app(settings: Settings) -> web.Application:
    """The receiver app; ConfigError (fail closed) without a real secret and API key."""
    from dialer.receiver.ui import views  # it imports this module: not at import time

    require_server_secrets(settings)
    # Order matters: the key is checked before a request counts against its limit.
    rate_limit = ratelimit.middleware(
        lambda app: app[SETTINGS].DIALER_API_RATE_PER_MIN, lambda app: app[AREDIS]
    )
    app = web.Application(
        middlewares=[errors_middleware, auth_middleware, rate_limit], client_max_size=MAX_BODY
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[PENDING] = set()
    serving.mark_servable(app)
    app.cleanup_ctx.append(_resources)
    api.add_routes(app)  # every route declared through API, these included
    views.add_routes(app)  # the dashboard: pages and their read-only views
    return app


def run(settings: Settings, listen: serving.Listen) -> None:
    """Serve until SIGTERM; then readiness goes red and in-flight requests finish."""
    app = create_app(settings)
    timeout_s = settings.DIALER_CALLBACK_DEADLINE_S + 2
    serving.run(app, listen, api.render_metrics, shutdown_timeout_s=timeout_s)

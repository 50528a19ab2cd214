"""Per-API-key REST rate limit: a fixed one-minute window counted in Redis.

Every receiver process shares the count (it lives in Redis), so the limit
holds behind a load balancer. The key is identified by a hash of the token,
never the token itself (``dl:apirate:<hash>:<minute>``, see dialer.store.keys).
Fixed windows allow a burst of up to twice the limit across a window edge;
that is acceptable for an abuse brake and costs one round trip per request.
Only authenticated ``/v1/`` requests (and the dashboard's ``/ui/api/``) are
counted: the auth middleware runs first. This module does not limit
callbacks (Exotel's retries must land).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from aiohttp import web

from dialer.receiver.ui.sessions import COOKIE
from dialer.store import keys

WINDOW_S = 60


def key_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()[:24]


async def over_limit(r: aioredis.Redis, token: str, limit: int, now: float) -> float | None:
    """Count one request; the seconds until the window ends if it is over ``limit``."""
    window = int(now // WINDOW_S)
    key = keys.api_rate(key_hash(token), window)
    async with r.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, 2 * WINDOW_S)
        count, _ = await pipe.execute()
    if int(count) <= limit:
        return None
    return (window + 1) * WINDOW_S - now


def middleware(
    limit_of: Callable[[web.Application], int],
    redis_of: Callable[[web.Application], aioredis.Redis],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def rate_limit(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        limit = limit_of(request.app)
        auth = request.headers.get("Authorization", "")
        # a dashboard session counts as its own key (by the cookie's hash)
        token = auth[7:] if auth.startswith("Bearer ") else request.cookies.get(COOKIE, "")
        path = request.path
        if limit and token and (path.startswith("/v1/") or path.startswith("/ui/api/")):
            wait_s = await over_limit(redis_of(request.app), token, limit, time.time())
            if wait_s is not None:
                return web.json_response(
                    {"error": f"rate limit of {limit} requests per minute exceeded", "detail": []},
                    status=429,
                    headers={"Retry-After": str(max(1, int(wait_s + 0.999)))},
                )
        return await handler(request)

    return rate_limit

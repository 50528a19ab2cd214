"""The receiver app's typed keys (``web.AppKey``/``web.RequestKey``) and the two
helpers that reach its worker-side resources through them.

Its own module so that the handlers (``dialer.receiver.api``) and the app
factory (``dialer.receiver.app``) both import it and never each other's
module: no import cycle, no lazy import. This module opens nothing: the
factory's ``cleanup_ctx`` fills the keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from celery import Celery

from dialer.core.settings import Settings
from dialer.net.egress import Egress
from dialer.platform import queue
from dialer.receiver.metrics import Metrics
from dialer.services.runtime import Runtime
from dialer.store import apikeys
from dialer.store.admission import AsyncRedisLimiter

SETTINGS = web.AppKey("settings", Settings)
AREDIS = web.AppKey("aredis", aioredis.Redis)
RUNTIME = web.AppKey("runtime", Runtime)
CELERY = web.AppKey("celery", Celery)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
METRICS = web.AppKey("metrics", Metrics)
LIMITER = web.AppKey("limiter", AsyncRedisLimiter)
EGRESS = web.AppKey("egress", Egress)
#: aiohttp session under the egress policy, for dry-run probes (never the pool)
PROBES = web.AppKey("probes", aiohttp.ClientSession)
PROBE_SLOTS = web.AppKey("probe_slots", asyncio.Semaphore)
PROBE_DEADLINE_S = 3.0  # a probe's whole budget, and a probe slot's wait
PENDING = web.AppKey("pending", set[asyncio.Task[None]])  # follow-ups behind the 200
SCOPE = web.RequestKey("scope", apikeys.Scope)  # the caller's key scope


async def in_thread(app: web.Application, fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking work (the worker-side Redis client, Celery) on the app's pool."""
    return await asyncio.get_running_loop().run_in_executor(app[EXECUTOR], fn, *args)


async def send_task(app: web.Application, short: str, *args: Any) -> None:
    """Publish a Celery task (by its short name: ``dialer.platform.queue.task_name``)
    without blocking the event loop."""
    await in_thread(app, queue.publish, app[CELERY], [(short, args)])

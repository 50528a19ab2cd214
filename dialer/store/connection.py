"""Clients of the state store: one Redis (the default) or a Redis Cluster.

``REDIS_CLUSTER=true`` makes ``REDIS_URL`` name one node of a cluster; the
client learns the others and the slot map from it (``redis.cluster``). The
store's code is the same for both: every Lua script and every MULTI touches
the keys of one account only, and those share the hash tag ``{account}``
(``dialer.store.keys``), so each runs on the one node that owns that slot.

The cluster clients are typed as the plain ones: they offer the same commands
the store uses (scripts, pipelines with WATCH/MULTI on one slot), and one
type keeps every signature of the store the same for both deployments.
"""

from __future__ import annotations

from typing import Any, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.cluster import RedisCluster

from dialer.core.settings import Settings


def connect(settings: Settings, **options: Any) -> redis.Redis:
    """A blocking client (workers, CLI) with ``decode_responses`` and ``options``."""
    options.setdefault("decode_responses", True)
    if settings.REDIS_CLUSTER:
        return cast(redis.Redis, RedisCluster.from_url(settings.redis_url, **options))
    return redis.Redis.from_url(settings.redis_url, **options)


def connect_async(
    settings: Settings, *, max_connections: int, timeout: float, **options: Any
) -> aioredis.Redis:
    """An asyncio client (receiver, streamer) that waits for a free connection.

    One Redis: a blocking pool (under a burst a request waits up to
    ``timeout`` for a connection instead of failing). A cluster: up to
    ``max_connections`` per node.
    """
    options.setdefault("decode_responses", True)
    if settings.REDIS_CLUSTER:
        client = AsyncRedisCluster.from_url(
            settings.redis_url, max_connections=max_connections, **options
        )
        return cast(aioredis.Redis, client)
    pool = ReadyFirstPool.from_url(
        settings.redis_url, max_connections=max_connections, timeout=timeout, **options
    )
    return aioredis.Redis(connection_pool=pool)


class ReadyFirstPool(aioredis.BlockingConnectionPool):
    """A blocking pool that hands out an idle connection without waiting machinery.

    redis-py's ``BlockingConnectionPool.get_connection`` takes an
    ``asyncio.Condition`` and arms an ``async_timeout`` timer for every
    command, even when a connection sits idle: about a tenth of the
    receiver's CPU per callback (benchmarks/profiles.md). When a connection
    is idle, nobody is waiting for one and no maintenance (MOVING) handler
    is rewriting the pool, this takes it directly; it still checks it
    (``ensure_connection``) and counts it in use, but records no pool-wait
    metric (redis-py's observability, which nothing here enables). Every
    other case (none idle, a waiter queued, maintenance) is the parent's
    path: it waits up to ``timeout`` and raises the same ``ConnectionError``.

    A request never jumps a queued waiter: while any task is in the parent's
    path the shortcut is off, and a release then notifies as before; with
    nobody queued a release skips the condition (there is no one to notify).

    Relies on redis-py's private ``_available_connections`` (a list of idle
    connections) and ``_in_use_connections`` (a set); pinned by
    tests/contract/test_ready_pool.py, which fails if redis-py renames them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued = 0  # tasks in the parent's (waiting) path
        self._maintenance = False

    def set_in_maintenance(self, in_maintenance: bool) -> None:
        super().set_in_maintenance(in_maintenance)
        self._maintenance = in_maintenance

    async def get_connection(self, *args: Any, **options: Any) -> Any:
        # redis-py calls it without arguments; any (deprecated) ones go to the parent,
        # which warns about them as before
        idle = self._available_connections
        if idle and not (self._queued or self._maintenance or args or options):
            connection = idle.pop()
            self._in_use_connections.add(connection)
            try:
                await self.ensure_connection(connection)
            except BaseException:
                await self.release(connection)
                raise
            return connection
        self._queued += 1
        try:
            return await super().get_connection(*args, **options)
        finally:
            self._queued -= 1

    async def release(self, connection: AbstractConnection) -> None:
        if self._queued or self._maintenance:
            await super().release(connection)  # under the condition, then notify
            return
        await aioredis.ConnectionPool.release(self, connection)
        if self._queued:  # a task started waiting while this one was releasing
            async with self._condition:
                self._condition.notify()

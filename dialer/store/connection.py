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
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=max_connections, timeout=timeout, **options
    )
    return aioredis.Redis(connection_pool=pool)

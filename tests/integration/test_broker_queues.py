"""The broker's side of the refill path, on a real Redis (``dialer.platform.queue``).

A worker with a free thread takes a waiting dial before anything else:
``queue_order_strategy: priority`` makes kombu ask Redis for the worker's
queues in the order it consumes them, ``dial`` first, instead of rotating
between them (shown with kombu's own consumer taking one message at a time,
prefetch 1, as the worker's does). And ``publish`` sends its messages in one
round trip, falling back to one by one when the batch fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery
from kombu.transport import redis as kombu_redis

from dialer.cli.main import worker
from dialer.core.settings import load_settings
from dialer.platform.queue import QUEUES, make_celery, publish

BROKER_DB = 11  # beside the tests' state database 9 and test_broker's 10


@pytest.fixture
def broker_url(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty database of the test Redis as the broker, emptied again after.

    These are the Redis transport's options: Redis is the broker here also when
    the run sets CELERY_BROKER_URL (``.ci/run`` runs the integration tests again
    on RabbitMQ), which Celery would read over the app's ``broker_url``."""
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    url = redis_url.rsplit("/", 1)[0] + f"/{BROKER_DB}"
    broker = redis.Redis.from_url(url)
    broker.flushdb()
    try:
        yield url
    finally:
        broker.flushdb()


def redis_broker(url: str) -> Celery:
    return make_celery(load_settings(REDIS_URL=url, CELERY_BROKER_URL=url))


def received_order(url: str) -> list[str]:
    app = redis_broker(url)
    publish(app, [("dial", ("c1",))])
    publish(app, [("followup", ("c1", False, True, 1)), ("notify", ("c1",))] * 3)
    publish(app, [("dial", ("c2",))])
    got: list[str] = []

    def on_message(body: Any, message: Any) -> None:
        got.append(message.headers["task"])
        message.ack()

    queues = [app.amqp.queues[q] for q in QUEUES]  # the worker's --queues order
    with (
        app.connection_for_read() as conn,
        conn.Consumer(queues, callbacks=[on_message], prefetch_count=1),
    ):
        while len(got) < 8:
            conn.drain_events(timeout=5)
    return got


def test_a_waiting_dial_is_taken_before_the_follow_ups_published_ahead_of_it(
    broker_url: str,
) -> None:
    got = received_order(broker_url)
    # kombu's default rotation would put ``dial`` last once it had served one
    assert got[:2] == ["dialer.dial"] * 2, got
    assert sorted(got[2:]) == ["dialer.followup"] * 3 + ["dialer.notify"] * 3


def test_the_worker_lists_dial_first() -> None:
    (option,) = [p for p in worker.params if p.name == "queues"]
    assert str(option.default).split(",") == list(QUEUES) and QUEUES[0] == "dial"


def test_one_publish_is_one_round_trip_on_redis(broker_url: str, monkeypatch: Any) -> None:
    """queue.publish's messages go in one pipeline: a terminal callback's dial and
    follow-up cost the receiver one broker round trip, not two."""
    broker = redis.Redis.from_url(broker_url)
    app = redis_broker(broker_url)
    trips: list[list[str]] = []  # the LPUSHes of each round trip that had any
    pipeline, single = redis.client.Pipeline.execute, redis.Redis.execute_command

    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append([str(c[0][0]) for c in self.command_stack if c[0][0] == "LPUSH"])
        return pipeline(self, *args, **kwargs)

    def command(self: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append([str(args[0])] if args[0] == "LPUSH" else [])
        return single(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    monkeypatch.setattr(redis.Redis, "execute_command", command)
    publish(app, [("dial", ("c1",)), ("dial", ("c2",)), ("followup", ("c1", False, True, 1))])
    assert [t for t in trips if t] == [["LPUSH"] * 3]
    assert (broker.llen("dial"), broker.llen("followup")) == (2, 1)


def test_a_failed_batch_is_sent_again_one_by_one(broker_url: str, monkeypatch: Any) -> None:
    broker = redis.Redis.from_url(broker_url)
    app = redis_broker(broker_url)

    def lost(self: Any) -> None:
        raise redis.ConnectionError("connection lost before the pipeline went out")

    monkeypatch.setattr(kombu_redis.PublishBatch, "flush", lost)
    publish(app, [("dial", ("c1",)), ("followup", ("c1", False, True, 1))])
    assert (broker.llen("dial"), broker.llen("followup")) == (1, 1)

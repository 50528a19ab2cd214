"""A worker with a free thread takes a waiting dial before anything else (Redis broker).

``queue_order_strategy: priority`` (``dialer.platform.queue``): kombu asks Redis
for the worker's queues in the order it consumes them, ``dial`` first, instead
of rotating between them. Shown on a real Redis with kombu's own consumer, as
the worker's consumer takes messages: one at a time (prefetch 1).
"""

from __future__ import annotations

from typing import Any

import redis

from dialer.cli.main import worker
from dialer.core.settings import load_settings
from dialer.platform.queue import QUEUES, make_celery, publish

BROKER_DB = 11  # beside the tests' state database 9 and test_broker's 10


def received_order(url: str) -> list[str]:
    app = make_celery(load_settings(REDIS_URL=url))
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
    redis_url: str,
) -> None:
    url = redis_url.rsplit("/", 1)[0] + f"/{BROKER_DB}"
    redis.Redis.from_url(url).flushdb()
    try:
        got = received_order(url)
    finally:
        redis.Redis.from_url(url).flushdb()
    # kombu's default rotation would put ``dial`` last once it had served one
    assert got[:2] == ["dialer.dial"] * 2, got
    assert sorted(got[2:]) == ["dialer.followup"] * 3 + ["dialer.notify"] * 3


def test_the_worker_lists_dial_first() -> None:
    (option,) = [p for p in worker.params if p.name == "queues"]
    assert str(option.default).split(",") == list(QUEUES) and QUEUES[0] == "dial"

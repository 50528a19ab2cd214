"""The Celery broker the tests run on: the state Redis (default) or RabbitMQ.

``CELERY_BROKER_URL`` in the test run's environment (CI sets an ``amqp://``
URL on a vhost of its own) moves every process the tests start onto that
broker; unset, the test Redis database is the broker, flushed with the state
before each test. RabbitMQ's queues are not in that database, so each test
that takes a fresh Redis also purges them (``purge``): no task of one test
reaches the next test's workers.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import redis
from kombu import Connection

from dialer.core.settings import load_settings
from dialer.platform.queue import QUEUES, broker_kind, celery_config


def amqp_url() -> str | None:
    """The RabbitMQ URL this run uses, or None when the broker is the state Redis."""
    url = os.environ.get("CELERY_BROKER_URL")
    return url if url and broker_kind(url) == "amqp" else None


def _queues(url: str) -> list[Any]:
    return list(celery_config(load_settings(CELERY_BROKER_URL=url))["task_queues"])


def purge(url: str) -> None:
    """Empty the dialer's queues (declared as the workers declare them)."""
    with Connection(url, connect_timeout=5) as conn:
        channel = conn.channel()
        for queue in _queues(url):
            bound = queue(channel)
            bound.declare()
            bound.purge()


def task_bodies(redis_url: str, queues: tuple[str, ...] = QUEUES) -> list[Any]:
    """The ``[args, kwargs, embed]`` of every task waiting in ``queues``, left in place."""
    url = amqp_url()
    if url is None:
        r = redis.Redis.from_url(redis_url)
        try:
            raws = [m for q in queues for m in r.lrange(q, 0, -1)]
        finally:
            r.close()
        return [json.loads(base64.b64decode(json.loads(raw)["body"])) for raw in raws]
    bodies: list[Any] = []
    with Connection(url, connect_timeout=5) as conn:
        channel = conn.channel()  # closed unacked: every message goes back to its queue
        for queue in _queues(url):
            if queue.name not in queues:
                continue
            while (message := queue(channel).get(no_ack=False)) is not None:
                bodies.append(json.loads(message.body))
    return bodies

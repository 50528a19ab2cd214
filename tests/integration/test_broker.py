"""Celery's broker apart from the state store (CELERY_BROKER_URL).

The campaign runs with the broker elsewhere: on the run's RabbitMQ when it has
one (``.ci/amqp-integration``), else on another database of the test Redis,
which is enough to show that no process falls back to the state Redis for its
queues. Then the state database holds dialer keys only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.support import broker
from tests.support.system import check_invariants, contacts, running_system

pytestmark = pytest.mark.timeout(180)
BROKER_DB = 10  # beside the tests' state database 9


def test_a_campaign_runs_with_the_broker_apart_from_the_state(
    redis_url: str, tmp_path: Path
) -> None:
    url = broker.amqp_url()
    if url is None:
        url = redis_url.rsplit("/", 1)[0] + f"/{BROKER_DB}"
        redis.Redis.from_url(url).flushdb()
    with running_system(
        redis_url, tmp_path, workers=2, max_concurrent=3, env={"CELERY_BROKER_URL": url}
    ) as system:
        system.register(max_concurrent=3)
        out = system.api.create_campaign("sandbox", contacts(20), bot="echo", max_attempts=1)
        system.wait_done(out["id"], timeout_s=120)
        report = system.sandbox.report()
        rows = list(system.api.iter_calls(out["id"]))
    check_invariants(redis_url, out["id"], report, 3, rows, max_attempts=1)
    state = redis.Redis.from_url(redis_url, decode_responses=True)
    foreign = [k for k in state.scan_iter(count=1000) if not k.startswith("dl:")]
    assert not foreign, f"broker keys in the state database: {sorted(foreign)[:10]}"
    if broker.broker_kind(url) == "redis":
        queued = redis.Redis.from_url(url, decode_responses=True)
        assert any(k.startswith("_kombu.binding.") for k in queued.scan_iter("_kombu*"))

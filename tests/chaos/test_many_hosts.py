"""Scale-out for real: each process on its own test host, one worker host partitioned.

Hosts are network namespaces on this machine (tests/support/hosts.py): one
for Redis, three for workers, one for the receiver (and beat), one for the
streamer, one for the sandbox Exotel and one for the operator (this test's
REST calls). A campaign runs across them; mid-campaign one worker host's link
goes down (its packets dropped, its connections hanging, as with a pulled
cable) while the others carry on, and later it comes back. Afterwards the
promises hold across hosts: no number dialled twice, the account's limit
never exceeded, every contact final, no slot held. Slow: ``make test-slow``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from dialer.cli.supervisor import SANDBOX_ACCOUNT, Child, Supervisor
from dialer.core.settings import load_settings
from dialer.platform.embedded import EmbeddedRedis
from tests.support.hosts import SUBNET, Host, NamespacesRefused, Network, network, refusal
from tests.support.system import FAST, System, check_invariants, contacts, print_logs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
LIMIT = 12
CONTACTS = 600
# longer than a lease (DIALER_LEASE_MARGIN_S + ring timeout in FAST) and the
# reconcile delay: the cut worker's calls are settled by the others meanwhile
PARTITION_S = 12.0
WORKER_HOSTS = 3
REDIS_PORT, RECEIVER_PORT, STREAMER_PORT, SANDBOX_PORT = 6379, 8080, 8081, 8082


def test_campaign_across_hosts_with_a_worker_host_partitioned(tmp_path: Path) -> None:
    reason = refusal()
    if reason:
        pytest.skip(reason)
    with network() as net:
        try:
            ops = net.add("ops")
        except NamespacesRefused as exc:
            pytest.skip(f"this machine refuses network namespaces: {exc}")
        redis_host = net.add("redis")
        sandbox_host = net.add("sandbox")
        receiver_host = net.add("receiver")
        streamer_host = net.add("streamer")
        workers = [net.add(f"worker{i + 1}") for i in range(WORKER_HOSTS)]
        with net.inside(redis_host):
            redis = EmbeddedRedis(
                tmp_path / "redis", REDIS_PORT, appendonly=False, host=redis_host.address
            ).start()
        try:
            with net.inside(ops):
                _run(net, tmp_path, redis.url, sandbox_host, receiver_host, streamer_host, workers)
        finally:
            with net.inside(ops):
                redis.stop()


def _run(
    net: Network,
    tmp: Path,
    redis_url: str,
    sandbox_host: Host,
    receiver_host: Host,
    streamer_host: Host,
    workers: list[Host],
) -> None:
    receiver_url = f"http://{receiver_host.address}:{RECEIVER_PORT}"
    sandbox_url = f"http://{sandbox_host.address}:{SANDBOX_PORT}"
    env = {
        **FAST,
        **SANDBOX_ACCOUNT,
        "REDIS_URL": redis_url,
        "DIALER_DATA_DIR": str(tmp),
        "DIALER_PORT": str(RECEIVER_PORT),
        "STREAMER_PORT": str(STREAMER_PORT),
        "SANDBOX_PORT": str(SANDBOX_PORT),
        "EXOTEL_API_URL": sandbox_url,
        "EXOTEL_MAX_CONCURRENT": str(LIMIT),
        "DIALER_PUBLIC_URL": receiver_url,
        "DIALER_API_URL": receiver_url,
        "STREAMER_PUBLIC_URL": f"ws://{streamer_host.address}:{STREAMER_PORT}",
        # every host of the test network, and nothing else
        "DIALER_EGRESS_ALLOW": f"{SUBNET}.0/24",
        "STREAMER_DRAIN_S": "15",
    }
    sup = Supervisor(load_settings(**env), workers=0, with_flower=False, quiet=True)
    sup.env = {**os.environ, **env}
    (tmp / "logs").mkdir(parents=True, exist_ok=True)
    py = [sys.executable, "-m", "dialer.cli.main"]

    def add(name: str, host: Host, *args: str) -> None:
        sup.add(Child(name, host.argv(*py, *args), log=tmp / "logs" / f"{host.role}-{name}.log"))

    sandbox_args = ["--calls-per-minute", "100000", "--ring-s", "0.05", "--talk-max-s", "1.0"]
    add("sandbox", sandbox_host, "sandbox", "--host", sandbox_host.address,
        "--max-concurrent", str(LIMIT), *sandbox_args, "--think-s", "0.05")  # fmt: skip
    add("receiver", receiver_host, "receiver", "--host", receiver_host.address)
    add("streamer", streamer_host, "streamer", "--host", streamer_host.address)
    for i, host in enumerate(workers):
        add("worker", host, "worker", "-n", f"worker{i + 1}@%h")
    add("beat", receiver_host, "beat")
    cut = workers[1]
    try:
        sup.wait_ready(
            60,
            checks=[
                f"{receiver_url}/readyz",
                f"http://{streamer_host.address}:{STREAMER_PORT}/readyz",
                f"{sandbox_url}/_sandbox/healthz",
            ],
        )
        system = System(sup, sandbox_url=sandbox_url)
        system.register(max_concurrent=LIMIT)
        out = system.api.create_campaign(
            "sandbox",
            contacts(CONTACTS),
            bot="echo",
            max_attempts=2,
            retry_delay_s=0.5,
            time_limit_s=10,
        )
        before = system.sandbox.wait_for(lambda rep: rep["calls_total"] >= CONTACTS // 4, 180)
        net.cut(cut)
        cut_at = time.monotonic()
        # the other workers carry the campaign while this one is unreachable
        deadline = cut_at + 240
        while True:
            sup.poll()
            during = system.sandbox.report()
            went_on = during["calls_total"] - before["calls_total"]
            if time.monotonic() - cut_at >= PARTITION_S and went_on >= CONTACTS // 6:
                break
            assert time.monotonic() < deadline, f"no progress without {cut.role}: {went_on}"
            time.sleep(0.25)  # polling, with a deadline; the partition lasts PARTITION_S
        net.heal(cut)
        partition_s = time.monotonic() - cut_at
        status = system.wait_done(out["id"], 600)
        report = system.sandbox.report()
        rows = list(system.api.iter_calls(out["id"]))
        figures = check_invariants(redis_url, out["id"], report, LIMIT, rows, max_attempts=2)
        assert status["finished"] == CONTACTS == figures["contacts"]
    except BaseException:
        print_logs(sup)
        raise
    finally:
        net.heal(cut)
        sup.stop(timeout_s=20)
    print(
        f"\nmany hosts: {len(net.hosts)} hosts ({len(workers)} worker hosts, "
        f"{cut.role} cut for {partition_s:.1f}s while "
        f"{went_on} calls went on), "
        f"{figures['contacts']} contacts, {figures['dials']} calls, duplicates 0, "
        f"max concurrency {report['max_concurrency']['sandbox']}/{LIMIT}, leaks 0"
    )

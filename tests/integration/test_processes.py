"""``dialer streamer|receiver --processes N``: real processes on one loopback port.

N children serve the one port (SO_REUSEPORT), each with its own metrics port
(base + i); every child's streams work; a child that dies is replaced;
SIGTERM to the parent drains and stops every child; and a parent killed with
SIGKILL takes its children with it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import redis
import requests

from dialer.platform.embedded import free_port
from dialer.store import keys
from tests.support.cli import alive
from tests.support.polling import wait_for
from tests.support.signing import API_KEY, SECRET, stream_token

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT + /proc"),
]
ACCOUNT, CID = "AC_procs", "procs001"
N = 2
CHUNK = bytes(range(256)) * 12 + bytes(128)  # 3,200 B: one legal chunk, echoed as it is


# Processes start and stop at their own pace: a generous deadline.
until = functools.partial(wait_for, timeout_s=30.0)


def children_of(parent: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def free_run(n: int) -> int:
    """A base port with ``n`` free ports from it up (the children's metrics ports)."""
    for _ in range(50):
        base = free_port()
        try:
            with contextlib.ExitStack() as stack:
                for i in range(n):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
    raise RuntimeError("no run of free ports")


@contextlib.contextmanager
def group(
    command: str, redis_url: str, tmp_path: Path, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    """``dialer COMMAND --processes N`` on a free port; yields (parent, port, metrics base)."""
    port, metrics = free_port(), free_run(N)
    metrics_var = "STREAMER_METRICS_PORT" if command == "streamer" else "DIALER_METRICS_PORT"
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("EXOTEL_", "DIALER_", "STREAMER_"))
    }
    full_env.update(
        REDIS_URL=redis_url,
        DIALER_SECRET=SECRET,
        DIALER_API_KEY=API_KEY,
        DIALER_LOG_LEVEL="INFO",
        DIALER_DATA_DIR=str(tmp_path),
        **{metrics_var: str(metrics)},
        **env,
    )
    log = tmp_path / f"{command}.log"
    with open(log, "ab") as out:
        parent = subprocess.Popen(
            [
                *(sys.executable, "-m", "dialer.cli.main", command, "--processes", str(N)),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            env=full_env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        until(lambda: len(children_of(parent.pid)) == N, what="children started")
        for i in range(N):
            until(lambda i=i: metrics_up(metrics + i), what=f"child {i}'s metrics port")
        yield parent, port, metrics
    except BaseException:
        print(log.read_text(errors="replace")[-4000:])
        raise
    finally:
        pids = children_of(parent.pid)
        if parent.poll() is None:
            parent.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                parent.wait(timeout=30)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)


def metrics_up(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def media_out(port: int) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    for line in text.splitlines():
        if line.startswith('streamer_frames_out_total{event="media"}'):
            return float(line.split()[-1])
    return 0.0


def add_call(r: redis.Redis, index: int) -> str:
    call_id = keys.call_id(CID, index)
    r.hset(keys.CAMPAIGNS, CID, ACCOUNT)
    r.hset(keys.campaign(ACCOUNT, CID), mapping={"bot": "echo"})
    r.hset(
        keys.call(ACCOUNT, call_id),
        mapping={"to": "+919876543210", "state": "answered", "attempt": "1", "vars": "{}"},
    )
    return call_id


async def echo_call(session: aiohttp.ClientSession, port: int, call_id: str) -> bool:
    """One call through the shared port: the echo sends the chunk back."""
    url = f"ws://127.0.0.1:{port}/stream/{call_id}"
    sid = "MZ" + call_id.replace("-", "")
    start = {"event": "start", "stream_sid": sid, "start": {"stream_sid": sid, "call_sid": "CA1"}}
    payload = base64.b64encode(CHUNK).decode()
    media = {"event": "media", "stream_sid": sid, "media": {"chunk": "1", "payload": payload}}
    async with session.ws_connect(url, params={"token": stream_token(call_id)}) as ws:
        await ws.send_str(json.dumps({"event": "connected"}))
        await ws.send_str(json.dumps(start))
        await ws.send_str(json.dumps(media))
        while True:
            msg = await ws.receive(timeout=10)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return False
            frame = json.loads(msg.data)
            if frame.get("event") == "media":
                return bool(frame["media"]["payload"] == payload)


async def calls(port: int, call_ids: list[str]) -> list[bool]:
    async with aiohttp.ClientSession() as session:
        return await asyncio.gather(*(echo_call(session, port, c) for c in call_ids))


def test_streamer_children_share_the_port_and_each_serves_streams(
    redis_url: str, r: redis.Redis, tmp_path: Path
) -> None:
    with group("streamer", redis_url, tmp_path, STREAMER_DRAIN_S="2") as (parent, port, metrics):
        # Connections spread by the kernel's hash of the 4-tuple: 24 calls miss a
        # child with probability 2 * 2^-24.
        ok = asyncio.run(calls(port, [add_call(r, i) for i in range(24)]))
        assert all(ok)
        # Each child's own metrics port counts the media it sent back.
        until(lambda: all(media_out(metrics + i) > 0 for i in range(N)), what="both children")
        total = sum(media_out(metrics + i) for i in range(N))
        assert total >= 24

        # SIGTERM to the parent: every child drains and exits, then the parent.
        pids = children_of(parent.pid)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 0
        until(lambda: not any(alive(p) for p in pids), what="children gone")


def test_a_dead_child_is_replaced_and_killing_the_parent_stops_the_children(
    redis_url: str, r: redis.Redis, tmp_path: Path
) -> None:
    with group("streamer", redis_url, tmp_path, STREAMER_DRAIN_S="2") as (parent, port, _):
        first = children_of(parent.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        until(
            lambda: len(children_of(parent.pid) - first) == 1 and len(children_of(parent.pid)) == N,
            what="a replacement child",
        )
        assert all(asyncio.run(calls(port, [add_call(r, i) for i in range(8)])))

        # SIGKILL: the parent cannot pass anything on; the kernel tells each child.
        pids = children_of(parent.pid)
        parent.kill()
        parent.wait(timeout=10)
        until(lambda: not any(alive(p) for p in pids), timeout_s=30, what="orphans gone")


def test_receiver_children_share_the_port(redis_url: str, tmp_path: Path) -> None:
    with group("receiver", redis_url, tmp_path) as (parent, port, metrics):
        for _ in range(10):
            assert requests.get(f"http://127.0.0.1:{port}/livez", timeout=2).status_code == 200
        assert all(metrics_up(metrics + i) for i in range(N))
        pids = children_of(parent.pid)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 0
        until(lambda: not any(alive(p) for p in pids), what="children gone")

"""Callback receiver: callbacks/s and latency at a fixed offered load (1k/s) and at saturation.

Ours: ``dialer receiver`` (a subprocess) taking valid, signed ``ringing``
callbacks for real calls set up in Redis (state ``placed`` with an Exotel
sid): the first per call moves it to ringing, later ones are recorded
duplicates (no-ops), the full path either way (signature, campaign lookup,
body parse, events stream, transition). Baseline: an aiohttp hello-world
(``benchmarks.hello``) taking the same requests. The load generator is an
asyncio aiohttp client in this process, on the same 2 cores.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections.abc import Coroutine
from typing import Any

import aiohttp

from benchmarks.common import (
    KEYS,
    CpuMeter,
    Ctx,
    Proc,
    Result,
    Row,
    bench_env,
    busiest,
    contacts,
    dialer_cmd,
    pct,
    r2,
    ratio,
    wait_http,
)
from benchmarks.ingest import register
from dialer.core import campaign, tokens
from dialer.platform.embedded import free_port
from dialer.services import ingest
from dialer.store import keys


def setup_calls(ctx: Ctx, n: int) -> list[tuple[str, str]]:
    """n calls in state placed; returns (path with signature, urlencoded body) per call."""
    r = ctx.fresh_redis()
    register(r)
    spec = campaign.CampaignIn.model_validate(
        {"account": "sandbox", "bot": "echo", "contacts": [{"to": x} for x in contacts(n)]}
    )
    cid = ingest.create_campaign(r, spec, default_region="IN")["id"]
    out = []
    with r.pipeline(transaction=False) as pipe:
        for i in range(n):
            call_id = keys.call_id(cid, i)
            sid = f"bench{i:08d}"
            pipe.hset(keys.call("sandbox", call_id), mapping={"state": "placed", "sid": sid})
            sig = tokens.callback_sig(KEYS.callback, call_id, 1)
            body = (
                f"CallSid={sid}&Status=ringing&EventType=ringing"
                f"&CustomField={call_id}%3A1&From=%2B919876500000&To=08047112345"
            )
            out.append((f"/exotel/status/{call_id}?attempt=1&sig={sig}", body))
        pipe.execute()
    return out


HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


class Tally:
    """Latencies and failures of the callbacks one load run posts."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.errors = 0
        self.kinds: dict[str, int] = {}  # status code or exception name -> count

    async def post(self, session: aiohttp.ClientSession, path: str, body: str) -> None:
        t = time.perf_counter()
        try:
            async with session.post(path, data=body, headers=HEADERS) as resp:
                await resp.read()
                if resp.status != 200:
                    self.fail(str(resp.status))
        except aiohttp.ClientError as exc:
            self.fail(type(exc).__name__)
        self.lat.append((time.perf_counter() - t) * 1000)

    def fail(self, kind: str) -> None:
        self.errors += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def summary(self, elapsed: float) -> dict[str, Any]:
        return {
            "done": len(self.lat),
            "per_s": round(len(self.lat) / elapsed, 1),
            "p50_ms": r2(pct(self.lat, 50)),
            "p99_ms": r2(pct(self.lat, 99)),
            "errors": self.errors,
        }


async def fixed_rate(
    base: str, reqs: list[tuple[str, str]], rate: float, seconds: float
) -> dict[str, Any]:
    tally = Tally()
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(base, connector=conn) as session:
        rng = random.Random(7)
        total = int(rate * seconds)
        tasks = []
        start = time.perf_counter()
        sent = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - start) * rate) + 1)
            while sent < due:
                tasks.append(asyncio.create_task(tally.post(session, *rng.choice(reqs))))
                sent += 1
            await asyncio.sleep(0.001)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return {"offered_per_s": rate, **tally.summary(elapsed), "error_kinds": tally.kinds}


async def saturate(
    base: str, reqs: list[tuple[str, str]], concurrency: int, seconds: float
) -> dict[str, Any]:
    tally = Tally()
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base, connector=conn) as session:
        stop = time.perf_counter() + seconds

        async def loop(seed: int) -> None:
            rng = random.Random(seed)
            while time.perf_counter() < stop:
                await tally.post(session, *rng.choice(reqs))

        start = time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"concurrency": concurrency, **tally.summary(elapsed)}


def metered(pids: dict[str, int], load: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run one load and add the CPU share of each of ``pids`` over it (``cpu_share``)."""
    meter = CpuMeter(pids).start()
    out = asyncio.run(load)
    meter.stop()
    out["cpu_share"] = meter.shares()
    return out


def measure(
    ctx: Ctx,
    name: str,
    argv: list[str],
    port: int,
    health: str,
    reqs: list[tuple[str, str]],
    seconds: float,
) -> dict[str, Any]:
    proc = Proc(
        name,
        argv,
        bench_env(
            REDIS_URL=ctx.redis_url, DIALER_PORT=str(port), DIALER_DATA_DIR=str(ctx.tmp / name)
        ),
        ctx.tmp / name,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}{health}", proc=proc)
        base = f"http://127.0.0.1:{port}"
        asyncio.run(fixed_rate(base, reqs, 200, 1.0))  # warm up (caches, connections)
        pids = {name: proc.pid, "load generator": os.getpid(), "redis": ctx.redis_pid or 0}
        fixed = metered(pids, fixed_rate(base, reqs, 1000, seconds))
        sat = metered(pids, saturate(base, reqs, 64, seconds))
        half = max(50.0, round(sat["per_s"] / 2, -1))
        sustained = asyncio.run(fixed_rate(base, reqs, half, seconds))
        if not proc.alive():
            raise RuntimeError(f"{name} died: {proc.tail()}")
    finally:
        proc.stop()
    return {"fixed_1k": fixed, "saturation": sat, "fixed_half_saturation": sustained}


def run(ctx: Ctx) -> Result:
    res = Result("receiver")
    seconds = 1.5 if ctx.quick else 5.0
    reqs = setup_calls(ctx, 200 if ctx.quick else 2000)
    port = free_port()
    ours = measure(
        ctx,
        "receiver",
        dialer_cmd("receiver", "--host", "127.0.0.1", "--port", str(port)),
        port,
        "/healthz",
        reqs,
        seconds,
    )
    ctx.log(f"  receiver ours: {ours}")
    port = free_port()
    hello = measure(
        ctx,
        "hello",
        [sys.executable, "-m", "benchmarks.hello", str(port)],
        port,
        "/healthz",
        reqs,
        seconds,
    )
    ctx.log(f"  receiver hello-world: {hello}")
    of, hf = ours["fixed_1k"], hello["fixed_1k"]
    os_, hs = ours["saturation"], hello["saturation"]
    rr = ratio(os_["per_s"], hs["per_s"])
    res.rows.append(
        Row(
            "callback receiver",
            "callbacks/s at saturation (64 connections)",
            os_["per_s"],
            hs["per_s"],
            "/s",
            "≥ 0.4x hello-world",
            rr is not None and rr >= 0.4,
            rr,
            note=f"p99 {os_['p99_ms']} ms vs {hs['p99_ms']} ms",
        )
    )
    res.rows.append(
        Row(
            "callback receiver",
            "p99 latency at 1k callbacks/s offered",
            of["p99_ms"],
            hf["p99_ms"],
            "ms",
            "≤ 10 ms",
            of["p99_ms"] is not None and of["p99_ms"] <= 10 and of["errors"] == 0,
            ratio(of["p99_ms"], hf["p99_ms"], lower_is_better=True),
            note=f"p50 {of['p50_ms']} ms; served {of['per_s']}/s",
        )
    )
    oh = ours["fixed_half_saturation"]
    res.rows.append(
        Row(
            "callback receiver",
            f"p99 latency at {oh['offered_per_s']:.0f}/s offered (half our saturation rate)",
            oh["p99_ms"],
            None,
            "ms",
            "≤ 10 ms",  # issue #17: p99 at half the receiver's own saturation rate
            oh["p99_ms"] is not None and oh["p99_ms"] <= 10 and oh["errors"] == 0,
            note=f"p50 {oh['p50_ms']} ms; errors {oh['errors']}",
        )
    )
    res.details.update(
        {
            "ours": ours,
            "hello_world": hello,
            "notes": "load generator (aiohttp client) shares the 2 cores",
        }
    )
    ours_ms = 1000 * os_["cpu_share"].get("receiver", 0.0) / max(os_["per_s"], 1e-9)
    hello_ms = 1000 * hs["cpu_share"].get("hello", 0.0) / max(hs["per_s"], 1e-9)
    res.bottleneck = (
        f"CPU at saturation: {busiest(os_['cpu_share'])} (hello-world run: "
        f"{busiest(hs['cpu_share'])}). Receiver CPU per callback {ours_ms:.2f} ms against "
        f"the hello-world's {hello_ms:.2f} ms; ours saturates its one core while the "
        "hello-world's rate is the load generator's. 0.4x needs the whole callback "
        "(signature, campaign facts, body parse, event record, transition) in about "
        "2.5x a hello-world request's CPU. Where it goes (py-spy, benchmarks/profiles.md): "
        "redis-py's asyncio client ~29% for the callback's two round trips (read, then the "
        "compare-and-set commit; its pool's share cut from 9.6% to 6.5% by "
        "dialer.store.connection.ReadyFirstPool); aiohttp's request and response ~20%; our "
        "middlewares, form parse and transition plan ~10%. What would fix it: one round "
        "trip per callback (the transition decided inside the script), and `dialer "
        "receiver --processes N` to use every core of a host. The p99 rows: the load "
        "generator runs on the same 2 cores, so a latency tail is as much its scheduling "
        "as the receiver's (the p99 at half saturation ranged 4-53 ms across runs on "
        "unchanged code)"
    )
    return res

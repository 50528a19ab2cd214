"""Slot utilisation and refill latency: our admission vs the naive countdown-retry baseline.

Both run against the same sandbox (ring 0 s, each callee talks 1-3 s, drawn
per number with a fixed seed) with the same 2 Celery workers (threads, 8
each) and the same account limit L. The sandbox's own report is the judge:
``dial_times`` (connect POST accepted) and ``terminal_times`` (terminal
status callback sent), both on the sandbox's clock.

* utilisation: mean calls in progress / L, over the busy period (first dial
  to last dial: after the last dial nothing is left to fill a slot with).
* refill latency: the k-th terminal callback frees the slot the (L+k)-th
  dial takes, so latency_k = dial[L+k] - terminal[k] (both sorted).

The AgentStream websockets of both go to one silent sink served by this
process (the callee talks, nobody answers), so neither side pays for a bot.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

from benchmarks import naive
from benchmarks.common import (
    API_KEY,
    CALLER_ID,
    SANDBOX_CREDS,
    SECRET,
    CpuMeter,
    Ctx,
    Proc,
    Result,
    Row,
    analyse,
    bench_env,
    contacts,
    dialer_cmd,
    pct,
    r2,
    ratio,
    wait_http,
)
from dialer.platform.embedded import free_port
from dialer.sandbox.control import SandboxControl
from tests.support.servers import serve_in_thread
from tests.support.system import supervised

SINK_STATE = web.AppKey("state", dict)
SINK_REDIS = web.AppKey("redis", aioredis.Redis)


# --- the sink: silent AgentStream endpoint + the naive baseline's callback endpoint -------
def make_sink(redis_url: str) -> tuple[web.Application, dict[str, int]]:
    state = {"terminal": 0, "callbacks": 0, "streams": 0}
    app = web.Application()
    app[SINK_STATE] = state

    async def startup(app: web.Application) -> None:
        app[SINK_REDIS] = aioredis.Redis.from_url(redis_url, decode_responses=True)

    async def cleanup(app: web.Application) -> None:
        await app[SINK_REDIS].aclose()

    async def callback(request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = dict(await request.post())
        state["callbacks"] += 1
        if str(body.get("EventType", "")).lower() == "terminal":
            await app[SINK_REDIS].decr(naive.COUNTER)  # the naive baseline's slot release
            state["terminal"] += 1
        return web.json_response({"ok": True})

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        state["streams"] += 1
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
        return ws

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_post("/cb/{n}", callback)
    app.router.add_get("/healthz", lambda _request: web.json_response(state))
    app.router.add_get("/stream/{call_id}", stream)
    return app, state


# --- analysis ----------------------------------------------------------------------------
def summarise(
    name: str, limit: int, n: int, rep: dict[str, Any], wall: float, *, steady: bool = False
) -> dict[str, Any]:
    a = analyse(rep["dial_times"], rep["terminal_times"], limit, steady=steady)
    return {
        "system": name,
        "L": limit,
        "calls": n,
        "dials": len(rep["dial_times"]),
        "terminals": len(rep["terminal_times"]),
        "wall_s": round(wall, 1),
        "busy_s": r2(a.get("busy_s")),
        "utilisation": r2(a["utilisation"], 3),
        "refill_p50_ms": r2(pct(a["refill_ms"], 50), 1),
        "refill_p99_ms": r2(pct(a["refill_ms"], 99), 1),
        "refill_max_ms": r2(max(a["refill_ms"]) if a["refill_ms"] else None, 1),
        # where the slow refills are: the first two waves (the first 2L slot releases)
        # are the calls dialled together at the start, ending together
        "refills_over_100ms": sum(1 for x in a["refill_ms"] if x > 100),
        "of_them_in_first_waves": sum(1 for x in a["refill_ms"][: 2 * limit] if x > 100),
        "max_concurrency": rep["max_concurrency"].get("sandbox"),
        "cap_violations": sum(1 for v in rep["violations"] if v["kind"] == "concurrency_cap"),
    }


def behaviours(numbers: list[str], lo: float, hi: float, seed: int) -> dict[str, dict]:
    rng = random.Random(seed)
    return {
        num: {"outcome": "answer", "ring_s": 0.0, "talk_max_s": round(rng.uniform(lo, hi), 3)}
        for num in numbers
    }


# The sandbox both systems dial: no rate limit, answered at once, short talk and think times.
SANDBOX_ARGS = [
    "--calls-per-minute",
    "100000",
    "--ring-s",
    "0",
    "--talk-max-s",
    "5",
    "--think-s",
    "0.05",
]


def sandbox_argv(port: int, limit: int) -> list[str]:
    return dialer_cmd("sandbox", "--port", str(port), "--max-concurrent", str(limit), *SANDBOX_ARGS)


# --- ours --------------------------------------------------------------------------------
@contextlib.contextmanager
def dialer_system(
    ctx: Ctx,
    name: str,
    *,
    limit: int,
    workers: int = 2,
    sandbox_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    worker_args: list[str] | None = None,
) -> Iterator[Any]:
    """The whole dialer (sandbox, receiver, streamer, workers, beat) via ``dialer up``'s code.

    ``worker_args``: more ``dialer worker`` options (pool, concurrency, prefetch).
    """
    overrides = {
        "DIALER_LOG_LEVEL": "WARNING",
        "DIALER_SECRET": SECRET,
        "DIALER_API_KEY": API_KEY,
        "REDIS_URL": ctx.redis_url,
        "DIALER_DATA_DIR": str(ctx.tmp / name),
        **(env or {}),
    }
    with supervised(
        overrides,
        workers=workers,
        max_concurrent=limit,
        sandbox_args=sandbox_args or [],
        ready_s=60,
        worker_args=worker_args,
    ) as sup:
        yield sup


def pids_of(sup: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, c in enumerate(sup.children):
        if c.proc is not None:
            out[f"{c.name}{i if c.name == 'worker' else ''}"] = c.proc.pid
    return out


def add_sandbox_account(sup: Any, *, limit: int, calls_per_minute: int) -> tuple[Any, str]:
    """Register the running system's sandbox as account ``sandbox``; (API client, sandbox URL)."""
    from dialer.cli.client import DialerClient

    s = sup.settings
    api = DialerClient(s.api_url, API_KEY)
    sandbox_url = f"http://127.0.0.1:{s.SANDBOX_PORT}"
    api.add_account(
        *SANDBOX_CREDS,
        CALLER_ID,
        api_url=sandbox_url,
        max_concurrent_calls=limit,
        calls_per_minute=calls_per_minute,
    )
    return api, sandbox_url


def run_ours(ctx: Ctx, limit: int, n: int, lo: float, hi: float, seed: int = 1) -> dict[str, Any]:
    r = ctx.fresh_redis()
    numbers = contacts(n)
    app, _state = make_sink(ctx.redis_url)
    with (
        serve_in_thread(app) as sink_port,
        dialer_system(
            ctx,
            f"slots-ours-{limit}",
            limit=limit,
            sandbox_args=SANDBOX_ARGS,
            env={"STREAMER_PUBLIC_URL": f"ws://127.0.0.1:{sink_port}"},
        ) as sup,
    ):
        api, sandbox_url = add_sandbox_account(sup, limit=limit, calls_per_minute=100_000)
        control = SandboxControl(sandbox_url, timeout_s=30)
        control.set_numbers(behaviours(numbers, lo, hi, seed))
        meter = CpuMeter(
            {**pids_of(sup), "redis": ctx.redis_pid or 0, "bench (sink)": os.getpid()}
        ).start()
        t0 = time.monotonic()
        out = api.create_campaign(
            "sandbox", [{"to": x} for x in numbers], bot="echo", max_attempts=1
        )
        timeout = 60 + 4 * n * hi / limit
        from dialer.services import queries

        while True:
            st = queries.status(r, out["id"]) or {}
            if st.get("finished", 0) >= n:
                break
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"ours L={limit}: campaign not done in {timeout:.0f}s: {st}")
            time.sleep(0.25)
        wall = time.monotonic() - t0
        meter.stop()
        rep = control.wait_for(lambda rp: len(rp["terminal_times"]) >= n, timeout_s=30)
        stages = refill_stages(r, out["id"], n, limit, rep)
    return {
        **summarise("ours", limit, n, rep, wall),
        "stages_ms": stages,
        "cpu_share": meter.shares(),
        "task_runs": None,
        "cpu_ms_per_call": cpu_per_call(meter, n),
    }


def refill_stages(r: Any, cid: str, n: int, limit: int, rep: dict[str, Any]) -> dict[str, Any]:
    """Where ours spends a refill: sandbox -> receiver -> admit (follow-up task) -> dial POST.

    Pairs the k-th terminal callback (sent by the sandbox, then recorded by the
    receiver in the events stream) with the (L+k)-th admission (``admitted_at``
    written by the admit script) and the (L+k)-th dial the sandbox accepted.
    """
    import json

    from dialer.store import keys

    received = []
    for _id, f in r.xrange(keys.events("sandbox"), count=100_000):
        body = json.loads(f.get("body", "{}"))
        if str(body.get("eventtype", "")).lower() == "terminal":
            received.append(float(f["at"]))
    with r.pipeline(transaction=False) as pipe:
        for i in range(n):
            pipe.hmget(keys.call("sandbox", keys.call_id(cid, i)), ["admitted_at", "dial_at"])
        stamps = pipe.execute()
    admitted = sorted(float(a) for a, _ in stamps if a)
    # per call: the dial task's claim (dial_at) after its admission, the Celery hop
    hop = [(float(d) - float(a)) * 1000 for a, d in stamps if a and d]
    sent, dials = sorted(rep["terminal_times"]), sorted(rep["dial_times"])
    received.sort()
    m = min(len(sent), len(received), len(admitted) - limit, len(dials) - limit)
    stage = {
        "sandbox_to_receiver": [(received[k] - sent[k]) * 1000 for k in range(m)],
        "receiver_to_admitted": [(admitted[limit + k] - received[k]) * 1000 for k in range(m)],
        "admitted_to_dial": [(dials[limit + k] - admitted[limit + k]) * 1000 for k in range(m)],
        "of which admitted_to_claimed (Celery hop)": hop,
    }
    return {k: {"p50": r2(pct(v, 50), 1), "p99": r2(pct(v, 99), 1)} for k, v in stage.items()}


# --- the naive baseline ------------------------------------------------------------------
def run_naive(
    ctx: Ctx, limit: int, n: int, lo: float, hi: float, seed: int = 1, workers: int = 2
) -> dict[str, Any]:
    ctx.fresh_redis()
    numbers = contacts(n)
    app, state = make_sink(ctx.redis_url)
    logs = ctx.tmp / f"slots-naive-{limit}"
    sp = free_port()
    procs: list[Proc] = []
    with serve_in_thread(app) as sink_port:
        try:
            sandbox = Proc(
                "sandbox", sandbox_argv(sp, limit), bench_env(SANDBOX_PORT=str(sp)), logs
            )
            procs.append(sandbox)
            sandbox_url = f"http://127.0.0.1:{sp}"
            wait_http(f"{sandbox_url}/_sandbox/healthz", proc=sandbox)
            control = SandboxControl(sandbox_url, timeout_s=30)
            control.set_numbers(behaviours(numbers, lo, hi, seed))
            procs += start_naive_workers(ctx, logs, workers)
            base = f"http://127.0.0.1:{sink_port}"
            meter = CpuMeter(
                {
                    **{p.name: p.pid for p in procs},
                    "redis": ctx.redis_pid or 0,
                    "bench (sink)": os.getpid(),
                }
            ).start()
            t0 = time.monotonic()
            for i, num in enumerate(numbers):
                spec = {
                    "number": num,
                    "limit": limit,
                    "api_url": sandbox_url,
                    "callback_url": f"{base}/cb/{i}",
                    "custom": f"naive-{i}",
                    "stream_url": f"ws://127.0.0.1:{sink_port}/stream/naive-{i}",
                }
                naive.call.apply_async((spec,), queue=naive.QUEUE)
            timeout = 90 + 6 * n * hi / limit
            while state["terminal"] < n:
                if time.monotonic() - t0 > timeout:
                    raise TimeoutError(f"naive L={limit}: {state['terminal']}/{n} in {timeout}s")
                for p in procs:
                    if not p.alive():
                        raise RuntimeError(f"{p.name} died: {p.tail()}")
                time.sleep(0.25)
            wall = time.monotonic() - t0
            meter.stop()
            rep = control.report()
            attempts = int(redis.Redis.from_url(ctx.redis_url).get(naive.ATTEMPTS) or 0)
        finally:
            for p in reversed(procs):
                p.stop()
    return {
        **summarise("naive", limit, n, rep, wall),
        "cpu_share": meter.shares(),
        "task_runs": attempts,
        "cpu_ms_per_call": cpu_per_call(meter, n),
    }


def cpu_per_call(meter: CpuMeter, n: int) -> float:
    """CPU of the dialling machinery (all but the sandbox, Redis and this process) per call."""
    spent = sum(v for k, v in meter.result.items() if k not in ("sandbox", "redis", "bench (sink)"))
    return round(1000 * spent / n, 1)


def start_naive_workers(ctx: Ctx, logs: Path, workers: int) -> list[Proc]:
    naive.app.conf.broker_url = ctx.redis_url
    env = bench_env(NAIVE_BROKER_URL=ctx.redis_url)
    return [
        Proc(
            f"naive-worker{i}",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "benchmarks.naive",
                "worker",
                "-Q",
                naive.QUEUE,
                "-P",
                "threads",
                "-c",
                "8",
                "-n",
                f"naive{i}@%h",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "WARNING",
            ],
            env,
            logs,
        )
        for i in range(workers)
    ]


# --- the benchmark -----------------------------------------------------------------------
def run(ctx: Ctx) -> Result:
    res = Result("slots")
    if ctx.quick:
        main = (5, 20)
        lo, hi = 0.2, 0.6
        scale: list[tuple[int, int]] = []
    else:
        main = (20, 500)
        lo, hi = 1.0, 3.0
        scale = [(5, 40), (50, 400)] + ([(500, 2500)] if ctx.full else [])
    runs: list[dict[str, Any]] = []
    for limit, n in [main, *scale]:
        ctx.log(f"  slots L={limit} calls={n}: ours")
        ours = run_ours(ctx, limit, n, lo, hi)
        ctx.log(f"    {ours}")
        ctx.log(f"  slots L={limit} calls={n}: naive")
        base = run_naive(ctx, limit, n, lo, hi)
        ctx.log(f"    {base}")
        runs += [ours, base]
        primary = (limit, n) == main
        tag = f"L={limit}, {n} calls of {lo:g}-{hi:g} s"
        u_o, u_b = ours["utilisation"], base["utilisation"]
        res.rows.append(
            Row(
                "slots: cost",
                f"CPU per call, workers+receiver+beat ({tag})",
                ours["cpu_ms_per_call"],
                base["cpu_ms_per_call"],
                "ms",
                ratio=ratio(ours["cpu_ms_per_call"], base["cpu_ms_per_call"], lower_is_better=True),
                note=f"naive ran its task {base['task_runs']:,} times for {n} calls",
            )
        )
        res.rows.append(
            Row(
                "slot utilisation",
                f"mean active/L ({tag})",
                u_o,
                u_b,
                "",
                "≥ 0.98" if primary else "",
                (u_o is not None and u_o >= 0.98) if primary else None,
                ratio(u_o, u_b),
            )
        )
        for q in ("p50", "p99"):
            o, b = ours[f"refill_{q}_ms"], base[f"refill_{q}_ms"]
            target, met = "", None
            if primary and q == "p99":
                target = "p99 ≤ 50 ms and ≥ 20x better"
                rr = ratio(o, b, lower_is_better=True)
                met = o is not None and o <= 50 and rr is not None and rr >= 20
            res.rows.append(
                Row(
                    "refill latency",
                    f"{q} ({tag})",
                    o,
                    b,
                    "ms",
                    target,
                    met,
                    ratio(o, b, lower_is_better=True),
                )
            )
    res.details["runs"] = runs
    res.details["notes"] = (
        "the naive baseline's refill latency falls as its backlog grows: N waiting tasks each "
        "retrying every 1 s make a poll every ~1/N s, so with hundreds queued it refills fast, "
        "paid for in task runs, broker traffic and CPU (the 'cost' rows), and in lost submit "
        "order; with few waiting (L=5) its refill is ~0.1-1 s"
    )
    first = runs[0]
    stages = first.get("stages_ms") or {}
    res.bottleneck = (
        f"ours at L={first['L']}: refill p50/p99 by stage (ms): "
        + "; ".join(f"{k} {v['p50']}/{v['p99']}" for k, v in stages.items())
        + f"; CPU shares {first.get('cpu_share')} (no process saturated: the p99 is latency "
        "spikes in the two Celery hops (follow-up, then dial) and the receiver, not throughput)"
    )
    return res

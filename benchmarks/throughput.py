"""Dial throughput with the limits wide open: dials/s the system sends, vs a no-op Celery task.

Ours: the whole system (2 workers, threads x8, as ``dialer up``), account and
sandbox limits at 100,000, the sandbox accepts at once and lets every call
ring for 30 s (so no slot is released during the run). One campaign of N
contacts; rate = dials the sandbox accepted / time from first to last.
Baseline: N ``naive.noop`` tasks (one INCR each) on the same broker, drained
by 2 workers with the same settings (threads x8, acks_late, prefetch 1,
task events as the app has them); rate = first to last execution.
"""

from __future__ import annotations

import os
import time

from benchmarks import naive
from benchmarks.common import CpuMeter, Ctx, Result, Row, busiest, contacts, ratio
from benchmarks.slots import add_sandbox_account, dialer_system, pids_of, start_naive_workers
from dialer.sandbox.control import SandboxControl


def ours(
    ctx: Ctx, n: int, workers: int = 2, worker_args: list[str] | None = None
) -> dict[str, object]:
    """``worker_args``: ``dialer worker`` options (pool, concurrency, prefetch) to try."""
    ctx.fresh_redis()
    wide = 100_000
    with dialer_system(
        ctx,
        "throughput",
        limit=wide,
        workers=workers,
        sandbox_args=["--calls-per-minute", str(wide), "--ring-s", "30"],
        worker_args=worker_args,
    ) as sup:
        api, sandbox_url = add_sandbox_account(sup, limit=wide, calls_per_minute=wide)
        control = SandboxControl(sandbox_url, timeout_s=30)
        time.sleep(1.0)
        pids = pids_of(sup)  # each with its children: a prefork pool's CPU is in them
        meter = CpuMeter(
            {**pids, "redis": ctx.redis_pid or 0, "bench": os.getpid()}, trees=pids
        ).start()
        api.create_campaign("sandbox", [{"to": x} for x in contacts(n)], bot="echo", max_attempts=1)
        deadline = time.monotonic() + 60 + n / 20
        while True:
            rep = control.report()
            if rep["calls_total"] >= n:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {rep['calls_total']}/{n} dials")
            time.sleep(0.5)
        meter.stop()
    dials = sorted(rep["dial_times"])
    secs = dials[-1] - dials[0]
    return {
        "n": n,
        "seconds": round(secs, 2),
        "per_s": round((n - 1) / secs, 1),
        "cpu_share": meter.shares(),
        # the dialling system's CPU per dial: the sandbox and this process are the load side
        "cpu_ms_per_dial": round(
            1000 * sum(v for k, v in meter.result.items() if k not in ("sandbox", "bench")) / n, 1
        ),
        "rejected": rep["rejected"],
    }


def baseline(ctx: Ctx, n: int) -> dict[str, object]:
    r = ctx.fresh_redis()
    naive.app.conf.broker_url = ctx.redis_url
    key = "naive:noop"
    for _ in range(n):
        naive.noop.apply_async((key, n), queue=naive.QUEUE)
    procs = start_naive_workers(ctx, ctx.tmp / "throughput-naive", 2)
    try:
        meter = CpuMeter({**{p.name: p.pid for p in procs}, "redis": ctx.redis_pid or 0}).start()
        deadline = time.monotonic() + 60 + n / 50
        while r.get(key + ":last") is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no-op: {r.get(key)}/{n} done")
            for p in procs:
                if not p.alive():
                    raise RuntimeError(f"{p.name} died: {p.tail()}")
            time.sleep(0.2)
        meter.stop()
        secs = float(r.get(key + ":last") or 0) - float(r.get(key + ":first") or 0)
    finally:
        for p in procs:
            p.stop()
    return {
        "n": n,
        "seconds": round(secs, 2),
        "per_s": round((n - 1) / secs, 1),
        "cpu_share": meter.shares(),
    }


def run(ctx: Ctx) -> Result:
    res = Result("throughput")
    n = 150 if ctx.quick else 2_000
    o = ours(ctx, n)
    ctx.log(f"  throughput ours: {o}")
    b = baseline(ctx, n)
    ctx.log(f"  throughput no-op: {b}")
    rr = ratio(float(o["per_s"]), float(b["per_s"]))  # type: ignore[arg-type]
    met = rr is not None and rr >= 0.5
    res.rows.append(
        Row(
            "dial throughput",
            f"dials/s, limits wide open ({n:,} calls)",
            float(o["per_s"]),
            float(b["per_s"]),
            "/s",  # type: ignore[arg-type]
            "≥ 0.5x the no-op rate",
            met,
            rr,
        )
    )
    res.details.update({"ours": o, "baseline": b})
    res.bottleneck = (
        "CPU during our run: "
        + busiest(o["cpu_share"])  # type: ignore[arg-type]
        + "; no-op run: "
        + busiest(b["cpu_share"])
    )  # type: ignore[arg-type]
    return res

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


def _why(o: dict[str, object], b: dict[str, object]) -> str:
    """Why the ratio is what it is: both runs are CPU-bound on the same cores, so
    each rate is the cores it used over its CPU per dial (or per task)."""

    def per_item(run: dict[str, object]) -> tuple[float, dict[str, float]]:
        # shares (cores) over the rate: CPU ms per dial in the steady part, without
        # the start-up a plain CPU total / n would spread over a short run
        shares: dict[str, float] = run["cpu_share"]  # type: ignore[assignment]
        rate = float(run["per_s"])  # type: ignore[arg-type]
        ms = {k: 1000 * v / rate for k, v in shares.items() if v}
        return sum(ms.values()), ms

    total, ours_ms = per_item(o)
    noop, _ = per_item(b)
    cores = {k: sum(run["cpu_share"].values()) for k, run in (("ours", o), ("noop", b))}  # type: ignore[attr-defined]
    parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(ours_ms.items(), key=lambda kv: -kv[1]))
    return (
        f"CPU ms per dial at the measured rate, ours {total:.1f} in all ({parts}); "
        f"a no-op task {noop:.2f} (workers and Redis). Cores in use over the run: ours "
        f"{cores['ours']:.2f} ({busiest(o['cpu_share'])}), no-op {cores['noop']:.2f} "  # type: ignore[arg-type]
        f"({busiest(b['cpu_share'])}); each rate is at most the 2 cores over its CPU "  # type: ignore[arg-type]
        "per item, and ours also waits per dial on Redis and the Connect request with "
        "16 worker threads in all. A dial is two Celery "
        "tasks' broker work (the admit task's publish, the dial task), a Connect "
        "request (requests, ~1 ms), its commits, and the sandbox and the receiver's "
        "ringing callback on the same cores; a no-op task is one INCR. 0.5x needs the "
        "whole dial, sandbox and callback included, at twice a no-op task's CPU. What "
        "would move it: the Connect request without requests' per-request machinery "
        "(a pooled raw HTTP/1.1 client), the admitted dials published in one batch "
        "instead of one by one, and the sandbox (the test's Exotel, not the dialer) on "
        "a host of its own"
    )


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
    res.bottleneck = _why(o, b)
    return res

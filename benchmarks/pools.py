"""Celery pools and prefetch for short I/O tasks: which worker options dial best.

Not run by default (``python -m benchmarks pools``, ~10 min). Each worker
configuration below runs twice through the whole system (``dialer up``'s
processes, 2 workers with the options given to ``dialer worker``):

* the dial-throughput run (``benchmarks.throughput.ours``): dials/s with
  every limit wide open, and the system's CPU per dial;
* the system run (``benchmarks.system.run_ours``) at limit 40 with
  one-second calls: CPU per placed call, utilisation and refill p99.

gevent is not a dependency (and ``dialer worker --pool`` does not offer it):
the dial task blocks in ``requests`` and redis-py, which gevent would have
to monkey-patch process-wide.
"""

from __future__ import annotations

from typing import Any

from benchmarks import system, throughput
from benchmarks.common import Ctx, Result, Row

CONFIGS: list[tuple[str, list[str]]] = [
    ("threads x8, prefetch 1", ["--pool", "threads", "-c", "8"]),
    ("threads x8, prefetch 1, task events on", ["--pool", "threads", "-c", "8", "--task-events"]),
    ("threads x8, prefetch 4", ["--pool", "threads", "-c", "8", "--prefetch-multiplier", "4"]),
    ("threads x16, prefetch 1", ["--pool", "threads", "-c", "16"]),
    ("prefork x4, prefetch 1", ["--pool", "prefork", "-c", "4"]),
    ("solo, prefetch 1", ["--pool", "solo"]),
]
DEFAULT = CONFIGS[0][0]  # what dialer worker runs unless told otherwise


def run(ctx: Ctx) -> Result:
    res = Result("pools")
    configs = CONFIGS[:2] if ctx.quick else CONFIGS
    n_dials, (limit, n_calls, talk_s) = (150, (8, 40, 0.5)) if ctx.quick else (1000, (40, 300, 1.0))
    measured: list[dict[str, Any]] = []
    for label, args in configs:
        ctx.log(f"  pools {label}: throughput")
        t = throughput.ours(ctx, n_dials, worker_args=args)
        ctx.log(f"    {t}")
        ctx.log(f"  pools {label}: system L={limit}")
        s = system.run_ours(ctx, limit, n_calls, talk_s, worker_args=args, name="pools")
        ctx.log(f"    {s}")
        measured.append(
            {
                "config": label,
                "dials_per_s": t["per_s"],
                "cpu_ms_per_dial_wide_open": t["cpu_ms_per_dial"],
                "cpu_ms_per_call": s["cpu_ms_per_call"],
                "workers_ms_per_call": s["cpu_ms_by_role"].get("Celery workers"),
                "utilisation": s["utilisation"],
                "refill_p99_ms": s["refill_p99_ms"],
                "celery_hop_ms": s["stages_ms"].get("of which admitted_to_claimed (Celery hop)"),
            }
        )
    for m in measured:
        hop = m["celery_hop_ms"] or {}
        res.rows.append(
            Row(
                "celery pools",
                f"dials/s, limits wide open ({n_dials:,} calls), {m['config']}"
                + (" (the default)" if m["config"] == DEFAULT else ""),
                float(m["dials_per_s"]),
                None,
                "/s",
                note=f"CPU {m['cpu_ms_per_dial_wide_open']} ms/dial; at L={limit}, {n_calls} "
                f"calls of {talk_s:g} s: {m['cpu_ms_per_call']} ms/call (workers "
                f"{m['workers_ms_per_call']}), utilisation {m['utilisation']}, refill p99 "
                f"{m['refill_p99_ms']} ms, admission to dial task p50/p99 "
                f"{hop.get('p50')}/{hop.get('p99')} ms",
            )
        )
    res.details["configs"] = measured
    res.details["notes"] = "2 workers of each configuration, through dialer up's code: " + table(
        measured
    )
    return res


def table(measured: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{m['config']}: {m['dials_per_s']}/s, {m['cpu_ms_per_dial_wide_open']} ms/dial wide "
        f"open, {m['cpu_ms_per_call']} ms/call at the limit, refill p99 {m['refill_p99_ms']} ms"
        for m in measured
    )

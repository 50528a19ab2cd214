"""Ingest: a CSV of N contacts -> every contact queued and visible in the campaign status.

Ours: ``dialer.services.ingest.create_campaign`` (CSV parse, E.164 validation and
de-duplication, pipelined writes), timed until ``status()`` shows all N
pending. Baseline: the naive design's submit, one ``task.delay()`` per CSV
row (not even validated), timed until the broker queue holds all N.
In-process against Redis only; no workers run.
"""

from __future__ import annotations

import cProfile
import csv
import io
import pstats
import time
from typing import Any

from benchmarks import naive
from benchmarks.common import KEYS, Ctx, Result, Row, contacts, cpu_seconds, r2, ratio
from dialer.core import campaign
from dialer.services import ingest, queries
from dialer.services.accounts import make_account, save_account


def csv_text(n: int, with_vars: bool = True) -> str:
    if with_vars:
        return "to,name\n" + "".join(f"{num},name{i}\n" for i, num in enumerate(contacts(n)))
    return "to\n" + "\n".join(contacts(n)) + "\n"


def register(r: Any) -> None:
    save_account(
        r,
        make_account(
            "sandbox",
            "sandbox-key",
            "sandbox-token",
            "08047112345",
            api_url="http://127.0.0.1:9",
            max_concurrent_calls=10,
        ),
        KEYS,
    )


def ours(ctx: Ctx, n: int) -> dict[str, Any]:
    r = ctx.fresh_redis()
    register(r)
    text = csv_text(n)
    redis_cpu0 = cpu_seconds(ctx.redis_pid) if ctx.redis_pid else 0.0
    c0 = time.process_time()
    t0 = time.perf_counter()
    spec = campaign.CampaignIn.model_validate({"account": "sandbox", "csv": text, "bot": "echo"})
    out = ingest.create_campaign(r, spec, default_region="IN")
    while True:
        st = queries.status(r, out["id"]) or {}
        if st.get("total") == n and st.get("counts", {}).get("pending") == n:
            break
        time.sleep(0.001)
    secs = time.perf_counter() - t0
    cpu = time.process_time() - c0
    redis_cpu = (cpu_seconds(ctx.redis_pid) - redis_cpu0) if ctx.redis_pid else 0.0
    r.flushdb()
    return {
        "n": n,
        "seconds": round(secs, 3),
        "per_s": round(n / secs),
        # CPU, not wall: on a shared machine the wall rate drops with other load
        "cpu_s": round(cpu, 3),
        "redis_cpu_s": round(redis_cpu, 3),
        "per_cpu_s": round(n / cpu) if cpu else None,
    }


def baseline(ctx: Ctx, n: int) -> dict[str, Any]:
    r = ctx.fresh_redis()
    naive.app.conf.broker_url = ctx.redis_url
    text = csv_text(n)
    t0 = time.perf_counter()
    reader = csv.reader(io.StringIO(text))
    next(reader)
    for i, row in enumerate(reader):
        naive.call.delay(
            {
                "number": row[0],
                "vars": {"name": row[1]},
                "limit": 10,
                "api_url": "http://127.0.0.1:9",
                "callback_url": "",
                "stream_url": "",
                "custom": str(i),
            }
        )
    while r.llen(naive.QUEUE) < n:
        time.sleep(0.001)
    secs = time.perf_counter() - t0
    r.flushdb()
    return {"n": n, "seconds": round(secs, 3), "per_s": round(n / secs)}


def profile(ctx: Ctx, n: int) -> str:
    """Where ingest time goes, by the functions that matter (cProfile, cumulative)."""
    r = ctx.fresh_redis()
    register(r)
    spec = campaign.CampaignIn.model_validate(
        {"account": "sandbox", "csv": csv_text(n), "bot": "echo"}
    )
    prof = cProfile.Profile()
    prof.enable()
    ingest.create_campaign(r, spec, default_region="IN")
    prof.disable()
    r.flushdb()
    stats = pstats.Stats(prof)
    total = max(getattr(stats, "total_tt", 0.0), 1e-9)
    wanted = {
        ("contacts.py", "parse_csv"): "CSV parse + validation (dialer.core.contacts.parse_csv)",
        ("exotel.py", "e164"): "  of which E.164 (fast path, else the full parse)",
        ("exotel.py", "strict_e164_valid"): "    the strict-E.164 fast path",
        ("phonenumberutil.py", "parse"): "    phonenumbers.parse",
        ("phonenumberutil.py", "is_valid_number"): "    phonenumbers.is_valid_number",
        ("client.py", "execute"): "Redis pipelines (redis-py execute)",
    }
    found: dict[str, float] = {}
    for (path, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for (file, name), label in wanted.items():
            if path.endswith(file) and func == name:
                found[label] = max(found.get(label, 0.0), ct)
    parts = [
        f"{label.strip()} {ct / total:.0%}"
        for label, ct in sorted(found.items(), key=lambda kv: -kv[1])
    ]
    return "cProfile of create_campaign (10k contacts): " + "; ".join(parts)


def run(ctx: Ctx) -> Result:
    res = Result("ingest")
    if ctx.quick:
        sizes, primary = [2_000], 2_000
    else:
        sizes, primary = [10_000, 100_000] + ([1_000_000] if ctx.full else []), 100_000
    runs = []
    for n in sizes:
        o = ours(ctx, n)
        b = baseline(ctx, min(n, 10_000)) if n <= 100_000 else None
        ctx.log(f"  ingest {n}: ours {o}  baseline {b}")
        runs.append({"ours": o, "baseline": b})
        bo = b["per_s"] if b else None
        rr = ratio(o["per_s"], bo)
        is_primary = n == primary
        met = (o["per_s"] >= 20_000 and rr is not None and rr >= 10) if is_primary else None
        res.rows.append(
            Row(
                "ingest",
                f"{n:,} contacts, CSV → queued and in status",
                float(o["per_s"]),
                float(bo) if bo else None,
                "contacts/s",
                "≥ 20k/s and ≥ 10x" if is_primary else "",
                met,
                rr,
                note=f"{o['seconds']:.2f} s" + (f" vs {b['seconds']:.2f} s" if b else ""),
            )
        )
        if is_primary and o["per_cpu_s"]:
            res.rows.append(
                Row(
                    "ingest",
                    f"{n:,} contacts per CPU-second of the ingesting process",
                    float(o["per_cpu_s"]),
                    unit="contacts/CPU-s",
                    note=f"{o['cpu_s']:.2f} CPU-s, plus Redis {o['redis_cpu_s']:.2f} CPU-s; "
                    "the wall rate above also waits on whatever else shares the cores",
                )
            )
    res.details["runs"] = runs
    res.details["notes"] = (
        "baseline = one task.delay() per CSV row with no phone validation; "
        "ours parses, validates (E.164) and de-duplicates every row. "
        "Strict E.164 input skips the full phonenumbers parse (dialer.core.exotel."
        "strict_e164_valid, the same metadata applied directly, checked against the parse "
        "by tests/unit/test_e164_fast.py): cProfile before, E.164 66% of create_campaign "
        "(phonenumbers.parse 39%, is_valid_number 24%); after, 16% (the rest: redis-py "
        "pipelines 42%, csv + Ingest 14%, json for vars). CPU of the ingesting process per "
        "100k rows: 8.1-10.5 s before, 3.8-4.1 s after (same machine, same load)."
    )
    if any(row.met is False for row in res.rows) or ctx.quick:
        res.bottleneck = profile(ctx, 2_000 if ctx.quick else 10_000)
        ctx.log(f"  {res.bottleneck}")
    res.details["ours_seconds_per_100k"] = r2(
        next((x["ours"]["seconds"] for x in runs if x["ours"]["n"] == 100_000), None)
    )
    return res

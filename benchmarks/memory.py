"""Memory: Redis bytes per queued contact (``INFO memory`` used_memory before/after N contacts).

A queued contact is its call hash (``to``, ``state``, ``attempt``, ``tries``,
and ``vars`` if any: fields still empty are not stored, see
``dialer.store.records.new_call_hash``) plus its entry in the campaign queue. Measured for contacts
with a phone number only and with one short variable.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import Ctx, Result, Row
from benchmarks.ingest import csv_text, register
from dialer.core import campaign
from dialer.services import ingest


def per_contact(ctx: Ctx, n: int, with_vars: bool) -> dict[str, Any]:
    r = ctx.fresh_redis()
    register(r)
    spec = campaign.CampaignIn.model_validate(
        {"account": "sandbox", "bot": "echo", "csv": csv_text(n, with_vars)}
    )
    before = int(r.info("memory")["used_memory"])
    ingest.create_campaign(r, spec, default_region="IN")
    after = int(r.info("memory")["used_memory"])
    keys = int(r.dbsize())
    r.flushdb()
    return {
        "n": n,
        "with_vars": with_vars,
        "bytes": after - before,
        "bytes_per_contact": round((after - before) / n, 1),
        "keys": keys,
    }


def run(ctx: Ctx) -> Result:
    res = Result("memory")
    n = 5_000 if ctx.quick else 100_000
    bare = per_contact(ctx, n, with_vars=False)
    named = per_contact(ctx, n, with_vars=True)
    ctx.log(f"  memory: {bare}  {named}")
    b = bare["bytes_per_contact"]
    res.rows.append(
        Row(
            "memory",
            f"Redis bytes per queued contact ({n:,}, phone only)",
            b,
            None,
            "B",
            "≤ 300 B",
            b <= 300,
        )
    )
    res.rows.append(
        Row(
            "memory",
            f"... with one variable (name=nameNNNNN) ({n:,})",
            named["bytes_per_contact"],
            None,
            "B",
        )
    )
    res.details["runs"] = [bare, named]
    if b > 300:
        res.bottleneck = (
            "each contact is its own hash (key name ~30 B + dict entry + "
            "listpack) plus a queue zset entry (skiplist node + dict entry)"
        )
    return res

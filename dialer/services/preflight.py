"""A dry run's preflight: the account's limits and when the campaign would finish.

Reads the account's limits (one Redis read) and leaves the arithmetic to the
pure estimator (``dialer.core.campaign.estimate_finish``). The webhook probe
is not here: the receiver runs it asynchronously (``dialer.net.egress.probe``).
"""

from __future__ import annotations

from typing import Any

import redis

from dialer.core.campaign import CampaignIn, estimate_finish
from dialer.core.windows import Window
from dialer.store import keys


def preflight(
    r: redis.Redis,
    spec: CampaignIn,
    callable_n: int,
    window: Window | None,
    zones: list[tuple[str, ...]],
    now: float,
) -> dict[str, Any]:
    """What a dry run adds: limits, webhook reachability and a finish-time estimate."""
    limit, cpm = r.hmget(keys.account(spec.account), "max_concurrent", "calls_per_minute")
    limit_n, cpm_n = int(limit or 1), int(cpm or 200)
    # busy seconds of dialling: bound by concurrency and by the API rate
    work_s = max(callable_n * spec.expected_call_s / limit_n, callable_n * 60.0 / cpm_n)
    finish = estimate_finish(now, work_s, window, zones[0] if zones else ("UTC",))
    return {
        "preflight": {
            "max_concurrent_calls": limit_n,
            "calls_per_minute": cpm_n,
            "bot": "ok",
            # filled in by the receiver, asynchronously (dialer.net.egress.probe): a
            # slow URL must not hold a thread of the pool callbacks use
            "webhook_reachable": None,
            "estimate": {
                "busy_s": round(work_s, 1),
                "finish_at": finish,
                "finish_in_s": round(finish - now, 1),
            },
        }
    }

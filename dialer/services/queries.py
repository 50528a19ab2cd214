"""Campaign queries: status (with why calls wait), results and the campaign list.

Blocking Redis client; reads only. The shapes are the contract's
(``GET /v1/campaigns``, ``/{id}``, ``/{id}/results``, ``dialer status --json``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from typing import Any

import redis

from dialer.core.calls import FINAL, State
from dialer.core.results import call_result
from dialer.core.states import CampaignState, CircuitState
from dialer.store import keys, replies
from dialer.store.campaigns import load_meta


def status(r: redis.Redis, cid: str) -> dict[str, Any] | None:
    """The contract's status object (``GET /v1/campaigns/{id}``, ``dialer status --json``)."""
    found = load_meta(r, cid)
    if found is None:
        return None
    account, meta = found
    counts = {
        k: int(v) for k, v in replies.fields(r.hgetall(keys.counts(account, cid))).items() if int(v)
    }
    total = int(meta.get("total", 0))
    # One source for "finished": the counter the final transition bumps
    # (dialer.store.records); completion and retention read the same field.
    finished = int(meta.get("finished", 0))
    state = meta.get("state", CampaignState.RUNNING)
    if state == CampaignState.RUNNING and finished >= total:
        state = CampaignState.DONE
    return {
        "id": cid,
        "name": meta.get("name"),
        "account": account,
        "bot": meta.get("bot"),
        "state": state,
        "total": total,
        "counts": counts,
        "outcomes": {s: n for s, n in counts.items() if State(s) in FINAL},
        "progress": round(finished / total, 4) if total else 1.0,
        "finished": finished,
        "active": int(meta.get("active", 0)),
        "rejected": int(meta.get("rejected", 0)),
        "duplicates": int(meta.get("duplicates", 0)),
        "created_at": float(meta.get("created_at", 0)),
        "waiting": waiting(r, account, cid, meta, state, total - finished),
    }


def waiting(
    r: redis.Redis,
    account: str,
    cid: str,
    meta: dict[str, str],
    state: str,
    unfinished: int,
    now: float | None = None,
) -> dict[str, Any]:
    """Why calls are not being dialled right now, for ``status`` (codes + human text).

    Reads what admission itself reads (the account's circuit, 429 back-off,
    slots, per-minute budget; the campaign's queue and delayed set), so the
    answer names the gate that really holds the calls. Codes: ``paused``,
    ``cancelled``, ``circuit_open``, ``backoff``, ``slots_full``,
    ``rate_limit``, ``window`` (first calls waiting for their calling window),
    ``retry`` (retries waiting for their delay).
    """
    now = time.time() if now is None else now
    if state == CampaignState.DONE or unfinished <= 0:
        # nothing left to dial: no reads (a campaign list is mostly finished campaigns)
        return {"queued": 0, "scheduled": 0, "next_due_at": None, "reasons": []}
    with r.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.queue(account, cid))
        pipe.zcard(keys.delayed(account, cid))
        pipe.zrange(keys.delayed(account, cid), 0, 0, withscores=True)
        pipe.hmget(
            keys.account(account),
            "circuit",
            "circuit_reason",
            "paused_until",
            "max_concurrent",
            "calls_per_minute",
        )
        pipe.zcard(keys.active(account))
        pipe.zcount(keys.rate(account), now - 60, "+inf")
        queued, scheduled, first, acct, active, dialled = pipe.execute()
    circuit, circuit_reason, paused_until, limit, cpm = acct
    next_due = float(first[0][1]) if first else None
    reasons: list[dict[str, Any]] = []

    def why(code: str, text: str, at: float | None = None) -> None:
        # ``at``: when this gate opens (epoch s), for the CLI to show as a local date
        reasons.append({"code": code, "text": text, "at": at})

    if state == CampaignState.CANCELLED:
        why("cancelled", "cancelled: no new calls; calls already ringing finish")
    elif state == CampaignState.PAUSED:
        why("paused", f"paused: `dialer resume {cid}` continues")
    if circuit == CircuitState.OPEN:
        why(
            "circuit_open",
            f"account {account}'s circuit is open ({circuit_reason or 'Exotel refused it'}): "
            f"fix the credentials, then `dialer account resume {account}`",
        )
    if float(paused_until or 0) > now:
        why(
            "backoff",
            "Exotel answered 429 (too many requests): admission waits",
            float(paused_until or 0),
        )
    if queued and limit is not None and active >= int(limit):
        why("slots_full", f"all {int(limit)} call slots of account {account} are in use")
    if queued and cpm is not None and dialled >= int(cpm):
        why("rate_limit", f"the per-minute budget of {int(cpm)} dials is used up")
    if not queued and scheduled and next_due is not None and next_due > now:
        kind = _deferred_kind(r, account, str(first[0][0]), meta)
        if kind == "window":
            why("window", "waiting for the calling window in the contacts' local time", next_due)
        else:
            why("retry", "waiting for retry delays", next_due)
    return {"queued": queued, "scheduled": scheduled, "next_due_at": next_due, "reasons": reasons}


def _deferred_kind(r: redis.Redis, account: str, call_id: str, meta: dict[str, str]) -> str:
    """A delayed call never dialled yet waits for its window; a dialled one for its retry."""
    if not meta.get("window"):
        return "retry"
    attempt, record = r.hmget(keys.call(account, call_id), "attempt", "h:1")
    return "window" if (attempt or "1") == "1" and record is None else "retry"


def iter_results(
    r: redis.Redis, cid: str, offset: int = 0, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    found = load_meta(r, cid)
    if found is None:
        return
    account, meta = found
    total = int(meta.get("total", 0))
    end = total if limit is None else min(total, offset + limit)
    for start in range(offset, end, 1000):
        ids = [keys.call_id(cid, i) for i in range(start, min(start + 1000, end))]
        with r.pipeline(transaction=False) as pipe:
            for call_id in ids:
                pipe.hgetall(keys.call(account, call_id))
            rows = pipe.execute()
        for call_id, h in zip(ids, rows, strict=True):
            yield call_result(call_id, h)


def list_campaigns(
    r: redis.Redis,
    *,
    offset: int = 0,
    limit: int = 100,
    state: str | None = None,
    account: str | None = None,
    allowed: Collection[str] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """(matching total, one page of status objects), newest first.

    ``allowed``: only campaigns of these accounts (an API key's scope).

    Reads the whole campaign index (one hash) and each campaign's creation
    time in one pipeline; a ``state`` filter needs every candidate's status,
    because ``done`` is derived from the counters, not stored.
    """
    index: dict[str, str] = r.hgetall(keys.CAMPAIGNS)  # type: ignore[assignment]
    items = sorted(
        (cid, a)
        for cid, a in index.items()
        if (account is None or a == account) and (allowed is None or a in allowed)
    )
    with r.pipeline(transaction=False) as pipe:
        for cid, a in items:
            pipe.hget(keys.campaign(a, cid), "created_at")
        created = pipe.execute()
    # no created_at: expired, its index entry not yet forgotten (dialer.store.retention)
    listed = [(item, c) for item, c in zip(items, created, strict=True) if c is not None]
    newest = [cid for (cid, _), _ in sorted(listed, key=_newest_first)]
    if state is None:
        page = (status(r, cid) for cid in newest[offset : offset + limit])
        return len(newest), [s for s in page if s is not None]
    matching = [s for s in (status(r, cid) for cid in newest) if s and s["state"] == state]
    return len(matching), matching[offset : offset + limit]


def _newest_first(item: tuple[tuple[str, str], str | None]) -> tuple[float, str]:
    (cid, _), created = item
    return -float(created or 0), cid

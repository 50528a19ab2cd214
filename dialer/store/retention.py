"""Retention and purge: finished campaigns leave Redis; a purge removes one at once.

A campaign is *finished* when every contact has a final outcome (done), or it
was cancelled and none of its calls holds a slot any more. From then on its
data (contacts, outcomes, answers, recording URLs, counts, survey) has no use
to the dialer, only to the customer, who has ``DIALER_RETENTION_DAYS`` to
fetch it. ``sweep`` (beat, every few minutes) gives every key of a finished
campaign one absolute expiry, so Redis deletes them even if no sweep ever
runs again, and then drops the campaign's index entries. Raw callbacks in the
account's ``events`` stream and refused ones in ``rejects`` are trimmed to
the same window by stream id (ids are millisecond timestamps).

``purge`` is the data-protection path (``DELETE /v1/campaigns/{id}``,
``dialer purge``): it refuses a campaign that can still dial or whose calls
are live (cancel first: a live call's callbacks would recreate what was
deleted), then marks it ``purging`` (every reader treats it as gone), deletes
call hashes in batches and the campaign's own keys last. A purge cut short
is finished by the next ``purge`` or sweep.

This module does not touch account-wide keys (account, do-not-call list,
caller-id statistics): they belong to the account, not to one campaign. The
per-minute rate window keeps a dialled call's id for at most 60 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from dialer.core.errors import ValidationError
from dialer.core.states import CampaignState
from dialer.store import keys, replies

BATCH = 1_000
PURGING = CampaignState.PURGING
SWEEP_FIELDS = ("state", "finished", "total", "expires_at", "completed_at")


class PurgeRefused(ValidationError):
    """The campaign can still dial or has live calls: cancel it and wait."""


@dataclass(frozen=True)
class Purged:
    id: str
    calls: int
    events: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "deleted": True, "calls": self.calls, "events": self.events}


def campaign_keys(account: str, cid: str) -> list[str]:
    """Every per-campaign key except the call hashes (those are ``call_key_batches``)."""
    return [
        keys.campaign(account, cid),
        keys.counts(account, cid),
        keys.queue(account, cid),
        keys.delayed(account, cid),
        keys.survey(account, cid),
    ]


def call_key_batches(account: str, cid: str, total: int) -> Iterator[list[str]]:
    """The campaign's call hashes, ``BATCH`` at a time (a million names at once is ~100 MB)."""
    for start in range(0, total, BATCH):
        yield [
            keys.call(account, keys.call_id(cid, i))
            for i in range(start, min(total, start + BATCH))
        ]


def live_calls(r: redis.Redis, account: str, cid: str) -> int:
    """Calls of ``cid`` holding a slot (the account's active set is small: its limit)."""
    members = r.zrange(keys.active(account), 0, -1)
    return sum(1 for m in members if keys.campaign_part(str(m)) == cid)


def is_gone(meta: dict[str, str]) -> bool:
    """Pure: expired (a counter bumped after expiry leaves a stray hash) or being purged."""
    return (not meta.get("state") and not meta.get("total")) or meta.get("state") == PURGING


def is_finished(meta: dict[str, str], live: int) -> bool:
    """Pure: no call of this campaign can be dialled or change any more."""
    if live:
        return False
    if meta.get("state") == CampaignState.CANCELLED:
        return True
    return int(meta.get("finished", 0) or 0) >= int(meta.get("total", 0) or 0)


# ------------------------------------------------------------------ retention


def expire_campaign(r: redis.Redis, account: str, cid: str, at: float) -> int:
    """Give every key of the campaign the absolute expiry ``at`` (epoch s). Idempotent.

    One EXPIREAT time for all keys: from that instant a reader finds none of
    them, whatever order Redis reclaims them in. ``expires_at`` is written
    last, so a sweep cut short does it all again.
    """
    ckey = keys.campaign(account, cid)
    total = int(r.hget(ckey, "total") or 0)
    when = int(at) + 1
    n = 0
    for batch in call_key_batches(account, cid, total):
        with r.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.expireat(key, when)
            n += sum(1 for ok in pipe.execute() if ok)
    with r.pipeline() as pipe:
        pipe.srem(keys.running(account), cid)  # admission stops scanning it now
        for key in campaign_keys(account, cid)[1:]:
            pipe.expireat(key, when)
        pipe.hset(ckey, "expires_at", when)
        pipe.expireat(ckey, when)
        pipe.execute()
    return n


def sweep(r: redis.Redis, *, now: float | None = None, retention_s: float) -> dict[str, int]:
    """Schedule the expiry of newly finished campaigns and forget expired ones.

    Cost: one pipelined read per campaign in ``dl:campaigns`` (the index holds
    only campaigns that are not yet expired) plus the writes of those that
    just finished.
    """
    now = time.time() if now is None else now
    report = {"expiring": 0, "forgotten": 0, "purged": 0}
    entries = list(r.hscan_iter(keys.CAMPAIGNS))
    for start in range(0, len(entries), BATCH):
        chunk = entries[start : start + BATCH]
        with r.pipeline(transaction=False) as pipe:
            for cid, account in chunk:
                pipe.hmget(keys.campaign(account, cid), *SWEEP_FIELDS)
            rows = pipe.execute()
        for (cid, account), row in zip(chunk, rows, strict=True):
            meta = {f: v for f, v in zip(SWEEP_FIELDS, row, strict=True) if v is not None}
            if meta.get("state") == PURGING:
                purge(r, cid, force=True)
                report["purged"] += 1
            elif is_gone(meta):
                # Expired (or only a stray field written after expiry): forget it.
                _forget(r, account, cid)
                report["forgotten"] += 1
            elif (
                not meta.get("expires_at")
                and is_finished(meta, live=0)  # counts first: most campaigns stop here
                and not live_calls(r, account, cid)
            ):
                ended = float(meta.get("completed_at") or now)
                expire_campaign(r, account, cid, ended + retention_s)
                report["expiring"] += 1
    trim_streams(r, [str(a) for a in r.smembers(keys.ACCOUNTS)], now - retention_s)
    return report


def trim_streams(r: redis.Redis, accounts: list[str], before: float) -> None:
    """Drop raw callbacks older than ``before`` (stream ids are ms timestamps)."""
    min_id = str(max(0, int(before * 1000)))
    with r.pipeline(transaction=False) as pipe:
        for account in accounts:
            pipe.xtrim(keys.events(account), minid=min_id, approximate=False)
        pipe.xtrim(keys.REJECTS, minid=min_id, approximate=False)
        pipe.execute()


def _forget(r: redis.Redis, account: str, cid: str) -> None:
    with r.pipeline() as pipe:
        pipe.hdel(keys.CAMPAIGNS, cid)
        pipe.srem(keys.running(account), cid)
        pipe.delete(*campaign_keys(account, cid))
        pipe.execute()


# ------------------------------------------------------------------ purge


def purge(r: redis.Redis, cid: str, *, force: bool = False) -> Purged | None:
    """Delete campaign ``cid`` and everything recorded about its contacts now.

    None if there is no such campaign. ``PurgeRefused`` while it can still
    dial (running or paused with calls to make) or a call is live, unless
    ``force`` (a purge already under way, resumed by the sweep).
    """
    account = r.hget(keys.CAMPAIGNS, cid)
    if account is None:
        return None
    account = str(account)
    ckey = keys.campaign(account, cid)
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(ckey, keys.active(account))
                meta = replies.fields(pipe.hgetall(ckey))
                if not meta:
                    pipe.unwatch()
                    _forget(r, account, cid)
                    return None
                if not force and meta.get("state") != PURGING:
                    _check_purgeable(meta, live_calls(pipe, account, cid))
                pipe.multi()
                # From here every reader (status, results, streamer, admission) sees
                # no campaign; the deletes below can take their time.
                pipe.hset(ckey, "state", PURGING)
                pipe.srem(keys.running(account), cid)
                pipe.execute()
                break
            except redis.WatchError:
                continue
    total = int(meta.get("total", 0) or 0)
    calls = 0
    for batch in call_key_batches(account, cid, total):
        calls += int(r.unlink(*batch))
    # A used stream token's claim names the call; it expires with the token, but a
    # purge is "now". One SCAN of the keyspace: purges are rare.
    claims = list(r.scan_iter(match=keys.stream_claims_pattern(account, cid), count=1000))
    for start in range(0, len(claims), BATCH):
        r.unlink(*claims[start : start + BATCH])
    events = _purge_stream(r, keys.events(account), cid) + _purge_stream(r, keys.REJECTS, cid)
    _forget(r, account, cid)  # the campaign hash and index last: a retry finds it
    return Purged(cid, calls, events)


def _check_purgeable(meta: dict[str, str], live: int) -> None:
    state = meta.get("state", CampaignState.RUNNING)
    if live:
        raise PurgeRefused(
            f"{live} call(s) of this campaign are still live; cancel it and retry once "
            "they have ended",
            field="state",
        )
    if not is_finished(meta, live):
        raise PurgeRefused(
            f"campaign is {state} and still has contacts to call; cancel it first",
            field="state",
        )


def _purge_stream(r: redis.Redis, stream: str, cid: str) -> int:
    """XDEL every entry of ``stream`` whose call id belongs to ``cid`` (bounded streams)."""
    removed = 0
    start = "-"
    while True:
        rows = r.xrange(stream, min=start, max="+", count=BATCH)
        if not rows:
            return removed
        ids = [
            eid
            for eid, entry in rows
            if keys.campaign_part(str((entry or {}).get("call_id", ""))) == cid
        ]
        if ids:
            removed += int(r.xdel(stream, *replies.texts(ids)))
        start = f"({replies.text(rows[-1][0])}"  # exclusive: resume after the last id seen

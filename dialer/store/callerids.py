"""Caller-ID pools: rotate an account's ExoPhones, least recently used first,
and take a number out of rotation when its answer rate collapses (a caller id
flagged as spam by carriers stops being answered).

Only the account's key space is touched; the decision rule
(``spam_suspected``) is pure and table-tested.
"""

from __future__ import annotations

import redis

from dialer.store import keys

MIN_SAMPLE = 20  # dials before an answer rate means anything
COLLAPSE_RATIO = 0.25  # below a quarter of the pool's answer rate: suspect

_PICK = """
local m = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
if m then redis.call('ZADD', KEYS[1], ARGV[1], m) end
return m
"""


def set_pool(r: redis.Redis, account: str, caller_ids: list[str]) -> None:
    """Replace the rotation (a re-added id comes back into it)."""
    key = keys.callerids(account)
    with r.pipeline() as pipe:
        pipe.delete(key)
        if caller_ids:
            pipe.zadd(key, dict.fromkeys(caller_ids, 0))
            pipe.hdel(keys.callerids_off(account), *caller_ids)
        pipe.execute()


def pick(r: redis.Redis, account: str, default: str, now: float) -> str:
    """The least recently used caller id of the pool (``default`` when there is none)."""
    chosen = r.register_script(_PICK)(keys=[keys.callerids(account)], args=[now])  # EVALSHA
    return chosen if isinstance(chosen, str) else (chosen.decode() if chosen else default)


def spam_suspected(dials: int, answered: int, pool_dials: int, pool_answered: int) -> bool:
    """Pure rule: enough dials, and an answer rate far below the pool's."""
    if dials < MIN_SAMPLE or pool_dials <= 0:
        return False
    pool_rate = pool_answered / pool_dials
    return pool_rate > 0 and answered / dials < COLLAPSE_RATIO * pool_rate


def record(r: redis.Redis, account: str, caller_id: str, answered: bool) -> bool:
    """Count one finished attempt; returns True if the caller id was just taken out."""
    stats = keys.callerid_stats(account)
    with r.pipeline() as pipe:
        pipe.hincrby(stats, f"{caller_id}:dials", 1)
        pipe.hincrby(stats, f"{caller_id}:answered", 1 if answered else 0)
        pipe.hgetall(stats)
        *_, all_stats = pipe.execute()
    pool_d = sum(int(v) for k, v in all_stats.items() if k.endswith(":dials"))
    pool_a = sum(int(v) for k, v in all_stats.items() if k.endswith(":answered"))
    d = int(all_stats.get(f"{caller_id}:dials", 0))
    a = int(all_stats.get(f"{caller_id}:answered", 0))
    if (
        r.zcard(keys.callerids(account)) > 1
        and spam_suspected(d, a, pool_d, pool_a)
        and r.zrem(keys.callerids(account), caller_id)
    ):
        r.hset(
            keys.callerids_off(account),
            caller_id,
            f"answer rate {a}/{d} far below the pool's {pool_a}/{pool_d}",
        )
        return True
    return False


def pool_report(r: redis.Redis, account: str) -> dict[str, object]:
    return {
        "in_rotation": r.zrange(keys.callerids(account), 0, -1),
        "removed": r.hgetall(keys.callerids_off(account)),
    }

"""Per-account admission control on Redis: ``dialer.core.limiter.Limiter`` for production.

A slot is a member of the account's active sorted set, named by call id and
scored by lease deadline (the rq/arq idea). ``admit`` is one Lua script
(``dialer/store/lua/admit.lua``) so the limit holds across every worker on every
host; release is part of the call's state transition (``dialer.store.records``),
an idempotent ``ZREM`` (``release`` here is the same ``ZREM`` alone, for a slot
whose call is gone), and a transition that releases a slot refills it in the
same script run (a :class:`Refill` handed to the transition: the same
admission function, ``lua/admission.lua``, in ``lua/commit.lua``). Waiting
calls wait here in Redis, never in the broker. The contract, and its
in-memory twin, is ``dialer.core.limiter``.

This module does not dial and does not know Celery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis

from dialer.core.calls import State
from dialer.core.limiter import Limiter
from dialer.store import keys, replies
from dialer.store.scripts import script


def admit_call(
    account: str, now: float, limit: int, lease_s: float, reserve_pct: int = 0
) -> dict[str, list[Any]]:
    """KEYS and ARGV of ``admit.lua`` (see its header), for both clients."""
    return {
        "keys": [
            keys.account(account),
            keys.active(account),
            keys.rate(account),
            keys.running(account),
        ],
        "args": [
            repr(now),
            keys.call_prefix(account)[: -len("call:")],
            limit,
            lease_s,
            reserve_pct,
            State.PENDING.value,
            State.ADMITTED.value,
        ],
    }


@dataclass
class Refill:
    """Admission run by ``lua/commit.lua`` right after a transition that releases
    a slot, in the same round trip (``dialer.store.records.transition``).

    ``ran`` and ``admitted`` are filled in by that commit: the slot was
    released and these calls took it (now ``admitted``, each to be dialled).
    """

    keys: list[str]
    args: list[Any]
    ran: bool = False
    admitted: list[str] = field(default_factory=list)


class _Admission:
    """What both Redis limiters admit with, and the refill a releasing commit runs."""

    def __init__(self, *, admit_lease_s: float = 60.0, reserve_pct: int = 0):
        self.admit_lease_s = admit_lease_s
        self.reserve_pct = reserve_pct

    def refill(self, account: str, now: float) -> Refill:
        call = admit_call(account, now, 0, self.admit_lease_s, self.reserve_pct)
        return Refill(call["keys"], call["args"])


class RedisLimiter(_Admission):
    """The ``Limiter`` on Redis (blocking client; workers and beat).

    Beyond the contract: ``claim``, reconciliation's share of the per-minute
    budget, which only the Redis side keeps.
    """

    def __init__(self, r: redis.Redis, *, admit_lease_s: float = 60.0, reserve_pct: int = 0):
        super().__init__(admit_lease_s=admit_lease_s, reserve_pct=reserve_pct)
        self.r = r
        self._admit = r.register_script(script("admit"))
        self._claim = r.register_script(script("claim"))

    def admit(self, account: str, now: float, limit: int = 0) -> list[str]:
        call = admit_call(account, now, limit, self.admit_lease_s, self.reserve_pct)
        ids = self._admit(keys=call["keys"], args=call["args"])
        return replies.texts(ids)

    def release(self, account: str, call_id: str) -> bool:
        return bool(self.r.zrem(keys.active(account), call_id))

    def in_use(self, account: str) -> int:
        return int(self.r.zcard(keys.active(account)))

    def expired(self, account: str, now: float, count: int = 100) -> list[str]:
        ids = self.r.zrangebyscore(keys.active(account), "-inf", now, start=0, num=count)
        return replies.texts(ids)

    def claim(self, account: str, call_id: str, now: float, *, hold_s: float, wait_s: float) -> int:
        """Reconciliation takes an expired slot and one request of the API budget.

        1: claimed (lease pushed ``hold_s`` out, request counted); 0: no budget
        now (lease pushed ``wait_s`` out); -1: not due, or claimed by another
        pass. See ``lua/claim.lua``.
        """
        return int(
            self._claim(
                keys=[
                    keys.account(account),
                    keys.rate(account),
                    keys.rate_rc(account),
                    keys.active(account),
                ],
                args=[
                    repr(now),
                    f"rc:{call_id}:{now!r}",
                    self.reserve_pct,
                    call_id,
                    repr(now + hold_s),
                    repr(now + wait_s),
                ],
            )
        )

    def renew(self, account: str, call_id: str, deadline: float) -> bool:
        return bool(self.r.zadd(keys.active(account), {call_id: deadline}, xx=True, ch=True)) or (
            self.r.zscore(keys.active(account), call_id) is not None
        )


class AsyncRedisLimiter(_Admission):
    """The receiver's admission: a terminal callback refills the slot it frees
    in the same round trip as its transition (:class:`Refill`), on the event
    loop, with no Celery hop on the refill path (terminal callback -> next dial).
    """


if TYPE_CHECKING:  # mypy holds the Redis limiter to the contract
    _contract: type[Limiter] = RedisLimiter

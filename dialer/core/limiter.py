"""The limiter's contract (``Limiter``) and its in-memory implementation, the executable spec.

A slot is held by one call of one account, under a lease deadline. The
contract every implementation keeps (``tests/contract/test_limiter_contract.py``
runs the same tests over this one and ``dialer.store.admission.RedisLimiter``):

- ``admit`` never takes an account above its limit, whoever calls it at once;
- ``release`` frees the call's slot if it holds one, and only then: releasing
  twice, or a call that holds none, frees nothing (a callback and
  reconciliation may both settle the same call);
- a new limit applies to the next ``admit``; lowering it never cuts a live call;
- accounts share nothing: one account's slots never count against another's.

Production runs the Redis implementation, where the limit holds across every
process; ``MemoryLimiter`` keeps only the slot arithmetic (no per-minute
budget, campaigns, circuit or pause: those are admit.lua's), in one process,
for unit tests and as the plain statement of what admit.lua must do.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol


class Limiter(Protocol):
    def admit(self, account: str, now: float, limit: int = 0) -> list[str]:
        """Move waiting calls into free slots (at most ``limit`` if > 0); return their ids."""
        ...

    def release(self, account: str, call_id: str) -> bool:
        """Free the call's slot; True only if it held one (idempotent)."""
        ...

    def in_use(self, account: str) -> int:
        """Slots currently held."""
        ...

    def expired(self, account: str, now: float, count: int = 100) -> list[str]:
        """Calls whose lease ran out by ``now`` (reconciliation settles them)."""
        ...

    def renew(self, account: str, call_id: str, deadline: float) -> bool:
        """Move a held slot's lease to ``deadline``; False if the slot is no longer held."""
        ...


@dataclass
class _Account:
    limit: int
    waiting: deque[str] = field(default_factory=deque)
    #: call id -> lease deadline
    held: dict[str, float] = field(default_factory=dict)


class MemoryLimiter:
    """``Limiter`` in one process: a lock around per-account slots and a FIFO of waiting calls."""

    def __init__(self, *, admit_lease_s: float = 60.0):
        self.admit_lease_s = admit_lease_s
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}

    def set_limit(self, account: str, limit: int) -> None:
        """The account's ``max_concurrent``; an account without one admits nothing."""
        with self._lock:
            acct = self._accounts.setdefault(account, _Account(limit))
            acct.limit = limit

    def add(self, account: str, call_ids: list[str]) -> None:
        """Calls wait for a slot in the order given (the campaign queue)."""
        with self._lock:
            self._accounts.setdefault(account, _Account(0)).waiting.extend(call_ids)

    def admit(self, account: str, now: float, limit: int = 0) -> list[str]:
        with self._lock:
            acct = self._accounts.get(account)
            if acct is None:
                return []
            n = min(acct.limit - len(acct.held), len(acct.waiting))
            if limit > 0:
                n = min(n, limit)
            out = [acct.waiting.popleft() for _ in range(max(n, 0))]
            for call_id in out:
                acct.held[call_id] = now + self.admit_lease_s
            return out

    def release(self, account: str, call_id: str) -> bool:
        with self._lock:
            acct = self._accounts.get(account)
            return acct is not None and acct.held.pop(call_id, None) is not None

    def in_use(self, account: str) -> int:
        with self._lock:
            acct = self._accounts.get(account)
            return 0 if acct is None else len(acct.held)

    def expired(self, account: str, now: float, count: int = 100) -> list[str]:
        with self._lock:
            acct = self._accounts.get(account)
            if acct is None:
                return []
            due = sorted((d, c) for c, d in acct.held.items() if d <= now)
            return [c for _, c in due[:count]]

    def renew(self, account: str, call_id: str, deadline: float) -> bool:
        with self._lock:
            acct = self._accounts.get(account)
            if acct is None or call_id not in acct.held:
                return False
            acct.held[call_id] = deadline
            return True


if TYPE_CHECKING:  # mypy holds the spec to its own contract
    _contract: type[Limiter] = MemoryLimiter

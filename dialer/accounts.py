"""Exotel accounts as stored in Redis (``keys.account``).

The API token has to be stored where every worker can read it, so it lives
in the account hash and nowhere else: tasks carry only the account sid, the
dataclass hides the token from ``repr``, and the REST API never returns it.
The circuit (opened by a 401/403) and the 429 back-off (``paused_until``)
live in the same hash because admission's Lua script reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import redis

from dialer import keys
from dialer.egress import Egress
from dialer.exotel.client import ExotelClient, base_url_for
from dialer.scripts import script


@dataclass(frozen=True)
class Account:
    sid: str
    api_key: str
    api_token: str = field(repr=False)
    caller_id: str
    api_url: str
    max_concurrent_calls: int = 10
    calls_per_minute: int = 200
    circuit: str = "closed"
    circuit_reason: str = ""
    caller_ids: tuple[str, ...] = ()  # the ExoPhone pool; empty: caller_id alone

    def to_hash(self) -> dict[str, str]:
        return {
            "sid": self.sid,
            "api_key": self.api_key,
            "api_token": self.api_token,
            "caller_id": self.caller_id,
            "api_url": self.api_url,
            "max_concurrent": str(self.max_concurrent_calls),
            "calls_per_minute": str(self.calls_per_minute),
            "caller_ids": ",".join(self.caller_ids),
        }

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Account:
        return cls(
            sid=h["sid"],
            api_key=h["api_key"],
            api_token=h["api_token"],
            caller_id=h["caller_id"],
            api_url=h["api_url"],
            max_concurrent_calls=int(h.get("max_concurrent", 10)),
            calls_per_minute=int(h.get("calls_per_minute", 200)),
            circuit=h.get("circuit", "closed") or "closed",
            circuit_reason=h.get("circuit_reason", ""),
            caller_ids=tuple(c for c in h.get("caller_ids", "").split(",") if c),
        )

    def public(self) -> dict[str, object]:
        """What the REST API may show: never the token."""
        return {
            "sid": self.sid,
            "caller_id": self.caller_id,
            "api_url": self.api_url,
            "max_concurrent_calls": self.max_concurrent_calls,
            "calls_per_minute": self.calls_per_minute,
            "circuit": self.circuit,
            "circuit_reason": self.circuit_reason,
            "caller_ids": list(self.caller_ids),
        }

    def client(
        self, *, connect_timeout_s: float, read_timeout_s: float, egress: Egress
    ) -> ExotelClient:
        return ExotelClient(
            self.sid,
            self.api_key,
            self.api_token,
            base_url=self.api_url,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            egress=egress,
        )


def make_account(
    sid: str,
    api_key: str,
    api_token: str,
    caller_id: str,
    *,
    region: str | None = None,
    api_url: str | None = None,
    max_concurrent_calls: int = 10,
    calls_per_minute: int = 200,
    caller_ids: list[str] | tuple[str, ...] = (),
) -> Account:
    keys.check_account(sid)
    if max_concurrent_calls < 1 or calls_per_minute < 1:
        raise ValueError("max_concurrent_calls and calls_per_minute must be at least 1")
    return Account(
        sid,
        api_key,
        api_token,
        caller_id,
        base_url_for(region, api_url),
        max_concurrent_calls,
        calls_per_minute,
        caller_ids=tuple(caller_ids),
    )


def save_account(r: redis.Redis, account: Account) -> None:
    """Create or update; limits take effect at the next admit, live calls are not cut."""
    from dialer.callerids import set_pool

    with r.pipeline() as pipe:
        pipe.hset(keys.account(account.sid), mapping=account.to_hash())
        pipe.sadd(keys.ACCOUNTS, account.sid)
        pipe.execute()
    set_pool(r, account.sid, list(account.caller_ids))


#: Account field -> the hash fields it is stored in (``update_account`` writes only these).
HASH_FIELDS = {
    "api_key": ("api_key",),
    "api_token": ("api_token",),
    "caller_id": ("caller_id",),
    "api_url": ("api_url",),
    "max_concurrent_calls": ("max_concurrent",),
    "calls_per_minute": ("calls_per_minute",),
    "caller_ids": ("caller_ids",),
}


def update_account(r: redis.Redis, sid: str, changes: dict[str, Any]) -> Account | None:
    """Change only the named fields of an existing account; None if there is none.

    Only the hash fields of the named fields are written, so two updates naming
    different fields both stand, and a field nobody named is never reset (what
    ``save_account`` of a fresh ``make_account`` would do to ``api_url``).
    """
    current = load_account(r, sid)
    if current is None:
        return None
    if "region" in changes or "api_url" in changes:
        region, url = changes.get("region"), changes.get("api_url")
        changes = {k: v for k, v in changes.items() if k != "region"}
        changes["api_url"] = base_url_for(region, str(url) if url else None)
    if "caller_ids" in changes:
        changes["caller_ids"] = tuple(changes["caller_ids"])
    updated = replace(current, **changes)
    stored = updated.to_hash()
    fields = {h: stored[h] for name in changes for h in HASH_FIELDS[name]}
    if fields:
        r.hset(keys.account(sid), mapping=fields)
    if "caller_ids" in changes:
        from dialer.callerids import set_pool

        set_pool(r, sid, list(updated.caller_ids))
    return load_account(r, sid)


def load_account(r: redis.Redis, sid: str) -> Account | None:
    h = r.hgetall(keys.account(sid))
    return Account.from_hash(h) if h else None  # type: ignore[arg-type]


def open_circuit(r: redis.Redis, sid: str, reason: str) -> None:
    r.hset(keys.account(sid), mapping={"circuit": "open", "circuit_reason": reason[:300]})


def close_circuit(r: redis.Redis, sid: str) -> None:
    r.hset(
        keys.account(sid), mapping={"circuit": "closed", "circuit_reason": "", "paused_until": "0"}
    )


def back_off(r: redis.Redis, sid: str, until: float) -> bool:
    """Exotel said 429: admit nothing for this account until ``until``.

    One Lua step (``lua/back_off.lua``): a read-then-write here would let two
    workers' 429s interleave and the shorter Retry-After win. True if it moved.
    """
    return bool(r.eval(script("back_off"), 1, keys.account(sid), repr(until)))


def all_accounts(r: redis.Redis) -> list[str]:
    return sorted(r.smembers(keys.ACCOUNTS))  # type: ignore[arg-type]

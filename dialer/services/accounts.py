"""Exotel accounts as stored in Redis (``keys.account``).

The API token has to be stored where every worker can read it, so it lives
in the account hash and nowhere else: tasks carry only the account sid, the
dataclass hides the token from ``repr``, and the REST API never returns it.
At rest it is Fernet-encrypted (``api_token_enc``) with the vault key derived
from ``DIALER_SECRET`` (``dialer.core.keyring``), so a Redis dump or a replica
alone does not yield it. A record written before encryption (plain
``api_token``) is encrypted in place on first read; one that no current or
previous key can decrypt fails with an error saying what to do.

Each account also has its own webhook signing key (``webhook_key_enc``, random,
encrypted the same way): created with the account, rotated on request, and
the only key its customer ever sees.
The circuit (opened by a 401/402/403) and the 429 back-off (``paused_until``)
live in the same hash because admission's Lua script reads them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Any

import redis

from dialer.core.errors import ConfigError
from dialer.core.keyring import InvalidToken, Keyring
from dialer.core.states import CircuitState
from dialer.net.egress import Egress
from dialer.net.exotel import ExotelClient, base_url_for
from dialer.store import keys, replies
from dialer.store.scripts import script


@dataclass(frozen=True)
class Account:
    sid: str
    api_key: str
    api_token: str = field(repr=False)
    caller_id: str
    api_url: str
    max_concurrent_calls: int = 10
    calls_per_minute: int = 200
    circuit: str = CircuitState.CLOSED
    circuit_reason: str = ""
    caller_ids: tuple[str, ...] = ()  # the ExoPhone pool; empty: caller_id alone
    webhook_key: str = field(default="", repr=False)

    def to_hash(self, keyring: Keyring) -> dict[str, str]:
        """The stored form: secrets encrypted (the webhook key is written separately)."""
        return {
            "sid": self.sid,
            "api_key": self.api_key,
            "api_token_enc": keyring.encrypt(self.api_token),
            "caller_id": self.caller_id,
            "api_url": self.api_url,
            "max_concurrent": str(self.max_concurrent_calls),
            "calls_per_minute": str(self.calls_per_minute),
            "caller_ids": ",".join(self.caller_ids),
        }

    @classmethod
    def from_hash(cls, h: dict[str, str], keyring: Keyring) -> Account:
        """Decrypt a stored account; ConfigError when its secrets are unreadable."""
        return cls(
            sid=h["sid"],
            api_key=h["api_key"],
            api_token=_decrypt(h, "api_token", keyring),
            caller_id=h["caller_id"],
            api_url=h["api_url"],
            max_concurrent_calls=int(h.get("max_concurrent", 10)),
            calls_per_minute=int(h.get("calls_per_minute", 200)),
            circuit=h.get("circuit") or CircuitState.CLOSED,
            circuit_reason=h.get("circuit_reason", ""),
            caller_ids=tuple(c for c in h.get("caller_ids", "").split(",") if c),
            webhook_key=_decrypt(h, "webhook_key", keyring) if h.get("webhook_key_enc") else "",
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


def _decrypt(h: dict[str, str], name: str, keyring: Keyring) -> str:
    enc = h.get(f"{name}_enc")
    if enc is None:
        # Only api_token was ever stored in plain text (before encryption at rest).
        if name == "api_token" and "api_token" in h:
            return h["api_token"]
        raise ConfigError(f"account {h.get('sid')!r}: no {name} stored")
    try:
        return keyring.decrypt(enc)
    except InvalidToken:
        raise ConfigError(
            f"account {h.get('sid')!r}: its stored {name} cannot be decrypted with "
            "DIALER_SECRET (or DIALER_SECRET_PREVIOUS); set DIALER_SECRET_PREVIOUS to the "
            "secret it was stored with, or register the account again (POST /v1/accounts)"
        ) from None


def new_webhook_key() -> str:
    return "whk_" + secrets.token_urlsafe(32)


def save_account(r: redis.Redis, account: Account, keyring: Keyring) -> None:
    """Create or update; limits take effect at the next admit, live calls are not cut.

    An update keeps the account's webhook key; a new account gets one.
    """
    from dialer.store.callerids import set_pool

    key = keys.account(account.sid)
    with r.pipeline(transaction=True) as pipe:  # one slot: the account's
        pipe.hset(key, mapping=replies.mapping(account.to_hash(keyring)))
        pipe.hdel(key, "api_token")  # a plain-text token from before encryption
        pipe.hsetnx(key, "webhook_key_enc", keyring.encrypt(new_webhook_key()))
        pipe.execute()
    # The global index on its own (another slot on a cluster), after the hash:
    # a crash between the two leaves an account nobody lists yet, and saving
    # it again (the receiver does at every start) lists it.
    r.sadd(keys.ACCOUNTS, account.sid)
    set_pool(r, account.sid, list(account.caller_ids))


def load_account(r: redis.Redis, sid: str, keyring: Keyring) -> Account | None:
    h: dict[str, str] = r.hgetall(keys.account(sid))  # type: ignore[assignment]
    if not h:
        return None
    account = Account.from_hash(h, keyring)
    migrate_secrets(r, h, keyring)
    return account


def migrate_secrets(r: redis.Redis, h: dict[str, str], keyring: Keyring) -> None:
    """Encrypt a plain-text token, re-encrypt under a rotated secret, add a webhook key.

    Idempotent, and safe against a concurrent ``save_account``: each field is only
    replaced if it still holds what was read (a Lua compare-and-set).
    """
    key = keys.account(h["sid"])
    if "api_token" in h and "api_token_enc" not in h:
        r.eval(script("encrypt_token"), 1, key, h["api_token"], keyring.encrypt(h["api_token"]))
    for name in ("api_token_enc", "webhook_key_enc"):
        old = h.get(name)
        if old and keyring.needs_rotation(old):
            r.eval(script("reencrypt"), 1, key, name, old, keyring.encrypt(keyring.decrypt(old)))
    if "webhook_key_enc" not in h:
        r.hsetnx(key, "webhook_key_enc", keyring.encrypt(new_webhook_key()))


def rotate_webhook_key(r: redis.Redis, sid: str, keyring: Keyring) -> str | None:
    """A fresh webhook key for the account (the old one stops at once); None if no account."""
    fresh = new_webhook_key()
    done = r.eval(script("rotate_webhook_key"), 1, keys.account(sid), keyring.encrypt(fresh))
    return fresh if done else None


#: Account field -> the hash fields it is stored in (``update_account`` writes only these).
HASH_FIELDS = {
    "api_key": ("api_key",),
    "api_token": ("api_token_enc",),
    "caller_id": ("caller_id",),
    "api_url": ("api_url",),
    "max_concurrent_calls": ("max_concurrent",),
    "calls_per_minute": ("calls_per_minute",),
    "caller_ids": ("caller_ids",),
}


def update_account(
    r: redis.Redis, sid: str, changes: dict[str, Any], keyring: Keyring
) -> Account | None:
    """Change only the named fields of an existing account; None if there is none.

    Only the hash fields of the named fields are written, so two updates naming
    different fields both stand, and a field nobody named is never reset (what
    ``save_account`` of a fresh ``make_account`` would do to ``api_url``).
    """
    current = load_account(r, sid, keyring)
    if current is None:
        return None
    if "region" in changes or "api_url" in changes:
        region, url = changes.get("region"), changes.get("api_url")
        changes = {k: v for k, v in changes.items() if k != "region"}
        changes["api_url"] = base_url_for(region, str(url) if url else None)
    if "caller_ids" in changes:
        changes["caller_ids"] = tuple(changes["caller_ids"])
    updated = replace(current, **changes)
    stored = updated.to_hash(keyring)
    fields = {h: stored[h] for name in changes for h in HASH_FIELDS[name]}
    if fields:
        r.hset(keys.account(sid), mapping=replies.mapping(fields))
    if "caller_ids" in changes:
        from dialer.store.callerids import set_pool

        set_pool(r, sid, list(updated.caller_ids))
    return load_account(r, sid, keyring)


def open_circuit(r: redis.Redis, sid: str, reason: str) -> None:
    r.hset(
        keys.account(sid), mapping={"circuit": CircuitState.OPEN, "circuit_reason": reason[:300]}
    )


def close_circuit(r: redis.Redis, sid: str) -> None:
    r.hset(
        keys.account(sid),
        mapping={"circuit": CircuitState.CLOSED, "circuit_reason": "", "paused_until": "0"},
    )


def back_off(r: redis.Redis, sid: str, until: float) -> bool:
    """Exotel said 429: admit nothing for this account until ``until``.

    One Lua step (``lua/back_off.lua``): a read-then-write here would let two
    workers' 429s interleave and the shorter Retry-After win. True if it moved.
    """
    return bool(r.eval(script("back_off"), 1, keys.account(sid), repr(until)))


def all_accounts(r: redis.Redis) -> list[str]:
    return sorted(r.smembers(keys.ACCOUNTS))  # type: ignore[arg-type]

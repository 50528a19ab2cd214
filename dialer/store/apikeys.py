"""Tenants: REST API keys scoped to Exotel accounts, stored hashed in Redis.

A key is ``dk_<id>_<random>``: 32 random bytes, so a plain SHA-256 digest is
as good as a slow hash (nothing to brute-force) and lets a request be checked
in one round trip (the digest's lookup and the record of the id the key
names). Only the digest is stored; the key itself is shown once, by
``create_key``. A key is scoped to one or more accounts (it sees and touches
only their campaigns) or is an admin key (every account, account management,
key management). ``DIALER_API_KEY`` from the environment is the bootstrap
admin key and is never stored.

This module does not decide HTTP statuses: the receiver maps "not in scope"
to 404 so a tenant cannot tell another tenant's ids from missing ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field

import redis

from dialer.store import keys

PREFIX = "dk_"


@dataclass(frozen=True)
class Scope:
    """Who is asking: an admin key, or a key limited to ``accounts``."""

    key_id: str
    admin: bool = False
    accounts: frozenset[str] = field(default_factory=frozenset)

    def allows(self, account: str | None) -> bool:
        return self.admin or (account is not None and account in self.accounts)


BOOTSTRAP = Scope("bootstrap", admin=True)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def key_id_of(key: str) -> str | None:
    """The id a key names (``dk_<id>_...``): where to look, never proof (the digest is)."""
    key_id, sep, _ = key.removeprefix(PREFIX).partition("_")
    return key_id if key.startswith(PREFIX) and sep and key_id else None


def create_key(
    r: redis.Redis,
    accounts: list[str],
    *,
    admin: bool = False,
    label: str = "",
    now: float | None = None,
) -> tuple[str, dict[str, object]]:
    """A new key (returned once, never stored) and its public record."""
    if not accounts and not admin:
        raise ValueError("a key needs at least one account, or the admin scope")
    for a in accounts:
        keys.check_account(a)
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = {
        "id": key_id,
        "accounts": sorted(set(accounts)),
        "admin": admin,
        "label": label,
        "created_at": round(time.time() if now is None else now, 3),
    }
    d = digest(key)
    # Two global keys, two slots on a cluster, so no MULTI: the record first,
    # then the lookup that makes the key usable. A crash between the two leaves
    # a listed key that authenticates nothing (revoke it); never the reverse.
    r.hset(keys.API_KEYS, key_id, json.dumps({**record, "digest": d}))
    r.hset(keys.API_KEY_DIGESTS, d, key_id)
    return key, record


def _public(raw: str) -> dict[str, object]:
    record = json.loads(raw)
    record.pop("digest", None)
    return dict(record)


def list_keys(r: redis.Redis) -> list[dict[str, object]]:
    raw: dict[str, str] = r.hgetall(keys.API_KEYS)  # type: ignore[assignment]
    return sorted((_public(v) for v in raw.values()), key=lambda k: str(k["created_at"]))


def revoke_key(r: redis.Redis, key_id: str) -> bool:
    """Delete a key; False if there was none. The next request with it gets 401."""
    raw = r.hget(keys.API_KEYS, key_id)
    if raw is None:
        return False
    d = json.loads(str(raw))["digest"]
    # The lookup first: from then on the key authenticates nothing (see create_key).
    r.hdel(keys.API_KEY_DIGESTS, d)
    r.hdel(keys.API_KEYS, key_id)
    return True


def scope_from_record(raw: str | None) -> Scope | None:
    if raw is None:
        return None
    record = json.loads(raw)
    return Scope(record["id"], bool(record["admin"]), frozenset(record["accounts"]))


def record_digest(raw: str) -> str:
    """The stored digest of a key record (a dashboard session is bound to it)."""
    return str(json.loads(raw)["digest"])


def bearer(header: str) -> str:
    return header[7:] if header.startswith("Bearer ") else ""


def is_bootstrap(given: str, bootstrap: str) -> bool:
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), bootstrap.encode("utf-8", "surrogateescape")
    )

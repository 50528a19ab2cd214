"""Dashboard sessions: a signed cookie naming an API key, and its CSRF token (pure).

Signing in with an API key gives a cookie ``<key id>.<expiry>.<nonce>.<mac>``;
the MAC (the keyring's ``session`` key) also covers the digest of the API key
itself, so the session dies with the key: a revoked or rotated key (or a new
``DIALER_API_KEY`` for the bootstrap one) no longer matches. Nothing is stored
server-side; the caller re-reads the key's record on every request, so the
scope is always the key's current one.

The CSRF token is a MAC of the cookie's value: the page reads it from
``/ui/api/me`` (same origin only) and sends it as ``X-CSRF-Token`` with every
state-changing request. A forged cross-site request carries the cookie at most
(and ``SameSite=Strict`` stops even that), never the token.

This module does not read cookies or headers, nor touch Redis: see
``dialer.receiver.app`` (auth) and ``dialer.receiver.ui.views`` (sign-in).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

COOKIE = "dialer_session"
CSRF_HEADER = "X-CSRF-Token"
LIFETIME_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Claim:
    """What a valid cookie says: which key signed in, until when."""

    key_id: str
    expires_at: int
    token: str


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:40]


def _body(key_id: str, expires_at: int, nonce: str, key_digest: str) -> str:
    return f"ui|{key_id}|{expires_at}|{nonce}|{key_digest}"


def issue(key: bytes, key_id: str, key_digest: str, *, now: float) -> str:
    """A cookie value for the key ``key_id`` whose SHA-256 digest is ``key_digest``."""
    expires_at = int(now) + LIFETIME_S
    nonce = secrets.token_hex(8)
    mac = _mac(key, _body(key_id, expires_at, nonce, key_digest))
    return f"{key_id}.{expires_at}.{nonce}.{mac}"


def parse(value: str | None, *, now: float) -> tuple[str, int, str, str] | None:
    """(key id, expiry, nonce, mac) of an unexpired, well-formed value; not yet verified."""
    if not value or len(value) > 200:
        return None
    parts = value.split(".")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    key_id, expires, nonce, mac = parts
    if int(expires) <= now:
        return None
    return key_id, int(expires), nonce, mac


def verify(keys: Sequence[bytes], value: str, key_digest: str, *, now: float) -> Claim | None:
    """The claim if ``value`` was issued by one of ``keys`` for the key with this digest."""
    parsed = parse(value, now=now)
    if parsed is None:
        return None
    key_id, expires_at, nonce, mac = parsed
    body = _body(key_id, expires_at, nonce, key_digest)
    for k in keys:
        if hmac.compare_digest(_mac(k, body).encode(), mac.encode("utf-8", "surrogateescape")):
            return Claim(key_id, expires_at, value)
    return None


def csrf_token(key: bytes, cookie_value: str) -> str:
    return _mac(key, f"csrf|{cookie_value}")


def csrf_ok(keys: Sequence[bytes], cookie_value: str, given: str) -> bool:
    """Constant time; any current or previous session key."""
    given_b = given.encode("utf-8", "surrogateescape")
    return bool(given) and any(
        hmac.compare_digest(csrf_token(k, cookie_value).encode(), given_b) for k in keys
    )

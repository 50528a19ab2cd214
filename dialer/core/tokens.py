"""HMAC signatures for callback URLs, stream URLs and webhooks (pure).

Each function takes the key of its own purpose (``dialer.core.keyring``): the
callback key, the stream key, or an account's webhook key. A key of one
purpose never verifies a message of another, and the labels inside the MAC
(``cb|``, ``st|``) keep them apart even if a caller mixed keys up.

Exotel does not sign its callbacks, so every attempt of every call gets its
own callback URL carrying ``sig = HMAC(callback key, "cb|<call id>|<attempt>")``:
a signature cannot be replayed for another call nor for another attempt of
the same call. Stream URLs carry ``token = "<attempt>.<expiry>.<mac>"``, bound
to one attempt of one call and void after expiry; the streamer also makes it
single use and refuses it once the attempt has ended. Comparisons are
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:40]


def _same(expected: str, given: str) -> bool:
    # compare_digest refuses non-ASCII str: compare bytes, whatever was sent
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


def callback_sig(key: bytes, call_id: str, attempt: int) -> str:
    return _mac(key, f"cb|{call_id}|{attempt}")


def parse_attempt(value: str | None) -> int | None:
    # isdigit() alone accepts non-ASCII digits such as Arabic-Indic ones
    if not value or not value.isascii() or not value.isdigit() or len(value) > 6:
        return None
    return int(value)


def verify_callback(
    keys: Sequence[bytes], call_id: str, attempt: str | None, sig: str | None
) -> int | None:
    """The attempt this callback URL was issued for, or None if it is not ours."""
    n = parse_attempt(attempt)
    if n is None or not sig:
        return None
    # every key is tried (no early exit) so timing does not tell which matched
    ok = [_same(callback_sig(k, call_id, n), sig) for k in keys]
    return n if any(ok) else None


def stream_token(key: bytes, call_id: str, attempt: int, expires_at: int) -> str:
    mac = _mac(key, f"st|{call_id}|{attempt}|{expires_at}")
    return f"{attempt}.{expires_at}.{mac}"


def verify_stream_token(
    keys: Sequence[bytes], call_id: str, token: str | None, now: float
) -> tuple[int, int] | None:
    """``(attempt, expires_at)`` the token grants, or None if forged, foreign or expired."""
    if not token:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    attempt, expires_at = parse_attempt(parts[0]), parts[1]
    if attempt is None or not (expires_at.isascii() and expires_at.isdigit()):
        return None
    if len(expires_at) > 12:
        return None
    ok = [_same(stream_token(k, call_id, attempt, int(expires_at)), token) for k in keys]
    if not any(ok) or int(expires_at) < now:
        return None
    return attempt, int(expires_at)


def webhook_signature(key: bytes, body: bytes, timestamp: int) -> str:
    """``X-Dialer-Signature`` for client webhooks: HMAC over "<ts>.<body>" with the
    account's own webhook key (the one key the customer holds)."""
    return hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()

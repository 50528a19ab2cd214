"""HMAC signatures for callback URLs, stream URLs and webhooks (pure).

Exotel does not sign its callbacks, so every call gets its own callback URL
carrying ``sig = HMAC(secret, "cb|<call id>")``: a signature cannot be replayed
for another call. Stream URLs carry ``token = "<attempt>.<expiry>.<mac>"`` so
a stream is bound to one attempt of one call and stops working after expiry.
Comparisons are constant time.
"""

from __future__ import annotations

import hashlib
import hmac


def _mac(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()[:40]


def callback_sig(secret: bytes, call_id: str) -> str:
    return _mac(secret, f"cb|{call_id}")


def verify_callback(secret: bytes, call_id: str, sig: str | None) -> bool:
    if not sig:
        return False
    # compare_digest refuses non-ASCII str: compare bytes, whatever was sent
    given = sig.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(callback_sig(secret, call_id).encode(), given)


def stream_token(secret: bytes, call_id: str, attempt: int, expires_at: int) -> str:
    mac = _mac(secret, f"st|{call_id}|{attempt}|{expires_at}")
    return f"{attempt}.{expires_at}.{mac}"


def verify_stream_token(secret: bytes, call_id: str, token: str | None, now: float) -> int | None:
    """Return the attempt the token grants, or None if forged, foreign or expired."""
    if not token:
        return None
    parts = token.split(".")
    # isdigit() alone accepts non-ASCII digits such as Arabic-Indic ones
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts[:2]):
        return None
    attempt, expires_at = int(parts[0]), int(parts[1])
    expected = stream_token(secret, call_id, attempt, expires_at).encode()
    if not hmac.compare_digest(expected, token.encode("utf-8", "surrogateescape")):
        return None
    if expires_at < now:
        return None
    return attempt


def webhook_signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """``X-Dialer-Signature`` for client webhooks: HMAC over "<ts>.<body>"."""
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()

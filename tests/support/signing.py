"""Known secrets and what the dialer derives from them: settings, signatures, stream tokens.

Every in-process app of the suites is built with these values, so a test can
sign a callback or mint a stream token the way the dialer would.
"""

from __future__ import annotations

import time
from typing import Any

from dialer.core import tokens
from dialer.core.keyring import Keyring
from dialer.core.settings import Settings, load_settings

SECRET = "sec-SIGNING-7f3a9c1e5b2d-Qw8Zx4Lm2Np6"
API_KEY = "key-APIKEY-4e8b2a6d0c9f-Hk3Tq7Vb1Rs5"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
KEYRING = Keyring.from_secret(SECRET.encode())


def make_settings(redis_url: str, **extra: Any) -> Settings:
    # accounts in these suites point at loopback "Exotels"; the egress tests
    # (tests/security/test_egress.py) pass DIALER_EGRESS_ALLOW="" to see refusals
    extra.setdefault("DIALER_EGRESS_ALLOW", "127.0.0.0/8")
    return load_settings(REDIS_URL=redis_url, DIALER_SECRET=SECRET, DIALER_API_KEY=API_KEY, **extra)


def sig(call_id: str, attempt: int = 1, secret: str = SECRET) -> str:
    key = Keyring.from_secret(secret.encode()).callback
    return tokens.callback_sig(key, call_id, attempt)


def cb(call_id: str, attempt: int = 1, secret: str = SECRET) -> dict[str, str]:
    """The query of a callback URL, as the dialer builds it for that attempt."""
    return {"attempt": str(attempt), "sig": sig(call_id, attempt, secret)}


def stream_token(call_id: str, attempt: int = 1, ttl_s: int = 3600, secret: str = SECRET) -> str:
    key = Keyring.from_secret(secret.encode()).stream
    return tokens.stream_token(key, call_id, attempt, int(time.time()) + ttl_s)

"""Client webhooks: POST each final outcome (and campaign completion), signed.

At-least-once: the Celery task retries until the client answers 2xx, so the
client may see a delivery twice; every delivery of the same fact carries the
same ``Idempotency-Key``. Signature: ``X-Dialer-Signature`` =
HMAC-SHA256(secret, "<X-Dialer-Timestamp>.<body>").
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from dialer import tokens
from dialer.errors import NotPlacedError, RequestRejected

TIMEOUT_S = (3.0, 10.0)


def deliver(
    session: requests.Session,
    url: str,
    secret: bytes,
    event: str,
    idempotency_key: str,
    data: dict[str, Any],
    *,
    now: float | None = None,
) -> tuple[int, Any]:
    """POST one event; raise a retryable error unless the client accepted it.

    Returns the status and the client's JSON reply (None if not JSON): a reply
    of ``{"do_not_call": true}`` puts the number on the do-not-call list.
    """
    ts = int(time.time() if now is None else now)
    body = json.dumps(
        {"event": event, "idempotency_key": idempotency_key, "data": data},
        separators=(",", ":"),
        default=str,
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": idempotency_key,
        "X-Dialer-Event": event,
        "X-Dialer-Timestamp": str(ts),
        "X-Dialer-Signature": tokens.webhook_signature(secret, body, ts),
    }
    try:
        resp = session.post(url, data=body, headers=headers, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise NotPlacedError(f"webhook {event} not delivered: {type(exc).__name__}") from None
    if 200 <= resp.status_code < 300:
        try:
            reply = resp.json() if resp.content else None
        except ValueError:
            reply = None
        return resp.status_code, reply
    if resp.status_code in (408, 429) or resp.status_code >= 500:
        raise NotPlacedError(f"webhook {event}: HTTP {resp.status_code}", status=resp.status_code)
    # A 4xx says the client will never take it; retrying would only spam.
    raise RequestRejected(f"webhook {event}: HTTP {resp.status_code}", status=resp.status_code)

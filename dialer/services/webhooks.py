"""Client webhooks: POST each final outcome (and campaign completion), signed.

At-least-once: the Celery task retries until the client answers 2xx, so the
client may see a delivery twice; every delivery of the same fact carries the
same ``Idempotency-Key``. Signature: ``X-Dialer-Signature`` =
HMAC-SHA256(secret, "<X-Dialer-Timestamp>.<body>").

The URL comes from an API caller, so the session must be an egress session
(``dialer.net.egress``): internal addresses are refused, redirects are not
followed (a 3xx would otherwise carry the signed body to another host), the
reply is size-capped and the exchange deadlined. A refusal is permanent: no
retry can make an internal address public.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from dialer.core import tokens
from dialer.core.errors import EgressRefused, NotPlacedError, RequestRejected, ResponseTooLarge
from dialer.net.egress import fetch

TIMEOUT_S = (3.0, 10.0)
DEADLINE_S = 15.0
MAX_REPLY_BYTES = 64 * 1024  # the reply is at most {"do_not_call": true}


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
        resp = fetch(
            session,
            "POST",
            url,
            data=body,
            headers=headers,
            timeout=TIMEOUT_S,
            deadline_s=DEADLINE_S,
            max_bytes=MAX_REPLY_BYTES,
        )
    except EgressRefused as exc:
        raise RequestRejected(f"webhook {event} not sent: {exc}", status=0) from None
    except ResponseTooLarge:
        raise RequestRejected(f"webhook {event}: reply too large", status=0) from None
    except requests.RequestException as exc:
        raise NotPlacedError(f"webhook {event} not delivered: {type(exc).__name__}") from None
    if 300 <= resp.status_code < 400:
        raise RequestRejected(
            f"webhook {event}: HTTP {resp.status_code}, redirects are not followed",
            status=resp.status_code,
        )
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

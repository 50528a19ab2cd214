"""One contact's result row, in the contract's shape (``GET /v1/campaigns/{id}/results``).

Pure: it shapes a call hash already read from Redis (``dialer.services.queries``
reads it; the ``dialer.call_result`` webhook task sends it).
"""

from __future__ import annotations

import json
from typing import Any

from dialer.core import reasons
from dialer.core.calls import FINAL, State
from dialer.core.reasons import Code


def call_result(call_id: str, h: dict[str, str]) -> dict[str, Any]:
    """One contact in the contract's results shape."""
    attempts = sorted(
        (json.loads(v) for k, v in h.items() if k.startswith("h:")), key=lambda rec: rec.get("n", 0)
    )
    state = h.get("state", "pending")
    outcome = h.get("outcome") or (state if State(state) in FINAL else None)
    # A completed call's leftover note (e.g. "settled by reconciliation") is no failure.
    why = reasons.of(h.get("reason_code"), h.get("reason"))
    if why is not None and why.code is Code.OTHER and outcome == State.COMPLETED.value:
        why = None
    return {
        "id": call_id,
        "to": h.get("to"),
        "vars": json.loads(h["vars"]) if h.get("vars") else {},
        "state": state,
        "outcome": outcome or ("unknown" if state == "unknown" else None),
        "reason": why.to_dict() if why else None,
        "attempts": [
            {
                "n": a.get("n"),
                "exotel_sid": a.get("exotel_sid"),
                "started_at": a.get("started_at"),
                "ended_at": a.get("ended_at"),
                "status": a.get("status"),
                "duration_s": a.get("duration_s"),
                "recording_url": a.get("recording_url"),
                "reason": a.get("reason"),
                **_detection(h, a.get("n")),
            }
            for a in attempts
        ],
        "answers": {k[2:]: v for k, v in h.items() if k.startswith("a:")},
    }


def _detection(h: dict[str, str], n: object) -> dict[str, Any]:
    """``answered_by``/``detection_ms`` of attempt ``n``, when detection ran (streamer writes)."""
    try:
        found = json.loads(h.get(f"amd:{n}") or "{}")
    except ValueError:
        found = {}
    if not isinstance(found, dict):
        found = {}
    return {"answered_by": found.get("answered_by"), "detection_ms": found.get("detection_ms")}

"""Exotel's status callbacks as the receiver gets them (signed with tests.support.signing.cb)."""

from __future__ import annotations


def terminal_body(call_id: str, sid: str, status: str = "completed") -> dict[str, str]:
    """A terminal status callback for attempt 1 of ``call_id``."""
    return {
        "CallSid": sid,
        "Status": status,
        "EventType": "terminal",
        "CustomField": f"{call_id}:1",
        "ConversationDuration": "12",
    }

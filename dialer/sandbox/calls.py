"""The sandbox's call records and their Exotel JSON shapes.

One ``SandboxCall`` per accepted connect request, kept in a bounded
``CallBook`` (oldest finished calls are forgotten first) so call details and
the bulk listing can be answered. The shapes follow the protocol doc: the
connect response (section 1), call details with string numbers (section 3)
and the status callback fields (section 2). Exotel time strings are UTC
``YYYY-MM-DD HH:MM:SS``. This module does no I/O; the exchange moves calls
through their states.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TERMINAL = frozenset({"completed", "busy", "no-answer", "failed"})
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def exotel_time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime(TIME_FORMAT)


def parse_exotel_time(text: str) -> float:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) -> epoch seconds; ValueError if malformed."""
    return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=UTC).timestamp()


@dataclass
class SandboxCall:
    sid: str
    seq: int  # creation order; the bulk listing's cursor
    account_sid: str
    number: str  # the dialled number (Exotel's ``From`` for this API)
    caller_id: str  # the ExoPhone, reported as ``PhoneNumberSid``
    stream_url: str
    created_at: float
    custom_field: str | None = None
    status_callback: str | None = None
    events: tuple[str, ...] = ()
    time_limit_s: int | None = None
    callback_format: str = "json"
    reorder_callbacks: bool = False  # fault: terminal goes out before earlier events
    status: str = "in-progress"
    updated_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    conversation_s: int = 0
    held_events: list[str] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def duration_s(self) -> int:
        if self.ended_at is None:
            return 0
        return max(0, round(self.ended_at - self.created_at))

    def to_connect_json(self) -> dict[str, Any]:
        return {
            "Sid": self.sid,
            "Status": "in-progress",
            "From": self.number,
            "PhoneNumberSid": self.caller_id,
            "Direction": "outbound-api",
            "DateCreated": exotel_time(self.created_at),
            "RecordingUrl": None,
            "CustomField": self.custom_field,
        }

    def to_details_json(self) -> dict[str, Any]:
        return {
            "Sid": self.sid,
            "ParentCallSid": None,
            "DateCreated": exotel_time(self.created_at),
            "DateUpdated": exotel_time(self.updated_at or self.created_at),
            "AccountSid": self.account_sid,
            "To": self.caller_id,
            "From": self.number,
            "PhoneNumberSid": self.caller_id,
            "Status": self.status,
            "StartTime": exotel_time(self.created_at),
            "EndTime": exotel_time(self.ended_at),
            "Duration": str(self.duration_s()) if self.terminal else None,
            "Price": None,
            "Direction": "outbound-api",
            "AnsweredBy": "human" if self.answered_at is not None else None,
            "RecordingUrl": None,
            "CustomField": self.custom_field,
            "Details": {"ConversationDuration": str(self.conversation_s)},
        }

    def callback_fields(self, event_type: str) -> dict[str, Any]:
        """Status callback body as JSON values (forms stringify them)."""
        status = self.status if event_type == "terminal" else {
            "ringing": "ringing", "answered": "in-progress"
        }[event_type]  # fmt: skip
        answered = self.answered_at is not None
        return {
            "CallSid": self.sid,
            "Status": status,
            "EventType": event_type,
            "DateCreated": exotel_time(self.created_at),
            "DateUpdated": exotel_time(self.updated_at or self.created_at),
            "To": self.caller_id,
            "From": self.number,
            "PhoneNumberSid": self.caller_id,
            "Direction": "outbound-api",
            "CustomField": self.custom_field,
            "StartTime": exotel_time(self.created_at),
            "EndTime": exotel_time(self.ended_at) if event_type == "terminal" else None,
            "ConversationDuration": self.conversation_s if event_type == "terminal" else 0,
            "RecordingUrl": None,
            "Legs": [
                {
                    "OnCallDuration": self.conversation_s if event_type == "terminal" else 0,
                    "Status": status,
                    "AnsweredBy": "human" if answered else None,
                }
            ],
        }


class CallBook:
    """Calls by sid in creation order, at most ``max_calls`` (finished ones evicted first)."""

    def __init__(self, max_calls: int) -> None:
        self._calls: OrderedDict[str, SandboxCall] = OrderedDict()
        self._max = max_calls
        self._seq = 0

    def __len__(self) -> int:
        return len(self._calls)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add(self, call: SandboxCall) -> None:
        self._calls[call.sid] = call
        if len(self._calls) > self._max:
            for sid, old in self._calls.items():
                if old.terminal:
                    del self._calls[sid]
                    break

    def get(self, account_sid: str, sid: str) -> SandboxCall | None:
        call = self._calls.get(sid)
        return call if call is not None and call.account_sid == account_sid else None

    def query(
        self,
        account_sid: str,
        *,
        since: float,
        until: float,
        sids: Iterable[str] | None = None,
        status: str | None = None,
    ) -> list[SandboxCall]:
        """Matching calls in creation order (the caller pages them by ``seq``)."""
        wanted = set(sids) if sids is not None else None
        return [
            c
            for c in self._calls.values()
            if c.account_sid == account_sid
            and since <= c.created_at < until + 1  # DateCreated has whole seconds
            and (wanted is None or c.sid in wanted)
            and (status is None or c.status == status)
        ]

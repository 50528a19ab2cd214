"""Why an attempt failed, was deferred or was not made: a code for machines, text for people.

Every attempt record (``attempts[].reason`` in results, the API and the CLI
table) and every contact (``reason``) carries ``{"code", "text"}`` when
something other than a plain conversation happened. Codes are a contract:
scripts branch on them, so they are only ever added, never renamed. The text
is free-form and may change; it never carries a secret (URLs are shown
without credentials or query string, see ``safe_url``).

This module is pure: no I/O, no Redis. ``CODES`` is the one table the README's
reason table, the results and the tests are checked against.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit


class Code(StrEnum):
    # The callee's side, as Exotel reports it.
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CALL_FAILED = "call_failed"
    # The dial request.
    DIAL_REJECTED = "dial_rejected"
    NOT_PLACED = "not_placed"
    DIAL_UNKNOWN = "dial_unknown"
    CALL_LOST = "call_lost"
    ACCOUNT_STOPPED = "account_stopped"
    # Deferrals and decisions before dialling.
    OUTSIDE_WINDOW = "outside_window"
    CAMPAIGN_PAUSED = "campaign_paused"
    DO_NOT_CALL = "do_not_call"
    CANCELLED = "cancelled"
    # The stream and the bot, after Exotel answered.
    RELAY_CONNECT_FAILED = "relay_connect_failed"
    RELAY_REJECTED = "relay_rejected"
    RELAY_CLOSED_EARLY = "relay_closed_early"
    RELAY_ERROR = "relay_error"
    BOT_FAILED = "bot_failed"
    STREAM_ERROR = "stream_error"
    # Answering-machine detection: Exotel said completed, the streamer heard a machine.
    ANSWERING_MACHINE = "answering_machine"
    VOICEMAIL_LEFT = "voicemail_left"
    # A record written before codes existed.
    OTHER = "other"


#: code -> (what it means, documented in the README). Every Code has a row.
CODES: Mapping[Code, str] = {
    Code.BUSY: "the callee's line was busy (Exotel status busy)",
    Code.NO_ANSWER: "nobody picked up, or the call was cancelled before answer",
    Code.CALL_FAILED: "Exotel could not connect the call (status failed)",
    Code.DIAL_REJECTED: "Exotel refused the dial request for good (4xx: bad number, ...)",
    Code.NOT_PLACED: "Exotel provably did not place the call, after every send try",
    Code.DIAL_UNKNOWN: "the dial request was sent but its answer was lost; reconciliation decides",
    Code.CALL_LOST: "Exotel has no record of a call it had placed",
    Code.ACCOUNT_STOPPED: "the account's circuit is open (401/402/403 from Exotel); waiting",
    Code.OUTSIDE_WINDOW: "deferred until the contact's calling window opens",
    Code.CAMPAIGN_PAUSED: "deferred while the campaign is paused",
    Code.DO_NOT_CALL: "suppressed: the number is on the account's do-not-call list",
    Code.CANCELLED: "the campaign was cancelled before this contact was called",
    Code.RELAY_CONNECT_FAILED: "the relay could not reach the customer's bot (refused, timeout)",
    Code.RELAY_REJECTED: "the customer's bot refused the websocket handshake (HTTP 403, 404, ...)",
    Code.RELAY_CLOSED_EARLY: "the customer's bot closed the websocket before sending anything",
    Code.RELAY_ERROR: "the customer's bot closed the websocket with an error code mid-call",
    Code.BOT_FAILED: "the built-in or plugin bot could not start (bad survey, plugin error)",
    Code.STREAM_ERROR: "the stream from Exotel broke the protocol (no start frame, garbage)",
    Code.ANSWERING_MACHINE: "a machine answered and the call was ended (machine_detection hangup)",
    Code.VOICEMAIL_LEFT: "a machine answered and the campaign's message was left after its beep",
    Code.OTHER: "a reason recorded without a code (older data)",
}

#: What an Exotel terminal status other than completed means for the attempt.
STATUS_CODES: Mapping[str, Code] = {
    "busy": Code.BUSY,
    "no-answer": Code.NO_ANSWER,
    "canceled": Code.NO_ANSWER,
    "cancelled": Code.NO_ANSWER,
    "failed": Code.CALL_FAILED,
    "machine": Code.ANSWERING_MACHINE,  # the streamer's verdict (dialer.store.records)
    "voicemail": Code.VOICEMAIL_LEFT,
}
#: The text for each of those statuses (Exotel's own word is kept in the attempt's ``status``).
STATUS_TEXTS: Mapping[str, str] = {
    "busy": "the line was busy",
    "no-answer": "nobody answered",
    "canceled": "the call was cancelled before anyone answered",
    "cancelled": "the call was cancelled before anyone answered",
    "failed": "Exotel could not connect the call",
    # not Exotel's: the streamer's machine-detection verdict (dialer.store.records)
    "machine": "answered by a machine; hung up",
    "voicemail": "answered by a machine; the message was left",
}

MAX_TEXT = 300
DNC_TEXT = "number is on the do-not-call list"


def window_text(opens_at: float) -> str:
    """The deferral text: when the contact's calling window next opens (UTC)."""
    when = datetime.fromtimestamp(opens_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"outside the calling window; next try when it opens at {when}"


@dataclass(frozen=True)
class Reason:
    code: Code
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "text": self.text[:MAX_TEXT]}


def of(code: str | None, text: str | None) -> Reason | None:
    """A reason from stored parts; a text without a code (old data) is ``other``."""
    if not code and not text:
        return None
    try:
        c = Code(code) if code else Code.OTHER
    except ValueError:
        c = Code.OTHER
    return Reason(c, text or CODES[c])


@dataclass(frozen=True)
class BotError:
    """What the streamer saw go wrong with one attempt's stream (``bot_error`` field).

    ``ran`` says whether the callee heard anything from the bot: an attempt
    whose bot never ran is not a conversation, whatever Exotel's status says.
    """

    attempt: int
    code: Code
    text: str
    ran: bool

    def to_json(self) -> str:
        body = {"attempt": self.attempt, "code": self.code.value, "text": self.text[:MAX_TEXT]}
        return json.dumps(body | {"ran": self.ran}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> BotError | None:
        if not raw:
            return None
        try:
            d: Any = json.loads(raw)
            return cls(int(d["attempt"]), Code(d["code"]), str(d["text"]), bool(d["ran"]))
        except (ValueError, KeyError, TypeError):
            return None


def safe_url(url: str) -> str:
    """scheme://host:port/path, without userinfo or query (where tokens live)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    return f"{parts.scheme}://{host}{port}{parts.path}"

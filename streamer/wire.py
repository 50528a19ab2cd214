"""Websocket plumbing shared by the session and the relay: close codes,
aiohttp message -> AgentStream frame, and the garbage-frame budget.

Nothing here knows about bots or Redis.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import WSMsgType

from dialer.errors import ProtocolError
from streamer import protocol as p
from streamer.metrics import Metrics

log = logging.getLogger(__name__)

# RFC 6455 close codes; Exotel ends the call whatever code we send.
NORMAL, GOING_AWAY, PROTOCOL_ERROR, UNSUPPORTED_DATA = 1000, 1001, 1002, 1003
INVALID_DATA, POLICY_VIOLATION, INTERNAL_ERROR = 1007, 1008, 1011
MAX_GARBAGE = 5  # malformed frames tolerated per stream before we hang up
ENDED = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})


class Garbage:
    """Counts malformed frames; says when a stream has sent too many.

    A few bad frames are ignored (a buggy peer should not drop a call over
    one frame); past the budget the stream is closed with 1003 (binary) or
    1007 (bad text), and the server carries on serving everyone else.
    """

    def __init__(self, metrics: Metrics, call_id: str) -> None:
        self.count, self._metrics, self._call_id = 0, metrics, call_id

    def add(self, exc: ProtocolError) -> int | None:
        """Close code once over the limit, else None (ignore the frame)."""
        self.count += 1
        self._metrics.garbage_frames.inc()
        log.warning(
            "bad frame call_id=%s n=%d: %s raw=%r", self._call_id, self.count, exc, exc.raw[:120]
        )
        if self.count <= MAX_GARBAGE:
            return None
        return UNSUPPORTED_DATA if isinstance(exc.raw, bytes) else INVALID_DATA


def decode_frame(msg: Any) -> p.Inbound:
    """An aiohttp message from Exotel -> frame; ProtocolError for anything but JSON text."""
    if msg.type is WSMsgType.TEXT:
        return p.decode(msg.data)
    return p.decode(bytes(msg.data) if msg.type is WSMsgType.BINARY else b"")

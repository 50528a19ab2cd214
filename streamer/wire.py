"""Websocket plumbing shared by the session and the relay: close codes,
aiohttp message -> AgentStream frame, and the garbage-frame budget.

Nothing here knows about bots or Redis.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import WSMsgType

from dialer.core.errors import ProtocolError
from streamer import protocol as p
from streamer.metrics import Metrics

log = logging.getLogger(__name__)

# RFC 6455 close codes; Exotel ends the call whatever code we send.
NORMAL, GOING_AWAY, PROTOCOL_ERROR, UNSUPPORTED_DATA = 1000, 1001, 1002, 1003
INVALID_DATA, POLICY_VIOLATION, INTERNAL_ERROR = 1007, 1008, 1011
MAX_GARBAGE = 5  # malformed frames tolerated per stream before we hang up
ENDED = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})
# RFC 6455 §5.2 header of a final, unmasked (server -> client) text frame.
_TEXT = 0x81
_LEN7, _LEN16, _LEN64 = struct.Struct("!BB"), struct.Struct("!BBH"), struct.Struct("!BBQ")


def text_frames(payloads: Sequence[bytes]) -> bytes:
    """``payloads`` as consecutive server-side websocket text frames, in one buffer.

    So several frames due for one socket go out in one transport write (one
    ``send`` syscall) instead of one each. Uncompressed frames only: the
    caller checks the socket did not negotiate permessage-deflate.
    """
    parts: list[bytes] = []
    for payload in payloads:
        n = len(payload)
        if n < 126:
            parts.append(_LEN7.pack(_TEXT, n))
        elif n < 65536:
            parts.append(_LEN16.pack(_TEXT, 126, n))
        else:
            parts.append(_LEN64.pack(_TEXT, 127, n))
        parts.append(payload)
    return b"".join(parts)


class Garbage:
    """Counts malformed frames; says when a stream has sent too many.

    A few bad frames are ignored (a buggy peer should not drop a call over
    one frame); past the budget the stream is closed with 1003 (binary) or
    1007 (bad text), and the server carries on serving everyone else.
    """

    def __init__(self, metrics: Metrics, call_id: str) -> None:
        self.count, self._metrics, self._call_id = 0, metrics, call_id
        self.close_code: int | None = None  # set once the budget is spent

    def add(self, exc: ProtocolError) -> int | None:
        """Close code once over the limit, else None (ignore the frame)."""
        self.count += 1
        self._metrics.garbage_frames.inc()
        log.warning(
            "bad frame call_id=%s n=%d: %s raw=%r", self._call_id, self.count, exc, exc.raw[:120]
        )
        if self.count <= MAX_GARBAGE:
            return None
        self.close_code = UNSUPPORTED_DATA if isinstance(exc.raw, bytes) else INVALID_DATA
        return self.close_code


def decode_frame(msg: Any) -> p.Inbound:
    """An aiohttp message from Exotel -> frame; ProtocolError for anything but JSON text."""
    if msg.type is WSMsgType.TEXT:
        return p.decode(msg.data)
    return p.decode(bytes(msg.data) if msg.type is WSMsgType.BINARY else b"")


async def inbound(
    ws: Any, garbage: Garbage, metrics: Metrics
) -> AsyncIterator[tuple[p.Inbound, Any]]:
    """Exotel's frames (with their aiohttp message) until the socket ends or the
    garbage budget is spent (then ``garbage.close_code`` says how to close)."""
    while True:
        msg = await ws.receive()
        if msg.type in ENDED:
            return
        try:
            frame = decode_frame(msg)
        except ProtocolError as exc:
            if garbage.add(exc) is not None:
                return
            continue
        metrics.frame_in(frame)
        yield frame, msg

"""Exotel's leg of one call, as the streamer holds it once the stream is accepted.

The base of the two ways a stream is served, ``session.Session`` (a built-in
or plugin bot) and ``bots.relay.Relay`` (the customer's own bot): the
websocket, the call it carries, where the call is recorded (``store``) and
counted (``metrics``), the stream sid once ``start`` names it, and the
garbage-frame budget. Said here once so both take and keep them alike.
Nothing here reads or writes the socket.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from streamer.metrics import Metrics
from streamer.store import CallInfo, CallStore
from streamer.wire import Garbage


# One per socket, so compared by identity; no generated repr: the call holds the
# contact's number and variables, which no log line may show.
@dataclass(eq=False, repr=False)
class Leg:
    ws: web.WebSocketResponse
    call: CallInfo
    store: CallStore
    metrics: Metrics

    def __post_init__(self) -> None:
        self.stream_sid = ""  # set from ``start``
        self._garbage = Garbage(self.metrics, self.call.call_id)

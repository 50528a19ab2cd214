"""The bot interface: what a bot hears (callbacks) and what it can do (context).

A bot never touches the websocket, the codec or the stream's sample rate: it
hears and speaks PCM16 mono at ``INTERNAL_RATE`` and the session resamples at
the edge. Callbacks are called one at a time, in arrival order, from one task
per call; a callback that has to wait (play a prompt, await its mark, wait for
a key) must run that work in ``ctx.spawn(...)`` and return, or later events
(including the DTMF it waits for) queue up behind it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

INTERNAL_RATE = 8000


class BotContext(Protocol):
    """The bot's handle on its call, provided by the session (or a test fake)."""

    call_id: str
    vars: dict[str, Any]  # the contact's variables from the campaign
    sample_rate: int  # the rate of play()/on_audio() PCM: INTERNAL_RATE
    stream_sample_rate: int  # the rate on the wire (informational)
    # The campaign's answering-machine policy (off, hangup, message, continue);
    # when it is not "off", on_answered_by comes early in the call (and once more,
    # as "machine", if a beep follows a "human" within 1.5 s: a one-word greeting).
    machine_detection: str

    def play(self, pcm: bytes) -> None:
        """Queue PCM16 mono audio; it goes out in legal chunks, paced in real time."""

    def clear(self) -> None:
        """Barge-in: drop every queued chunk and tell Exotel to drop its own."""

    def mark(self, name: str | None = None) -> Awaitable[bool]:
        """Mark the end of the audio queued so far.

        The awaitable gives True when Exotel echoes the mark (that audio has
        played) and False when it was cleared or the call ended first.
        """

    def hangup(self) -> None:
        """End the call now: the session closes the socket (code 1000)."""

    async def record_answer(self, qid: str, value: str) -> None:
        """Store one answer on the call's record at once."""

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Awaitable[Any]:
        """Run ``coro`` as a task owned by the call: cancelled when it ends."""


class Bot:
    """Base class with no-op callbacks; subclasses override what they need.

    ``config`` is the campaign's ``bot_config`` (a dict, possibly empty) and
    ``arg`` the part of the spec after the colon (``survey:FILE`` -> FILE).
    """

    def __init__(self, config: dict[str, Any] | None = None, arg: str = "") -> None:
        self.config = dict(config or {})
        self.arg = arg
        self.ctx: BotContext | None = None

    async def on_start(self, ctx: BotContext) -> None:
        self.ctx = ctx

    async def on_audio(self, pcm: bytes) -> None:
        return None

    #: Optional fast path for audio, a plain method ``hear(pcm) -> None`` that
    #: never waits. When a bot defines it, the session calls it directly from
    #: its reader for each frame that arrives while no earlier event is still
    #: waiting for the bot (order is kept), saving two task switches per frame;
    #: otherwise the frame is queued and ``on_audio`` runs, so ``on_audio``
    #: must do the same thing (``EchoBot``).
    hear: Callable[[bytes], None] | None = None

    async def on_dtmf(self, digit: str) -> None:
        return None

    async def on_mark(self, name: str) -> None:
        return None

    async def on_answered_by(self, answered_by: str) -> None:
        """Machine detection decided: ``human``, ``machine`` or ``unknown`` (policy not off)."""
        return None

    async def on_stop(self, reason: str) -> None:
        return None

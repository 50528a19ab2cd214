"""Acting on answering-machine detection inside one call's session.

The session feeds every inbound audio frame to ``MachineWatch.feed`` while the
campaign's policy is not ``off`` (``dialer.core.machine``). At the decision it

1. writes this attempt's verdict (``answered_by``, ``detection_ms``, and the
   outcome when the policy acts on a machine) to the call record *before*
   anything hangs up, so the terminal callback that follows finds it;
2. tells the bot (``on_answered_by``), whatever the policy; a "human"
   that a beep follows within ``late_beep_s`` is told again, as "machine";
3. acts: ``hangup`` ends a machine's call; ``message`` waits for the
   greeting's end or its beep (the detector keeps listening), plays the
   campaign's message, waits until it has played, and hangs up. ``unknown``
   is never acted on: hanging up on a person is the expensive mistake.

Decisions are never waited for on the read loop: detection is a few
microseconds of numpy per frame, and the writes run in tasks the session owns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from streamer.amd import Decision, Detector, load_thresholds
from streamer.bots import prompts
from streamer.store import CallInfo, CallStore

log = logging.getLogger(__name__)
MARK_SLACK_S = 5.0


class Host(Protocol):
    """What the watch needs from its session."""

    sample_rate: int

    def play(self, pcm: bytes) -> None: ...
    def mark(self, name: str | None = None) -> Awaitable[bool]: ...
    def hangup(self) -> None: ...
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Awaitable[Any]: ...


class MachineWatch:
    def __init__(
        self,
        host: Host,
        call: CallInfo,
        store: CallStore,
        stream_rate: int,
        tell_bot: Callable[[str], None],
    ) -> None:
        self.host, self.call, self.store = host, call, store
        self.mode = call.machine_detection
        self.detector = Detector(stream_rate, load_thresholds())
        self._tell_bot = tell_bot
        self._announced = False
        self._told = ""  # what the bot was last told
        self._messaging = False
        # a revision ("human", then a beep) must not overtake the first write
        self._writing = asyncio.Lock()

    @property
    def listening(self) -> bool:
        d = self.detector.decision
        if not self._announced or not self.detector.settled:
            return True  # undecided, or "human" still open to a late beep
        return (
            self.mode == "message"
            and d is not None
            and d.answered_by == "machine"
            and not self._messaging
        )

    def feed(self, pcm: bytes) -> None:
        """One inbound frame (PCM16 at the stream's rate)."""
        if not self.listening:
            return
        decision = self.detector.feed(pcm)
        if decision is None:
            return
        if not self._announced:
            self._announced = True
            self._told = decision.answered_by
            self.host.spawn(self._decided(decision))
        elif decision.answered_by != self._told:  # "human", then a beep: a machine
            self._told = decision.answered_by
            self.host.spawn(self._decided(decision))
        elif (
            decision.answered_by == "machine"
            and self.detector.greeting_over_s is not None
            and not self._messaging
        ):
            self._messaging = True
            self.host.spawn(self._leave_message())

    def stream_ended(self) -> None:
        """Audio stopped before a decision: say so, so nothing waits on it."""
        if not self._announced:
            self._announced = True
            self._tell_bot("unknown")

    async def _decided(self, d: Decision) -> None:
        verdict: dict[str, Any] = d.to_json()
        machine = d.answered_by == "machine"
        if machine and self.mode in ("hangup", "message"):
            verdict["outcome"] = "machine"  # "voicemail" once the message has played
        log.info(
            "answered_by=%s detection_ms=%s reason=%s call_id=%s features=%s",
            d.answered_by, d.at_ms, d.reason, self.call.call_id, d.features,
        )  # fmt: skip
        async with self._writing:
            await self.store.record_detection(self.call, verdict)
            self._tell_bot(d.answered_by)
        if machine and self.mode == "hangup":
            self.host.hangup()
        elif (
            machine
            and self.mode == "message"
            and self.detector.greeting_over_s is not None
            and not self._messaging  # feed() may have started it while we wrote
        ):
            self._messaging = True  # the beep came with the decision
            await self._leave_message()

    async def _leave_message(self) -> None:
        wav = await self.store.machine_message(self.call)
        if wav is None:
            log.warning("no machine message stored call_id=%s", self.call.call_id)
            self.host.hangup()
            return
        pcm = prompts.decode_wav(wav, self.host.sample_rate)
        self.host.play(pcm)
        limit = len(pcm) / (2 * self.host.sample_rate) + MARK_SLACK_S
        try:
            played = await asyncio.wait_for(self.host.mark("amd-message"), limit)
        except TimeoutError:
            played = False
        if played:
            d = self.detector.decision
            verdict = {**(d.to_json() if d else {}), "outcome": "voicemail"}
            await self.store.record_detection(self.call, verdict)
        self.host.hangup()

"""One pacing timer for every stream of a process.

Audio goes to Exotel in real time (``audio.Pacer`` decides when each chunk is
due). Each session used to own a sender task sleeping on its own timer
between chunks: at 500 streams that is thousands of timer wake-ups and task
switches a second, each to send one frame. Here one task per process keeps a
heap of when each stream next has something to do and, per wake-up, serves
every stream due within ``SLACK_S``, so one wake-up sends for many streams.

A stream (``Paced``) is asked to ``tick(now)``: send what is due, answer when
it next needs a tick (or None). Ticks run one after another in this task, so
a tick must not block: the session checks its socket's write buffer first
and, if the peer is not reading, skips sending until later. This module does
not know what a frame is; it only keeps time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

# A frame due this soon is sent now. Early by at most this much is harmless
# (Pacer keeps ~100 ms queued at Exotel); it lets one wake-up serve many streams
# and bounds wake-ups to ~1/SLACK_S a second, whatever the number of streams.
SLACK_S = 0.005


class Paced(Protocol):
    async def tick(self, now: float) -> float | None:
        """Send what is due at ``now``; the clock time of the next tick, None for none."""


class Pacing:
    """The process's timer for ``Paced`` streams; ``run`` is its one task."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, slack_s: float = SLACK_S
    ) -> None:
        self.clock, self.slack_s = clock, slack_s
        self._heap: list[tuple[float, int, Paced]] = []
        self._at: dict[Paced, float] = {}  # each stream's live entry (older ones are stale)
        self._seq = itertools.count()  # ties in the heap never compare streams
        self._waiter: asyncio.Future[None] | None = None
        self._armed = math.inf  # when the sleeping task wakes on its own

    def __len__(self) -> int:
        """Streams waiting for a tick."""
        return len(self._at)

    def schedule(self, paced: Paced, when: float) -> None:
        """Tick ``paced`` at clock time ``when`` (or earlier, if it already asked)."""
        current = self._at.get(paced)
        if current is not None and current <= when:
            return
        self._at[paced] = when
        heapq.heappush(self._heap, (when, next(self._seq), paced))
        if when < self._armed and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def cancel(self, paced: Paced) -> None:
        """No more ticks for ``paced`` (its heap entry goes stale)."""
        self._at.pop(paced, None)

    def _due(self, now: float) -> list[Paced]:
        limit, heap, at = now + self.slack_s, self._heap, self._at
        out: list[Paced] = []
        while heap and heap[0][0] <= limit:
            when, _, paced = heapq.heappop(heap)
            if at.get(paced) == when:
                del at[paced]
                out.append(paced)
        return out

    def _next_wake(self) -> float:
        heap = self._heap
        while heap and self._at.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # stale: cancelled or moved earlier
        return heap[0][0] if heap else math.inf

    async def run(self) -> None:
        """Serve due streams until cancelled; one failing stream is dropped, not fatal."""
        loop = asyncio.get_running_loop()
        while True:
            now = self.clock()
            for paced in self._due(now):
                try:
                    following = await paced.tick(now)
                except Exception:
                    log.exception("pacing: a stream's tick failed; it gets no more ticks")
                    continue
                if following is not None:
                    self.schedule(paced, following)
            self._armed = self._next_wake()
            if self._armed <= self.clock() + self.slack_s:
                continue
            waiter = self._waiter = loop.create_future()
            handle = None
            if self._armed < math.inf:
                handle = loop.call_later(self._armed - self.clock(), _wake, waiter)
            try:
                await waiter
            finally:
                if handle is not None:
                    handle.cancel()
                self._waiter, self._armed = None, math.inf


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)

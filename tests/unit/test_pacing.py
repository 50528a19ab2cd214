"""The process's one pacing timer: streams ticked when due, many per wake-up, failures contained."""

from __future__ import annotations

import asyncio
import functools

from streamer.pacing import Pacing
from tests.support import polling


class Stream:
    """A paced stream that records its ticks and asks again ``every`` seconds, ``times`` times."""

    def __init__(self, every: float | None = None, times: int = 1, fail: bool = False) -> None:
        self.ticks: list[float] = []
        self.every, self.times, self.fail = every, times, fail

    async def tick(self, now: float) -> float | None:
        self.ticks.append(now)
        if self.fail:
            raise RuntimeError("broken stream")
        if self.every is None or len(self.ticks) >= self.times:
            return None
        return now + self.every


until = functools.partial(polling.until, timeout_s=5.0, interval_s=0.005)


async def running(pacing: Pacing) -> asyncio.Task[None]:
    task = asyncio.create_task(pacing.run())
    await asyncio.sleep(0)
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_stream_is_ticked_no_earlier_than_asked_less_the_slack() -> None:
    pacing = Pacing()
    task = await running(pacing)
    try:
        s = Stream(every=0.03, times=3)
        t0 = pacing.clock()
        pacing.schedule(s, t0 + 0.02)
        await until(lambda: len(s.ticks) == 3)
        assert s.ticks[0] >= t0 + 0.02 - pacing.slack_s
        for a, b in zip(s.ticks, s.ticks[1:], strict=False):
            assert b - a >= 0.03 - pacing.slack_s
        assert len(pacing) == 0  # it asked for no more
    finally:
        await stop(task)


async def test_streams_due_together_share_one_wake_up() -> None:
    pacing = Pacing()
    streams = [Stream() for _ in range(200)]
    task = await running(pacing)
    try:
        when = pacing.clock() + 0.05
        for s in streams:
            pacing.schedule(s, when)
        await until(lambda: all(s.ticks for s in streams))
        # One wake-up served them all: every stream saw the same `now`.
        assert len({s.ticks[0] for s in streams}) == 1
    finally:
        await stop(task)


async def test_an_earlier_request_wins_and_a_later_one_is_ignored() -> None:
    pacing = Pacing()
    task = await running(pacing)
    try:
        s = Stream()
        now = pacing.clock()
        pacing.schedule(s, now + 60)  # the task sleeps until then...
        await until(lambda: pacing._armed == now + 60)
        pacing.schedule(s, now + 0.01)  # ...and is woken for the earlier time
        pacing.schedule(s, now + 30)  # later than the live entry: ignored
        await until(lambda: s.ticks)
        assert len(pacing) == 0
    finally:
        await stop(task)


async def test_a_cancelled_stream_is_not_ticked_and_a_failing_one_is_dropped() -> None:
    pacing = Pacing()
    task = await running(pacing)
    try:
        gone, broken, fine = Stream(), Stream(fail=True), Stream(every=0.01, times=3)
        now = pacing.clock()
        pacing.schedule(gone, now + 0.02)
        pacing.cancel(gone)
        pacing.schedule(broken, now)
        pacing.schedule(fine, now)
        await until(lambda: len(fine.ticks) == 3)  # the timer survived the failure
        assert gone.ticks == [] and len(broken.ticks) == 1
        assert not task.done()
    finally:
        await stop(task)

"""A fake bot controller: records what a bot does, with no socket and no Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from streamer.bots.base import Bot


class FakeCtx:
    """A BotContext that records what the bot does; marks resolve on demand."""

    def __init__(self, auto_marks: bool = True) -> None:
        self.call_id, self.vars = "c1234-0", {"name": "Asha"}
        self.sample_rate = self.stream_sample_rate = 8000
        self.played: list[bytes] = []
        self.events: list[str] = []
        self.answers: dict[str, str] = {}
        self.hung_up = False
        self.auto_marks = auto_marks
        self.pending: list[asyncio.Future[bool]] = []
        self.tasks: list[asyncio.Task[Any]] = []

    def play(self, pcm: bytes) -> None:
        self.played.append(pcm)
        self.events.append(f"play:{len(pcm)}")

    def clear(self) -> None:
        self.events.append("clear")
        for fut in self.pending:
            if not fut.done():
                fut.set_result(False)

    def mark(self, name: str | None = None) -> asyncio.Future[bool]:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self.auto_marks:
            fut.set_result(True)
        self.pending.append(fut)
        return fut

    def hangup(self) -> None:
        self.hung_up = True
        self.events.append("hangup")

    async def record_answer(self, qid: str, value: str) -> None:
        self.answers[qid] = value
        self.events.append(f"answer:{qid}={value}")

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self.tasks.append(task)
        return task


async def press(bot: Bot, digit: str) -> None:
    """A key as the session delivers it: from its event queue, at least one loop turn
    after the frame before it was read, so a mark echo's callbacks have run by then.

    ``sleep(0)`` is that loop turn, not a wait for time to pass.
    """
    await asyncio.sleep(0)
    await bot.on_dtmf(digit)

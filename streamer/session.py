"""One AgentStream websocket's life with a built-in or plugin bot.

The handshake (``connected``, then ``start``; ``connected`` may be missing)
is parsed before the bot is built, since the bot needs the stream's rate.
Then three owned tasks run: this one reads frames, a bot task feeds the bot
its events one at a time, and a sender task paces audio out in real time.
All are cancelled when the socket closes. The session never changes the
call's state (status callbacks own it) and does no relaying (``bots.relay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from dialer.core.errors import DialerError, ProtocolError
from dialer.core.reasons import Code
from streamer import protocol as p
from streamer.audio import RATES, Chunker, Pacer, StreamResampler
from streamer.bots import Bot, make_bot
from streamer.bots.base import INTERNAL_RATE
from streamer.machine import MachineWatch
from streamer.metrics import Metrics
from streamer.store import CallInfo, CallStore
from streamer.wire import (
    ENDED,
    INTERNAL_ERROR,
    NORMAL,
    PROTOCOL_ERROR,
    Garbage,
    decode_frame,
    inbound,
)

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 10.0  # Exotel's own handshake budget (protocol §4)
TAIL_HOLD_S = 0.15  # a partial chunk waits this long for more audio before padding
DRAIN_S = 2.0  # time the bot gets to handle its last events (a final DTMF answer)


class Session:
    """Implements ``BotContext`` for its bot; see bots/base.py for the contract."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        call: CallInfo,
        store: CallStore,
        metrics: Metrics,
        url_rate: int = 8000,
        bot_factory: Callable[[str, dict[str, Any]], Bot] = make_bot,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ws, self.call, self.store, self.metrics = ws, call, store, metrics
        self.call_id, self.vars = call.call_id, dict(call.vars)
        self.sample_rate, self.stream_sample_rate = INTERNAL_RATE, url_rate
        self.stream_sid = ""
        self.machine_detection = call.machine_detection  # BotContext: the campaign's policy
        self._machine: MachineWatch | None = None
        self._bot_factory, self._clock = bot_factory, clock
        self._garbage = Garbage(metrics, call.call_id)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._events: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        self._marks: dict[str, list[asyncio.Future[bool]]] = {}
        self._urgent: list[str] = []  # frames that jump the pacer queue (clear)
        self._wake = asyncio.Event()
        self._closer: asyncio.Task[bool] | None = None
        self._code, self._reason = NORMAL, "disconnected"
        self._mark_seq = 0
        self._started_at = self._last_play = 0.0
        self._first_audio = False

    # --- BotContext -------------------------------------------------------
    def play(self, pcm: bytes) -> None:
        if self._closer is None and not self.ws.closed:
            self._last_play = self._clock()
            self._queue_chunks(self._chunker.push(self._out.process(pcm)))

    def clear(self) -> None:
        self._chunker.reset()
        self._out.reset()
        self._pacer.clear(self._clock())
        self._settle_marks(False)
        self._urgent.append(p.encode(p.Clear(), self.stream_sid))
        self._wake.set()

    def mark(self, name: str | None = None) -> Awaitable[bool]:
        self._mark_seq += 1
        name = name or f"m{self._mark_seq}"
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._closer is not None or self.ws.closed:
            fut.set_result(False)
            return fut
        self._flush_tail()  # the mark must follow every byte played before it
        self._marks.setdefault(name, []).append(fut)
        self._pacer.push(p.encode(p.OutMark(name), self.stream_sid), 0)
        self._wake.set()
        return fut

    def hangup(self) -> None:
        self._reason = "hangup"
        self.close_soon(NORMAL)

    async def record_answer(self, qid: str, value: str) -> None:
        await self.store.record_answer(self.call, qid, value)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- lifecycle --------------------------------------------------------
    def close_soon(self, code: int) -> None:
        """Close from another task: the reader sees the close and shuts down."""
        if self._closer is None and not self.ws.closed:
            self._code = code
            self._closer = asyncio.create_task(self.ws.close(code=code))

    async def run(self) -> None:
        bot_task = None
        try:
            start = await self._handshake()
            if start is None:
                if self._code != NORMAL:
                    await self._record(Code.STREAM_ERROR, f"stream from Exotel: {self._reason}")
                return
            self._setup(start)
            try:
                bot = self._bot_factory(self.call.bot, self.call.bot_config)
            except DialerError as exc:
                await self._record(Code.BOT_FAILED, f"bot: {exc}")
                self._code, self._reason = INTERNAL_ERROR, "bot failed"
                return
            await self.store.record_stream(self.call, self.stream_sid)
            if self.machine_detection != "off":
                self._machine = MachineWatch(
                    self, self.call, self.store, self.stream_sample_rate, self._answered_by
                )
            bot_task = asyncio.create_task(self._drive(bot))
            self.spawn(self._send_loop())
            await self._read_loop()
        finally:
            await self._shutdown(bot_task)

    async def _handshake(self) -> p.Start | None:
        deadline = self._clock() + HANDSHAKE_TIMEOUT_S
        while True:
            try:
                msg = await self.ws.receive(timeout=max(0.01, deadline - self._clock()))
            except TimeoutError:
                self._code, self._reason = PROTOCOL_ERROR, "no start frame"
                return None
            if msg.type in ENDED:
                return None
            try:
                frame = decode_frame(msg)
            except ProtocolError as exc:
                if (code := self._garbage.add(exc)) is not None:
                    self._code, self._reason = code, "garbage"
                    return None
                continue
            self.metrics.frames_in.labels(type(frame).__name__.lower()).inc()
            if isinstance(frame, p.Start):
                return frame
            if isinstance(frame, p.Stop):
                return None

    def _setup(self, start: p.Start) -> None:
        # The start frame's rate wins over the URL's: a mismatch is choppy audio (§5.3).
        # Only the rates AgentStream has: an absurd one would make the resampler
        # allocate without bound and block the loop.
        if start.sample_rate in RATES:
            self.stream_sample_rate = start.sample_rate
        elif start.sample_rate:
            log.warning(
                "ignoring unsupported start sample_rate %s; using %s",
                start.sample_rate,
                self.stream_sample_rate,
            )
        self.stream_sid = start.stream_sid
        self._started_at = self._clock()
        self._in = StreamResampler(self.stream_sample_rate, INTERNAL_RATE)
        self._out = StreamResampler(INTERNAL_RATE, self.stream_sample_rate)
        self._chunker = Chunker()
        self._pacer: Pacer[str] = Pacer(self.stream_sample_rate)

    async def _read_loop(self) -> None:
        async for frame, _ in inbound(self.ws, self._garbage, self.metrics):
            if isinstance(frame, p.Media):
                if self._machine is not None:
                    self._machine.feed(frame.payload)
                self._events.put_nowait(("audio", self._in.process(frame.payload)))
            elif isinstance(frame, p.Dtmf):
                self._events.put_nowait(("dtmf", frame.digit))
            elif isinstance(frame, p.Mark):
                waiting = self._marks.get(frame.name)
                if waiting:
                    waiting.pop(0).set_result(True)
                    self._events.put_nowait(("mark", frame.name))
            elif isinstance(frame, p.Stop):
                self._reason = frame.reason or "stop"
                return
        if self._garbage.close_code is not None:
            self._code, self._reason = self._garbage.close_code, "garbage"
            await self._record(Code.STREAM_ERROR, "stream from Exotel: garbage frames")

    async def _record(self, code: Code, text: str) -> None:
        """Why the stream failed, on the call, before the socket closes (see CallStore)."""
        await self.store.record_error(self.call, code, text, ran=self._first_audio)

    def _answered_by(self, answered_by: str) -> None:
        self._events.put_nowait(("answered_by", answered_by))

    async def _drive(self, bot: Bot) -> None:
        """Feed the bot its events in order; a failing callback is logged, not fatal."""
        try:
            await bot.on_start(self)
        except Exception as exc:
            log.exception("bot on_start failed call_id=%s", self.call_id)
            await self._record(Code.BOT_FAILED, f"bot failed to start: {exc.__class__.__name__}")
            self.close_soon(INTERNAL_ERROR)
        while (event := await self._events.get()) is not None:
            kind, arg = event
            try:
                await getattr(bot, f"on_{kind}")(arg)
            except Exception:
                log.exception("bot on_%s failed call_id=%s", kind, self.call_id)

    def _queue_chunks(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self._pacer.push(p.encode(p.OutMedia(chunk), self.stream_sid), len(chunk))
        if chunks:
            self._wake.set()

    def _flush_tail(self) -> None:
        self._queue_chunks(self._chunker.push(self._out.flush()) + self._chunker.flush())

    def _settle_marks(self, played: bool) -> None:
        for futures in self._marks.values():
            for fut in futures:
                if not fut.done():
                    fut.set_result(played)
        self._marks.clear()

    async def _send_loop(self) -> None:
        try:
            await self._pace()
        except ConnectionError:  # the peer went away mid-send; the reader sees it too
            return

    async def _pace(self) -> None:
        while not self.ws.closed:
            self._wake.clear()
            now = self._clock()
            if (
                self._chunker.pending
                and self._pacer.idle(now)
                and now - self._last_play >= TAIL_HOLD_S
            ):
                self._flush_tail()  # the bot went quiet: send its last partial chunk
            frames, self._urgent = [*self._urgent, *self._pacer.due(now)], []
            for frame in frames:
                await self.ws.send_str(frame)
                self._count_out(frame)
            due = self._pacer.next_due(self._clock())
            timeout = None if due is None else due - self._clock()
            if self._chunker.pending:
                timeout = min(timeout if timeout is not None else TAIL_HOLD_S, TAIL_HOLD_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _count_out(self, frame: str) -> None:
        event = frame[10:15]  # '{"event":"media"' -> 'media'; cheap, we built the frame
        self.metrics.frames_out.labels(event.strip('"')).inc()
        if event == "media" and not self._first_audio:
            self._first_audio = True
            self.metrics.first_audio_latency.observe(self._clock() - self._started_at)

    async def _shutdown(self, bot_task: asyncio.Task[None] | None) -> None:
        if self._closer is not None:
            await asyncio.shield(self._closer)  # it waits for the peer's close frame
        elif not self.ws.closed:
            await self.ws.close(code=self._code)
        self._settle_marks(False)
        owned = [*self._tasks, *([bot_task] if bot_task else [])]
        try:
            if bot_task is not None:
                if self._machine is not None:
                    self._machine.stream_ended()
                self._events.put_nowait(("stop", self._reason))
                self._events.put_nowait(None)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(bot_task), DRAIN_S)
        finally:  # even if the server cancels us mid-drain, nothing is left running
            owned += list(self._tasks)
            for task in owned:
                task.cancel()
            await asyncio.gather(*owned, return_exceptions=True)
        log.info(
            "stream closed call_id=%s stream_sid=%s reason=%s code=%s",
            self.call_id,
            self.stream_sid,
            self._reason,
            self._code,
        )

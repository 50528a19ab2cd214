"""One AgentStream websocket's life with a built-in or plugin bot.

The handshake (``connected``, then ``start``; ``connected`` may be missing)
is parsed before the bot is built, since the bot needs the stream's rate.
Then two owned tasks run: this one reads frames and a bot task feeds the bot
its events one at a time; both are cancelled when the socket closes. Audio
goes out in real time from the process's one pacing task (``pacing``), which
calls ``tick`` when this stream has a chunk due. Audio the bot plays back
unchanged (the echo, at the wire's rate, in frames of one chunk) goes out as
the base64 text it came in as. The session never changes the
call's state (status callbacks own it) and does no relaying (``bots.relay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import InitVar, dataclass
from typing import Any

from aiohttp import WSMsgType

from dialer.core.errors import DialerError, ProtocolError
from dialer.core.reasons import Code
from streamer import protocol as p
from streamer.audio import RATES, Chunker, Pacer, StreamResampler
from streamer.bots import Bot, make_bot
from streamer.bots.base import INTERNAL_RATE
from streamer.leg import Leg
from streamer.machine import MachineWatch
from streamer.pacing import Pacing
from streamer.wire import (
    ENDED,
    INTERNAL_ERROR,
    NORMAL,
    PROTOCOL_ERROR,
    decode_frame,
    inbound,
    text_frames,
)

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 10.0  # Exotel's own handshake budget (protocol §4)
TAIL_HOLD_S = 0.15  # a partial chunk waits this long for more audio before padding
DRAIN_S = 2.0  # time the bot gets to handle its last events (a final DTMF answer)
BACKLOG_RETRY_S = 0.05  # the peer is not reading: look again this much later
RECENT_IN = 4  # inbound payloads remembered for sending back unchanged
# A frame's event, from the bytes we built it with ('{"event":"media"...').
_EVENTS = {b"media": "media", b'mark"': "mark", b"clear": "clear"}


@dataclass(eq=False, repr=False)
class Session(Leg):
    """Implements ``BotContext`` for its bot; see bots/base.py for the contract."""

    pacing: InitVar[Pacing]
    url_rate: InitVar[int] = 8000
    bot_factory: InitVar[Callable[[str, dict[str, Any]], Bot]] = make_bot
    transport: InitVar[asyncio.BaseTransport | None] = None

    def __post_init__(
        self,
        pacing: Pacing,
        url_rate: int,
        bot_factory: Callable[[str, dict[str, Any]], Bot],
        transport: asyncio.BaseTransport | None,
    ) -> None:
        super().__post_init__()
        call = self.call
        self.call_id, self.vars = call.call_id, dict(call.vars)
        self.sample_rate, self.stream_sample_rate = INTERNAL_RATE, url_rate
        self.machine_detection = call.machine_detection  # BotContext: the campaign's policy
        self._machine: MachineWatch | None = None
        self._bot_factory, self._pacing, self._clock = bot_factory, pacing, pacing.clock
        # The socket's write buffer, to see a peer that stopped reading (see tick).
        self._transport = transport if isinstance(transport, asyncio.WriteTransport) else None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._events: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        self._hear: Callable[[bytes], None] | None = None  # the bot's fast path (bots/base.py)
        self._bot_idle = False  # the bot task waits for an event (not in a callback)
        self._marks: dict[str, list[asyncio.Future[bool]]] = {}
        self._urgent: list[bytes] = []  # frames that jump the pacer queue (clear)
        self._recent: deque[tuple[bytes, str]] = deque(maxlen=RECENT_IN)
        self._ended = False  # no more ticks: the socket is closing
        self._closer: asyncio.Task[bool] | None = None
        self._code, self._reason = NORMAL, "disconnected"
        self._mark_seq = 0
        self._started_at = self._last_play = 0.0
        self._first_audio = False

    # --- BotContext -------------------------------------------------------
    def play(self, pcm: bytes) -> None:
        if self._closer is not None or self.ws.closed:
            return
        now = self._last_play = self._clock()
        queued = len(self._pacer)
        b64 = self._unchanged(pcm)
        if b64:
            self._pacer.push(self._frames.wrap(b64), len(pcm))
        else:
            self._chunker.feed(self._out.process(pcm), self._queue_chunk)
        if len(self._pacer) > queued:  # a tick when the chunk is due, not one to ask
            self._pacing.schedule(self, self._pacer.next_due(now) or now)
        elif self._chunker.pending:  # a partial chunk: see whether more audio comes
            self._pacing.schedule(self, now + TAIL_HOLD_S)

    def clear(self) -> None:
        self._chunker.reset()
        self._out.reset()
        self._pacer.clear(self._clock())
        self._settle_marks(False)
        self._urgent.append(p.encode(p.Clear(), self.stream_sid).encode())
        self._pacing.schedule(self, self._clock())

    def mark(self, name: str | None = None) -> Awaitable[bool]:
        self._mark_seq += 1
        name = name or f"m{self._mark_seq}"
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._closer is not None or self.ws.closed:
            fut.set_result(False)
            return fut
        self._flush_tail()  # the mark must follow every byte played before it
        self._marks.setdefault(name, []).append(fut)
        self._pacer.push(p.encode(p.OutMark(name), self.stream_sid).encode(), 0)
        self._pacing.schedule(self, self._clock())
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
            self._hear = bot.hear
            bot_task = asyncio.create_task(self._drive(bot))
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
            self.metrics.frame_in(frame)
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
        self._pacer: Pacer[bytes] = Pacer(self.stream_sample_rate)
        self._frames = p.MediaFrames(self.stream_sid)

    async def _read_loop(self) -> None:
        keep = self._in.identity  # the bot hears the wire's bytes: remember their text
        async for frame, _ in inbound(self.ws, self._garbage, self.metrics):
            if isinstance(frame, p.Media):
                if self._machine is not None:
                    self._machine.feed(frame.payload)
                if keep:
                    self._recent.append((frame.payload, frame.b64))
                pcm = self._in.process(frame.payload)
                if self._hear is not None and self._bot_idle and self._events.empty():
                    self._hear_now(pcm)  # nothing queued before it: no task switch
                else:
                    self._events.put_nowait(("audio", pcm))
            elif isinstance(frame, p.Dtmf):
                self._events.put_nowait(("dtmf", frame.digit))
            elif isinstance(frame, p.Mark):
                waiting = self._marks.get(frame.name)
                if waiting:
                    heard = waiting.pop(0)
                    # A waiter that gave up (wait_for's timeout) cancelled it: the
                    # echo came late, which must not end the stream.
                    if not heard.done():
                        heard.set_result(True)
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

    def _hear_now(self, pcm: bytes) -> None:
        assert self._hear is not None
        try:
            self._hear(pcm)
        except Exception:  # as in _drive: a failing callback is logged, not fatal
            log.exception("bot hear failed call_id=%s", self.call_id)

    async def _drive(self, bot: Bot) -> None:
        """Feed the bot its events in order; a failing callback is logged, not fatal."""
        try:
            await bot.on_start(self)
        except Exception as exc:
            log.exception("bot on_start failed call_id=%s", self.call_id)
            await self._record(Code.BOT_FAILED, f"bot failed to start: {exc.__class__.__name__}")
            self.close_soon(INTERNAL_ERROR)
        while True:
            self._bot_idle = True
            event = await self._events.get()
            self._bot_idle = False
            if event is None:
                break
            kind, arg = event
            try:
                await getattr(bot, f"on_{kind}")(arg)
            except Exception:
                log.exception("bot on_%s failed call_id=%s", kind, self.call_id)

    def _unchanged(self, pcm: bytes) -> str:
        """The base64 text ``pcm`` arrived as, if it can go back out as it is.

        Only a whole inbound frame of exactly one chunk, played back as
        received (same object) at the wire's rate, with nothing half-chunked
        before it; anything else is chunked and encoded.
        """
        if (
            not self._recent
            or self._chunker.pending
            or not self._out.identity
            or len(pcm) != self._chunker.chunk_bytes
        ):
            return ""
        for payload, b64 in self._recent:
            if payload is pcm:
                return b64
        return ""

    def _queue_chunk(self, chunk: memoryview) -> None:
        self._pacer.push(self._frames.encode(chunk), len(chunk))

    def _flush_tail(self) -> None:
        self._chunker.feed(self._out.flush(), self._queue_chunk)
        for chunk in self._chunker.flush():
            self._queue_chunk(memoryview(chunk))

    def _settle_marks(self, played: bool) -> None:
        for futures in self._marks.values():
            for fut in futures:
                if not fut.done():
                    fut.set_result(played)
        self._marks.clear()

    def _backlogged(self) -> bool:
        """The peer stopped reading: its socket's buffer is past the high-water mark.

        Sending then would block the process's pacing task (every stream) on
        this one peer, so the frames wait in the pacer instead.
        """
        t = self._transport
        return t is not None and t.get_write_buffer_size() >= t.get_write_buffer_limits()[1]

    async def tick(self, now: float) -> float | None:
        """Called by the process's pacing task: send what is due, say when to call again."""
        if self._ended or self.ws.closed:
            return None
        if self._backlogged():
            return now + BACKLOG_RETRY_S
        pacer = self._pacer
        if self._chunker.pending and pacer.idle(now) and now - self._last_play >= TAIL_HOLD_S:
            self._flush_tail()  # the bot went quiet: send its last partial chunk
        frames = pacer.due(now + self._pacing.slack_s)
        if self._urgent:
            frames, self._urgent = [*self._urgent, *frames], []
        if frames:
            try:
                await self._send(frames)
            except ConnectionError:  # the peer went away mid-send; the reader sees it too
                return None
            for frame in frames:
                self._count_out(frame)
        due = pacer.next_due(now)
        if self._chunker.pending and due is None:
            # Nothing queued: look at the partial chunk once playback and the hold are over.
            due = max(now, self._last_play + TAIL_HOLD_S, pacer.idle_at())
        return due

    async def _send(self, frames: list[bytes]) -> None:
        """A tick's frames, in one write to the socket when it is uncompressed."""
        t = self._transport
        if t is not None and not self.ws.compress:
            if t.is_closing():
                raise ConnectionResetError("socket closing")
            t.write(text_frames(frames))
            return
        for frame in frames:  # permessage-deflate: aiohttp compresses each frame
            await self.ws.send_frame(frame, WSMsgType.TEXT)

    def _count_out(self, frame: bytes) -> None:
        event = _EVENTS.get(frame[10:15], "other")  # cheap: we built the frame
        self.metrics.frame_out(event)
        if event == "media" and not self._first_audio:
            self._first_audio = True
            self.metrics.first_audio_latency.observe(self._clock() - self._started_at)

    async def _shutdown(self, bot_task: asyncio.Task[None] | None) -> None:
        self._ended = True
        self._pacing.cancel(self)
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

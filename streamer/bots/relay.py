"""Relay mode: bridge the call to the customer's own AgentStream bot.

Every frame from Exotel goes to the customer's bot and every frame back goes
to Exotel, as the same text where possible: no JSON re-encoding, no pacing,
no resampling, so the relay adds next to nothing to the latency budget. Two
repairs only, for mistakes real bots make (DESIGN.md, Streamer):

* media whose decoded size breaks the 320/3,200 B rule (pipecat sends 640 B
  frames) is re-chunked legally; each such frame counts as
  ``chunk_rule_violations_avoided``. A mark flushes the partial chunk first,
  so it still follows its audio; a clear drops it.
* the customer's bot is spoken to in its own stream-sid spelling, detected
  from its first frame (``stream_sid`` until then, and always for ``start``,
  which is forwarded as Exotel sent it, minus the stream token that Exotel
  echoes in ``custom_parameters``: the customer's bot never sees it).

Every way the customer's bot can fail is recorded on the call with a reason
code (``dialer.core.reasons``) before the call is hung up, so the results say why:
``relay_connect_failed`` (refused, DNS, timeout, or refused by the egress
policy), ``relay_rejected`` (the handshake got an HTTP status such as 403),
``relay_closed_early`` (the bot closed before sending a single frame: the
callee heard nothing, so the attempt ends ``bot-failed``, not ``completed``)
and ``relay_error`` (closed mid-call with an error close code). A failed
connect hangs up with 1011. The URL in a reason has no credentials or query
string. The bot URL comes from an API caller, so the session is an egress
session (``dialer.net.egress``): internal addresses and redirects are refused.
This is not a ``Bot``: it bypasses the resampling bot layer entirely.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp
from aiohttp import WSMsgType

from dialer.core.errors import EgressRefused, ProtocolError
from dialer.core.reasons import Code, safe_url
from streamer import protocol as p
from streamer.audio import Chunker, is_legal_chunk
from streamer.leg import Leg
from streamer.wire import ENDED, INTERNAL_ERROR, NORMAL, inbound

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 5.0  # Exotel gives the whole handshake ~10 s (protocol §4)
# A partial chunk waits this long for the bot's next frame, then goes out padded.
# Far above a real-time bot's 20 ms frame gap, far below a noticeable pause.
TAIL_HOLD_S = 0.1
# Close codes a bot may hang up with; anything else is an error worth a reason.
CLEAN_CLOSE = frozenset({1000, 1001})


@dataclass(eq=False, repr=False)
class Relay(Leg):
    url: str  # the customer's bot
    http: aiohttp.ClientSession  # under the egress policy

    def __post_init__(self) -> None:
        super().__post_init__()
        self.exotel_spelling: p.Spelling = "stream_sid"
        self.bot_spelling: p.Spelling | None = None
        self._chunker = Chunker()
        self._code = NORMAL
        self._started_at: float | None = None
        self._sent_any = False  # has the callee been sent anything from the bot?
        self._exotel_stopped = False  # the call ended on Exotel's side first

    def _connect_failure(self, exc: BaseException) -> tuple[Code, str]:
        where = safe_url(self.url)
        if isinstance(exc, aiohttp.WSServerHandshakeError):
            return Code.RELAY_REJECTED, (
                f"relay bot at {where} refused the websocket handshake: HTTP {exc.status}"
            )
        if isinstance(exc, TimeoutError):
            return Code.RELAY_CONNECT_FAILED, (
                f"relay bot at {where} did not complete the handshake in {CONNECT_TIMEOUT_S:g} s"
            )
        if isinstance(exc, EgressRefused):  # our policy's words, never the remote's
            return Code.RELAY_CONNECT_FAILED, f"relay connect to {where} refused: {exc}"
        if isinstance(exc, ValueError | aiohttp.InvalidURL):
            return Code.RELAY_CONNECT_FAILED, f"relay URL {where} is not usable"
        cause = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
        detail = getattr(cause, "strerror", None) or cause.__class__.__name__
        return Code.RELAY_CONNECT_FAILED, f"relay connect to {where} failed: {detail}"

    async def _fail(self, code: Code, text: str) -> None:
        log.warning("%s call_id=%s", text, self.call.call_id)
        await self.store.record_error(self.call, code, text, ran=self._sent_any)

    async def run(self) -> None:
        try:
            bot = await asyncio.wait_for(
                self.http.ws_connect(self.url, max_msg_size=4 * 1024 * 1024), CONNECT_TIMEOUT_S
            )
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, EgressRefused) as exc:
            await self._fail(*self._connect_failure(exc))
            await self.ws.close(code=INTERNAL_ERROR, message=b"relay connect failed")
            return
        up = asyncio.create_task(self._exotel_to_bot(bot))
        down = asyncio.create_task(self._bot_to_exotel(bot))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
            # Whichever side ended, the other is closed: a bot hang-up ends the call.
            await bot.close()
            await self.ws.close(code=self._code)
            log.info(
                "relay closed call_id=%s stream_sid=%s code=%s",
                self.call.call_id,
                self.stream_sid,
                self._code,
            )

    async def _exotel_to_bot(self, bot: aiohttp.ClientWebSocketResponse) -> None:
        async for frame, msg in inbound(self.ws, self._garbage, self.metrics):
            text = msg.data
            if isinstance(frame, p.Start):
                self.stream_sid = frame.stream_sid
                self.exotel_spelling = p.sniff_spelling(text) or "stream_sid"
                self._started_at = time.monotonic()
                text = p.without_credentials(text)  # the stream token stays with us
            elif (
                self.bot_spelling not in (None, self.exotel_spelling)
                and self.stream_sid
                and not isinstance(frame, p.Connected)
            ):
                assert self.bot_spelling is not None
                text = p.encode(frame, self.stream_sid, spelling=self.bot_spelling)
            if isinstance(frame, p.Stop):  # before forwarding: the bot may close at once
                self._exotel_stopped = True
            await bot.send_str(text)
            if isinstance(frame, p.Start):  # after forwarding: off the latency path
                await self.store.record_stream(self.call, frame.stream_sid)
            elif isinstance(frame, p.Stop):
                return
        if self._garbage.close_code is not None:
            self._code = self._garbage.close_code

    async def _bot_to_exotel(self, bot: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            try:
                msg = await bot.receive(timeout=TAIL_HOLD_S if self._chunker.pending else None)
            except TimeoutError:  # the bot paused mid-chunk: send what we have, padded
                await self._send_chunks(self._chunker.flush())
                continue
            if msg.type in ENDED:
                await self._bot_closed(bot)
                return
            if msg.type is not WSMsgType.TEXT:
                self.metrics.garbage_frames.inc()
                continue
            text = msg.data
            if self.bot_spelling is None:
                self.bot_spelling = p.sniff_spelling(text)
            try:
                frame = p.decode_outbound(text)
            except ProtocolError as exc:
                # The customer's bug, not the caller's: drop the frame, keep the call.
                self.metrics.garbage_frames.inc()
                log.warning("bad frame from relayed bot call_id=%s: %s", self.call.call_id, exc)
                continue
            if isinstance(frame, p.OutMedia):
                size = len(frame.payload)
                if not self._chunker.pending and is_legal_chunk(size):
                    await self._send(text, "media")  # untouched: the common, fast path
                    continue
                if not is_legal_chunk(size):
                    self.metrics.chunk_rule_violations_avoided.inc()
                await self._send_chunks(self._chunker.push(frame.payload))
            elif isinstance(frame, p.OutMark):
                await self._send_chunks(self._chunker.flush())
                await self._send(text, "mark")
            else:
                self._chunker.reset()
                await self._send(text, "clear")

    async def _bot_closed(self, bot: aiohttp.ClientWebSocketResponse) -> None:
        """The customer's bot hung up: a reason unless it was a clean hang-up mid-call."""
        if self._exotel_stopped or self.ws.closed:
            return  # the caller hung up first; the bot only followed
        code = bot.close_code
        how = f"code {code}" if code is not None else "no close frame"
        where = safe_url(self.url)
        if not self._sent_any:
            await self._fail(
                Code.RELAY_CLOSED_EARLY,
                f"relay bot at {where} closed the websocket ({how}) before sending anything",
            )
        elif code not in CLEAN_CLOSE:
            await self._fail(Code.RELAY_ERROR, f"relay bot at {where} closed the websocket ({how})")

    async def _send_chunks(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            frame = p.encode(p.OutMedia(chunk), self.stream_sid, spelling=self.exotel_spelling)
            await self._send(frame, "media")

    async def _send(self, text: str, event: str) -> None:
        await self.ws.send_str(text)
        self._sent_any = True
        self.metrics.frame_out(event)
        if event == "media" and self._started_at is not None:
            self.metrics.first_audio_latency.observe(time.monotonic() - self._started_at)
            self._started_at = None

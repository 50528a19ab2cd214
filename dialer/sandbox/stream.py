"""The AgentStream client: Exotel's side of the websocket, playing the callee.

After a callee answers, Exotel dials in to the call's ``StreamUrl`` and
speaks the protocol of section 4 of the protocol doc: ``connected``,
``start``, then the caller's audio as ~100 ms PCM16 frames paced on a
monotonic clock, ``dtmf`` when the callee presses a key, ``mark`` echoes when
the bot's audio has played, and ``stop`` when the callee hangs up. Every bot
frame is checked (see ``playback.check_bot_frame``); a broken rule becomes a
report violation, never an exception.

The callee presses its next key each time the bot's audio finishes playing
and a short think time passes; after its last key it only listens. It hangs
up after ``talk_s``. The call outcome (completed/failed) and its callbacks
are the exchange's business, not this module's.
"""

from __future__ import annotations

import array
import asyncio
import base64
import contextlib
import functools
import logging
import math
import random
import sys
import time
import uuid
from collections import deque
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import numpy as np

from dialer.sandbox.calls import SandboxCall
from dialer.sandbox.config import CalleeBehaviour
from dialer.sandbox.playback import Playback, check_bot_frame, frame_payload
from dialer.sandbox.state import SandboxState
from dialer.sandbox.voices import Clip, callee_clip, render

log = logging.getLogger(__name__)
SAMPLE_RATES = (8000, 16000, 24000)
WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_close=2.0)  # don't hang a shutdown on a mute bot
VOICED_RMS = 300.0  # about -40 dBFS: speech is far above, digital silence is 0
BEHIND_RESYNC_S = 1.0  # if the loop stalls this long, skip frames instead of bursting them


@functools.lru_cache(maxsize=8)
def loudness(pcm: bytes, rate: int, window_ms: int = 20) -> tuple[float, float]:
    """(ms of audio, ms of it above a speech-like level): 20 ms windows, RMS > -40 dBFS."""
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2").astype(np.float64)
    n = max(1, rate * window_ms // 1000)
    windows = x[: len(x) // n * n].reshape(-1, n)
    loud = int((np.sqrt((windows**2).mean(axis=1)) > VOICED_RMS).sum()) if len(windows) else 0
    return len(x) * 1000 / rate, float(loud * window_ms)


@functools.cache
def caller_audio_b64(sample_rate: int, frame_ms: int) -> str:
    """One frame of very low noise (line hiss, not digital silence), base64 PCM16 LE.

    The same frame each time (seeded by the rate), so built once: drawn sample
    by sample it was a third of the sandbox's CPU in the whole-system benchmark,
    on the cores the dialer under test shares."""
    rng = random.Random(sample_rate)
    samples = array.array("h", (rng.randint(-3, 3) for _ in range(sample_rate * frame_ms // 1000)))
    if sys.byteorder == "big":
        samples.byteswap()
    return base64.b64encode(samples.tobytes()).decode("ascii")


def voice_frames(clip: Clip, sample_rate: int, frame_ms: int) -> list[str]:
    """A callee's generated voice as base64 frames of ``frame_ms`` (the last one padded)."""
    pcm = render(clip, sample_rate).astype("<i2").tobytes()
    step = sample_rate * frame_ms // 1000 * 2
    frames = []
    for pos in range(0, len(pcm), step):
        frames.append(base64.b64encode(pcm[pos : pos + step].ljust(step, b"\0")).decode("ascii"))
    return frames


def stream_parameters(stream_url: str) -> tuple[dict[str, str], int]:
    """The URL's query as ``custom_parameters`` and the requested ``sample-rate``."""
    params = dict(parse_qsl(urlsplit(stream_url).query, keep_blank_values=True))
    try:
        rate = int(params.get("sample-rate", "8000"))
    except ValueError:
        rate = 8000
    return params, rate if rate in SAMPLE_RATES else 8000


class CallerStream:
    """One answered call's websocket to the bot, from handshake to close."""

    def __init__(
        self, state: SandboxState, call: SandboxCall, behaviour: CalleeBehaviour, talk_s: float
    ) -> None:
        self.state = state
        self.call = call
        self.talk_s = talk_s
        self.digits = deque(behaviour.dtmf)
        self.params, self.sample_rate = stream_parameters(call.stream_url)
        self.clip = callee_clip(behaviour.voice, call.number)
        self._voice_b64: list[str] = []
        if self.clip is not None and self.clip.label == "machine":
            state.report.machine_heard[call.sid] = {
                "voice": behaviour.voice,
                "greeting_end_s": round(self.clip.greeting_end_s, 3),
                "beep_end_s": self.clip.beep_end_s,
                "bot_audio_s": None,
                "bot_audio_bytes": 0,
            }
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.playback = Playback(self.sample_rate)
        self._seq = 0
        self._chunk = 0
        self._wake = asyncio.Event()
        self._started_at = 0.0
        self._heard_bot = False

    async def run(self) -> bool:
        """Play the call to its end. False if the websocket could not be opened (twice)."""
        if self.clip is not None:  # tens of ms of numpy: not on the event loop
            self._voice_b64 = await asyncio.to_thread(
                voice_frames, self.clip, self.sample_rate, self.state.config.frame_ms
            )
        ws = await self._open()
        if ws is None:
            return False
        self.state.report.streams_opened += 1
        reader: asyncio.Task[None] | None = None
        try:
            await self._send_raw(ws, '{"event": "connected"}')
            await self._send(ws, "start", {"start": self._start_body()})
            self._started_at = time.monotonic()
            reader = asyncio.get_running_loop().create_task(self._read(ws))
            reader.add_done_callback(lambda _: self._wake.set())
            ended_by = await self._drive(ws, reader)
            # Who ended the stream, and with which close code when the bot did:
            # a drain test tells a normal hang-up from a server going away.
            end = "callee" if ended_by == "callee" else f"bot:{ws.close_code}"
            self.state.report.stream_ends[end] += 1
            if ended_by == "callee":
                stop = {"call_sid": self.call.sid, "account_sid": self.call.account_sid,
                        "reason": "callended"}  # fmt: skip
                with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                    await self._send(ws, "stop", {"stop": stop})
        except (ConnectionError, aiohttp.ClientError) as exc:
            self.state.report.stream_ends["lost"] += 1
            log.info("stream %s call %s lost: %s", self.stream_sid, self.call.sid, exc)
        finally:
            if reader is not None:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            await ws.close()
        self.state.report.streams_completed += 1
        return True

    async def _open(self) -> aiohttp.ClientWebSocketResponse | None:
        """Exotel: handshake within ~10 s, one automatic retry on failure."""
        session = self.state.session
        assert session is not None, "the app's cleanup context opens the session"
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(self.state.config.handshake_timeout_s):
                    return await session.ws_connect(
                        self.call.stream_url, max_msg_size=1 << 20, timeout=WS_TIMEOUT
                    )
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                log.info("stream handshake %d for call %s failed: %s", attempt, self.call.sid,
                         type(exc).__name__)  # fmt: skip
        return None

    def _start_body(self) -> dict[str, object]:
        return {
            "stream_sid": self.stream_sid,
            "call_sid": self.call.sid,
            "account_sid": self.call.account_sid,
            "from": self.call.caller_id,
            "to": self.call.number,
            "custom_parameters": self.params,
            "media_format": {
                "encoding": "audio/x-raw",
                "sample_rate": str(self.sample_rate),
                "bit_rate": "16",
            },
        }

    async def _drive(self, ws: aiohttp.ClientWebSocketResponse, reader: asyncio.Task[None]) -> str:
        """Send paced audio, mark echoes and key presses until one side hangs up."""
        frame_s = self.state.config.frame_ms / 1000
        think_s = self.state.config.think_s
        next_media = self._started_at
        hangup_at = self._started_at + self.talk_s
        while True:
            self._wake.clear()  # before looking, so a frame read during a send still wakes us
            now = time.monotonic()
            if reader.done() or ws.closed:
                return "bot"
            if now >= hangup_at:
                return "callee"
            if now >= next_media:
                await self._send_media(ws, frame_s)
                next_media += frame_s
                if now - next_media > BEHIND_RESYNC_S:
                    next_media = now + frame_s
                continue
            for name in self.playback.due_marks(now):
                await self._send(ws, "mark", {"mark": {"name": name}})
            press_at = math.inf
            drained = self.playback.drained_at()
            if self.digits and drained is not None:
                press_at = drained + think_s
                if now >= press_at:
                    await self._press(ws, self.digits.popleft())
                    continue
            deadline = min(next_media, self.playback.next_due(now), press_at, hangup_at)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await self._wake.wait()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            self.state.report.frames_in += 1
            if msg.type == aiohttp.WSMsgType.TEXT:
                self._on_text(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self._violation("binary frame; AgentStream frames are JSON text")
            self._wake.set()

    def _on_text(self, text: str) -> None:
        frame, problem = check_bot_frame(text, self.stream_sid)
        if problem:
            self._violation(problem)
        if frame is None:
            return
        now = time.monotonic()
        if frame.event == "media":
            self._machine_heard(len(frame.audio))
            if not self._heard_bot:
                self._heard_bot = True
                self.state.report.first_audio_ms.append((now - self._started_at) * 1000)
            if frame.audio:
                self.playback.add_audio(len(frame.audio), now)
                self.state.report.heard(self.call.sid, *loudness(frame.audio, self.sample_rate))
        elif frame.event == "mark" and frame.mark is not None:
            self.playback.add_mark(frame.mark, now)
        elif frame.event == "clear":
            self.playback.clear(now)

    def _machine_heard(self, size: int) -> None:
        """A machine records what it hears: when the bot's audio began, and how much."""
        heard = self.state.report.machine_heard.get(self.call.sid)
        if heard is None:
            return
        if heard["bot_audio_s"] is None:
            # where the callee's own audio stood: frames go out as they start, so
            # this is the end of the last frame sent, not the wall time
            heard["bot_audio_s"] = round(self._chunk * self.state.config.frame_ms / 1000, 3)
        heard["bot_audio_bytes"] += size

    def _violation(self, detail: str) -> None:
        self.state.report.violation("stream_frame", self.call.sid, detail)

    async def _press(self, ws: aiohttp.ClientWebSocketResponse, digit: str) -> None:
        self.playback.played_any = False  # the next key waits for the bot's next utterance
        await self._send(ws, "dtmf", {"dtmf": {"digit": digit, "duration": "100"}})
        self.state.report.dtmf_sent[self.call.sid].append(digit)

    async def _send_media(self, ws: aiohttp.ClientWebSocketResponse, frame_s: float) -> None:
        self._chunk += 1
        media = {
            "chunk": str(self._chunk),
            "timestamp": str(round(self._chunk * frame_s * 1000)),
            "payload": (
                self._voice_b64[self._chunk - 1]
                if self._chunk <= len(self._voice_b64)
                else caller_audio_b64(self.sample_rate, self.state.config.frame_ms)
            ),
        }
        await self._send(ws, "media", {"media": media})

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, event: str, body: dict) -> None:
        self._seq += 1
        await self._send_raw(ws, frame_payload(event, self._seq, self.stream_sid, body))

    async def _send_raw(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
        await ws.send_str(text)
        self.state.report.frames_out += 1

"""The callee's ear: bot frame validation and a simulated playback timeline (pure).

``check_bot_frame`` applies Exotel's rules for what a bot may send (protocol
doc section 4): one JSON object per text frame, event ``media``/``mark``/
``clear``, our stream sid (``stream_sid`` or ``streamSid``), and media chunks
of valid base64 whose size is a multiple of 320 bytes, at least 3,200 and at
most 100 KB. A frame that breaks a rule yields a reason; the stream records it
as a violation and still plays what it can, as Exotel would (with gaps).

``Playback`` models the phone line in real time: audio queues and finishes
at known instants, a mark is due when the audio before it has played, and
``clear`` drops everything queued after the chunk now playing. Time is a
parameter, so the model is tested without sleeping.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

CHUNK_STEP_BYTES = 320
MIN_CHUNK_BYTES = 3_200
MAX_CHUNK_BYTES = 100 * 1024  # "max 100 KB"; 102,400 is itself a multiple of 320
BOT_EVENTS = ("media", "mark", "clear")


@dataclass(frozen=True)
class BotFrame:
    """A bot frame that was usable (possibly with a rule broken, see ``problem``)."""

    event: str
    audio: bytes = b""
    mark: str | None = None
    problem: str | None = None


def check_bot_frame(text: str, stream_sid: str) -> tuple[BotFrame | None, str | None]:
    """Parse one text frame. Returns (frame or None if unusable, violation reason or None)."""
    try:
        msg = json.loads(text)
    except ValueError:
        return None, "frame is not JSON"
    if not isinstance(msg, dict):
        return None, "frame is not a JSON object"
    event = msg.get("event")
    if event not in BOT_EVENTS:
        return None, f"unknown event {str(event)[:40]!r}"
    sid = msg.get("stream_sid", msg.get("streamSid"))
    if sid != stream_sid:
        return None, f"{event}: stream_sid {str(sid)[:40]!r} is not this stream's"
    if event == "clear":
        return BotFrame("clear"), None
    if event == "mark":
        mark = msg.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str) or not name:
            return None, "mark: no mark.name"
        return BotFrame("mark", mark=name), None
    media = msg.get("media")
    payload = media.get("payload") if isinstance(media, dict) else None
    if not isinstance(payload, str):
        return None, "media: no media.payload"
    try:
        audio = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None, "media: payload is not valid base64"
    problem = chunk_problem(len(audio))
    return BotFrame("media", audio=audio, problem=problem), problem


def chunk_problem(size: int) -> str | None:
    if size % CHUNK_STEP_BYTES:
        return f"media: {size} bytes is not a multiple of {CHUNK_STEP_BYTES}"
    if size < MIN_CHUNK_BYTES:
        return f"media: {size} bytes is under the {MIN_CHUNK_BYTES}-byte minimum"
    if size > MAX_CHUNK_BYTES:
        return f"media: {size} bytes is over the {MAX_CHUNK_BYTES}-byte maximum"
    return None


class Playback:
    """Audio and marks queued on the line; ``now`` is a monotonic time in seconds."""

    def __init__(self, sample_rate: int) -> None:
        self.bytes_per_s = sample_rate * 2  # PCM16 mono
        self._audio: deque[tuple[float, float]] = deque()  # (start, end) of queued chunks
        self._marks: deque[tuple[float, str]] = deque()  # (due at, name)
        self._tail = 0.0  # when everything queued has played
        self.played_any = False  # audio finished since the last key press (see drained_at)

    def add_audio(self, size: int, now: float) -> None:
        self._drop_played(now)
        start = max(now, self._tail)
        self._tail = start + size / self.bytes_per_s
        self._audio.append((start, self._tail))
        self.played_any = True

    def add_mark(self, name: str, now: float) -> None:
        self._marks.append((max(now, self._tail), name))

    def clear(self, now: float) -> None:
        """Drop audio not yet playing; pending marks become due at once."""
        self._drop_played(now)
        playing = [(s, e) for s, e in self._audio if s <= now]
        self._audio = deque(playing[:1])
        self._tail = self._audio[0][1] if self._audio else now
        self._marks = deque((now, name) for _, name in self._marks)

    def due_marks(self, now: float) -> list[str]:
        names = []
        while self._marks and self._marks[0][0] <= now:
            names.append(self._marks.popleft()[1])
        return names

    def drained_at(self) -> float | None:
        """When the audio queued since the last key press finished, or None if none was."""
        return self._tail if self.played_any else None

    def next_due(self, now: float) -> float:
        """The next instant something changes (a mark or the end of the audio)."""
        times = [self._tail] if self._tail > now else []
        if self._marks:
            times.append(self._marks[0][0])
        return min(times, default=math.inf)

    def _drop_played(self, now: float) -> None:
        while self._audio and self._audio[0][1] <= now:
            self._audio.popleft()


def frame_payload(event: str, seq: int, stream_sid: str, body: dict[str, Any]) -> str:
    """One Exotel -> bot frame as JSON text; numbers are strings as in the doc."""
    return json.dumps(
        {"event": event, "sequence_number": str(seq), "stream_sid": stream_sid, **body}
    )

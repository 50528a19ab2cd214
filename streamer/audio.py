"""PCM16 LE mono audio helpers: resample, chunk, pace, measure level (pure).

Exotel's outbound chunk rule is in *bytes* at every sample rate: a multiple
of 320 B, at least 3,200 B, at most 100 KB; other sizes cause 20 ms stalls
(exotel-protocol.md §4, §5.4). ``Chunker`` only ever emits legal sizes and
``Pacer`` releases chunks in real time on a clock the caller passes in, so
``clear`` (barge-in) takes effect within one chunk. No I/O, no asyncio here.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np
import soxr

SAMPLE_WIDTH = 2  # bytes per sample: 16-bit mono
CHUNK_STEP = 320
MIN_CHUNK = 3200
MAX_CHUNK = 99_840  # the largest multiple of 320 not above 100,000 bytes
RATES = (8000, 16000, 24000)
T = TypeVar("T")


def is_legal_chunk(nbytes: int) -> bool:
    return nbytes % CHUNK_STEP == 0 and MIN_CHUNK <= nbytes <= MAX_CHUNK


def bytes_per_s(rate: int) -> int:
    return rate * SAMPLE_WIDTH


def duration_s(nbytes: int, rate: int) -> float:
    return nbytes / bytes_per_s(rate)


def silence(nbytes: int) -> bytes:
    return bytes(nbytes - nbytes % SAMPLE_WIDTH)


def to_array(pcm: bytes) -> np.ndarray:
    """int16 samples; a trailing odd byte (half a sample) is dropped."""
    return np.frombuffer(pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH], dtype="<i2")


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """One-shot, high quality (for whole prompts; streams use StreamResampler)."""
    if from_rate == to_rate or not pcm:
        return pcm
    out = soxr.resample(to_array(pcm), from_rate, to_rate, quality="HQ")
    return np.asarray(out, dtype="<i2").tobytes()


class StreamResampler:
    """Stateful resampler for a live stream (no clicks at frame boundaries).

    Quality "QQ" on purpose: soxr's HQ stream holds back ~90 ms of audio,
    which a conversation cannot afford, and phone audio is narrowband anyway.
    """

    def __init__(self, from_rate: int, to_rate: int, quality: str = "QQ") -> None:
        self.identity = from_rate == to_rate
        self._rs = (
            None
            if self.identity
            else soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality=quality)
        )
        self._odd = b""

    def process(self, pcm: bytes) -> bytes:
        if self._rs is None:
            return pcm
        pcm, self._odd = self._odd + pcm, b""
        if len(pcm) % SAMPLE_WIDTH:
            pcm, self._odd = pcm[:-1], pcm[-1:]
        return np.asarray(self._rs.resample_chunk(to_array(pcm)), dtype="<i2").tobytes()

    def flush(self) -> bytes:
        """Drain what the filter holds back (end of an utterance) and reset."""
        if self._rs is None:
            return b""
        out = self._rs.resample_chunk(np.zeros(0, dtype="<i2"), last=True)
        self._rs.clear()
        self._odd = b""
        return np.asarray(out, dtype="<i2").tobytes()

    def reset(self) -> None:
        if self._rs is not None:
            self._rs.clear()
        self._odd = b""


class Chunker:
    """Turns a byte stream into legal outbound chunks of ``chunk_bytes``.

    The default is the minimum legal size, so a ``clear`` has at most 3,200 B
    (200 ms at 8 kHz) playing that it cannot take back.

    It runs for every frame of every stream, so it allocates nothing per
    frame: one chunk-sized buffer for its lifetime, whole chunks inside the
    pushed data handed out as views of that data, only a chunk split across
    pushes copied (once) into the buffer. ``feed`` gives each chunk to a sink
    as a memoryview that is valid only during the call; ``push`` is the
    copying convenience for callers that want to keep them.
    """

    def __init__(self, chunk_bytes: int = MIN_CHUNK) -> None:
        if not is_legal_chunk(chunk_bytes):
            raise ValueError(f"chunk size {chunk_bytes} breaks Exotel's 320/3200/100KB rule")
        self.chunk_bytes = chunk_bytes
        self._buf = bytearray(chunk_bytes)
        self._view = memoryview(self._buf)
        self._fill = 0

    @property
    def pending(self) -> int:
        return self._fill

    def feed(self, data: bytes | memoryview, sink: Callable[[memoryview], None]) -> None:
        """Give ``sink`` each complete chunk, in order; keep the remainder."""
        size, n = self.chunk_bytes, len(data)
        if not n:
            return
        src = memoryview(data)
        pos = 0
        if self._fill:
            take = min(size - self._fill, n)
            self._view[self._fill : self._fill + take] = src[:take]
            self._fill += take
            pos = take
            if self._fill < size:
                return
            self._fill = 0
            sink(self._view)
        while n - pos >= size:  # whole chunks straight from the caller's bytes
            sink(src[pos : pos + size])
            pos += size
        if pos < n:
            self._fill = n - pos
            self._view[: self._fill] = src[pos:]

    def push(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        self.feed(data, lambda chunk: out.append(bytes(chunk)))
        return out

    def flush(self) -> list[bytes]:
        """Emit what is left, padded with silence to the next legal size."""
        if not self._fill:
            return []
        size = max(MIN_CHUNK, math.ceil(self._fill / CHUNK_STEP) * CHUNK_STEP)
        out = bytes(self._view[: self._fill]) + bytes(size - self._fill)
        self._fill = 0
        return [out]

    def reset(self) -> None:
        self._fill = 0


class Pacer(Generic[T]):
    """Releases queued items in real time on a caller-supplied monotonic clock.

    Each item carries its audio size in bytes (0 for a mark, which follows the
    audio before it at once). An item is due when the audio already sent has
    at most ``lead_s`` left to play: enough to ride out network jitter, little
    enough that ``clear`` drops almost everything not yet heard.
    """

    def __init__(self, rate: int, lead_s: float = 0.1) -> None:
        self.rate = rate
        self.lead_s = lead_s
        self._queue: deque[tuple[T, int]] = deque()
        self._play_end = -math.inf  # clock time when audio sent so far ends playing

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, item: T, nbytes: int) -> None:
        self._queue.append((item, nbytes))

    def next_due(self, now: float) -> float | None:
        """Clock time when the next item may be sent, None if nothing is queued."""
        if not self._queue:
            return None
        if not self._queue[0][1]:
            return now  # a mark goes right behind the audio before it
        return max(now, self._play_end - self.lead_s)

    def due(self, now: float) -> list[T]:
        """Items to send now, in order; the caller must send them at once."""
        out: list[T] = []
        while self._queue and (not self._queue[0][1] or now >= self._play_end - self.lead_s):
            item, nbytes = self._queue.popleft()
            if nbytes:
                # After an underrun playback restarts now, not in the past.
                self._play_end = max(self._play_end, now) + duration_s(nbytes, self.rate)
            out.append(item)
        return out

    def idle_at(self) -> float:
        """Clock time from which ``idle`` holds if nothing more is queued."""
        return self._play_end - self.lead_s

    def idle(self, now: float) -> bool:
        """Nothing queued and everything sent has (almost) finished playing."""
        return not self._queue and now >= self._play_end - self.lead_s

    def clear(self, now: float) -> list[T]:
        """Drop every queued item (returned) and forget the audio at Exotel."""
        dropped = [item for item, _ in self._queue]
        self._queue.clear()
        self._play_end = now  # Exotel drops its unplayed audio on our clear too
        return dropped


def rms(pcm: bytes) -> float:
    """Root mean square level on the int16 scale (0 .. 32768)."""
    samples = to_array(pcm)
    if not samples.size:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


class Vad:
    """Energy voice-activity detector with a hang time against choppy speech.

    ``update`` returns "start" when speech begins, "end" after ``hang_ms`` of
    quiet, else None. Good enough for barge-in on a phone line, not for ASR.
    """

    def __init__(self, threshold: float = 500.0, hang_ms: int = 300, rate: int = 8000) -> None:
        self.threshold = threshold
        self.hang_ms = hang_ms
        self.rate = rate
        self.speaking = False
        self._quiet_ms = 0.0

    def update(self, pcm: bytes) -> str | None:
        frame_ms = 1000.0 * duration_s(len(pcm), self.rate)
        if rms(pcm) >= self.threshold:
            self._quiet_ms = 0.0
            if not self.speaking:
                self.speaking = True
                return "start"
            return None
        if self.speaking:
            self._quiet_ms += frame_ms
            if self._quiet_ms >= self.hang_ms:
                self.speaking = False
                self._quiet_ms = 0.0
                return "end"
        return None

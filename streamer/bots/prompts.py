"""Prompt audio for bots: WAV files and offline text-to-speech.

A prompt is a WAV file (any rate, any channel count, 8/16/24/32-bit PCM;
mixed to mono and resampled) or text spoken by libespeak-ng from the
``espeakng-loader`` wheel (``streamer.bots.tts``; no system package, no
subprocess). Both are cached per process, so a campaign renders each prompt
once, not once per call. This module does not play anything; bots hand the
PCM to ``ctx.play``. A ``Prompt`` and its checks are the core's
(``dialer.core.questions``): the submit path checks prompts without this module.
"""

from __future__ import annotations

import hashlib
import io
import wave
from pathlib import Path

import numpy as np

from dialer.core.errors import ValidationError
from dialer.core.questions import Prompt
from streamer.audio import resample
from streamer.bots import tts

_CACHE_MAX = 512
_cache: dict[tuple[str, int], bytes] = {}


def engine_problem() -> str | None:
    """Why text prompts cannot be spoken on this machine, or None if they can."""
    try:
        tts.engine()
    except tts.EngineUnavailable as exc:
        return str(exc)
    return None


def decode_wav(data: bytes | Path, rate: int) -> bytes:
    """WAV (bytes or file) -> mono PCM16 LE at ``rate``; ValidationError if unreadable."""
    try:
        src = io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")  # noqa: SIM115
        with src, wave.open(src, "rb") as w:
            width, channels, src_rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise ValidationError(
            f"cannot read WAV {data if isinstance(data, Path) else ''}: {exc}", field="prompt"
        ) from exc
    if width == 1:  # 8-bit WAV is unsigned
        x = (np.frombuffer(frames, np.uint8).astype(np.float64) - 128) * 256
    elif width == 2:
        x = np.frombuffer(frames[: len(frames) // 2 * 2], "<i2").astype(np.float64)
    elif width == 3:
        b = np.frombuffer(frames[: len(frames) // 3 * 3], np.uint8).reshape(-1, 3)
        x = (
            b[:, 0].astype(np.int32) << 8
            | b[:, 1].astype(np.int32) << 16
            | b[:, 2].astype(np.int8).astype(np.int32) << 24
        ).astype(np.float64) / 65536
    elif width == 4:
        x = np.frombuffer(frames[: len(frames) // 4 * 4], "<i4").astype(np.float64) / 65536
    else:
        raise ValidationError(f"unsupported WAV sample width {width}", field="prompt")
    x = x[: len(x) // channels * channels].reshape(-1, channels).mean(axis=1)
    pcm = np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
    return resample(pcm, src_rate, rate)


def _remember(key: tuple[str, int], pcm: bytes) -> bytes:
    if len(_cache) >= _CACHE_MAX:
        _cache.pop(next(iter(_cache)))
    _cache[key] = pcm
    return pcm


async def speak(text: str, rate: int) -> bytes:
    """Text -> PCM at ``rate`` via the in-process engine (in a worker thread)."""
    key = ("tts:" + text, rate)
    if key in _cache:
        return _cache[key]
    try:
        pcm, src_rate = await tts.speak(text)
    except (tts.EngineUnavailable, ValueError) as exc:
        raise ValidationError(f"cannot speak {text[:60]!r}: {exc}", field="prompt") from exc
    return _remember(key, resample(pcm, src_rate, rate))


async def render(prompt: Prompt, rate: int) -> bytes:
    if prompt.text is not None:
        return await speak(prompt.text, rate)
    if prompt.wav is not None:
        # by content: two campaigns' "q1.wav" may differ, one campaign's never changes
        key = ("wav:" + hashlib.sha256(prompt.wav).hexdigest(), rate)
        if key in _cache:
            return _cache[key]
        return _remember(key, decode_wav(prompt.wav, rate))
    assert prompt.path is not None
    key = (f"wav:{prompt.path}:{prompt.path.stat().st_mtime_ns}", rate)
    if key in _cache:
        return _cache[key]
    # Decoding a prompt-sized WAV takes a few ms; not worth a thread hop.
    return _remember(key, decode_wav(prompt.path, rate))


def check_engine(where: str) -> None:
    """Refuse text prompts when the speech engine cannot load (after the document checks)."""
    problem = engine_problem()
    if problem is not None:
        raise ValidationError(
            f"{where}: text prompts cannot be spoken: {problem} (or use .wav prompts)",
            field=where,
        )

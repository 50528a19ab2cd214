"""Test audio: short WAV files and clips (a sine, so a detector hears a voice)."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

import numpy as np


def wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        n = int(seconds * rate)
        w.writeframes(b"".join(struct.pack("<h", int(3000 * math.sin(i / 3))) for i in range(n)))
    return buf.getvalue()


def write_wav(
    path: Path, seconds: float, rate: int = 8000, channels: int = 1, width: int = 2
) -> Path:
    n = int(rate * seconds)
    x = np.sin(np.arange(n) * 2 * np.pi * 440 / rate)
    if width == 1:
        data = np.repeat(((x * 100) + 128).astype(np.uint8), channels).tobytes()
    else:
        data = np.repeat((x * 8000).astype("<i2"), channels).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return path

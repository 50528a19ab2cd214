"""The speech engine comes from the virtualenv (the espeakng-loader wheel) and really speaks."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import pytest

from streamer.bots import prompts, tts

VENV = Path(sys.prefix).resolve()


def _inside_venv(path: Path) -> bool:
    return path.resolve().is_relative_to(VENV)


def test_engine_library_and_data_are_loaded_from_the_venv() -> None:
    info = tts.engine()
    assert _inside_venv(info.library), info.library
    assert _inside_venv(info.data), info.data
    assert (info.data / "phondata").is_file()
    # What the dynamic loader actually mapped, not just what we asked for: every
    # libespeak-ng in this process is the wheel's, none from /usr.
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("no /proc on this platform")
    mapped = {
        Path(line.split()[-1])
        for line in maps.read_text().splitlines()
        if "libespeak" in line and line.split()[-1].startswith("/")
    }
    assert mapped, "libespeak-ng is not mapped although the engine loaded"
    assert all(_inside_venv(p) for p in mapped), mapped


def _frames_rms(pcm: bytes, rate: int, frame_s: float = 0.02) -> np.ndarray:
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    n = int(rate * frame_s)
    frames = x[: len(x) // n * n].reshape(-1, n)
    return np.asarray(np.sqrt((frames**2).mean(axis=1)))


async def test_a_text_prompt_yields_spoken_audio() -> None:
    pcm = await prompts.speak("Did we solve your problem? Press one for yes.", 8000)
    rms = _frames_rms(pcm, 8000)
    assert len(pcm) / 2 / 8000 > 1.0  # a sentence lasts more than a second
    # Speech: loud frames and quiet ones (pauses between words), not silence, not a tone.
    assert (rms > 300).mean() > 0.3, "mostly silent"
    assert (rms < 100).any(), "no pause at all: not speech"
    assert rms.max() < 32767


async def test_concurrent_synthesis_matches_sequential() -> None:
    # Very different lengths, so a mixed-up or merged buffer shows in the length.
    texts = ["Yes.", "Press one for yes, two for no.", "Thank you for your time. " * 4]
    sequential = [len(tts.synthesize(t)[0]) for t in texts]
    # The engine has global state: concurrent callers must not interleave buffers.
    # (espeak-ng jitters a few samples from run to run, so compare lengths loosely.)
    together = await asyncio.gather(*(tts.speak(t) for t in texts * 2))
    for (pcm, _), expected in zip(together, sequential * 2, strict=True):
        assert abs(len(pcm) - expected) < expected * 0.02


def test_over_long_text_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than"):
        tts.synthesize("x" * (tts.MAX_TEXT_CHARS + 1))

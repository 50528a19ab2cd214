"""Offline text-to-speech: libespeak-ng from the ``espeakng-loader`` wheel, via ctypes.

The wheel ships the shared library and its voice data inside the virtualenv,
so ``make setup`` is all a machine needs: no system ``espeak-ng`` package and
no subprocess. Both the library and the data directory are taken from the
wheel by absolute path (never ``ctypes.util.find_library`` or the library's
compiled-in data path), so a system copy can neither shadow nor complement it.

libespeak-ng keeps global state and is not thread-safe: every synthesis holds
``_lock`` and runs in a worker thread (``speak`` is async) so the streamer's
event loop keeps pacing other calls' audio meanwhile. This module does not
cache, resample or play; ``streamer.bots.prompts`` does that.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from dialer.core.questions import MAX_TEXT_CHARS

VOICE = "en"
# espeak.h: espeak_AUDIO_OUTPUT.AUDIO_OUTPUT_SYNCHRONOUS (the callback runs in
# the calling thread, inside espeak_Synth); espeakCHARS_UTF8; POS_CHARACTER.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EE_OK = 0

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EngineUnavailable(RuntimeError):
    """The speech engine cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class EngineInfo:
    library: Path
    data: Path
    sample_rate: int


class _Engine:
    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise EngineUnavailable(
                "the espeakng-loader package is not installed (run `make setup`)"
            ) from exc
        library = Path(espeakng_loader.get_library_path()).resolve()
        try:
            data = Path(espeakng_loader.get_data_path()).resolve()
            self.lib = ctypes.CDLL(str(library))
        except (OSError, RuntimeError) as exc:
            raise EngineUnavailable(f"cannot load libespeak-ng from {library}: {exc}") from exc
        lib = self.lib
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synchronize.restype = ctypes.c_int
        # The data path is passed explicitly: with NULL the library would look at
        # $ESPEAK_DATA_PATH, then its compiled-in system path.
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data.parent).encode(), 0)
        if rate <= 0:
            raise EngineUnavailable(f"libespeak-ng failed to initialise with data {data}")
        if lib.espeak_SetVoiceByName(VOICE.encode()) != _EE_OK:
            raise EngineUnavailable(f"libespeak-ng has no voice {VOICE!r} in {data}")
        self.info = EngineInfo(library=library, data=data, sample_rate=rate)
        self._chunks: list[bytes] = []
        # Kept on self: ctypes must not collect the trampoline while C holds it.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short] | None, n: int, _events: int) -> int:
        if wav and n > 0:
            self._chunks.append(ctypes.string_at(wav, n * 2))
        return 0  # 0 = go on synthesising

    def synth(self, text: str) -> bytes:
        raw = text.encode("utf-8") + b"\0"
        self._chunks = []
        err = self.lib.espeak_Synth(raw, len(raw), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != _EE_OK:
            raise EngineUnavailable(f"libespeak-ng could not synthesise (error {err})")
        self.lib.espeak_Synchronize()
        pcm, self._chunks = b"".join(self._chunks), []
        return pcm


_lock = threading.Lock()
_engine: _Engine | None = None


def _after_fork() -> None:
    # A lock held by another thread at fork time would never be released in the child.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


def _get() -> _Engine:
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def engine() -> EngineInfo:
    """Load the engine (once per process) and say where it came from.

    Raises EngineUnavailable with a message a user can act on.
    """
    with _lock:
        return _get().info


def synthesize(text: str) -> tuple[bytes, int]:
    """Text -> (mono PCM16 LE, sample rate). Blocking; holds the engine lock."""
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"prompt text longer than {MAX_TEXT_CHARS} characters")
    with _lock:
        eng = _get()
        return eng.synth(text), eng.info.sample_rate


async def speak(text: str) -> tuple[bytes, int]:
    """``synthesize`` in a worker thread, so the event loop keeps running."""
    return await asyncio.to_thread(synthesize, text)

"""Answering-machine detection from the callee's audio (pure: no I/O, no clock).

Fed the inbound PCM16 of an answered call (8, 16 or 24 kHz), ``Detector``
decides ``human``, ``machine`` or ``unknown`` as soon as the evidence is in,
never after a fixed window:

* voice activity per 20 ms frame: energy in the 300-3,400 Hz band (mains hum
  and its low harmonics fall below it) against a noise floor that follows
  the line's background (it drops at once, rises ~3 dB/s), so noise and low
  volume shift the floor rather than the decision;
* a beep: a frame whose energy sits in one narrow peak (a 250 Hz-wide bank
  of DFT bins, the batched equivalent of Goertzel filters) between 400 and
  2,000 Hz, held for ``beep_min_s`` at a steady frequency. A beep is a
  machine, whatever came before;
* timing: a first utterance that runs past ``long_utterance_s`` (pauses
  shorter than ``pause_s`` inside it) is a machine reading its greeting,
  decided while it still speaks; a short first utterance followed by
  ``pause_s`` of silence (``pause_long_s`` after a longer one: it may be a
  greeting's first sentence) is a person waiting for an answer ("Hello?"
  ...); nothing heard by ``initial_silence_s`` is unknown. A beep within
  ``late_beep_s`` of a "human" decision revises it to machine (a one-word
  greeting, "Hello." then the beep): ``settled`` says when it is final.

The thresholds are fitted on generated data by ``python -m benchmarks amd
--fit`` and stored in ``amd.json`` beside this module. Unknown is never
treated as a machine by the session: the expensive error is hanging up on a
person. After a machine decision the detector keeps listening for the end of
the greeting (``greeting_over_s``) so a message is played after the beep.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, fields
from importlib import resources
from typing import Any

import numpy as np

RATES = (8000, 16000, 24000)
FRAME_S = 0.02  # analysis frame: 20 ms at any rate
BIN_HZ = 1 / FRAME_S  # 50 Hz per DFT bin
_BAND = slice(6, 69)  # 300-3,400 Hz: speech energy
_WIDE = slice(2, 77)  # 100-3,850 Hz: what a tone must dominate
_BEEP_LO, _BEEP_HI = 8, 40  # peak bins for 400-2,000 Hz
FLOOR_RISE_DB_S = 3.0
BEEP_GUARD_S = 0.1


@dataclass(frozen=True)
class Thresholds:
    speech_db: float = 5.0  # band energy this far above the noise floor is speech
    floor_dbfs: float = -62.0  # and never below this absolute level
    pause_s: float = 0.5  # silence that ends a short utterance ("Hello?" ... your turn)
    short_utterance_s: float = 1.3  # up to this long, ``pause_s`` is enough
    pause_long_s: float = 0.9  # past it: it may be a greeting's first sentence, and
    # a machine pauses between sentences
    long_utterance_s: float = 2.6  # a first utterance longer than this is a machine
    initial_silence_s: float = 3.5  # nothing heard by then: unknown
    max_s: float = 6.0  # undecided by then: unknown
    tone_ratio: float = 0.8  # share of the frame's energy in the tone's 5 bins
    beep_min_s: float = 0.08
    late_beep_s: float = 1.5  # a beep this soon after "human" was a one-word greeting
    end_silence_s: float = 2.0  # after a machine: this much silence ends its greeting
    message_wait_s: float = 30.0  # after a machine: never wait longer for the beep

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def load_thresholds() -> Thresholds:
    """The fitted thresholds shipped in ``streamer/amd.json`` (defaults if absent)."""
    try:
        text = resources.files("streamer").joinpath("amd.json").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return Thresholds()
    return Thresholds.from_dict(json.loads(text).get("thresholds", {}))


@dataclass(frozen=True)
class Decision:
    answered_by: str  # human | machine | unknown
    at_ms: int  # audio time after answer when the evidence was in
    reason: str  # which rule decided
    features: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"answered_by": self.answered_by, "detection_ms": self.at_ms, "reason": self.reason}


@dataclass(frozen=True)
class Bank:
    """The DFT bins the rules read, as two matrices (one matmul each per chunk).

    Equivalent to a windowed ``rfft`` followed by band sums, but only the 75
    bins of 100-3,850 Hz are computed and every sum is folded into ``sums``:
    about half the CPU of the FFT route for 100 ms chunks.
    """

    n: int  # samples per 20 ms frame
    dft: np.ndarray  # (n, 2 * bins): windowed cos | sin
    sums: np.ndarray  # (bins, 2 + beeps): speech band, wide band, 5-bin beep windows


@functools.lru_cache(maxsize=len(RATES))
def bank(rate: int) -> Bank:
    n = rate // 50
    window = np.hanning(n)
    norm = 1.0 / (n * float(np.sum(window**2)) * 32768.0**2)
    k = np.arange(_WIDE.start, _WIDE.stop)
    t = np.arange(n)
    arg = 2 * np.pi * np.outer(t, k) / n
    dft = np.hstack((window[:, None] * np.cos(arg), window[:, None] * np.sin(arg)))
    centres = np.arange(_BEEP_LO, _BEEP_HI + 1)
    sums = np.zeros((len(k), 2 + len(centres)))
    sums[:, 0] = (k >= _BAND.start) & (k < _BAND.stop)
    sums[:, 1] = 1.0
    sums[:, 2:] = np.abs(k[:, None] - centres[None, :]) <= 2
    return Bank(n, dft.astype(np.float32), (sums * norm).astype(np.float32))


def analyse(frames: np.ndarray, b: Bank) -> tuple[list[float], list[float], list[int]]:
    """Per 20 ms frame: speech-band energy, the beep band's peak share, the peak's bin."""
    y = frames @ b.dft
    y *= y
    half = y.shape[1] // 2
    z = (y[:, :half] + y[:, half:]) @ b.sums
    five = z[:, 2:]
    peak = five.argmax(axis=1)
    conc = five.max(axis=1) / (z[:, 1] + 1e-12)
    return z[:, 0].tolist(), conc.tolist(), (peak + _BEEP_LO).tolist()


class Detector:
    """Feed audio with ``feed``; ``decision`` is set once, ``greeting_over_s`` later."""

    def __init__(self, rate: int = 8000, thresholds: Thresholds | None = None) -> None:
        if rate not in RATES:
            raise ValueError(f"sample rate {rate} is not one of {RATES}")
        self.th = th = thresholds or Thresholds()
        # 20 ms frames at the stream's own rate: the bins stay 50 Hz apart at any
        # rate, so no resampling, and energies are normalised by the frame length.
        self._bank = bank(rate)
        self._n = self._bank.n
        self._tail = np.zeros(0, dtype=np.float32)  # samples short of a frame
        self._rise = 10 ** (FLOOR_RISE_DB_S * FRAME_S / 10)
        self._abs_floor = 10 ** (th.floor_dbfs / 10)
        self._speech_k = 10 ** (th.speech_db / 10)
        self._tone_frames = max(1, round(th.beep_min_s / FRAME_S))
        self.frames = 0
        self._noise = -1.0
        self._run = 0  # consecutive speech frames
        self._first_speech = -1  # frame of the first speech
        self._utt_start = -1  # frame the current utterance started
        self._last_speech = -1  # last speech frame
        self._speech_frames = 0
        self._utterances: list[tuple[int, int]] = []
        self._tone_run, self._tone_bin = 0, -1
        self.beep_at_s: float | None = None
        self.beep_end_s: float | None = None
        self.decision: Decision | None = None
        self.revised = False  # a "human" became "machine" (a beep followed)
        self.greeting_over_s: float | None = None

    # --- input -------------------------------------------------------------------------
    def feed(self, pcm: bytes) -> Decision | None:
        """Add PCM16 LE mono audio; returns the decision once there is one."""
        if self.greeting_over_s is not None:
            return self.decision
        x = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2).astype(np.float32)
        if len(self._tail):
            x = np.concatenate((self._tail, x))
        whole = len(x) // self._n * self._n
        self._tail = x[whole:]
        if whole:
            self._frames(x[:whole].reshape(-1, self._n))
        return self.decision

    def _frames(self, frames: np.ndarray) -> None:
        self.replay(*analyse(frames, self._bank))

    def replay(self, energy: list[float], conc: list[float], peak: list[int]) -> None:
        """Run the rules over analysed frames (``analyse``); fitting reuses one analysis."""
        for e, c, b in zip(energy, conc, peak, strict=True):
            self._frame(e, c, b)
            if self.greeting_over_s is not None:
                return

    # --- per frame ---------------------------------------------------------------------
    def _frame(self, energy: float, conc: float, peak_bin: int) -> None:
        i = self.frames
        self.frames = i + 1
        noise = self._noise
        self._noise = noise = energy if noise < 0 else min(noise * self._rise, energy)
        loud = energy > self._abs_floor and energy > noise * self._speech_k
        tone = loud and conc >= self.th.tone_ratio
        if tone or self._tone_run:
            self._track_tone(tone, peak_bin, self.frames * FRAME_S)
        if loud and not tone:
            self._run += 1
            if self._run >= 2:  # two frames (40 ms): not a click
                if self._first_speech < 0:
                    self._first_speech = i - 1
                if self._utt_start < 0:
                    self._utt_start = i - 1
                self._last_speech = i
                self._speech_frames += 1
        else:
            self._run = 0
        now = self.frames * FRAME_S
        if self.decision is None:
            self._decide(now)
            return
        d = self.decision
        if d.answered_by == "human" and self.beep_at_s is not None and not self.settled:
            # "Hello." and a beep: a machine's one-word greeting, not a person
            self._set("machine", now, "beep after a short greeting")
            self.revised = True
        self._watch_greeting(now)

    @property
    def settled(self) -> bool:
        """The decision is final: a "human" stays open to a late beep for ``late_beep_s``."""
        d = self.decision
        if d is None:
            return False
        if d.answered_by != "human":
            return True
        return self.frames * FRAME_S - d.at_ms / 1000 > self.th.late_beep_s

    def _track_tone(self, tone: bool, peak_bin: int, now: float) -> None:
        if tone and (self._tone_run == 0 or abs(peak_bin - self._tone_bin) <= 1):
            self._tone_run += 1
            self._tone_bin = peak_bin
            if self._tone_run == self._tone_frames and self.beep_at_s is None:
                self.beep_at_s = now
            return
        if self._tone_run >= self._tone_frames:
            self.beep_end_s = now - FRAME_S
        self._tone_run = 1 if tone else 0
        self._tone_bin = peak_bin if tone else -1

    def _silence_s(self) -> float:
        return (self.frames - 1 - self._last_speech) * FRAME_S

    def _close_utterance(self) -> None:
        if self._utt_start >= 0:
            self._utterances.append((self._utt_start, self._last_speech + 1))
            self._utt_start = -1

    def _decide(self, now: float) -> None:
        th = self.th
        if self.beep_at_s is not None:
            return self._set("machine", now, "beep")
        if self._first_speech < 0:
            if now >= th.initial_silence_s:
                self._set("unknown", now, "initial silence")
            return
        if self._utt_start >= 0:
            length = (self._last_speech + 1 - self._utt_start) * FRAME_S
            if not self._utterances and length >= th.long_utterance_s:
                return self._set("machine", now, "long greeting")
            pause = th.pause_s if length <= th.short_utterance_s else th.pause_long_s
            if self._silence_s() >= pause:
                self._close_utterance()
                return self._set("human", now, "short greeting, then a pause")
        if now >= th.max_s:
            self._set("unknown", now, "undecided")

    def _watch_greeting(self, now: float) -> None:
        th = self.th
        since = now - (self.decision.at_ms / 1000 if self.decision else now)
        # a beep's fading edge can read as "ended" a frame early: wait a little more
        beep_over = self.beep_end_s is not None and now - self.beep_end_s >= BEEP_GUARD_S
        quiet = self.beep_at_s is None and self._silence_s() >= th.end_silence_s
        if beep_over or quiet or since >= th.message_wait_s:
            self.greeting_over_s = now

    def _set(self, answered_by: str, now: float, reason: str) -> None:
        self.decision = Decision(answered_by, round(now * 1000), reason, self.features(now))

    def features(self, now: float | None = None) -> dict[str, float]:
        """The timing features the rules read (also logged with each decision)."""
        now = self.frames * FRAME_S if now is None else now
        utts = [*self._utterances]
        if self._utt_start >= 0:
            utts.append((self._utt_start, self._last_speech + 1))
        first = utts[0] if utts else None
        return {
            "initial_silence_s": (self._first_speech * FRAME_S if self._first_speech >= 0 else now),
            "first_utterance_s": (first[1] - first[0]) * FRAME_S if first else 0.0,
            "pause_after_s": self._silence_s() if first else 0.0,
            "utterances": float(len(utts)),
            "speech_ratio": self._speech_frames / max(1, self.frames),
            "beep_hz": self._tone_bin * BIN_HZ if self.beep_at_s is not None else 0.0,
        }

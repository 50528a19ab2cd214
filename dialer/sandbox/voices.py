"""Generated callee audio: people and answering machines, from a seed (pure, numpy).

No recordings: speech is synthesised as what a voice-activity detector and a
timing classifier actually look at — a harmonic source (a pitch contour with
drift) shaped by moving formant resonances, cut into syllables by an
amplitude envelope (3-7 per second), words separated by short gaps, phrases
by longer ones, with some unvoiced (noise) syllables. Machines add a beep
(a pure tone at 400-2,000 Hz) and IVR menus; any clip may carry background
noise, mains hum or a low level.

This is NOT intelligible speech, and a detector fitted on it is proven only
against these distributions (see the README's AMD section). Both the
sandbox's callees and ``python -m benchmarks amd`` draw from ``make_clip``,
so the corpus is reproducible from a seed and no audio is stored in the repo.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

HUMAN_KINDS = ("hello", "hello-twice", "named", "long-sentence")
MACHINE_KINDS = ("voicemail", "voicemail-long", "one-word", "ivr")
HUMAN_WEIGHTS = (0.55, 0.2, 0.22, 0.03)
MACHINE_WEIGHTS = (0.6, 0.16, 0.04, 0.2)
CONDITIONS = ("clean", "noise", "hum", "low-volume")
CONDITION_WEIGHTS = (0.55, 0.2, 0.15, 0.1)


@dataclass(frozen=True)
class Segment:
    """Something audible: ``speech`` (a phrase) or ``beep`` (a tone)."""

    kind: str
    start_s: float
    duration_s: float
    freq_hz: float = 0.0  # beep frequency
    seed: int = 0  # speech: the voice's randomness for this phrase


@dataclass(frozen=True)
class Clip:
    """One callee's audio after answer, with the facts a benchmark scores against."""

    label: str  # "human" or "machine"
    kind: str  # one of HUMAN_KINDS / MACHINE_KINDS
    condition: str  # one of CONDITIONS
    duration_s: float
    segments: tuple[Segment, ...]
    f0_hz: float = 150.0
    level_dbfs: float = -20.0  # speech RMS
    noise_dbfs: float = -70.0  # background RMS
    hum_hz: float = 0.0
    seed: int = 0
    beep_end_s: float | None = None  # machines with a beep: when it stops
    greeting_end_s: float = 0.0  # end of the last speech before any beep
    extra: dict[str, float] = field(default_factory=dict)


def _phrases(
    rng: random.Random, start: float, total: float, gap: tuple[float, float]
) -> list[Segment]:
    """Speech phrases of 0.6-2.2 s filling ``total`` seconds, separated by ``gap`` pauses."""
    out, t, end = [], start, start + total
    while t < end - 0.3:
        d = min(rng.uniform(0.6, 2.2), end - t)
        out.append(Segment("speech", t, d, seed=rng.getrandbits(32)))
        t += d + rng.uniform(*gap)
    return out


def make_clip(
    rng: random.Random,
    label: str | None = None,
    kind: str | None = None,
    condition: str | None = None,
) -> Clip:
    """Draw one clip. ``label``/``kind``/``condition`` pin what is drawn; ``rng`` the rest."""
    label = label or rng.choice(("human", "machine"))
    if kind is None:
        kinds, weights = (
            (HUMAN_KINDS, HUMAN_WEIGHTS) if label == "human" else (MACHINE_KINDS, MACHINE_WEIGHTS)
        )
        kind = rng.choices(kinds, weights)[0]
    drawn = rng.choices(CONDITIONS, CONDITION_WEIGHTS)[0]
    condition = condition or drawn
    segs: list[Segment] = []
    beep_end = None
    if label == "human":
        t = rng.uniform(0.2, 0.9)  # pick-up to "hello": people speak first, at once
        if kind == "long-sentence":  # "Hello, this is Asha, who is calling please?"
            segs.append(Segment("speech", t, rng.uniform(1.6, 2.6), seed=rng.getrandbits(32)))
        elif kind == "named":  # "Hello, Asha speaking."
            segs.append(Segment("speech", t, rng.uniform(0.7, 1.3), seed=rng.getrandbits(32)))
        else:  # "Hello?" and, for hello-twice, another "Hello?" after waiting
            segs.append(Segment("speech", t, rng.uniform(0.35, 0.9), seed=rng.getrandbits(32)))
            if kind == "hello-twice":
                t2 = segs[-1].start_s + segs[-1].duration_s + rng.uniform(1.5, 3.0)
                segs.append(Segment("speech", t2, rng.uniform(0.35, 0.9), seed=rng.getrandbits(32)))
        greeting_end = segs[-1].start_s + segs[-1].duration_s
        duration = max(6.0, greeting_end + 2.0)
    else:
        t = rng.uniform(0.1, 0.9)
        if kind == "one-word":  # "Hello." then the beep
            segs.append(Segment("speech", t, rng.uniform(0.35, 0.7), seed=rng.getrandbits(32)))
        elif kind == "ivr":  # "Welcome to ... For sales, press 1 ..." and no beep
            segs += _phrases(rng, t, rng.uniform(6.0, 14.0), (0.2, 0.5))
        else:
            total = rng.uniform(8.0, 12.0) if kind == "voicemail-long" else rng.uniform(3.0, 9.0)
            segs += _phrases(rng, t, total, (0.12, 0.45))
        greeting_end = segs[-1].start_s + segs[-1].duration_s
        end = greeting_end
        if kind != "ivr":
            b0 = greeting_end + rng.uniform(0.3, 1.2)
            blen = rng.uniform(0.25, 1.0)
            segs.append(Segment("beep", b0, blen, freq_hz=rng.uniform(400.0, 2000.0)))
            beep_end = end = b0 + blen
        duration = end + 2.0
    level = rng.uniform(-26.0, -16.0)
    noise = rng.uniform(-75.0, -65.0)
    hum = 0.0
    if condition == "noise":
        noise = level - rng.uniform(10.0, 25.0)  # SNR 10-25 dB
    elif condition == "hum":
        hum = rng.choice((50.0, 60.0))
    elif condition == "low-volume":
        level = rng.uniform(-40.0, -32.0)
        noise = min(noise, level - 25.0)
    return Clip(
        label=label,
        kind=kind,
        condition=condition,
        duration_s=round(duration, 3),
        segments=tuple(segs),
        f0_hz=rng.uniform(95.0, 240.0),
        level_dbfs=level,
        noise_dbfs=noise,
        hum_hz=hum,
        seed=rng.getrandbits(32),
        beep_end_s=beep_end,
        greeting_end_s=greeting_end,
    )


# --- rendering -----------------------------------------------------------------------------
def _speech(seg: Segment, f0: float, rate: int) -> np.ndarray:
    """One phrase: syllables of a formant-shaped harmonic source, unit RMS while voiced."""
    rng = np.random.default_rng(seg.seed)
    n = int(seg.duration_s * rate)
    out = np.zeros(n, dtype=np.float64)
    pos = 0
    nyq = min(rate / 2, 3800.0)
    while pos < n:
        word_syll = int(rng.integers(1, 4))
        for _ in range(word_syll):
            syl = int(rate * rng.uniform(0.12, 0.28))
            syl = min(syl, n - pos)
            if syl <= rate // 50:
                pos = n
                break
            t = np.arange(syl) / rate
            env = np.sin(np.pi * (np.arange(syl) + 0.5) / syl) ** 0.6
            env *= rng.uniform(0.5, 1.0)
            if rng.random() < 0.2:  # unvoiced: a fricative ("s", "f")
                noise = rng.standard_normal(syl)
                noise = np.diff(noise, prepend=0.0)  # tilt the noise upwards
                out[pos : pos + syl] += 0.6 * env * noise / (np.std(noise) + 1e-9)
            else:
                pitch = (
                    f0
                    * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
                    * rng.uniform(0.85, 1.15)
                )
                phase = 2 * np.pi * np.cumsum(pitch) / rate
                f1, f2 = rng.uniform(300, 850), rng.uniform(900, 2400)
                wave = np.zeros(syl)
                base = float(pitch.mean())
                for k in range(1, int(nyq / base)):
                    fk = k * base
                    amp = 1 / (1 + ((fk - f1) / 120) ** 2) + 0.6 / (1 + ((fk - f2) / 180) ** 2)
                    amp += 0.15 / (1 + ((fk - 2900) / 250) ** 2)
                    wave += amp * np.sin(k * phase)
                wave /= np.sqrt(np.mean(wave**2)) + 1e-9
                out[pos : pos + syl] += env * wave
            pos += syl
        pos += int(rate * rng.uniform(0.02, 0.12))  # the gap between words
    return out


def render(clip: Clip, rate: int) -> np.ndarray:
    """The clip as PCM16 samples (numpy int16) at ``rate``."""
    n = int(clip.duration_s * rate)
    rng = np.random.default_rng(clip.seed)
    sig = np.zeros(n)
    speech_gain = 10 ** (clip.level_dbfs / 20) * 32768 * 1.4
    for seg in clip.segments:
        a = int(seg.start_s * rate)
        if seg.kind == "speech":
            part = _speech(seg, clip.f0_hz, rate) * speech_gain
        else:
            t = np.arange(int(seg.duration_s * rate)) / rate
            ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms edges, no click
            part = np.sin(2 * np.pi * seg.freq_hz * t) * ramp * speech_gain * 1.2
        part = part[: max(0, n - a)]
        sig[a : a + len(part)] += part
    noise_rms = 10 ** (clip.noise_dbfs / 20) * 32768
    sig += rng.standard_normal(n) * noise_rms
    if clip.hum_hz:
        t = np.arange(n) / rate
        hum_rms = 10 ** ((clip.level_dbfs - rng.uniform(3, 12)) / 20) * 32768
        for k, amp in ((1, 1.0), (2, 0.4), (3, 0.25), (4, 0.1)):
            sig += hum_rms * amp * math.sqrt(2) * np.sin(2 * np.pi * clip.hum_hz * k * t)
    return np.clip(sig, -32768, 32767).astype(np.int16)


# --- sandbox callees --------------------------------------------------------------------
def parse_voice(voice: str) -> tuple[str, str, str | None] | None:
    """``"machine:voicemail+noise"`` -> ("machine", "voicemail", "noise"); "line" -> None.

    ValueError names the accepted forms.
    """
    if voice == "line":
        return None
    label, _, rest = voice.partition(":")
    kind, _, condition = rest.partition("+")
    kinds = HUMAN_KINDS if label == "human" else MACHINE_KINDS if label == "machine" else ()
    if kind not in kinds or (condition and condition not in CONDITIONS):
        raise ValueError(
            "voice: 'line', or human:KIND / machine:KIND with an optional +CONDITION "
            f"(human kinds {', '.join(HUMAN_KINDS)}; machine kinds {', '.join(MACHINE_KINDS)}; "
            f"conditions {', '.join(CONDITIONS)})"
        )
    return label, kind, condition or None


def callee_clip(voice: str, number: str) -> Clip | None:
    """The clip a sandbox callee with ``voice`` plays; the same number always sounds the same."""
    parsed = parse_voice(voice)
    if parsed is None:
        return None
    label, kind, condition = parsed
    rng = random.Random(f"{voice}/{number}")
    return make_clip(rng, label, kind, condition or "clean")


def corpus(seed: int, n: int) -> list[Clip]:
    """``n`` clips, half people and half machines, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [make_clip(rng, "human" if i % 2 == 0 else "machine") for i in range(n)]

"""Audio helpers: resampling quality, the chunk rule, real-time pacing, VAD."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.audio import (
    MAX_CHUNK,
    MIN_CHUNK,
    Chunker,
    Pacer,
    StreamResampler,
    Vad,
    duration_s,
    is_legal_chunk,
    resample,
    rms,
)


def sine(rate: int, seconds: float, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amp * 32767 * np.sin(2 * np.pi * freq * t)


def pcm(x: np.ndarray) -> bytes:
    return np.round(x).astype("<i2").tobytes()


def snr_db(got: bytes, ideal: np.ndarray, edge: int) -> float:
    y = np.frombuffer(got, "<i2").astype(np.float64)
    assert len(y) == len(ideal)
    y, ref = y[edge:-edge], ideal[edge:-edge]
    noise = y - ref
    return 10 * math.log10(np.sum(ref**2) / np.sum(noise**2))


@pytest.mark.parametrize("via", [16000, 24000])
def test_resample_round_trip_keeps_a_sine_clean(via: int) -> None:
    ideal8 = sine(8000, 1.0)
    up = resample(pcm(ideal8), 8000, via)
    assert snr_db(up, sine(via, 1.0), edge=via // 10) >= 60
    back = resample(up, via, 8000)
    assert snr_db(back, ideal8, edge=800) >= 60


def test_resample_same_rate_is_identity() -> None:
    data = pcm(sine(8000, 0.1))
    assert resample(data, 8000, 8000) is data


def test_stream_resampler_keeps_length_and_has_no_latency_to_speak_of() -> None:
    rs = StreamResampler(8000, 16000)
    x = pcm(sine(8000, 0.5))
    out = b"".join(rs.process(x[i : i + 1601]) for i in range(0, len(x), 1601)) + rs.flush()
    assert abs(len(out) - 2 * len(x)) <= 8
    first = rs.process(x[:1600])
    assert len(first) >= 3000  # "QQ" holds back only a few samples
    assert StreamResampler(8000, 8000).process(b"abc") == b"abc"


@pytest.mark.parametrize(
    ("n", "legal"),
    [
        (0, False),
        (320, False),
        (3199, False),
        (3200, True),
        (3520, True),
        (3300, False),
        (MAX_CHUNK, True),
        (MAX_CHUNK + 320, False),
        (100_000, False),
    ],
)
def test_is_legal_chunk(n: int, legal: bool) -> None:
    assert is_legal_chunk(n) is legal


def test_chunk_rule_is_in_bytes_at_every_rate() -> None:
    assert duration_s(MIN_CHUNK, 8000) == pytest.approx(0.2)
    assert duration_s(MIN_CHUNK, 16000) == pytest.approx(0.1)
    assert duration_s(MIN_CHUNK, 24000) == pytest.approx(0.0667, abs=1e-4)


def test_chunker_refuses_an_illegal_size() -> None:
    with pytest.raises(ValueError):
        Chunker(640)


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=9000), max_size=20),
    chunk=st.sampled_from([3200, 3520, 6400]),
)
def test_chunker_emits_only_legal_sizes_and_preserves_audio(sizes: list[int], chunk: int) -> None:
    chunker = Chunker(chunk)
    data = bytes((i * 7 + 1) % 256 for i in range(sum(sizes)))
    out, pos = [], 0
    for n in sizes:
        out += chunker.push(data[pos : pos + n])
        pos += n
    out += chunker.flush()
    assert all(is_legal_chunk(len(c)) for c in out)
    joined = b"".join(out)
    assert joined[: len(data)] == data
    padding = joined[len(data) :]
    assert padding == bytes(len(padding)) and len(padding) < MIN_CHUNK
    assert chunker.pending == 0 and chunker.flush() == []


def test_chunker_default_is_the_minimum_and_flush_pads_to_it() -> None:
    chunker = Chunker()
    assert chunker.push(b"\x01" * 7000) == [b"\x01" * 3200, b"\x01" * 3200]
    assert chunker.flush() == [b"\x01" * 600 + bytes(2600)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0


def test_pacer_sends_in_real_time_on_a_fake_clock() -> None:
    clock = FakeClock()
    pacer: Pacer[str] = Pacer(8000, lead_s=0.1)  # 3200 B = 200 ms at 8 kHz
    for i in range(4):
        pacer.push(f"c{i}", 3200)
    pacer.push("mark", 0)
    sent: list[tuple[float, str]] = []
    while (due := pacer.next_due(clock.now)) is not None:
        clock.now = due
        sent += [(round(clock.now - 100.0, 6), item) for item in pacer.due(clock.now)]
    # First chunk at once, then one per 200 ms, each 100 ms before the last ends;
    # the mark follows its audio immediately.
    assert sent == [(0.0, "c0"), (0.1, "c1"), (0.3, "c2"), (0.5, "c3"), (0.5, "mark")]
    assert not pacer.idle(100.65) and pacer.idle(100.71)


def test_pacer_clear_stops_everything_but_the_chunk_in_flight() -> None:
    clock = FakeClock()
    pacer: Pacer[str] = Pacer(16000, lead_s=0.05)  # 3200 B = 100 ms at 16 kHz
    for i in range(10):
        pacer.push(f"c{i}", 3200)
    assert pacer.due(clock.now) == ["c0"]  # in flight
    clock.now += 0.02
    dropped = pacer.clear(clock.now)
    assert dropped == [f"c{i}" for i in range(1, 10)]
    for _ in range(50):
        clock.now += 0.05
        assert pacer.due(clock.now) == [] and pacer.next_due(clock.now) is None
    pacer.push("after", 3200)  # new speech goes out at once after a clear
    assert pacer.due(clock.now) == ["after"]


def test_pacer_restarts_from_now_after_an_underrun() -> None:
    pacer: Pacer[str] = Pacer(8000, lead_s=0.0)
    pacer.push("a", 3200)
    assert pacer.due(0.0) == ["a"]
    pacer.push("b", 3200)
    assert pacer.due(5.0) == ["b"]  # long gap: b plays 5.0 .. 5.2
    pacer.push("c", 3200)
    assert pacer.next_due(5.0) == pytest.approx(5.2)


def test_rms_and_vad() -> None:
    quiet, loud = bytes(1600), pcm(sine(8000, 0.1, amp=0.3))
    assert rms(quiet) == 0.0 and rms(b"") == 0.0
    assert rms(loud) == pytest.approx(0.3 * 32767 / math.sqrt(2), rel=0.01)
    vad = Vad(threshold=500, hang_ms=300, rate=8000)
    events = [vad.update(f) for f in [quiet, loud, loud, quiet, quiet, loud, quiet, quiet, quiet]]
    assert events == [None, "start", None, None, None, None, None, None, "end"]
    assert not vad.speaking


def test_chunker_feed_hands_out_views_and_copies_only_split_chunks() -> None:
    chunker = Chunker()
    data = bytes(range(256)) * 25  # 6,400 B: two whole chunks
    seen: list[tuple[bool, bytes]] = []
    chunker.feed(data, lambda view: seen.append((view.obj is data, bytes(view))))
    assert seen == [(True, data[:3200]), (True, data[3200:])]  # views of the caller's bytes
    seen.clear()
    chunker.feed(data[:1000], lambda view: seen.append((False, bytes(view))))
    chunker.feed(data[1000:3500], lambda view: seen.append((view.obj is data, bytes(view))))
    assert seen == [(False, data[:3200])]  # the split chunk came from the buffer
    assert chunker.pending == 300

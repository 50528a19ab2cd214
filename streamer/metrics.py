"""Prometheus instruments of one streamer app, on its own registry.

A registry per app (not the global one) so tests can build many apps in one
process and ``/metrics`` shows only the streamer's own series. The per-frame
counters are bound to their label once (``frame_in``, ``frame_out``): a
``labels()`` lookup per frame was a visible share of the streamer's CPU.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.active_streams = Gauge(
            "streamer_active_streams", "Open AgentStream websockets", registry=r
        )
        self.frames_in = Counter(
            "streamer_frames_in", "Frames received from Exotel", ["event"], registry=r
        )
        self.frames_out = Counter(
            "streamer_frames_out", "Frames sent to Exotel", ["event"], registry=r
        )
        self.garbage_frames = Counter(
            "streamer_garbage_frames", "Malformed frames ignored", registry=r
        )
        self.chunk_rule_violations_avoided = Counter(
            "streamer_chunk_rule_violations_avoided",
            "Illegal-size media frames from a relayed bot that were re-chunked",
            registry=r,
        )
        self.streams_rejected = Counter(
            "streamer_streams_rejected", "Streams refused (bad token or call)", registry=r
        )
        self.first_audio_latency = Histogram(
            "streamer_first_audio_latency_seconds",
            "From the start frame to the first audio frame sent to Exotel",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0),
            registry=r,
        )

        self._in: dict[type, Any] = {}
        self.media_out = self.frames_out.labels("media")
        self._out = {"media": self.media_out}

    def frame_in(self, frame: object) -> None:
        """Count one frame from Exotel under its event (the message class's name)."""
        kind = type(frame)
        child = self._in.get(kind)
        if child is None:
            child = self._in[kind] = self.frames_in.labels(kind.__name__.lower())
        child.inc()

    def frame_out(self, event: str) -> None:
        child = self._out.get(event)
        if child is None:
            child = self._out[event] = self.frames_out.labels(event)
        child.inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

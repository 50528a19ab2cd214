"""Prometheus instruments of one streamer app, on its own registry.

A registry per app (not the global one) so tests can build many apps in one
process and ``/metrics`` shows only the streamer's own series.
"""

from __future__ import annotations

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

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

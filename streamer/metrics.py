"""Prometheus instruments of one streamer app, on its own registry.

A registry per app (not the global one) so tests can build many apps in one
process and ``/metrics`` shows only the streamer's own series. The per-frame
counts (``frame_in``, ``frame_out``) are plain integers in a dict that a
collector exports as the ``streamer_frames_in``/``_out`` counters when scraped:
a prometheus counter takes a lock on every ``inc`` and a ``labels()`` lookup,
both visible in the streamer's profile at one call per frame.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class FrameCounts(Collector):
    """Frames in and out by event; the event loop's thread counts, a scrape copies."""

    def __init__(self) -> None:
        self.inbound: dict[str, int] = {}
        self.outbound: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        for name, doc, counts in (
            ("streamer_frames_in", "Frames received from Exotel", self.inbound),
            ("streamer_frames_out", "Frames sent to Exotel", self.outbound),
        ):
            family = CounterMetricFamily(name, doc, labels=["event"])
            for event, n in sorted(dict(counts).items()):  # dict(): one C-level copy
                family.add_metric([event], n)
            yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.active_streams = Gauge(
            "streamer_active_streams", "Open AgentStream websockets", registry=r
        )
        self.frames = FrameCounts()
        r.register(self.frames)
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

        self._names: dict[type, str] = {}  # message class -> event name

    def frame_in(self, frame: object) -> None:
        """Count one frame from Exotel under its event (the message class's name)."""
        kind = type(frame)
        event = self._names.get(kind)
        if event is None:
            event = self._names[kind] = kind.__name__.lower()
        counts = self.frames.inbound
        counts[event] = counts.get(event, 0) + 1

    def frame_out(self, event: str) -> None:
        counts = self.frames.outbound
        counts[event] = counts.get(event, 0) + 1

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

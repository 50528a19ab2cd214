"""Prometheus metrics of the receiver, in a registry of its own (one per app)."""

from __future__ import annotations

from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self) -> None:
        self.gauges_at = float("-inf")  # monotonic time of the last gauge refresh
        self.registry = CollectorRegistry()
        counter = partial(Counter, registry=self.registry)
        gauge = partial(Gauge, registry=self.registry)
        self.callbacks = counter("dialer_callbacks_total", "Status callbacks by result", ["result"])
        self.transitions = counter(
            "dialer_transitions_total", "Call state transitions", ["before", "after"]
        )
        # per account, refreshed by a scrape (dialer.receiver.api.refresh_gauges)
        self.slots = gauge("dialer_slots_in_use", "Slots held per account", ["account"])
        self.limit = gauge("dialer_slots_limit", "Concurrency limit per account", ["account"])
        self.queued = gauge("dialer_queue_depth", "Calls waiting per account", ["account"])

        self.api = counter("dialer_api_requests_total", "REST requests", ["route", "status"])

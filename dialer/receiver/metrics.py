"""Prometheus metrics of the receiver, in a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self) -> None:
        self.gauges_at = float("-inf")  # monotonic time of the last gauge refresh
        self.registry = CollectorRegistry()
        self.callbacks = Counter(
            "dialer_callbacks_total",
            "Status callbacks by result",
            ["result"],
            registry=self.registry,
        )
        self.transitions = Counter(
            "dialer_transitions_total",
            "Call state transitions",
            ["before", "after"],
            registry=self.registry,
        )
        self.slots = Gauge(
            "dialer_slots_in_use", "Slots held per account", ["account"], registry=self.registry
        )
        self.limit = Gauge(
            "dialer_slots_limit",
            "Concurrency limit per account",
            ["account"],
            registry=self.registry,
        )
        self.queued = Gauge(
            "dialer_queue_depth", "Calls waiting per account", ["account"], registry=self.registry
        )
        self.api = Counter(
            "dialer_api_requests_total",
            "REST requests",
            ["route", "status"],
            registry=self.registry,
        )

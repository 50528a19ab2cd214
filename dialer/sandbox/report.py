"""What the sandbox saw: the evidence a test or demo judges the dialer by.

The report is the only thing here allowed to grow with traffic (one entry per
dial, terminal callback, stream and violation); everything else the sandbox
keeps is bounded. ``GET /_sandbox/report`` serves ``to_json()``. A violation
is something a correct dialer or bot never causes (too many calls at once, an
illegal audio chunk); a rejection is any refused API request, by reason.
This module does no I/O.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

MAX_DETAIL = 300


@dataclass
class Report:
    dials_per_number: Counter[str] = field(default_factory=Counter)
    dials_per_custom_field: Counter[str] = field(default_factory=Counter)
    max_concurrency: dict[str, int] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=dict)
    violations: list[dict[str, Any]] = field(default_factory=list)
    calls_total: int = 0
    requests_total: int = 0
    requests_by_kind: Counter[str] = field(default_factory=Counter)  # connect/details/list
    rejected: Counter[str] = field(default_factory=Counter)
    dial_times: list[float] = field(default_factory=list)
    terminal_times: list[float] = field(default_factory=list)
    first_audio_ms: list[float] = field(default_factory=list)
    dtmf_sent: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    streams_opened: int = 0
    streams_completed: int = 0
    frames_in: int = 0
    frames_out: int = 0
    callbacks_sent: Counter[str] = field(default_factory=Counter)
    callbacks_failed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    faults_injected: Counter[str] = field(default_factory=Counter)
    #: per call sid: ms of bot audio received, and how much of it was not silence
    bot_audio: defaultdict[str, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: {"ms": 0.0, "voiced_ms": 0.0})
    )
    terminal_dropped: list[dict[str, Any]] = field(default_factory=list)  # {sid, at}
    stream_ends: Counter[str] = field(default_factory=Counter)  # "callee" or "bot:<code>"
    #: per call a machine answered: when its greeting and beep ended and when the
    #: bot's audio (a message, or a bot talking to the recording) began, after answer
    machine_heard: dict[str, dict[str, Any]] = field(default_factory=dict)

    def violation(self, kind: str, call_sid: str | None, detail: str) -> None:
        self.violations.append({"kind": kind, "call_sid": call_sid, "detail": detail[:MAX_DETAIL]})

    def heard(self, call_sid: str, ms: float, voiced_ms: float) -> None:
        """Bot audio the callee heard: proof a prompt was real sound, not silence."""
        entry = self.bot_audio[call_sid]
        entry["ms"] += ms
        entry["voiced_ms"] += voiced_ms

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def call_accepted(
        self, account: str, number: str, custom_field: str | None, at_epoch: float
    ) -> None:
        self.calls_total += 1
        self.dials_per_number[number] += 1
        if custom_field is not None:
            self.dials_per_custom_field[custom_field] += 1
        self.dial_times.append(at_epoch)
        now_active = self.active.get(account, 0) + 1
        self.active[account] = now_active
        self.max_concurrency[account] = max(self.max_concurrency.get(account, 0), now_active)

    def call_ended(self, account: str, status: str) -> None:
        """The call left the account's concurrency count (terminal status reached)."""
        self.active[account] = max(0, self.active.get(account, 0) - 1)
        self.statuses[status] += 1

    def active_calls(self, account: str) -> int:
        return self.active.get(account, 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "dials_per_number": dict(self.dials_per_number),
            "dials_per_custom_field": dict(self.dials_per_custom_field),
            "max_concurrency": dict(self.max_concurrency),
            "active": dict(self.active),
            "violations": list(self.violations),
            "machine_heard": dict(self.machine_heard),
            "calls_total": self.calls_total,
            "requests_total": self.requests_total,
            "requests_by_kind": dict(self.requests_by_kind),
            "rejected": dict(self.rejected),
            "dial_times": list(self.dial_times),
            "terminal_times": list(self.terminal_times),
            "first_audio_ms": list(self.first_audio_ms),
            "dtmf_sent": {sid: list(d) for sid, d in self.dtmf_sent.items()},
            "streams": {"opened": self.streams_opened, "completed": self.streams_completed},
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "callbacks_sent": dict(self.callbacks_sent),
            "callbacks_failed": self.callbacks_failed,
            "statuses": dict(self.statuses),
            "faults_injected": dict(self.faults_injected),
            "bot_audio": {sid: dict(v) for sid, v in self.bot_audio.items()},
            "terminal_dropped": list(self.terminal_dropped),
            "stream_ends": dict(self.stream_ends),
        }

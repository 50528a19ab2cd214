"""Sandbox configuration: accounts, callee timing, faults (plain dataclasses).

Everything the sandbox does that is not dictated by Exotel's protocol is a
knob here, so a demo can run at human pace (ring 1 s, talk 20 s) and a test
at machine pace (ring 0.05 s). The control API rebuilds ``Faults`` and
``AccountConfig`` from JSON through ``from_json`` so a bad field is refused
with its name, never half-applied. This module does no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CALLBACK_FORMATS = ("json", "urlencoded", "multipart")
OUTCOMES = ("answer", "busy", "no-answer", "failed", "hangup-early")
DEFAULT_DTMF = ("1", "2", "3")


def _from_json(cls: Any, data: Any, what: str) -> Any:
    """Build dataclass ``cls`` from a JSON object; unknown or mistyped fields raise ValueError."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{what}: must be a JSON object")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{unknown[0]}: not a {what} field")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ValueError(f"{what}: {exc}") from None


def _number(name: str, value: object, *, low: float = 0.0, high: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: must be a number")
    if not low <= value <= high:
        raise ValueError(f"{name}: must be in {low}..{high}, got {value}")


@dataclass(frozen=True)
class AccountConfig:
    """One Exotel account the sandbox accepts (credentials and limits)."""

    sid: str
    api_key: str
    api_token: str = field(repr=False)
    max_concurrent: int = 10
    calls_per_minute: int = 200

    def __post_init__(self) -> None:
        for name in ("sid", "api_key", "api_token"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name}: must be a non-empty string")
        for name in ("max_concurrent", "calls_per_minute"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a whole number >= 1")

    @classmethod
    def from_json(cls, data: Any) -> AccountConfig:
        return _from_json(cls, data, "account")

    @classmethod
    def demo(cls, max_concurrent: int = 10, calls_per_minute: int = 200) -> AccountConfig:
        """The account ``dialer sandbox`` accepts (``dialer up`` registers it with the
        dialer: ``dialer.cli.supervisor.SANDBOX_ACCOUNT``)."""
        return cls("sandbox", "sandbox-key", "sandbox-token", max_concurrent, calls_per_minute)


#: The 4xx answers Exotel documents for a request it refuses (exotel-protocol.md,
#: "Errors"); 401 (credentials) and 429 (rate) have their own, real causes here.
REFUSALS = frozenset({400, 402, 403, 404, 409})


@dataclass(frozen=True)
class Faults:
    """Injected provider misbehaviour. Rates are probabilities 0..1 per request/callback."""

    http_5xx: float = 0.0
    http_429: float = 0.0
    retry_after_s: int = 1
    #: Exotel refusing the request itself (bad parameter, no balance, ...), as ``http_4xx_status``
    http_4xx: float = 0.0
    http_4xx_status: int = 400
    accept_timeout: float = 0.0
    timeout_delay_s: float = 20.0
    reset_after_accept: float = 0.0
    dup_callbacks: float = 0.0
    reorder_callbacks: float = 0.0
    drop_callbacks: float = 0.0
    drop_terminal_callbacks: float = 0.0  # only terminal ones: what a receiver restart loses
    late_callbacks: float = 0.0
    late_delay_s: float = 2.0
    seed: int | None = None  # re-seeds the sandbox RNG when set through the control API

    RATES = (
        "http_5xx", "http_429", "http_4xx", "accept_timeout", "reset_after_accept",
        "dup_callbacks", "reorder_callbacks", "drop_callbacks", "drop_terminal_callbacks",
        "late_callbacks",
    )  # fmt: skip

    def __post_init__(self) -> None:
        for name in self.RATES:
            _number(name, getattr(self, name), high=1.0)
        _number("timeout_delay_s", self.timeout_delay_s, high=3600)
        _number("late_delay_s", self.late_delay_s, high=3600)
        if isinstance(self.retry_after_s, bool) or not isinstance(self.retry_after_s, int):
            raise ValueError("retry_after_s: must be a whole number of seconds")
        _number("retry_after_s", self.retry_after_s, low=1, high=3600)
        status = self.http_4xx_status
        if isinstance(status, bool) or not isinstance(status, int) or status not in REFUSALS:
            raise ValueError(f"http_4xx_status: one of {sorted(REFUSALS)}")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ValueError("seed: must be an integer or null")

    @classmethod
    def from_json(cls, data: Any) -> Faults:
        return _from_json(cls, data, "faults")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CalleeBehaviour:
    """What the person at one number does when the sandbox rings it."""

    outcome: str = "answer"
    ring_s: float = 1.0
    talk_max_s: float = 20.0  # callee hangs up after this long answered
    dtmf: tuple[str, ...] = DEFAULT_DTMF  # pressed one by one, after each bot utterance
    hangup_after_s: float | None = None  # set for "hangup-early": hang up this long after answer
    voice: str = "line"  # what the callee says: line hiss, or a person/machine (sandbox.voices)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome: must be one of {', '.join(OUTCOMES)}")
        _number("ring_s", self.ring_s, high=3600)
        _number("talk_max_s", self.talk_max_s, high=14_400)
        if self.hangup_after_s is not None:
            _number("hangup_after_s", self.hangup_after_s, high=14_400)
        if isinstance(self.dtmf, str) or not all(
            isinstance(d, str) and len(d) == 1 and d in "0123456789*#" for d in self.dtmf
        ):
            raise ValueError("dtmf: must be a list of single keys 0-9, * or #")
        object.__setattr__(self, "dtmf", tuple(self.dtmf))
        if not isinstance(self.voice, str):
            raise ValueError("voice: must be a string")
        if self.voice != "line":
            from dialer.sandbox.voices import parse_voice  # numpy: only when a voice is named

            parse_voice(self.voice)

    def with_fields(self, data: Any) -> CalleeBehaviour:
        """This behaviour with the fields of a JSON object replaced (control API)."""
        base = dataclasses.asdict(self)
        if not isinstance(data, Mapping):
            raise ValueError("behaviour: must be a JSON object")
        unknown = sorted(set(data) - set(base))
        if unknown:
            raise ValueError(f"{unknown[0]}: not a behaviour field")
        base.update(data)
        try:
            return CalleeBehaviour(**base)
        except TypeError as exc:
            raise ValueError(f"behaviour: {exc}") from None


def _default_accounts() -> list[AccountConfig]:
    return [AccountConfig("sandbox", "sandbox-key", "sandbox-token")]


@dataclass
class SandboxConfig:
    """Everything the sandbox needs at start; timing defaults suit a watched demo."""

    accounts: list[AccountConfig] = field(default_factory=_default_accounts)
    ring_s: float = 1.0
    talk_max_s: float = 20.0
    early_hangup_s: float = 4.0  # "hangup-early" callees leave this long after answering
    think_s: float = 0.3  # pause between the bot falling silent and the callee's key press
    dtmf: tuple[str, ...] = DEFAULT_DTMF
    ringing_delay_s: float = 0.05  # accept -> "ringing"
    frame_ms: int = 100  # caller audio frame length (Exotel sends ~100 ms frames)
    handshake_timeout_s: float = 10.0  # Exotel: handshake within ~10 s, one retry
    callback_format: str = "rotate"  # json, urlencoded, multipart, or rotate through all three
    callback_timeout_s: float = 15.0  # Exotel waits 15 s for the 200
    callback_retry_delay_s: float = 1.0
    callback_attempts: int = 3  # Exotel retries a failed delivery up to 2 more times
    rate_window_s: float = 60.0  # calls_per_minute applies over this sliding window
    concurrency_retry_after_s: int = 1
    max_calls_kept: int = 100_000  # oldest finished calls are forgotten past this
    faults: Faults = field(default_factory=Faults)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.callback_format not in (*CALLBACK_FORMATS, "rotate"):
            raise ValueError(
                f"callback_format: must be one of {', '.join(CALLBACK_FORMATS)}, rotate"
            )
        if not self.accounts:
            raise ValueError("accounts: at least one account is needed")
        if self.callback_attempts < 1:
            raise ValueError("callback_attempts: must be >= 1")

    def default_behaviour(self) -> CalleeBehaviour:
        return CalleeBehaviour(
            ring_s=self.ring_s, talk_max_s=self.talk_max_s, dtmf=tuple(self.dtmf)
        )

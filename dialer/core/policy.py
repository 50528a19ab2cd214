"""Retry policy and back-off arithmetic (pure; time and randomness are parameters).

Two different retries live here and must not be confused:

* an *attempt* retry: the call was placed and ended busy / no-answer /
  failed, or a machine answered and was hung up on (``machine``); the
  contact is called again after a policy delay, up to ``max_attempts``
  dials in total (the one budget no other rule can exceed);
* a *send* retry: Exotel provably did not place the call (refused connection,
  5xx, 429); the same attempt is sent again after exponential back-off with
  full jitter, honouring Retry-After, at most ``max_send_tries`` times.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RETRYABLE_OUTCOMES = ("busy", "no-answer", "failed", "machine")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    retry_delay_s: Mapping[str, float] = field(
        default_factory=lambda: {
            "busy": 300.0,
            "no-answer": 600.0,
            "failed": 600.0,
            "machine": 1800.0,
        }
    )
    #: optional per-outcome budgets, e.g. {"failed": 1}: never more than the total.
    max_per_outcome: Mapping[str, int] = field(default_factory=dict)
    max_send_tries: int = 5
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_send_tries < 1:
            raise ValueError("max_send_tries must be at least 1")
        for name, delay in self.retry_delay_s.items():
            if name not in RETRYABLE_OUTCOMES:
                raise ValueError(f"retry_delay_s: unknown outcome {name!r}")
            if delay < 0:
                raise ValueError(f"retry_delay_s.{name}: must be >= 0")

    def retry_delay(self, outcome: str, attempt: int, counts: Mapping[str, int]) -> float | None:
        """Seconds until the next attempt after ``attempt`` ended with ``outcome``; None: stop.

        ``counts`` already includes this attempt's outcome.
        """
        if outcome not in RETRYABLE_OUTCOMES or attempt >= self.max_attempts:
            return None
        budget = self.max_per_outcome.get(outcome)
        if budget is not None and counts.get(outcome, 0) >= budget:
            return None
        return float(self.retry_delay_s.get(outcome, 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "retry_delay_s": dict(self.retry_delay_s),
            "max_per_outcome": dict(self.max_per_outcome),
            "max_send_tries": self.max_send_tries,
            "backoff_base_s": self.backoff_base_s,
            "backoff_cap_s": self.backoff_cap_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetryPolicy:
        return cls(
            max_attempts=int(data.get("max_attempts", 3)),
            retry_delay_s={k: float(v) for k, v in dict(data.get("retry_delay_s", {})).items()},
            max_per_outcome={k: int(v) for k, v in dict(data.get("max_per_outcome", {})).items()},
            max_send_tries=int(data.get("max_send_tries", 5)),
            backoff_base_s=float(data.get("backoff_base_s", 1.0)),
            backoff_cap_s=float(data.get("backoff_cap_s", 60.0)),
        )


def backoff_s(
    tries: int,
    rng: random.Random,
    *,
    base_s: float = 1.0,
    cap_s: float = 60.0,
    retry_after_s: float | None = None,
) -> float:
    """Full-jitter exponential back-off for send try number ``tries`` (1-based).

    Never shorter than the provider's Retry-After.
    """
    ceiling = min(cap_s, base_s * (2 ** max(0, tries - 1)))
    delay = rng.uniform(0, ceiling)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return delay

"""Back-off and retry arithmetic, from tables with the rng as a parameter."""

from __future__ import annotations

import random

import pytest

from dialer.core.policy import RetryPolicy, backoff_s


class Fixed(random.Random):
    def __init__(self, fraction: float) -> None:
        super().__init__()
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


@pytest.mark.parametrize(
    ("tries", "fraction", "retry_after", "expected"),
    [
        (1, 1.0, None, 1.0),
        (2, 1.0, None, 2.0),
        (4, 0.5, None, 4.0),
        (10, 1.0, None, 60.0),
        (1, 0.0, 30.0, 30.0),
        (3, 1.0, 2.0, 4.0),
    ],
)
def test_backoff(tries: int, fraction: float, retry_after: float | None, expected: float) -> None:
    assert backoff_s(tries, Fixed(fraction), retry_after_s=retry_after) == expected


@pytest.mark.parametrize(
    ("outcome", "attempt", "counts", "expected"),
    [
        ("busy", 1, {"busy": 1}, 5.0),
        ("busy", 3, {"busy": 3}, None),
        ("completed", 1, {}, None),
        ("failed", 1, {"failed": 1}, None),
        ("no-answer", 2, {"no-answer": 2}, 7.0),
    ],
)
def test_retry_delay(
    outcome: str, attempt: int, counts: dict[str, int], expected: float | None
) -> None:
    pol = RetryPolicy(
        max_attempts=3, retry_delay_s={"busy": 5, "no-answer": 7}, max_per_outcome={"failed": 1}
    )
    assert pol.retry_delay(outcome, attempt, counts) == expected


def test_policy_round_trip_and_validation() -> None:
    pol = RetryPolicy(max_attempts=2, retry_delay_s={"busy": 1.0})
    assert RetryPolicy.from_dict(pol.to_dict()) == pol
    with pytest.raises(ValueError, match="unknown outcome"):
        RetryPolicy(retry_delay_s={"completed": 1.0})

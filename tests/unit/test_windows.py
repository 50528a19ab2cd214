"""Calling windows, table-tested with ``now`` injected: zones, DST, multi-zone numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialer.errors import ValidationError
from dialer.windows import Window, next_open, zones_for

W = Window.parse({"days": "mon-sat", "start": "09:00", "end": "20:00"})


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("now", "zones", "expected"),
    [
        # Wed 10:00 IST = 04:30 UTC: open now
        ("2026-11-25T04:30:00", ["Asia/Kolkata"], "2026-11-25T04:30:00"),
        # Wed 21:00 IST = 15:30 UTC: next is Thu 09:00 IST = 03:30 UTC
        ("2026-11-25T15:30:00", ["Asia/Kolkata"], "2026-11-26T03:30:00"),
        # Sat 21:00 IST: Sunday is closed, so Monday 09:00 IST
        ("2026-11-28T15:30:00", ["Asia/Kolkata"], "2026-11-30T03:30:00"),
        # New York winter (EST, UTC-5): 08:00 local -> opens 14:00 UTC
        ("2026-11-25T13:00:00", ["America/New_York"], "2026-11-25T14:00:00"),
        # New York summer (EDT, UTC-4): 09:00 local is 13:00 UTC
        ("2026-07-15T12:00:00", ["America/New_York"], "2026-07-15T13:00:00"),
        # Sat 21:00 EST, DST starts Sun 8 Mar; Mon 9 Mar 09:00 EDT = 13:00 UTC
        ("2026-03-08T02:00:00", ["America/New_York"], "2026-03-09T13:00:00"),
        # Sat 22:00 EDT, DST ends Sun 1 Nov; Mon 2 Nov 09:00 EST = 14:00 UTC
        ("2026-11-01T02:00:00", ["America/New_York"], "2026-11-02T14:00:00"),
        # two zones: open only when open in both (NY 09:00 = LA 06:00 -> LA 09:00 = 17:00 UTC)
        ("2026-11-25T14:00:00", ["America/New_York", "America/Los_Angeles"], "2026-11-25T17:00:00"),
    ],
)
def test_next_open(now: str, zones: list[str], expected: str) -> None:
    assert next_open(ts(now), W, zones) == ts(expected)


def test_zones_from_numbers_and_tz() -> None:
    assert zones_for("+919876543210") == ("Asia/Calcutta",) or zones_for("+919876543210") == (
        "Asia/Kolkata",
    )
    assert zones_for("+12125550123") == ("America/New_York",)
    assert len(zones_for("+15555550123")) >= 1
    assert zones_for("+919876543210", "Europe/Berlin") == ("Europe/Berlin",)
    with pytest.raises(ValidationError, match="tz"):
        zones_for("+919876543210", "Mars/Olympus")


def test_window_parse_errors() -> None:
    with pytest.raises(ValidationError):
        Window.parse({"start": "20:00", "end": "09:00"})
    with pytest.raises(ValidationError):
        Window.parse({"days": "funday"})
    assert Window.parse({"days": ["sat", "sun"]}).days == frozenset({5, 6})
    assert Window.parse({"days": "fri-mon"}).days == frozenset({4, 5, 6, 0})

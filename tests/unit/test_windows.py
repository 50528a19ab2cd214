"""Calling windows, table-tested with ``now`` injected: zones, DST, multi-zone numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialer.core.errors import ValidationError
from dialer.core.windows import Window, next_open, zones_for

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


WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
WEEKEND = ["sat", "sun"]
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.mark.parametrize(
    ("spec", "days", "start", "end"),
    [
        ("mon-fri 09:00-17:00", WEEKDAYS, "09:00", "17:00"),
        ("mon-sat,09:00-20:00", [*WEEKDAYS, "sat"], "09:00", "20:00"),
        ("Mon-Fri 9:00-17:30", WEEKDAYS, "09:00", "17:30"),
        ("mon - fri  09:00 - 17:00", WEEKDAYS, "09:00", "17:00"),
        ("mon,wed,fri 10:00-12:00", ["mon", "wed", "fri"], "10:00", "12:00"),
        ("mon-tue,fri 10:00-12:00", ["mon", "tue", "fri"], "10:00", "12:00"),
        ("monday-friday 08:00-18:00", WEEKDAYS, "08:00", "18:00"),
        ("fri-mon 10:00-16:00", ["mon", "fri", "sat", "sun"], "10:00", "16:00"),
        ("sat-sun", ["sat", "sun"], "00:00", "23:59"),
        ("08:30-20:00", EVERY_DAY, "08:30", "20:00"),
        ("mon-fri 00:00-23:59", WEEKDAYS, "00:00", "23:59"),
        (
            {"days": "mon-sat", "start": "09:00", "end": "20:00"},
            [*WEEKDAYS, "sat"],
            "09:00",
            "20:00",
        ),
        (
            {"days": ["sat", "sunday"], "start": "9:00", "end": "13:00"},
            ["sat", "sun"],
            "09:00",
            "13:00",
        ),
        ({"days": ["mon-wed"]}, ["mon", "tue", "wed"], "00:00", "23:59"),
        ({}, EVERY_DAY, "00:00", "23:59"),
    ],
)
def test_window_accepted_forms(spec: object, days: list[str], start: str, end: str) -> None:
    assert Window.parse(spec).to_dict() == {"days": days, "start": start, "end": end}


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        # the newcomer's typo: once stored as an all-day window (calls at midnight)
        ("mon-fri 9-5", "'9-5' is not a time range"),
        ("mon-fri 9am-5pm", "'9am-5pm' is not a time range"),
        ("mon-fir 09:00-17:00", "'fir' is not a day"),
        ("tues 09:00-17:00", "'tues' is not a day"),
        ("monkey 09:00-17:00", "'monkey' is not a day"),
        ("mon-fri 09:00", "not a time range"),
        ("mon-fri 09:00-17:00-18:00", "not a time range"),
        ("mon-fri 25:00-26:00", "not a 24-hour time"),
        ("mon-fri 09:60-17:00", "not a 24-hour time"),
        ("mon-fri 09.00-17.00", "not a time range"),
        ("mon-fri 17:00-09:00", "cannot span midnight"),
        ("mon-fri 09:00-09:00", "is not before end"),
        ("09:00-12:00 mon-fri", "one time range, after the days"),
        ("mon 09:00-12:00 14:00-18:00", "one time range, after the days"),
        ("mon-wed-fri", "not a day or a range of days"),
        ("", "empty window"),
        ("mon-fri \u0660\u0669:\u0660\u0660-17:00", "not a 24-hour time"),  # Arabic-Indic digits
        ("mon\x00 09:00-17:00", "'mon\\x00' is not a day"),  # escaped, never raw
        ("x" * 5000 + " 09:00-17:00", "'xxxxxxxx"),
        ("   ", "empty window"),
        ({"days": "mon-fri", "start": "9:00", "end": "17:00", "tz": "UTC"}, "unknown key(s) 'tz'"),
        ({"days": "funday"}, "'funday' is not a day"),
        ({"days": []}, "must be like 'mon-sat'"),
        ({"days": [1, 2]}, "must be like 'mon-sat'"),
        ({"start": "9:00:00"}, "not a 24-hour time"),
        ({"start": 9}, "not a 24-hour time"),
        (["mon"], "expected text or an object"),
        (42, "expected text or an object"),
    ],
)
def test_window_refused_forms_show_the_grammar(spec: object, says: str) -> None:
    with pytest.raises(ValidationError) as info:
        Window.parse(spec)
    text = str(info.value)
    assert says in text
    assert "accepted forms:" in text  # a typo teaches the grammar
    for leak in ("tuple.index", "isoformat", "Traceback"):
        assert leak not in text
    assert info.value.field == "window"
    assert text.isprintable() and len(text) < 800  # untrusted input is quoted as an excerpt


def test_describe_is_the_text_form() -> None:
    assert Window.parse("mon-fri 09:00-17:00").describe() == "mon,tue,wed,thu,fri 09:00-17:00"
    assert Window.parse("9:00-18:00").describe() == "every day 09:00-18:00"
    again = Window.parse(Window.parse("sat,sun 10:00-12:00").to_dict())
    assert again == Window.parse("sat-sun 10:00-12:00")

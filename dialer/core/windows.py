"""Calling windows in the recipient's own time zone (pure; ``now`` is a parameter).

A campaign window such as Mon-Sat 09:00-20:00 applies in each contact's
local time. The zone comes from the contact's ``tz`` variable or, failing
that, from the number (``phonenumbers.timezone``). A number that maps to
several zones (a multi-zone country without a finer prefix) is called only
when the window is open in *all* of them: calling someone at 07:00 is worse
than calling them an hour later. DST is handled by zoneinfo: wall-clock
times are resolved in the zone on each candidate day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from dialer.core.errors import ValidationError, excerpt

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SEARCH_DAYS = 8

#: Shown with every refusal, so a typo teaches the grammar instead of leaking internals.
ACCEPTED_FORMS = (
    'accepted forms: "mon-fri 09:00-17:00", "mon,wed,fri 9:00-18:30", '
    '"mon-sat,09:00-20:00", "sat-sun" (all day), "08:30-20:00" (every day); '
    "days are mon tue wed thu fri sat sun (or full names), a range may wrap (fri-mon); "
    "times are 24-hour H:MM or HH:MM, start before end on the same day"
)
_TIME = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")  # ASCII digits only, not any Unicode \d
_DICT_KEYS = frozenset({"days", "start", "end"})


def _refuse(problem: str) -> ValidationError:
    return ValidationError(f"window: {problem}; {ACCEPTED_FORMS}", field="window")


def _day(token: str) -> int:
    name = token.strip().lower()
    if name in DAYS:
        return DAYS.index(name)
    if name in _FULL:
        return _FULL.index(name)
    raise _refuse(f"{excerpt(token.strip())} is not a day")


def _day_set(token: str) -> frozenset[int]:
    """One day (``mon``) or an inclusive range (``mon-fri``, wrapping: ``fri-mon``)."""
    if token.count("-") > 1:
        raise _refuse(f"{excerpt(token)} is not a day or a range of days")
    if "-" not in token:
        return frozenset({_day(token)})
    a, b = (_day(x) for x in token.split("-"))
    return frozenset(range(a, b + 1)) if a <= b else frozenset([*range(a, 7), *range(0, b + 1)])


def _time(value: object, what: str) -> time:
    m = _TIME.match(value) if isinstance(value, str) else None
    if m is None or int(m[1]) > 23 or int(m[2]) > 59:
        raise _refuse(f"{what} {excerpt(str(value))} is not a 24-hour time like 09:00")
    return time(int(m[1]), int(m[2]))


def _hours(token: str) -> tuple[time, time]:
    start, sep, end = token.partition("-")
    if not sep or "-" in end or not start or not end:
        raise _refuse(f"{excerpt(token)} is not a time range like 09:00-17:00")
    if ":" not in start or ":" not in end:
        # "9-5": 09:00-05:00 or 9 am to 5 pm? Refused rather than guessed.
        raise _refuse(
            f"{excerpt(token)} is not a time range: write hours and minutes, e.g. 09:00-17:00"
        )
    return _time(start, "start"), _time(end, "end")


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise _refuse(
                f"start {self.start:%H:%M} is not before end {self.end:%H:%M} "
                "(a window cannot span midnight)"
            )

    @classmethod
    def parse(cls, spec: object) -> Window:
        """The one grammar of CLI and REST: text (``"mon-fri 09:00-17:00"``) or
        ``{"days": "mon-sat" | ["mon", ...], "start": "09:00", "end": "20:00"}``.

        Anything else is refused with the accepted forms; nothing is guessed
        (``"mon-fri 9-5"`` once became an all-day window).
        """
        if isinstance(spec, str):
            return cls.parse_text(spec)
        if not isinstance(spec, Mapping):
            raise _refuse("expected text or an object with days, start, end")
        unknown = sorted(str(k) for k in set(spec) - _DICT_KEYS)
        if unknown:
            raise _refuse(f"unknown key(s) {excerpt(', '.join(unknown))} (use days, start, end)")
        days = spec.get("days", "mon-sun")
        if isinstance(days, str):
            day_set = _days_text(days)
        elif isinstance(days, list | tuple) and days and all(isinstance(d, str) for d in days):
            day_set = frozenset().union(*(_day_set(d.strip()) for d in days))
        else:
            raise _refuse(
                f"days {excerpt(str(days))} must be like 'mon-sat' or a list of day names"
            )
        return cls(
            day_set,
            _time(spec.get("start", "00:00"), "start"),
            _time(spec.get("end", "23:59"), "end"),
        )

    @classmethod
    def parse_text(cls, text: str) -> Window:
        """``[DAYS][ |,]HH:MM-HH:MM``, DAYS being ``mon-fri`` or ``mon,wed,fri`` (or both)."""
        norm = re.sub(r"\s*[-\u2013]\s*", "-", text.strip().lower())
        tokens = [t for t in re.split(r"[\s,]+", norm) if t]
        if not tokens:
            raise _refuse("empty window")
        days: frozenset[int] = frozenset()
        hours: tuple[time, time] | None = None
        for i, token in enumerate(tokens):
            if any(ch.isdigit() for ch in token) or ":" in token:
                if hours is not None or i != len(tokens) - 1:
                    raise _refuse("give one time range, after the days")
                hours = _hours(token)
            else:
                days |= _day_set(token)
        start, end = hours or (time(0, 0), time(23, 59))
        return cls(days or frozenset(range(7)), start, end)

    def to_dict(self) -> dict[str, object]:
        return {
            "days": [DAYS[d] for d in sorted(self.days)],
            "start": self.start.isoformat("minutes"),
            "end": self.end.isoformat("minutes"),
        }

    def describe(self) -> str:
        """Human text, e.g. ``mon-fri 09:00-17:00`` (what ``dialer status`` prints)."""
        names = [DAYS[d] for d in sorted(self.days)]
        days = "every day" if len(names) == 7 else ",".join(names)
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M}"

    def open_intervals(
        self, zone: ZoneInfo, first: date, n_days: int
    ) -> list[tuple[datetime, datetime]]:
        out = []
        for i in range(n_days):
            day = first + timedelta(days=i)
            if day.weekday() in self.days:
                lo = datetime.combine(day, self.start, zone).astimezone(UTC)
                hi = datetime.combine(day, self.end, zone).astimezone(UTC)
                out.append((lo, hi))
        return out


def _days_text(text: str) -> frozenset[int]:
    norm = re.sub(r"\s*[-\u2013]\s*", "-", text.strip().lower())
    tokens = [t for t in re.split(r"[\s,]+", norm) if t]
    if not tokens:
        raise _refuse("days is empty")
    return frozenset().union(*(_day_set(t) for t in tokens))


def zones_for(number: str, tz: str | None = None) -> tuple[str, ...]:
    """The contact's zone(s): an explicit ``tz`` wins; unknown numbers fall back to UTC."""
    if tz:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"tz: unknown time zone {tz!r}", field="tz") from None
        return (tz,)
    try:
        zones = pn_timezone.time_zones_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        zones = ()
    real = tuple(z for z in zones if z != "Etc/Unknown")
    return real or ("UTC",)


def next_open(now: float, window: Window, zones: Sequence[str]) -> float:
    """The earliest time >= now at which the window is open in every zone (epoch s).

    Returns ``now`` when it is open now. Searches a week ahead; a window that
    never overlaps across the zones falls back to the first zone alone.
    """
    start = datetime.fromtimestamp(now, UTC)
    first = start.date() - timedelta(days=1)
    per_zone = [window.open_intervals(ZoneInfo(z), first, SEARCH_DAYS + 2) for z in zones]
    common = per_zone[0]
    for other in per_zone[1:]:
        common = [
            (max(a, c), min(b, d)) for a, b in common for c, d in other if max(a, c) < min(b, d)
        ]
    if not common:
        common = per_zone[0]
    for lo, hi in sorted(common):
        if hi <= start:
            continue
        return max(lo, start).timestamp()
    return now  # pragma: no cover - a valid window opens within the searched week

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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from dialer.errors import ValidationError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SEARCH_DAYS = 8


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    @classmethod
    def parse(cls, spec: dict[str, object]) -> Window:
        """``{"days": "mon-sat" | ["mon", ...], "start": "09:00", "end": "20:00"}``."""
        try:
            days = _days(spec.get("days", "mon-sun"))
            start = time.fromisoformat(str(spec.get("start", "00:00")))
            end = time.fromisoformat(str(spec.get("end", "23:59")))
        except (ValueError, TypeError) as exc:
            raise ValidationError(f"window: {exc}", field="window") from None
        if start >= end:
            raise ValidationError("window: start must be before end (same day)", field="window")
        return cls(days, start, end)

    def to_dict(self) -> dict[str, object]:
        return {
            "days": [DAYS[d] for d in sorted(self.days)],
            "start": self.start.isoformat("minutes"),
            "end": self.end.isoformat("minutes"),
        }

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


def _days(value: object) -> frozenset[int]:
    if isinstance(value, str):
        if "-" in value:
            a, b = (DAYS.index(x.strip().lower()[:3]) for x in value.split("-", 1))
            return (
                frozenset(range(a, b + 1))
                if a <= b
                else frozenset([*range(a, 7), *range(0, b + 1)])
            )
        value = value.split(",")
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("days must be like 'mon-sat' or a list of day names")
    return frozenset(DAYS.index(str(d).strip().lower()[:3]) for d in value)


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

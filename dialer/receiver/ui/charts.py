"""What the dashboard's charts show, computed from a campaign's results (pure).

Input rows are the REST API's results shape (``campaigns.call_result``), so a
chart says exactly what ``dialer results`` and ``GET /v1/campaigns/{id}/calls``
say. No Redis, no clock: ``now`` is a parameter. Drawing is the browser's job
(``static/charts.js``); this module only counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

#: columns of the outcomes-over-time chart
TIME_BUCKETS = 24


def _ended_at(row: Mapping[str, Any]) -> float | None:
    ends = [a.get("ended_at") for a in row.get("attempts") or []]
    found = [float(e) for e in ends if isinstance(e, int | float)]
    return max(found) if found else None


def summarize(
    rows: Iterable[Mapping[str, Any]], *, created_at: float, now: float
) -> dict[str, Any]:
    """Answer distribution per question, attempts histogram, outcomes over time."""
    answers: dict[str, Counter[str]] = {}
    attempts: Counter[int] = Counter()
    finished: list[tuple[float, str]] = []
    for row in rows:
        attempts[len(row.get("attempts") or [])] += 1
        for question, answer in (row.get("answers") or {}).items():
            answers.setdefault(str(question), Counter())[str(answer)] += 1
        outcome = row.get("outcome")
        if outcome:
            finished.append((_ended_at(row) or now, str(outcome)))
    return {
        "answers": {q: dict(sorted(c.items())) for q, c in sorted(answers.items())},
        "attempts": {str(n): attempts[n] for n in sorted(attempts)},
        "timeline": timeline(finished, start=created_at, now=now),
    }


def timeline(
    finished: list[tuple[float, str]], *, start: float, now: float, buckets: int = TIME_BUCKETS
) -> dict[str, Any]:
    """Calls finished per time bucket, by outcome, from ``start`` to the last end (or now)."""
    end = max([now if not finished else max(t for t, _ in finished), start + 1.0])
    step_s = (end - start) / buckets
    series: dict[str, list[int]] = {}
    for at, outcome in finished:
        i = min(buckets - 1, max(0, int((at - start) / step_s)))
        series.setdefault(outcome, [0] * buckets)[i] += 1
    return {"start": start, "step_s": step_s, "series": dict(sorted(series.items()))}


def eta_s(total: int, finished: int, created_at: float, now: float) -> float | None:
    """Seconds left at the pace so far; None before the first call finishes."""
    if finished <= 0 or total <= finished or now <= created_at:
        return 0.0 if total and finished >= total else None
    pace = finished / (now - created_at)
    return (total - finished) / pace


def matches(row: Mapping[str, Any], text: str, outcome: str) -> bool:
    """The contact table's search (number, id, contact columns, answers) and outcome filter."""
    if outcome and (row.get("outcome") or row.get("state")) != outcome:
        return False
    if not text:
        return True
    needle = text.casefold()
    hay = [str(row.get("to") or ""), str(row.get("id") or "")]
    hay += [str(v) for v in (row.get("vars") or {}).values()]
    hay += [f"{k}={v}" for k, v in (row.get("answers") or {}).items()]
    return any(needle in h.casefold() for h in hay)

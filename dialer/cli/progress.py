"""What people read: ``status`` and dry-run summaries, the live bar, the results table.

Machines use ``--json`` (the API's objects, unchanged); these renderers are
pure functions of those objects (plus ``now``), so they are unit-tested.
Dates are shown in the local time zone of the person running the command.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dialer.core.contacts import var_columns
from dialer.core.states import CampaignState

FINISHED = (CampaignState.DONE, CampaignState.CANCELLED)


def _counts_text(status: dict[str, Any]) -> str:
    counts = status.get("counts", {})
    text = "  ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    reasons = (status.get("waiting") or {}).get("reasons") or []
    # the live bar says why it stands still, not only that it does
    return f"{text}  [waiting: {reasons[0]['code']}]" if reasons else text


def status_progress(
    fetch: Callable[[], dict[str, Any]],
    interval_s: float = 1.0,
    timeout_s: float | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Poll ``fetch`` and draw a live bar until the campaign ends (or the timeout)."""
    console = console or Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[c]}"),
        console=console,
        transient=False,
    )
    status = fetch()
    task = progress.add_task(
        status.get("name") or status["id"], total=status["total"], c=_counts_text(status)
    )
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with Live(progress, console=console, refresh_per_second=4):
        while True:
            progress.update(task, completed=status["finished"], c=_counts_text(status))
            if status["state"] in FINISHED:
                break
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(interval_s)
            status = fetch()
    return status


def reason_cell(reason: dict[str, str] | None, width: int = 70) -> str:
    """``code: text`` for the table; the code first, since it is what a script greps."""
    if not reason:
        return ""
    text = f"{reason.get('code', '')}: {reason.get('text', '')}"
    return text if len(text) <= width else text[: width - 1] + "…"


def results_table(rows: list[dict[str, Any]], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="Results")
    names = var_columns(rows)
    # answering-machine detection's verdict, only for campaigns that ran it
    detected = any(a.get("answered_by") for row in rows for a in row["attempts"])
    extra = ("answered by",) if detected else ()
    for col in ("to", *names, "outcome", "attempts", "duration", *extra, "answers", "reason"):
        table.add_column(col)
    for row in rows:
        last = row["attempts"][-1] if row["attempts"] else {}
        answers = " ".join(f"{k}={v}" for k, v in sorted(row["answers"].items()))
        variables = row.get("vars") or {}
        table.add_row(
            row["to"],
            *(_cell(variables.get(n)) for n in names),
            row["outcome"] or row["state"],
            str(len(row["attempts"])),
            str(last.get("duration_s") or ""),
            *((_answered_by(last),) if detected else ()),
            answers,
            reason_cell(row.get("reason")),
        )
    console.print(table)


def _answered_by(attempt: dict[str, Any]) -> str:
    who = attempt.get("answered_by")
    if not who:
        return ""
    ms = attempt.get("detection_ms")
    return f"{who} ({ms / 1000:.1f} s)" if isinstance(ms, int | float) else str(who)


def campaigns_table(rows: list[dict[str, Any]], console: Console | None = None) -> None:
    console = console or Console()
    if not rows:
        console.print("no campaigns")
        return
    table = Table(title="Campaigns")
    for col in ("id", "name", "account", "state", "progress", "created"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            row["id"],
            row.get("name") or "",
            row["account"],
            row["state"],
            f"{row['finished']}/{row['total']} ({row['progress']:.0%})",
            local_time(row.get("created_at")),
        )
    console.print(table)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def local_time(ts: float | None, now: float | None = None) -> str:
    """``2026-12-03 14:05:09 IST``; the date is dropped for today's times."""
    if not ts:
        return "-"
    when = datetime.fromtimestamp(ts).astimezone()
    today = datetime.fromtimestamp(time.time() if now is None else now).astimezone().date()
    fmt = "%H:%M:%S %Z" if when.date() == today else "%Y-%m-%d %H:%M:%S %Z"
    return when.strftime(fmt).strip()


def duration(seconds: float) -> str:
    """``45s``, ``12m 05s``, ``3h 20m``, ``2d 4h``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _rows(*rows: tuple[str, str | None]) -> list[str]:
    """The labelled column of the status and dry-run texts; a row without text is left out."""
    return [f"  {label:<11}{text}" for label, text in rows if text is not None]


def _listed(counts: dict[str, Any]) -> str | None:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or None


def status_text(st: dict[str, Any], now: float | None = None) -> str:
    """``dialer status ID`` for people: state, progress, outcomes, timing, and why it waits."""
    now = time.time() if now is None else now
    total, finished = int(st.get("total", 0)), int(st.get("finished", 0))
    pct = 100.0 * finished / total if total else 100.0
    title = f"campaign {st['id']}" + (f" ({st['name']})" if st.get("name") else "")
    outcomes = st.get("outcomes") or {}
    live = {k: v for k, v in (st.get("counts") or {}).items() if k not in outcomes}
    created = float(st.get("created_at") or 0)
    running = st["state"] == CampaignState.RUNNING
    reasons = (st.get("waiting") or {}).get("reasons") or []
    return "\n".join(
        [
            title,
            *_rows(
                ("state", st["state"]),
                ("account", f"{st.get('account', '-')}    bot {st.get('bot', '-')}"),
                (
                    "progress",
                    f"{finished}/{total} finished ({pct:.1f}%), {st.get('active', 0)} in progress",
                ),
                ("outcomes", _listed(outcomes)),
                ("calls", _listed(live)),
                (
                    "at submit",
                    f"{st.get('rejected', 0)} rows rejected, "
                    f"{st.get('duplicates', 0)} duplicates dropped"
                    if st.get("rejected") or st.get("duplicates")
                    else None,
                ),
                (
                    "created",
                    f"{local_time(created, now)} ({duration(now - created)} ago)"
                    if created
                    else None,
                ),
                (
                    "estimate",
                    _estimate(created, finished, total, now) if created and running else None,
                ),
                *((("waiting" if i == 0 else ""), _why(r, now)) for i, r in enumerate(reasons)),
                ("waiting", None if reasons or not running else _idle(st, finished, total, now)),
            ),
        ]
    )


def _estimate(created: float, finished: int, total: int, now: float) -> str | None:
    """When a running campaign ends at the pace since it was created."""
    if not 0 < finished < total:
        return None
    eta = (now - created) / finished * (total - finished)
    return f"done around {local_time(now + eta, now)} at this pace"


def _idle(st: dict[str, Any], finished: int, total: int, now: float) -> str | None:
    """Why a running campaign with nothing blocking it still waits."""
    wait = st.get("waiting") or {}
    if finished >= total:
        return None
    if wait.get("queued"):
        return f"{wait['queued']} calls queued for a free slot"
    if wait.get("scheduled"):
        return (
            f"{wait['scheduled']} calls scheduled, next due "
            f"{local_time(wait.get('next_due_at'), now)}"
        )
    return None


def _why(reason: dict[str, Any], now: float) -> str:
    text = str(reason.get("text", reason.get("code", "")))
    at = reason.get("at")
    if at:
        text += f" (until {local_time(float(at), now)}, in {duration(float(at) - now)})"
    return text


def dry_run_text(out: dict[str, Any], now: float | None = None) -> str:
    """The dry-run preflight for people; ``--json`` keeps the API's object."""
    now = time.time() if now is None else now
    pre = out.get("preflight") or {}
    est = pre.get("estimate") or {}
    reachable = pre.get("webhook_reachable")
    return "\n".join(
        [
            "dry run: nothing was queued",
            *_rows(
                (
                    "contacts",
                    f"{out.get('accepted', 0)} accepted, {len(out.get('rejected') or [])} "
                    f"rejected, {out.get('duplicates', 0)} duplicates, "
                    f"{out.get('suppressed', 0)} on the do-not-call list",
                ),
                (
                    "account",
                    f"{pre.get('max_concurrent_calls', '-')} concurrent calls, "
                    f"{pre.get('calls_per_minute', '-')} calls per minute",
                ),
                ("bot", str(pre.get("bot", "-"))),
                (
                    "webhook",
                    None if reachable is None else ("reachable" if reachable else "NOT reachable"),
                ),
                (
                    "dialling",
                    f"about {duration(float(est.get('busy_s', 0)))} of calls" if est else None,
                ),
                (
                    "finish",
                    f"around {local_time(float(est['finish_at']), now)} "
                    f"(in {duration(float(est.get('finish_in_s', 0)))}, calling windows included)"
                    if est.get("finish_at")
                    else None,
                ),
            ),
        ]
    )

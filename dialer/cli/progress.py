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


def status_text(st: dict[str, Any], now: float | None = None) -> str:
    """``dialer status ID`` for people: state, progress, outcomes, timing, and why it waits."""
    now = time.time() if now is None else now
    total, finished = int(st.get("total", 0)), int(st.get("finished", 0))
    pct = 100.0 * finished / total if total else 100.0
    title = f"campaign {st['id']}" + (f" ({st['name']})" if st.get("name") else "")
    lines = [
        title,
        f"  state      {st['state']}",
        f"  account    {st.get('account', '-')}    bot {st.get('bot', '-')}",
        f"  progress   {finished}/{total} finished ({pct:.1f}%), {st.get('active', 0)} in progress",
    ]
    outcomes = st.get("outcomes") or {}
    if outcomes:
        lines.append("  outcomes   " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    live = {k: v for k, v in (st.get("counts") or {}).items() if k not in outcomes}
    if live:
        lines.append("  calls      " + ", ".join(f"{k} {v}" for k, v in sorted(live.items())))
    if st.get("rejected") or st.get("duplicates"):
        lines.append(
            f"  at submit  {st.get('rejected', 0)} rows rejected, "
            f"{st.get('duplicates', 0)} duplicates dropped"
        )
    created = float(st.get("created_at") or 0)
    if created:
        lines.append(f"  created    {local_time(created, now)} ({duration(now - created)} ago)")
        if st["state"] == CampaignState.RUNNING and 0 < finished < total:
            eta = (now - created) / finished * (total - finished)
            lines.append(f"  estimate   done around {local_time(now + eta, now)} at this pace")
    wait = st.get("waiting") or {}
    reasons = wait.get("reasons") or []
    if reasons:
        lines.append("  waiting    " + _why(reasons[0], now))
        lines.extend("             " + _why(r, now) for r in reasons[1:])
    elif st["state"] == CampaignState.RUNNING and finished < total:
        if wait.get("queued"):
            lines.append(f"  waiting    {wait['queued']} calls queued for a free slot")
        elif wait.get("scheduled"):
            lines.append(
                f"  waiting    {wait['scheduled']} calls scheduled, next due "
                f"{local_time(wait.get('next_due_at'), now)}"
            )
    return "\n".join(lines)


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
    lines = [
        "dry run: nothing was queued",
        f"  contacts   {out.get('accepted', 0)} accepted, {len(out.get('rejected') or [])} "
        f"rejected, {out.get('duplicates', 0)} duplicates, "
        f"{out.get('suppressed', 0)} on the do-not-call list",
        f"  account    {pre.get('max_concurrent_calls', '-')} concurrent calls, "
        f"{pre.get('calls_per_minute', '-')} calls per minute",
        f"  bot        {pre.get('bot', '-')}",
    ]
    reachable = pre.get("webhook_reachable")
    if reachable is not None:
        lines.append(f"  webhook    {'reachable' if reachable else 'NOT reachable'}")
    if est:
        lines.append(f"  dialling   about {duration(float(est.get('busy_s', 0)))} of calls")
        if est.get("finish_at"):
            lines.append(
                f"  finish     around {local_time(float(est['finish_at']), now)} "
                f"(in {duration(float(est.get('finish_in_s', 0)))}, calling windows included)"
            )
    return "\n".join(lines)

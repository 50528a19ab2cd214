"""Rich progress display and results table for ``status --watch``, ``demo`` and ``results``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

FINISHED = ("done", "cancelled")


def _counts_text(status: dict[str, Any]) -> str:
    counts = status.get("counts", {})
    return "  ".join(f"{k} {v}" for k, v in sorted(counts.items()))


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
    for col in ("to", "outcome", "attempts", "duration", "answers", "reason"):
        table.add_column(col)
    for row in rows:
        last = row["attempts"][-1] if row["attempts"] else {}
        answers = " ".join(f"{k}={v}" for k, v in sorted(row["answers"].items()))
        table.add_row(
            row["to"],
            row["outcome"] or row["state"],
            str(len(row["attempts"])),
            str(last.get("duration_s") or ""),
            answers,
            reason_cell(row.get("reason")),
        )
    console.print(table)

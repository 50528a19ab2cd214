"""Status callbacks: Exotel's POSTs to a call's ``StatusCallback`` URL.

Bodies carry the fields of protocol doc section 2, encoded as JSON,
``application/x-www-form-urlencoded`` or ``multipart/form-data`` (Exotel's
default) per call, so a receiver must accept all three. A delivery that gets
no 2xx or no connection is retried up to two more times, as Exotel does.

Deliveries of one call go out in order (each waits for the one before);
the faults break that on purpose: a dropped callback is never sent, a
duplicated one is sent twice, a late one is sent after a delay outside the
call's order. (Reordering, terminal first, is the exchange's decision.)
Every delivery is a task owned by the sandbox state; none is fire-and-forget.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from typing import Any

import aiohttp

from dialer.sandbox.calls import SandboxCall
from dialer.sandbox.state import SandboxState

log = logging.getLogger(__name__)


def form_value(value: Any) -> str:
    """Form encoding of one JSON value: null -> '', lists/objects -> JSON text."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def encode_body(fields: dict[str, Any], fmt: str) -> dict[str, Any]:
    """Keyword arguments for ``session.post`` carrying ``fields`` in format ``fmt``."""
    if fmt == "json":
        return {"json": fields}
    pairs = [(k, form_value(v)) for k, v in fields.items()]
    if fmt == "urlencoded":
        return {"data": pairs}
    return {"data": aiohttp.FormData(pairs, default_to_multipart=True)}


class CallbackSender:
    """Sends each call's status callbacks in order, with Exotel's retries and our faults."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._last: dict[str, asyncio.Task[None]] = {}  # call sid -> its latest delivery

    def send(self, call: SandboxCall, event_type: str) -> None:
        """Queue one callback (a snapshot of the call now) for delivery."""
        if not call.status_callback:
            return
        state = self.state
        faults = state.faults
        if state.chance(faults.drop_callbacks):
            state.report.faults_injected["drop_callbacks"] += 1
            return
        if event_type == "terminal" and state.chance(faults.drop_terminal_callbacks):
            state.report.faults_injected["drop_terminal_callbacks"] += 1
            state.report.terminal_dropped.append({"sid": call.sid, "at": time.time()})
            return
        copies, delay = 1, 0.0
        if state.chance(faults.dup_callbacks):
            copies = 2
            state.report.faults_injected["dup_callbacks"] += 1
        if state.chance(faults.late_callbacks):
            delay = faults.late_delay_s
            state.report.faults_injected["late_callbacks"] += 1
        fields = call.callback_fields(event_type)
        previous = None if delay else self._last.get(call.sid)
        task = state.spawn(
            self._deliver(
                previous, call.status_callback, call.callback_format, fields, copies, delay
            ),
            name=f"callback-{call.sid}-{event_type}",
        )
        if not delay:
            self._last[call.sid] = task
            task.add_done_callback(functools.partial(self._forget, call.sid))

    def _forget(self, sid: str, task: asyncio.Task[None]) -> None:
        if self._last.get(sid) is task:
            del self._last[sid]

    async def _deliver(
        self,
        previous: asyncio.Task[None] | None,
        url: str,
        fmt: str,
        fields: dict[str, Any],
        copies: int,
        delay_s: float,
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # order only; its failure is its own
        if delay_s:
            await asyncio.sleep(delay_s)
        event = fields["EventType"]
        if event == "terminal":
            self.state.report.terminal_times.append(time.time())
        for _ in range(copies):
            await self._post(url, fmt, fields)

    async def _post(self, url: str, fmt: str, fields: dict[str, Any]) -> bool:
        config = self.state.config
        session = self.state.session
        assert session is not None, "the app's cleanup context opens the session"
        timeout = aiohttp.ClientTimeout(total=config.callback_timeout_s)
        problem = ""
        for attempt in range(1, config.callback_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(config.callback_retry_delay_s)
            try:
                async with session.post(url, timeout=timeout, **encode_body(fields, fmt)) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        self.state.report.callbacks_sent[fields["EventType"]] += 1
                        return True
                    problem = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                problem = type(exc).__name__
            log.info("callback %s for call %s attempt %d failed: %s", fields["EventType"],
                     fields["CallSid"], attempt, problem)  # fmt: skip
        self.state.report.callbacks_failed += 1
        return False

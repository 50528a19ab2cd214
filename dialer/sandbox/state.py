"""The sandbox's mutable state, owned by one app: accounts, calls, limits, tasks.

Everything the handlers and the exchange share lives on one ``SandboxState``
so that ``POST /_sandbox/reset`` can cancel every call in flight and start
clean, and the app's cleanup context can cancel every task it started. No
task is fire-and-forget: ``spawn`` keeps each one until it finishes.
The state knows nothing about HTTP; handlers translate.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

import aiohttp

from dialer.sandbox.calls import CallBook
from dialer.sandbox.config import AccountConfig, CalleeBehaviour, Faults, SandboxConfig
from dialer.sandbox.report import Report

log = logging.getLogger(__name__)


class RateWindow:
    """Sliding-window request counter for one account (bounded by its limit)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()

    def admit(self, now: float) -> int:
        """0 if the request may proceed (and is counted), else whole seconds to wait (>= 1)."""
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return max(1, math.ceil(self._times[0] + self.window_s - now))
        self._times.append(now)
        return 0


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.accounts: dict[str, AccountConfig] = {a.sid: a for a in config.accounts}
        self.faults: Faults = config.faults
        self.rng = self._new_rng()
        self.overrides: dict[str, dict[str, Any]] = {}
        self.report = Report()
        self.calls = CallBook(config.max_calls_kept)
        self.windows: dict[str, RateWindow] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.session: aiohttp.ClientSession | None = None
        self.closing = asyncio.Event()
        self._format_turn = 0

    def _new_rng(self) -> random.Random:
        faults_seed = self.config.faults.seed
        return random.Random(faults_seed if faults_seed is not None else self.config.seed)

    # -- tasks ---------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sandbox task %s failed", task.get_name(), exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def reset(self) -> None:
        """Cancel every call in flight and forget everything except accounts and config."""
        await self.cancel_tasks()
        self.faults = self.config.faults
        self.rng = self._new_rng()
        self.overrides.clear()
        self.report = Report()
        self.calls = CallBook(self.config.max_calls_kept)
        self.windows.clear()
        self._format_turn = 0

    # -- accounts and limits -------------------------------------------------
    def put_account(self, account: AccountConfig) -> None:
        self.accounts[account.sid] = account
        self.windows.pop(account.sid, None)  # the new limit applies from now on

    def admit_request(self, account: AccountConfig) -> int:
        """Count one API request against the account's per-minute budget (see RateWindow)."""
        window = self.windows.get(account.sid)
        if window is None:
            window = RateWindow(account.calls_per_minute, self.config.rate_window_s)
            self.windows[account.sid] = window
        return window.admit(time.monotonic())

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        if faults.seed is not None:
            self.rng = random.Random(faults.seed)

    def chance(self, rate: float) -> bool:
        """One seeded draw; a zero rate never consumes randomness (keeps runs reproducible)."""
        return rate > 0 and self.rng.random() < rate

    def next_callback_format(self) -> str:
        fmt = self.config.callback_format
        if fmt != "rotate":
            return fmt
        formats = ("json", "urlencoded", "multipart")
        fmt = formats[self._format_turn % len(formats)]
        self._format_turn += 1
        return fmt

    def set_override(self, number: str, fields: dict[str, Any] | None) -> None:
        """Replace (or with None/{} remove) one number's behaviour override, validated first."""
        if not fields:
            self.overrides.pop(number, None)
            return
        CalleeBehaviour().with_fields(fields)  # raises ValueError naming a bad field
        self.overrides[number] = dict(fields)

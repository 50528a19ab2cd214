"""Servers run in a background thread with their own loop (shared with benchmarks/).

``serve_in_thread`` serves any aiohttp app on a free loopback port;
``WebhookSink`` is a client's webhook endpoint that records deliveries.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web


@contextmanager
def serve_in_thread(app: web.Application, host: str = "127.0.0.1") -> Iterator[int]:
    """Serve ``app`` on a free port from a thread with its own loop; yields the port."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    found: dict[str, Any] = {}

    async def start() -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, 0, backlog=1024)
        await site.start()
        found["port"] = runner.addresses[0][1]
        return runner

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            runner = loop.run_until_complete(start())
        except BaseException as exc:
            found["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=main, name="served-app", daemon=True)
    thread.start()
    ready.wait(10)
    if "error" in found:
        raise RuntimeError(f"server failed: {found['error']!r}")
    try:
        yield int(found["port"])
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


class WebhookSink:
    """Records every delivery; ``fail_first`` answers 500 to the first N to force retries."""

    def __init__(self, fail_first: int = 0):
        self.deliveries: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self._lock = threading.Lock()

    def app(self) -> web.Application:
        async def hook(request: web.Request) -> web.Response:
            raw = await request.read()  # what a consumer verifies the signature over
            body = json.loads(raw)
            with self._lock:
                self.deliveries.append({"headers": dict(request.headers), "body": body, "raw": raw})
                n = len(self.deliveries)
            return web.Response(status=500 if n <= self.fail_first else 200)

        app = web.Application()
        app.router.add_post("/hook", hook)
        return app

    def by_key(self, pred: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.deliveries:
            if pred is None or pred(d):
                key = d["headers"]["Idempotency-Key"]
                out[key] = out.get(key, 0) + 1
        return out

"""Test-side servers run in a background thread: a webhook sink that records deliveries."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web


@contextmanager
def serve_in_thread(app: web.Application) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["runner"] = runner
        box["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(box["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield str(box["url"])
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


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

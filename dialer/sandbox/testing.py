"""Run the sandbox in a background thread with its own event loop (for tests, demos).

Blocking code (the ``requests``-based Exotel client, Celery workers in
integration tests) needs a sandbox that serves while the caller blocks; a
thread with its own loop does that without a subprocess. ``start_in_thread``
returns once the server is listening on a free loopback port, and its stop
function shuts it down cleanly (held responses released, tasks cancelled).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from aiohttp import web

from dialer.sandbox.app import create_app
from dialer.sandbox.config import SandboxConfig

START_TIMEOUT_S = 10.0


def start_in_thread(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, Callable[[], None]]:
    """Start a sandbox; returns ``(base_url, stop)``. ``stop()`` is idempotent."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    found: dict[str, object] = {}

    async def serve() -> web.AppRunner:
        runner = web.AppRunner(create_app(config), shutdown_timeout=2.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        found["url"] = f"http://{host}:{bound[1]}"
        return runner

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            found["runner"] = loop.run_until_complete(serve())
        except BaseException as exc:  # report start failures to the caller's thread
            found["error"] = exc
            ready.set()
            loop.close()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(found["runner"].cleanup())  # type: ignore[attr-defined]
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=main, name="exotel-sandbox", daemon=True)
    thread.start()
    if not ready.wait(START_TIMEOUT_S):
        raise RuntimeError("sandbox did not start in time")
    if "error" in found:
        raise RuntimeError(f"sandbox failed to start: {found['error']!r}")

    def stop() -> None:
        if thread.is_alive() and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)

    return str(found["url"]), stop

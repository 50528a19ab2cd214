"""Serve an aiohttp app until SIGTERM or SIGINT, then drain instead of dropping work.

Both servers (receiver, streamer) run through ``serve`` (``run``: with their
``/metrics`` on the internal listener, ``dialer.platform.scrape``). On the first stop
signal the app is marked draining (``DRAINING`` is set): ``/readyz`` answers
503 so a load balancer or Kubernetes stops sending new work, while ``/livez``
stays 200 (the process is fine; restarting it would only cut calls). Then the
app's own ``drain`` hook runs (the streamer waits for live calls, up to
``STREAMER_DRAIN_S``), and last aiohttp's graceful cleanup stops listening,
lets in-flight requests finish within ``shutdown_timeout_s`` and closes.

``/livez`` never touches Redis: a Redis outage must make servers unready, not
restart every one of them. This module knows no route but the two probes.
``reuse_port`` binds with ``SO_REUSEPORT``: one of N processes sharing the
port (``dialer.platform.processes``), each draining on its own signal.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from dialer.platform import scrape

log = logging.getLogger(__name__)

DRAINING = web.AppKey("draining", asyncio.Event)
Drain = Callable[[web.Application], Awaitable[None]]


def mark_servable(app: web.Application) -> None:
    """Give ``app`` its drain flag (call in ``create_app``)."""
    app[DRAINING] = asyncio.Event()


def draining(app: web.Application) -> bool:
    return app[DRAINING].is_set()


async def livez(request: web.Request) -> web.Response:
    """The process runs and its event loop answers. Nothing else is checked."""
    return web.json_response({"ok": True})


def not_ready(reason: str) -> web.Response:
    return web.json_response(
        {"ok": False, "reason": reason}, status=503, headers={"Retry-After": "5"}
    )


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    drain: Drain | None = None,
    shutdown_timeout_s: float = 10.0,
    reuse_port: bool = False,
) -> None:
    """Run until a stop signal, then drain (see the module docstring).

    The server commands run it with ``asyncio.run``.
    """
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=shutdown_timeout_s
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        app[DRAINING].set()
        log.info("stop signal: draining (readiness is now red)")
        if drain is not None:
            await drain(app)
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class Listen:
    """Where a server listens: resolved by its command (flags over settings)."""

    host: str
    port: int
    metrics_host: str  # /metrics: the internal listener (dialer.platform.scrape)
    metrics_port: int
    reuse_port: bool = False  # one of ``--processes N`` on the port (dialer.platform.processes)


def run(
    app: web.Application,
    listen: Listen,
    metrics: scrape.Render,
    *,
    drain: Drain | None = None,
    shutdown_timeout_s: float = 10.0,
) -> None:
    """A server command's main: ``serve`` until a stop signal, with ``/metrics``
    rendered by ``metrics`` on the internal listener only, never the public port."""
    app.cleanup_ctx.append(scrape.listener(metrics, listen.metrics_host, listen.metrics_port))
    asyncio.run(
        serve(
            app,
            listen.host,
            listen.port,
            drain=drain,
            shutdown_timeout_s=shutdown_timeout_s,
            reuse_port=listen.reuse_port,
        )
    )

"""The internal metrics listener: ``/metrics`` on its own port, never the public one.

The receiver and the streamer face the internet; their metrics name account
sids, limits and queue depths, which are nobody's business outside the
cluster. So ``/metrics`` lives on a second listener (``DIALER_METRICS_PORT`` /
``STREAMER_METRICS_PORT`` on ``DIALER_METRICS_HOST``, loopback by default)
that runs inside the same process and event loop as the public app, opened
and closed with it (a ``cleanup_ctx``). A taken metrics port is logged as an
error and the process serves on without ``/metrics``: a scrape is not worth
an outage of callbacks or streams. This module does not compute any
metric; each process passes its own ``render``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

Render = Callable[[web.Application], Awaitable[web.Response]]
#: (host, port) the listener is bound to (port 0 asks the OS for a free one);
#: () when it could not listen
ADDRESS = web.AppKey("metrics_address", tuple)


def listener(
    render: Render, host: str, port: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx serving ``GET /metrics`` (rendered from the main app) on host:port."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def metrics(_: web.Request) -> web.Response:
            return await render(app)

        internal = web.Application()
        internal.router.add_get("/metrics", metrics)
        runner = web.AppRunner(internal, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            # Callbacks and streams matter more than a scrape: serve on without
            # /metrics, loudly (`dialer up` checks the port before it starts).
            log.error("no /metrics: cannot listen on %s:%s (%s)", host, port, exc.strerror)
            app[ADDRESS] = ()
        else:
            sockets = getattr(site._server, "sockets", None) or []
            app[ADDRESS] = sockets[0].getsockname()[:2] if sockets else (host, port)
            log.info("metrics on http://%s:%s/metrics", *app[ADDRESS])
        try:
            yield
        finally:
            await runner.cleanup()

    return ctx
